#!/usr/bin/env python3
"""Record crash 9.0.2 for arm64 (sample-dumps/build-crash-arm64) on 6.12-arm64-kdump-sysrq:
vtop (kernel image, vmalloc stack, linear map, user addresses), ptov and kmem ADDR, into
tests/crash_outputs/arm64/6.12-arm64-kdump-sysrq/. One crash session per command: within one
session crash prints the page table's header only the first time.

    .venv/bin/python tests/record_crash_arm64.py [FILE ...]   (only these, e.g. vm.txt)

Addresses come from crash's own recorded bt -a (sample-dumps/<dump>/crash/bt-a.txt): {TASK}
the panic task, {SP0} its frame #0 bracket, {TEXT} its frame #2 pc, {DD} the task stopped in
user mode, {PAGE} a struct page (dd's task_struct's), {USP} its user SP and {USPPAGE} that rounded down to 64 KiB. Commands joined by
` ; ` run in one session.
"""
from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample-dumps"))

from makedump.crashout import fetch_vmlinux, read_manifest  # noqa: E402
from makedump.util import cache_root  # noqa: E402

NAME = "6.12-arm64-kdump-sysrq"
COMMANDS = (
    ("vtop-text.txt", "vtop {TEXT}"),
    ("vtop-stack.txt", "vtop {SP0}"),
    ("vtop-task.txt", "vtop {TASK}"),
    ("vtop-user-sp.txt", "vtop -c {DD} {USP}"),
    ("vtop-user-text.txt", "vtop -c {DD} 400000"),
    ("ptov.txt", "ptov 40000000"),
    ("kmem-task.txt", "kmem {TASK}"),
    ("search-k.txt", "search -k {TASK}"),
    ("search-u.txt", "set {DD} ; search -u -m ffff {USPPAGE}"),
    ("kmem-s.txt", "kmem -s"),
    ("kmem-z.txt", "kmem -z"),
    ("kmem-f.txt", "kmem -f"),
    ("kmem-page.txt", "kmem {PAGE}"),
    ("swap.txt", "swap"),
    ("vm.txt", "vm"),
    ("vm-dd.txt", "vm {DD}"),
    ("files.txt", "files"),
    ("task.txt", "task"),
    ("sig.txt", "sig"),
    ("runq.txt", "runq"),
    ("runq-t.txt", "runq -t"),
    ("timer.txt", "timer"),
    ("timer-r.txt", "timer -r"),
    ("irq.txt", "irq"),
    ("irq-s.txt", "irq -s"),
    ("net.txt", "net"),
    ("dev.txt", "dev"),
    ("dev-d.txt", "dev -d"),
    ("mount.txt", "mount"),
    ("foreach-ps.txt", "foreach ps"),
    ("foreach-files.txt", "foreach files"),
    ("whatis-pt-regs.txt", "whatis struct pt_regs"),
    ("struct-task-pid.txt", "struct task_struct.pid,comm {TASK}"),
    ("p-jiffies.txt", "p jiffies"),
    ("p-init-mm.txt", "p init_mm.pgd"),
    ("rd-s.txt", "rd -s {SP0} 16"),
    ("sym-text.txt", "sym {TEXT}"),
    ("list-h.txt", "list task_struct.tasks -h init_task"),
    ("dis-l.txt", "dis -l sysrq_handle_crash"),
    ("dis-vfs-write.txt", "dis vfs_write"),
    ("dis-crash-kexec.txt", "dis __crash_kexec"),
    ("dis-memset.txt", "dis memset"),
    ("dis-el1h-sync.txt", "dis el0t_64_sync_handler"),
    ("dis-schedule.txt", "dis __schedule"),
    ("bt-f.txt", "bt -f"),
    ("bt-l.txt", "bt -l"),
    ("log-t.txt", "log -t"),
    ("mod-s.txt", "mod -S"),
    ("net-s.txt", "net -s {DD}"),
    ("foreach-vm.txt", "foreach vm"),
    ("foreach-sig.txt", "foreach sig"),
    ("list-s.txt", "list task_struct.tasks -s task_struct.pid,comm -h init_task"),
    ("waitq.txt", "waitq log_wait"),
)
FRAME = re.compile(r"^\s*#(\d+) \[([0-9a-f]+)\] \S+ at ([0-9a-f]+)", re.M)


def addresses(bt_a: str) -> dict[str, str]:
    """The {NAMES} of COMMANDS, from crash's bt -a of the dump."""
    blocks = re.split(r"\n(?=PID: )", bt_a.strip())
    user = next(b for b in blocks if "#0 [user space]" in b)
    panic = next(b for b in blocks if FRAME.search(b))
    frames = FRAME.findall(panic)
    head = re.search(r"PID: (\d+)\s+TASK: ([0-9a-f]+)", panic)
    dd = re.search(r"PID: (\d+)", user)
    usp = re.search(r"SP: ([0-9a-f]+)", user)
    assert head and dd and usp
    return {"TASK": head.group(2), "SP0": frames[0][1], "TEXT": frames[2][2],
            "DD": dd.group(1), "USP": f"{int(usp.group(1), 16) - 0x10:x}",
            "USPPAGE": f"{int(usp.group(1), 16) & ~0xFFFF:x}",
            "PAGE": "fffffdffc0124700"}


def main() -> int:
    sample = ROOT / "sample-dumps" / NAME
    crash_dir = sample / "crash"
    m = read_manifest(sample)
    vmlinux = fetch_vmlinux(m)
    elf = cache_root() / "crash-arm64" / "elf" / f"{NAME}.elf"
    binary = cache_root() / "crash-arm64" / "crash"
    if not elf.exists() or not binary.exists():
        print(f"need {binary} (sample-dumps/build-crash-arm64) and {elf} "
              f"(sample-dumps/record-crash-output sample-dumps/{NAME})", file=sys.stderr)
        return 1
    options = (crash_dir / "COMMAND").read_text().split()[1:3]  # -m phys_offset=...
    values = addresses((crash_dir / "bt-a.txt").read_text())
    out = ROOT / "tests" / "crash_outputs" / "arm64" / NAME
    out.mkdir(parents=True, exist_ok=True)
    (out / "ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def run(item: tuple[str, str]) -> None:
        fname, cmd = item
        cmd = cmd.format(**values)
        r = subprocess.run([str(binary), *options, "-s", str(vmlinux), str(elf)],
                           input=cmd.replace(" ; ", "\n") + "\nquit\n",
                           capture_output=True, text=True, timeout=600)
        text = r.stdout
        if text.startswith("NOTE: setting phys_offset"):
            text = text.split("\n", 2)[2]
        (out / fname).write_text(f"crash> {cmd}\n{text}")

    only = set(sys.argv[1:])
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [c for c in COMMANDS if not only or c[0] in only]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
