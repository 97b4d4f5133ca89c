"""How each scenario crashes the first kernel, and the module it needs, if any."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    shell: str                      # body of scenario() in the guest's /init
    description: str                # the MANIFEST's scenario= text (module details appended)
    module: str | None = None       # name of the module (its .ko is <module>.ko)
    module_src: Path | None = None  # dir with <module>.c and Makefile
    module_note: str = ""
    # extra virtio disks (serial, MiB, extra QEMU -drive options), sparse files in the work dir
    scratch_disks: tuple[tuple[str, int, str], ...] = ()

    @property
    def ko_in_guest(self) -> str:
        return f"/lib/modules/extra/{self.module}.ko"


def _insmod(name: str, background: bool = False) -> str:
    return (f'    say "insmod {name}.ko"\n'
            f"    insmod /lib/modules/extra/{name}.ko{' &' if background else ''}")


SCENARIOS = {
    s.name: s for s in (
        Scenario("sysrq",
                 '    say "echo c > /proc/sysrq-trigger"\n    echo c > /proc/sysrq-trigger',
                 "echo c > /proc/sysrq-trigger (kernel.panic_on_oops=1)"),
        Scenario("test-module", _insmod("test-module"),
                 "insmod test-module.ko (init dereferences (int *)1)",
                 module="test-module",
                 # the seed's module, exactly as committed with the 6.1 dump
                 module_src=SAMPLES / "6.1-test-module" / "test-module"),
        Scenario("bug-kthread", _insmod("bug-kthread"),
                 "insmod bug-kthread.ko (a kthread \"bug_kthread\" calls BUG()) "
                 "(kernel.panic_on_oops=1)",
                 module="bug-kthread", module_src=HERE / "modules" / "bug-kthread"),
        Scenario("stack-overflow", _insmod("stack-overflow"),
                 "insmod stack-overflow.ko (a kthread \"stack_overflow\" recurses in "
                 "stack_overflow_recurse() with a 256-byte on-stack buffer per frame until its "
                 "stack overflows into the guard page: arm64's overflow_stack, x86's #DF)",
                 module="stack-overflow", module_src=HERE / "modules" / "stack-overflow"),
        Scenario("softlockup",
                 "    echo 1 > /proc/sys/kernel/softlockup_panic\n"
                 "    echo 5 > /proc/sys/kernel/watchdog_thresh\n" + _insmod("softlockup"),
                 "insmod softlockup.ko (a kthread \"softlockup_spin\" spins with preemption "
                 "disabled) with kernel.softlockup_panic=1, kernel.watchdog_thresh=5",
                 module="softlockup", module_src=HERE / "modules" / "softlockup"),
        Scenario("hung-task",
                 "    echo 1 > /proc/sys/kernel/hung_task_panic\n"
                 "    echo 5 > /proc/sys/kernel/hung_task_timeout_secs\n"
                 + _insmod("hung-task", background=True),
                 "insmod hung-task.ko (module init waits forever in D state) with "
                 "kernel.hung_task_panic=1, kernel.hung_task_timeout_secs=5",
                 module="hung-task", module_src=HERE / "modules" / "hung-task"),
        Scenario("deadlock",
                 "    echo 1 > /proc/sys/kernel/hung_task_panic\n"
                 "    echo 5 > /proc/sys/kernel/hung_task_timeout_secs\n"
                 + _insmod("deadlock"),
                 "insmod deadlock.ko (kthreads \"deadlock_ab\" and \"deadlock_ba\" take mutexes "
                 "lock_a and lock_b in opposite order and both block in D state: ABBA) with "
                 "kernel.hung_task_panic=1, kernel.hung_task_timeout_secs=5",
                 module="deadlock", module_src=HERE / "modules" / "deadlock"),
        Scenario("oom",
                 "    echo 1 > /proc/sys/vm/panic_on_oom\n"
                 "    echo 1 > /proc/sys/vm/overcommit_memory\n"
                 '    say "awk doubles a string until memory runs out"\n'
                 "    awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
                 "awk doubles a string until the kernel runs out of memory (no swap, "
                 "vm.overcommit_memory=1) with vm.panic_on_oom=1"),
        Scenario("busy-io",
                 "    ifconfig lo 127.0.0.1 up\n"
                 "    disk() { for d in /sys/block/vd*; do\n"
                 "        [ \"$(cat $d/serial 2>/dev/null)\" = $1 ] && echo /dev/${d##*/}; done; }\n"
                 "    slow=$(disk slow); swp=$(disk swap)\n"
                 '    say "slow disk $slow, swap disk $swp"\n'
                 "    mkswap $swp && swapon $swp && say \"swapon $swp\"\n"
                 "    mount -t cgroup2 none /sys/fs/cgroup && mkdir /sys/fs/cgroup/small\n"
                 "    echo +memory > /sys/fs/cgroup/cgroup.subtree_control\n"
                 "    echo 8M > /sys/fs/cgroup/small/memory.max\n"
                 "    awk 'BEGIN { system(\"sleep 1\"); s = \"x\"; "
                 "while (length(s) < 10000000) s = s s; system(\"sleep 3600\") }' &\n"
                 "    echo $! > /sys/fs/cgroup/small/cgroup.procs\n"
                 '    say "swapped out: awk (16 MiB string, memory.max 8M) pid $!"\n'
                 "    sleep 3\n"
                 "    sleep 3600 | nc -l -p 1234 &\n"
                 '    say "socket owner: nc -l -p 1234 pid $!"\n'
                 "    sleep 1\n"
                 "    sleep 3600 | nc 127.0.0.1 1234 &\n"
                 '    say "socket owner: nc 127.0.0.1 1234 pid $!"\n'
                 "    syslogd -n -R 127.0.0.1:514 &\n"
                 '    say "socket owner: syslogd -n -R 127.0.0.1:514 pid $!"\n'
                 "    sleep 1; logger busy-io\n"
                 "    ping 127.0.0.1 > /dev/null &\n"
                 '    say "socket owner: ping 127.0.0.1 pid $!"\n'
                 "    for i in 1 2 3; do\n"
                 "        dd if=$slow of=/dev/null iflag=direct bs=4k skip=$((i*100)) count=50 "
                 "2>/dev/null &\n"
                 '        say "reader dd pid $!"\n'
                 "    done\n"
                 "    dd if=/dev/zero of=$slow oflag=direct bs=4k seek=1000 count=50 2>/dev/null &\n"
                 '    say "writer dd pid $!"\n'
                 "    sleep 2\n"
                 '    say "echo c > /proc/sysrq-trigger"\n'
                 "    echo c > /proc/sysrq-trigger",
                 "echo c > /proc/sysrq-trigger with block I/O in flight (3 O_DIRECT dd readers "
                 "and a writer on virtio disk \"slow\", QEMU-throttled to 2 IOPS), a swap "
                 "device (virtio disk \"swap\", 64 MiB; an awk in a cgroup with memory.max 8M holds a "
                 "16 MiB string, partly swapped out) and open sockets (nc TCP listener and "
                 "client on lo, syslogd's /dev/log and UDP to 127.0.0.1:514, ping) "
                 "(kernel.panic_on_oops=1)",
                 scratch_disks=(("slow", 64, "throttling.iops-total=2"), ("swap", 64, ""))),
    )
}
