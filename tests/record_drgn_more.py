#!/usr/bin/env python3
"""Record drgn's port of crash's kmem -s, files, vm and foreach for the 7.x sample dumps (crash
8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-<command>.txt.

    .venv/bin/python tests/record_drgn_more.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq ...

Each command runs through `drgn.commands.run_command(prog, "crash <command>")`.
"""
from __future__ import annotations

import argparse
import sys

from recording import Sample, drgn_outputs, write_outputs

COMMANDS = (("drgn-kmem-s.txt", "kmem -s"), ("drgn-files-1.txt", "files 1"),
            ("drgn-vm-1.txt", "vm 1"), ("drgn-foreach-files.txt", "foreach files"))
MARKER = "==== record-drgn-more ===="


def record(name: str, drgn: str) -> None:
    s = Sample.get(name)
    outputs = drgn_outputs(drgn, s.dump, s.vmlinux, [c for _f, c in COMMANDS], MARKER)
    write_outputs(name, zip((f for f, _c in COMMANDS), outputs, strict=False))
    print(f"{name}: wrote {len(COMMANDS)} files", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--drgn", default="/work/drgn-venv/bin/drgn")
    p.add_argument("dumps", nargs="+")
    args = p.parse_args()
    for name in args.dumps:
        record(name, args.drgn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
