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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sample-dumps"))

from makedump.crashout import (  # noqa: E402
    crash_command,
    fetch_vmlinux,
    read_manifest,
    run_crash,
    split_outputs,
)

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
    sys.path.insert(0, str(ROOT))
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
    dump_dir = ROOT / "sample-dumps" / name
    m = read_manifest(dump_dir)
    vmlinux = fetch_vmlinux(m)
    bt = (dump_dir / "crash" / "bt.txt").read_text()
    pid = re.search(r"PID: (\d+)", bt)
    assert pid, "crash/bt.txt has no task header"
    where = {"PID": pid.group(1), "PENDING": pending_task(dump_dir, vmlinux)}
    commands = [(f, c) for f, c in COMMANDS if "{PENDING}" not in c or where["PENDING"]]
    cmds: list[str] = []
    for _f, c in commands:
        cmds += [c.format(**where), f"!echo '{MARKER}'"]
    outputs = split_outputs(run_crash(crash, vmlinux, dump_dir, m["dump"], cmds), MARKER)
    out = ROOT / "tests" / "crash_outputs" / name
    out.mkdir(parents=True, exist_ok=True)
    for (fname, _c), text in zip(commands, outputs, strict=False):
        (out / fname).write_text(text)
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
