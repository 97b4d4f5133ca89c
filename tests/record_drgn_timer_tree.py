#!/usr/bin/env python3
"""Record drgn's port of crash's timer, tree, search and list for the 7.x sample dumps (crash
8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-<file>.

    .venv/bin/python tests/record_drgn_timer_tree.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq

The commands and {NAME} placeholders are tests/record_crash_timer_tree.py's (drgn 0.3.0 has
no waitq); addresses go to timer-ADDRESSES.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

from record_crash_timer_tree import COMMANDS, addresses
from recording import Sample, drgn_outputs, write_outputs

MARKER = "==== record-drgn-timer-tree ===="
WAITQS = ("khugepaged_wait", "oom_reaper_wait", "log_wait")
# drgn 0.3.0 has no `crash waitq`: its waitqueue_for_each_task() helper, one line a task
_WAITQ_SCRIPT = """
import sys
from drgn.helpers.linux.wait import waitqueue_for_each_task
for name in sys.argv[1:]:
    for t in waitqueue_for_each_task(prog[name].address_of_()):
        print(name, int(t.pid), hex(t.value_())[2:])
"""


def record(name: str, drgn: str) -> None:
    s = Sample.get(name)
    where = addresses(s.dump, s.vmlinux)
    commands = []
    for f, c in COMMANDS:
        if c.startswith("waitq"):
            continue
        try:
            commands.append(("drgn-" + f, c.format(**where)))
        except KeyError:
            continue
    outputs = drgn_outputs(drgn, s.dump, s.vmlinux, [c for _f, c in commands], MARKER)
    out = write_outputs(name, zip((f for f, _c in commands), outputs, strict=False))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_WAITQ_SCRIPT)
    r = subprocess.run([drgn, "-q", "-c", str(s.dump), "-s", str(s.vmlinux), f.name, *WAITQS],
                       capture_output=True, text=True, check=True, timeout=600)
    (out / "drgn-waitq.txt").write_text(r.stdout)
    (out / "timer-ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in sorted(where.items())))
    print(f"{name}: wrote {len(commands)} files", flush=True)


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
