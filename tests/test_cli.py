"""CLI argument handling: conflicting modes and unwritable outputs are one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_conflicting_output_modes_are_refused(sysrq_dump: Path) -> None:
    r = crashtui(str(sysrq_dump), "--json", "--report", "-")
    assert r.returncode == 2
    assert "use one at a time" in r.stderr
    assert "Traceback" not in r.stderr


def test_report_into_missing_directory(sysrq_dump: Path, tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "x.md"
    r = crashtui(str(sysrq_dump), "--report", str(target))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"crashtui: {target}: cannot write the report: directory {target.parent} does not exist"]


def test_report_onto_a_directory(sysrq_dump: Path, tmp_path: Path) -> None:
    r = crashtui(str(sysrq_dump), "--report", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip() == f"crashtui: {tmp_path}: report path is a directory"


def test_help_lists_every_option_with_an_example() -> None:
    r = crashtui("--help")
    assert r.returncode == 0
    for option in ("-c", "--json", "--report", "--source", "--modules", "--fetch",
                   "--signature"):
        assert option in r.stdout
    assert "examples:" in r.stdout


def test_command_errors_carry_one_prefix(sysrq_dump: Path) -> None:
    """A failing -c line names the command once (`crashtui: bt: unsupported option -z`), and
    the whole line where the message does not start with the command."""
    r = crashtui(str(sysrq_dump), "-c", "bt -z", "-c", "struct nosuch")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-2:] == [
        "crashtui: bt: unsupported option -z",
        "crashtui: struct nosuch: invalid data structure reference: nosuch"]
