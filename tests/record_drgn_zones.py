#!/usr/bin/env python3
"""Record drgn's port of crash's kmem -z, kmem -f, sig and irq -s for the 7.x sample dumps
(crash 8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-<command>.txt.

    .venv/bin/python tests/record_drgn_zones.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq ...

Each command runs through `drgn.commands.run_command(prog, "crash <command>")`; {PID} is the
panic task's PID (what crashtui's summary says, written to zones-PID).
"""
from __future__ import annotations

import argparse
import sys

from recording import Sample, drgn_outputs, write_outputs

COMMANDS = (("drgn-kmem-z.txt", "kmem -z"), ("drgn-kmem-f.txt", "kmem -f"),
            ("drgn-sig-1.txt", "sig 1"), ("drgn-sig-pid.txt", "sig {PID}"),
            ("drgn-irq-s.txt", "irq -s"))
MARKER = "==== record-drgn-zones ===="


def record(name: str, drgn: str) -> None:
    from crashtui.analysis.session import Session

    s = Sample.get(name)
    session = Session.open(s.dump, s.vmlinux)
    try:
        task = session.summary.panic_task
        assert task is not None, "no panic task"
        pid = str(task.pid)
    finally:
        session.close()
    outputs = drgn_outputs(drgn, s.dump, s.vmlinux, [c.format(PID=pid) for _f, c in COMMANDS],
                           MARKER)
    out = write_outputs(name, zip((f for f, _c in COMMANDS), outputs, strict=False))
    (out / "zones-PID").write_text(pid + "\n")
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
