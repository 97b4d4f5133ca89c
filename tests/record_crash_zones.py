#!/usr/bin/env python3
"""Record crash 8.0.6's kmem -z, kmem -f, sig and irq -s outputs for sample dumps into
tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made the dumps).

    .venv/bin/python tests/record_crash_zones.py 6.1-sysrq 5.10-sysrq 6.12-sysrq ...

{PID} is the panic task's PID (from the dump's crash/bt.txt), {PENDING} the first task with a
signal queued (found with crashtui's own reading; the command is left out where none is).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from recording import Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (
    ("kmem-z.txt", "kmem -z"),
    ("kmem-f.txt", "kmem -f"),
    ("sig.txt", "sig"),
    ("sig-1.txt", "sig 1"),
    ("sig-pid.txt", "sig {PID}"),
    ("irq-s.txt", "irq -s"),
    ("sig-pending.txt", "sig {PENDING}"),
)
MARKER = "==== record-crash-zones ===="


def pending_task(dump_dir: Path, vmlinux: Path) -> str:
    """The PID of the first task with a queued signal, or "" if none has one."""
    from crashtui.analysis.session import Session
    from crashtui.kernel.signals import task_signals

    s = Session.open(next(dump_dir.glob("dump.*")), vmlinux)
    try:
        for t in s.tasks.tasks:
            st = task_signals(s.kernel, t.address)
            if st.private_queue or st.shared_queue:
                return str(t.pid)
        return ""
    finally:
        s.close()


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    bt = (s.dir / "crash" / "bt.txt").read_text()
    pid = re.search(r"PID: (\d+)", bt)
    assert pid, "crash/bt.txt has no task header"
    where = {"PID": pid.group(1), "PENDING": pending_task(s.dir, s.vmlinux)}
    commands = [(f, c) for f, c in COMMANDS if "{PENDING}" not in c or where["PENDING"]]
    outputs = crash_outputs(crash, s, [c.format(**where) for _f, c in commands], MARKER)
    out = write_outputs(name, zip((f for f, _c in commands), outputs, strict=False))
    (out / "zones-PID").write_text(pid.group(1) + "\n")
    if where["PENDING"]:
        (out / "zones-PENDING").write_text(where["PENDING"] + "\n")
    print(f"{name}: wrote {len(commands)} files", flush=True)


def main(args: list[str]) -> int:
    crash = crash_command()
    for name in args:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
