#!/usr/bin/env python3
"""Record drgn's port of crash's kmem -s, files, vm and foreach for the 7.x sample dumps (crash
8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-<command>.txt.

    .venv/bin/python tests/record_drgn_more.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq ...

Each command runs through `drgn.commands.run_command(prog, "crash <command>")`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMANDS = (("drgn-kmem-s.txt", "kmem -s"), ("drgn-files-1.txt", "files 1"),
            ("drgn-vm-1.txt", "vm 1"), ("drgn-foreach-files.txt", "foreach files"))
MARKER = "==== record-drgn-more ===="
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
    from tests.conftest import vmlinux_of

    dump_dir = ROOT / "sample-dumps" / name
    dump = next(dump_dir.glob("dump.*"))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(SCRIPT)
    r = subprocess.run([drgn, "-q", "-c", str(dump), "-s", str(vmlinux_of(name)), f.name,
                        *[c for _f, c in COMMANDS]], capture_output=True, text=True,
                       check=True, timeout=1800)
    out = ROOT / "tests" / "crash_outputs" / name
    out.mkdir(parents=True, exist_ok=True)
    for (fname, _c), text in zip(COMMANDS, r.stdout.split(MARKER + "\n"), strict=False):
        (out / fname).write_text(text)
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
