#!/usr/bin/env python3
"""Record drgn's port of crash's irq (table, -a, -b, -d), kmem -g/-F/-p ADDRESS/-f ADDRESS,
sig -g and foreach selectors with ps for the 7.x sample dumps (crash 8.0.6 cannot open them)
into tests/crash_outputs/<dump>/drgn-f-<command>.txt.

    .venv/bin/python tests/record_drgn_f.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq ...

Each command runs through `drgn.commands.run_command(prog, "crash <command>")`; {PID} and
{TASK} are the panic task's, {FREE}/{FREE2} pages of the first free block of order >= 2
(as tests/record_crash_f.py picks them), all written to f-ADDRESSES.
"""
from __future__ import annotations

import argparse
import sys

from record_crash_f import free_pages
from recording import Sample, drgn_outputs, write_outputs

COMMANDS = (("drgn-f-irq.txt", "irq"), ("drgn-f-irq-a.txt", "irq -a"),
            ("drgn-f-irq-b.txt", "irq -b"), ("drgn-f-irq-d.txt", "irq -d"),
            ("drgn-f-kmem-g.txt", "kmem -g"),
            ("drgn-f-kmem-g-flags.txt", "kmem -g 10600"), ("drgn-f-kmem-F.txt", "kmem -F"),
            ("drgn-f-kmem-p-addrs.txt", "kmem -p {FREE} {FREE2} {TASK}"),
            ("drgn-f-kmem-f-page.txt", "kmem -f {FREE}"),
            ("drgn-f-sig-g.txt", "sig -g {PID}"),
            ("drgn-f-foreach-user-ps.txt", "foreach user ps"),
            ("drgn-f-foreach-kernel-ps.txt", "foreach kernel ps"),
            ("drgn-f-foreach-active-ps.txt", "foreach active ps"))
MARKER = "==== record-drgn-f ===="


def record(name: str, drgn: str) -> None:
    from crashtui.analysis.session import Session

    s = Sample.get(name)
    session = Session.open(s.dump, s.vmlinux)
    try:
        task = session.summary.panic_task
        assert task is not None, "no panic task"
        where = {"PID": str(task.pid), "TASK": f"{task.address:x}"}
    finally:
        session.close()
    where.update(free_pages(s.dir, s.vmlinux))
    outputs = drgn_outputs(drgn, s.dump, s.vmlinux, [c.format(**where) for _f, c in COMMANDS],
                           MARKER)
    out = write_outputs(name, zip((f for f, _c in COMMANDS), outputs, strict=False))
    (out / "f-ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in where.items()))
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
