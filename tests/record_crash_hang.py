#!/usr/bin/env python3
"""Record crash 8.0.6's `runq`, `ps -m` and `foreach UN bt` for sample dumps into
tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made the dumps).

    .venv/bin/python tests/record_crash_hang.py 6.1-hung-task 6.1-softlockup ...
"""
from __future__ import annotations

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

COMMANDS = (("runq.txt", "runq"), ("runq-m.txt", "runq -m"), ("ps-m.txt", "ps -m"), ("foreach-UN-bt.txt", "foreach UN bt"))
MARKER = "==== record-crash-hang ===="


def record(name: str, crash: list[str]) -> None:
    dump_dir = ROOT / "sample-dumps" / name
    m = read_manifest(dump_dir)
    vmlinux = fetch_vmlinux(m)
    cmds: list[str] = []
    for _f, c in COMMANDS:
        cmds += [c, f"!echo '{MARKER}'"]
    outputs = split_outputs(run_crash(crash, vmlinux, dump_dir, m["dump"], cmds), MARKER)
    out = ROOT / "tests" / "crash_outputs" / name
    out.mkdir(parents=True, exist_ok=True)
    lab = str(vmlinux.parent.parent.parent)
    for (fname, _c), text in zip(COMMANDS, outputs, strict=False):
        (out / fname).write_text(text.replace(lab, "$LAB"))
    print(f"{name}: wrote {len(COMMANDS)} files", flush=True)


def main(names: list[str]) -> int:
    crash = crash_command()
    for name in names:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
