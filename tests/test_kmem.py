"""kmem -i against crash 8.0.6's output on the real dumps, and on damaged memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES

from crashtui.analysis.session import Session
from crashtui.commands.kmem import kmem_lines
from crashtui.errors import KernelReadError

DUMPS = ["6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module", "5.10-sysrq",
         "6.1-bug-kthread", "6.1-softlockup", "6.1-hung-task"]
ROWS = ["TOTAL MEM", "FREE", "USED", "SHARED", "BUFFERS", "CACHED", "SLAB", "TOTAL HUGE",
        "HUGE FREE", "TOTAL SWAP", "SWAP USED", "SWAP FREE", "COMMIT LIMIT", "COMMITTED"]


def dump_of(name: str) -> Path:
    return next((SAMPLES / name).glob("dump.*"))


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


def crash_pages(name: str) -> dict[str, int]:
    """PAGES of every row of crash's kmem-i.txt."""
    out = {}
    for line in (SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines()[1:]:
        if line.strip():
            label = line[:13].strip()
            out[label] = int(line[13:].split()[0])
    return out


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_i_text_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    r = crashtui(str(dump_of(name)), str(vmlinux_for[name]), "-c", "kmem -i")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == \
        (SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines()


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_rows_json(name: str, vmlinux_for: dict[str, Path]) -> None:
    from crashtui.commands.kmem import kmem_rows

    session = Session.open(dump_of(name), vmlinux_for[name])
    rows = kmem_rows(session)
    assert list(rows) == ROWS
    theirs = crash_pages(name)
    for label, row in rows.items():
        assert row["pages"] == theirs[label], label
        assert row["bytes"] == theirs[label] * 4096
    assert rows["TOTAL MEM"]["percent"] is None
    assert rows["FREE"]["percent"] == theirs["FREE"] * 100 // theirs["TOTAL MEM"]
    assert session.kmem.errors == []


def test_kmem_survives_unreadable_mem_map(vmlinux_for: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """vmemmap pages missing from the dump: SHARED is what could be read, never a crash."""
    name = "6.1-sysrq"
    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    real = k.read

    def read(addr: int, size: int) -> bytes:
        if 0xFFFFEA0000000000 <= addr < 0xFFFFFC0000000000:  # vmemmap (any KASLR base)
            raise KernelReadError(f"page at {addr:#x} excluded", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    lines = kmem_lines(session.kmem)
    assert len(lines) == len((SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines())
    assert session.kmem.row("SHARED").pages == 0  # type: ignore[union-attr]
    assert session.kmem.row("FREE").pages == crash_pages(name)["FREE"]  # type: ignore[union-attr]


def test_kmem_reports_what_it_cannot_read(vmlinux_for: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter that cannot be read is 0 with a `kmem:` line saying why."""
    name = "6.1-test-module"
    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    real = k.read
    committed = k.symbol("vm_committed_as")

    def read(addr: int, size: int) -> bytes:
        if committed <= addr < committed + 64:
            raise KernelReadError(f"cannot read {addr:#x}", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    from crashtui.commands import run_command

    out = run_command(session, "kmem -i")
    assert out[-1].startswith("kmem: COMMIT LIMIT:")
    assert "COMMITTED" not in "\n".join(out[:-1])


def test_kmem_needs_i() -> None:
    from crashtui.commands import CommandError, run_command

    with pytest.raises(CommandError):
        run_command(None, "kmem -Q")  # type: ignore[arg-type]
