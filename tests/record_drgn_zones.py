#!/usr/bin/env python3
"""Record drgn's port of crash's kmem -z, kmem -f, sig and irq -s for the 7.x sample dumps
(crash 8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-<command>.txt.

    .venv/bin/python tests/record_drgn_zones.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq ...

Each command runs through `drgn.commands.run_command(prog, "crash <command>")`; {PID} is the
panic task's PID (what crashtui's summary says, written to zones-PID).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMANDS = (("drgn-kmem-z.txt", "kmem -z"), ("drgn-kmem-f.txt", "kmem -f"),
            ("drgn-sig-1.txt", "sig 1"), ("drgn-sig-pid.txt", "sig {PID}"),
            ("drgn-irq-s.txt", "irq -s"))
MARKER = "==== record-drgn-zones ===="
SCRIPT = f"""
import sys
from drgn.commands import run_command
for c in sys.argv[1:]:
    try:
        run_command(prog, "crash " + c)
    except Exception as e:
        print(f"drgn: crash {{c}}: {{type(e).__name__}}: {{e}}")
    print({MARKER!r}, flush=True)
"""


def record(name: str, drgn: str) -> None:
    from crashtui.analysis.session import Session
    from tests.conftest import vmlinux_of

    dump_dir = ROOT / "sample-dumps" / name
    dump = next(dump_dir.glob("dump.*"))
    s = Session.open(dump, vmlinux_of(name))
    try:
        task = s.summary.panic_task
        assert task is not None, "no panic task"
        pid = str(task.pid)
    finally:
        s.close()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(SCRIPT)
    r = subprocess.run([drgn, "-q", "-c", str(dump), "-s", str(vmlinux_of(name)), f.name,
                        *[c.format(PID=pid) for _f, c in COMMANDS]], capture_output=True,
                       text=True, check=True, timeout=1800)
    out = ROOT / "tests" / "crash_outputs" / name
    out.mkdir(parents=True, exist_ok=True)
    for (fname, _c), text in zip(COMMANDS, r.stdout.split(MARKER + "\n"), strict=False):
        (out / fname).write_text(text)
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
