"""What the tests/record_*.py scripts share: run crash 8.0.6, or drgn's port of crash's
commands, on a sample dump, one output per command, and write them to
tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made the dumps)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ROOT / "tests" / "crash_outputs"
sys.path.insert(0, str(ROOT / "sample-dumps"))
sys.path.insert(0, str(ROOT))

from makedump.crashout import (  # noqa: E402
    crash_command,
    fetch_vmlinux,
    read_manifest,
    run_crash,
    split_outputs,
)

__all__ = ["Sample", "crash_command", "drgn_outputs", "crash_outputs", "run_crash",
           "write_outputs"]

_DRGN_SCRIPT = """
import sys
from drgn.commands import run_command
marker = sys.argv[1]
for c in sys.argv[2:]:
    try:
        run_command(prog, "crash " + c)
    except Exception as e:
        print(f"drgn: crash {c}: {type(e).__name__}: {e}")
    print(marker, flush=True)
"""


@dataclass
class Sample:
    """A sample dump with its MANIFEST and (fetched) debug vmlinux."""

    name: str
    dir: Path
    manifest: dict[str, str]
    vmlinux: Path

    @classmethod
    def get(cls, name: str) -> Sample:
        dump_dir = ROOT / "sample-dumps" / name
        m = read_manifest(dump_dir)
        return cls(name, dump_dir, m, fetch_vmlinux(m))

    @property
    def dump(self) -> Path:
        return self.dir / self.manifest["dump"]


def crash_outputs(crash: list[str], s: Sample, commands: list[str], marker: str) -> list[str]:
    """crash's output of each command, run in one session (an echoed marker between them)."""
    script: list[str] = []
    for c in commands:
        script += [c, f"!echo '{marker}'"]
    return split_outputs(run_crash(crash, s.vmlinux, s.dir, s.manifest["dump"], script), marker)


def drgn_outputs(drgn: str, dump: Path, vmlinux: Path, commands: list[str],
                 marker: str) -> list[str]:
    """drgn's `crash <command>` output of each command, run in one drgn session."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_DRGN_SCRIPT)
    r = subprocess.run([drgn, "-q", "-c", str(dump), "-s", str(vmlinux), f.name, marker,
                        *commands], capture_output=True, text=True, check=True, timeout=1800)
    return r.stdout.split(marker + "\n")


def write_outputs(name: str, files: Iterable[tuple[str, str]], lab: Path | None = None) -> Path:
    """Write (file name, text) pairs to tests/crash_outputs/<name>/, the vmlinux cache
    directory `lab` (if given) written `$LAB`; returns that directory."""
    out = OUTPUTS / name
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in files:
        (out / fname).write_text(text.replace(str(lab), "$LAB") if lab is not None else text)
    return out
