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
    )
}
