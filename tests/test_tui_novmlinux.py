"""The app on a dump alone (no vmlinux): the kernel's own kallsyms, BTF and ORC from memory.

No debug vmlinux is needed (nor fetched): these run everywhere.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.cpus import CpuList
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.source import SourceView
from crashtui.tui.summary import SummaryView

SYSRQ = SAMPLES / "6.1-sysrq"
DUMP = SYSRQ / "dump.202611261023"


@pytest.fixture(scope="module", autouse=True)
def utc() -> Iterator[None]:
    with utc_timezone():
        yield


@pytest.fixture
def debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Debian host, so the hint names the -dbg package whatever this machine is."""
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=debian\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    monkeypatch.setenv("CRASHTUI_OS_RELEASE", str(os_release))
    monkeypatch.delenv("CRASHTUI_SOURCE", raising=False)


@pytest.fixture
def session(debian: None) -> Iterator[Session]:
    s = Session.open(DUMP)  # no vmlinux
    yield s
    s.close()


def crash_lines(name: str) -> list[str]:
    return (SYSRQ / "crash" / name).read_text().splitlines()


def test_app_on_the_dump_alone(session: Session, tmp_path: Path) -> None:
    assert session.kernel.vmlinux is None
    app = CrashtuiApp(SessionFacade(session, cache_root=tmp_path, auto_source=False))

    async def main() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await app.settle()
            await pilot.pause()
            # the summary: crash's sys, then which debug info is used and how to get lines
            summary = app.query_one(SummaryView)
            text = [summary.line_text(i) for i in range(summary.line_count)]
            for line in crash_lines("sys.txt"):
                if line.split(":")[0].strip() not in ("KERNEL", "DUMPFILE"):
                    assert line in text
            assert "      KERNEL: (none: in-memory symbols)" in text
            debug = next(t for t in text if t.startswith("no debug vmlinux for "))
            assert "6.1.0-56-cloud-amd64" in debug and "kallsyms, BTF and ORC" in debug
            assert ("  no source lines: apt-get install linux-image-6.1.0-56-cloud-amd64-dbg, "
                    "--fetch (debuginfod, DEBUGINFOD_URLS), or give the debug vmlinux") in text
            # the panic CPU first, its frames as crash prints them, landing on the culprit
            cpus = app.query_one(CpuList)
            assert (cpus.backtraces[0].cpu, cpus.backtraces[0].panic) == (3, True)
            frames = app.query_one(FramesView)
            names = [r.ref.frame.function for r in frames.rows if r.kind == "frame"
                     and r.ref and r.ref.frame]
            crash_names = [m.group(1) for line in crash_lines("bt.txt")
                           if (m := re.match(r"\s*#\d+ \[\w+\] (\S+) at", line))]
            assert names == crash_names
            assert frames.current is not None and frames.current.frame is not None
            assert frames.current.frame.function == "sysrq_handle_crash"
            # no line tables: the disassembly, the call to panic marked, and how to get lines
            src = app.query_one(SourceView)
            assert src.kind == "disassembly"
            assert src.border_title == "sysrq_handle_crash · disassembly"
            assert re.search(r"(<sysrq_handle_crash\+17>:|\+17)\s+call\s+0x[0-9a-f]+ <panic>",
                             src.marked_text())
            shown = [src.line_text(i) for i in range(src.line_count)]
            assert "No source lines: the dump alone" in shown
            assert "  apt-get install linux-image-6.1.0-56-cloud-amd64-dbg" in shown
            assert "  or give the debug vmlinux" in shown
            assert not any("--source DIR" in t for t in shown)  # a tree would not help
            assert str(src.border_subtitle) == "no source lines: no debug vmlinux"
            # symbols from kallsyms for the palette and the command line
            be = app.facade
            assert "sysrq_handle_crash" in be.symbol_names("sysrq_handle_cr")
            assert be.symbol_address("sysrq_handle_crash") == session.find_symbol(
                "sysrq_handle_crash")
            assert be.complete("dis -l sysrq_handle_cr") == ["dis -l sysrq_handle_crash "]

    asyncio.run(main())


def test_session_symbol_lookups_without_vmlinux(session: Session) -> None:
    addr = session.find_symbol("sysrq_handle_crash")
    assert addr is not None and session.symbolize(addr) == ("sysrq_handle_crash", 0, None)
    assert session.find_symbol("no_such_symbol_anywhere") is None
    assert session.symbol_names("sysrq_handle_c", 5) == ["sysrq_handle_crash"]
    assert session.symbol_names("", 5) == []


def test_module_symbols_are_found_too(debian: None) -> None:
    s = Session.open(SAMPLES / "6.1-test-module" / "dump.202611261053")
    try:
        addr = s.find_symbol("test_module_init")
        assert addr is not None and s.symbolize(addr) == ("test_module_init", 0, "test_module")
        assert "test_module_init" in s.symbol_names("test_module_")
    finally:
        s.close()
