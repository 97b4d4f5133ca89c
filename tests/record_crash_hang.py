#!/usr/bin/env python3
"""Record crash 8.0.6's `runq` (-m, -t, -T), `ps -m` and `foreach UN bt` for sample dumps into
tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made the dumps).

    .venv/bin/python tests/record_crash_hang.py 6.1-hung-task 6.1-softlockup ...
"""
from __future__ import annotations

import sys

from recording import Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (("runq.txt", "runq"), ("runq-m.txt", "runq -m"), ("ps-m.txt", "ps -m"),
            ("foreach-UN-bt.txt", "foreach UN bt"), ("runq-t.txt", "runq -t"),
            ("runq-T.txt", "runq -T"))
MARKER = "==== record-crash-hang ===="


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    outputs = crash_outputs(crash, s, [c for _f, c in COMMANDS], MARKER)
    write_outputs(name, zip((f for f, _c in COMMANDS), outputs, strict=False),
                  s.vmlinux.parent.parent.parent)
    print(f"{name}: wrote {len(COMMANDS)} files", flush=True)


def main(names: list[str]) -> int:
    crash = crash_command()
    for name in names:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
