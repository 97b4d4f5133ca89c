"""The app at 80x24 with crash's habits (issue 17), driven with Pilot on the 6.1-sysrq dump."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.style import Style
from test_tui import drive, press, screen_text
from textual.widgets import Input, OptionList
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.command import CommandInput, CommandView
from crashtui.tui.export import ExportScreen
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.lines import TextLines
from crashtui.tui.logview import LogLines
from crashtui.tui.tasks import TasksTable

pytestmark = pytest.mark.needs_vmlinux
SMALL = (80, 24)


@pytest.fixture(scope="module", autouse=True)
def utc() -> Iterator[None]:
    with utc_timezone():
        yield


@pytest.fixture(autouse=True)
def no_env_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHTUI_SOURCE", raising=False)


@pytest.fixture(scope="module")
def session(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(sysrq_dump, vmlinux_path)
    yield s
    s.close()


def make(session: Session, tmp_path: Path) -> CrashtuiApp:
    return CrashtuiApp(SessionFacade(session, cache_root=tmp_path, auto_source=False))


def test_zoom_gives_a_bottom_tab_the_whole_screen(session: Session, tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "4")
        log = app.query_one(LogLines)
        before = log.size.height
        assert before <= 8  # the 80x24 layout: the log gets a few lines only
        await press(app, pilot, "z")
        assert log.size.height >= 18
        text = screen_text(app)
        assert "╱" not in text and "Backtrace" not in text
        assert "Kernel panic - not syncing: sysrq triggered crash" in text
        await press(app, pilot, "z")
        assert log.size.height == before and "Backtrace" in screen_text(app)
        # the Tasks table
        await press(app, pilot, "5", "z")
        table = app.query_one(TasksTable)
        assert table.size.height >= 18 and "╱" not in screen_text(app)
        await press(app, pilot, "z")
        # the command line: `z` is typed there, Ctrl+Z zooms; the output keeps the screen
        await press(app, pilot, "colon", "z", "ctrl+z")
        box = app.query_one(CommandInput)
        assert box.value == "z" and app.screen.maximized is not None
        box.value = "ps"
        await press(app, pilot, "enter")
        out = app.query_one("#command-output")
        assert out.size.height >= 14
        assert "   PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM" \
            in screen_text(app)
        await press(app, pilot, "ctrl+z")
        assert app.screen.maximized is None

    drive(app, steps, size=SMALL)


def test_j_k_and_slash_in_every_list(session: Session, tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        # CPUs: j/k walk them (the panic CPU 3 first, then 0)
        await press(app, pilot, "c", "j")
        assert frames.backtrace is not None and frames.backtrace.cpu == 0
        await press(app, pilot, "k")
        assert frames.backtrace is not None and frames.backtrace.cpu == 3
        # Frames: j/k, / finds a function, n the next match
        await press(app, pilot, "f")
        start = frames.highlighted
        assert start is not None
        await press(app, pilot, "j")
        assert frames.highlighted == start + 1
        await press(app, pilot, "k")
        assert frames.highlighted == start
        await press(app, pilot, "slash")
        await pilot.press(*"vfs_write")
        await press(app, pilot, "enter")
        assert frames.current is not None and frames.current.frame is not None
        assert frames.current.frame.function == "vfs_write" and app.focused is frames
        # the task picker: Enter on the empty filter goes to the list, j/k move
        await press(app, pilot, "t", "enter")
        options = app.query_one("#task-options", OptionList)
        assert app.focused is options and options.highlighted == 0
        await press(app, pilot, "j", "j")
        assert options.highlighted == 2
        await press(app, pilot, "k")
        assert options.highlighted == 1
        # the Tasks table: j/k, / by PID and by name
        await press(app, pilot, "5")
        table = app.query_one(TasksTable)
        await press(app, pilot, "j")
        assert table.cursor_row == 1
        await press(app, pilot, "k")
        assert table.cursor_row == 0
        await press(app, pilot, "slash")
        await pilot.press(*"kthreadd")
        await press(app, pilot, "enter")
        assert table.get_row_at(table.cursor_row)[4].plain == "[kthreadd]"
        await press(app, pilot, "slash")
        await pilot.press(*"15")
        await press(app, pilot, "enter")
        assert table.get_row_at(table.cursor_row)[0].plain.strip(" >") == "15"
        # command output: / finds, n goes on
        await press(app, pilot, "colon")
        await pilot.press(*"ps")
        await press(app, pilot, "enter")
        out = app.query_one("#command-output", TextLines)
        out.focus()
        await press(app, pilot, "slash")
        await pilot.press(*"kworker")
        await press(app, pilot, "enter")
        first = out.cursor
        assert "kworker" in out.line_text(first)
        await press(app, pilot, "n")
        assert out.cursor > first and "kworker" in out.line_text(out.cursor)
        await press(app, pilot, "N")
        assert out.cursor == first
        # nothing found: a toast, the cursor stays
        await press(app, pilot, "slash")
        await pilot.press(*"no-such-task")
        await press(app, pilot, "enter")
        assert out.cursor == first

    drive(app, steps, size=SMALL)


def cell_style(app: CrashtuiApp, needle: str) -> Style:
    """The style of the first cell of `needle` on the screen, after Textual's line filters
    (NO_COLOR's monochrome is applied there)."""
    update = app.screen._compositor.render_full_update()
    for line in update.strips:
        segments = [seg for strip in line for seg in strip]
        x = "".join(seg.text for seg in segments).find(needle)
        if x < 0:
            continue
        pos = 0
        for seg in segments:
            if pos + len(seg.text) > x:
                assert seg.style is not None
                return seg.style
            pos += len(seg.text)
    raise AssertionError(f"{needle!r} is not on the screen")


def ansi16(colour: Any) -> int:
    """The one of 16 colours a terminal with TERM=xterm-16color is sent."""
    return int(colour.downgrade(ColorSystem.STANDARD).number)


def grey(colour: Any) -> int:
    r, g, b = colour.get_truecolor()
    return int(0.299 * r + 0.587 * g + 0.114 * b)


def test_16_colours_keep_unfocused_borders_and_titles(session: Session, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-16color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        assert app.console.color_system == "standard"
        await press(app, pilot, "f")
        for needle in ("CPUs", "Tasks (78)", "╭─ CPUs", "╭─ Tasks", "Backtrace: PID 1", "╭─ Back",
                       "sysrq_handle_crash · disa", "╭─ sysrq_handle_crash"):
            style = cell_style(app, needle)
            assert ansi16(style.color) != ansi16(style.bgcolor), needle
        # the focused pane's border is another colour than the others'
        assert ansi16(cell_style(app, "╭─ Back").color) != ansi16(cell_style(app, "╭─ CPUs").color)

    drive(app, steps, size=SMALL)


def test_no_color_keeps_the_panic_cpu_marker_and_titles(session: Session, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        assert app.no_color
        await press(app, pilot, "c")
        for needle in ("▶", " !", "CPUs", "Tasks (78)", "╭─ Tasks", "Backtrace: PID 1"):
            style = cell_style(app, needle)
            assert abs(grey(style.color) - grey(style.bgcolor)) > 60, needle  # was 5
        # no colour: the focused pane is told by its heavy border
        assert "┏━ CPUs" in screen_text(app)
        await press(app, pilot, "f")
        assert "┏━ Backtrace" in screen_text(app) and "╭─ CPUs" in screen_text(app)

    drive(app, steps, size=SMALL)


def test_ctrl_c_interrupts_and_q_quits(session: Session, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = make(session, tmp_path)
    release = threading.Event()
    real_run = app.facade.run

    def slow_run(line: str) -> list[str]:
        release.wait(30)  # a command that takes a while (crash's `foreach bt` on a big dump)
        return real_run(line)

    async def steps(pilot: Any) -> None:
        monkeypatch.setattr(app.facade, "run", slow_run)
        await press(app, pilot, "colon")
        await pilot.press(*"sys", "enter")
        await pilot.pause(0.2)
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        out = app.query_one("#command-output", TextLines)
        text = [out.line_text(i) for i in range(out.line_count)]
        assert app.is_running and text[-3:-1] == ["crash> sys", "interrupted"]
        release.set()
        await app.settle()
        text = [out.line_text(i) for i in range(out.line_count)]
        assert not any("RELEASE" in t for t in text)  # the interrupted output is dropped
        # nothing running: Ctrl+C says how to quit, and the app stays
        await press(app, pilot, "escape", "ctrl+c")
        assert app.is_running and app.return_code is None
        assert any("q (or Ctrl+Q) quits" in str(n.message) for n in app._notifications)
        await pilot.press("q")
        await pilot.pause(0.2)
        assert app.return_code == 0

    drive(app, steps, size=SMALL)


def test_the_command_line_follows_the_task_shown_and_pipes(session: Session,
                                                           tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def run(pilot: Any, line: str) -> list[str]:
        out = app.query_one("#command-output", TextLines)
        start = len(app.query_one(CommandView).output)  # the lines before: past commands'
        await press(app, pilot, "colon")
        await pilot.press(*line)
        await press(app, pilot, "enter", "escape")
        return [out.line_text(i) for i in range(start, out.line_count)]

    async def steps(pilot: Any) -> None:
        box = app.query_one(CommandInput)
        assert "[PID 1 init]" in box.placeholder
        # the task picker: kthreadd (PID 2) → `bt` is its backtrace
        await press(app, pilot, "t")
        await pilot.press(*"kthreadd")
        await press(app, pilot, "enter", "enter")
        assert "[PID 2 kthreadd]" in box.placeholder
        out = await run(pilot, "bt")
        assert out[0] == "crash> bt" and out[1].startswith("PID: 2 ")
        assert out[1:-1] == app.facade.run("bt 2")
        # a CPU: CPU 0's task
        await press(app, pilot, "c", "j")
        out = await run(pilot, "bt")
        assert out[1].startswith("PID: 0 ") and "CPU: 0 " in out[1]
        # set PID, then a pipe
        out = await run(pilot, "set 1")
        assert out[1] == "    PID: 1" and "[PID 1 init]" in box.placeholder
        out = await run(pilot, "bt | head -n 2")
        assert out[1:-1] == app.facade.run("bt 1")[:2]
        out = await run(pilot, "log | grep -i 'not syncing'")
        assert out[1:-1] == ["[    8.248592] Kernel panic - not syncing: sysrq triggered crash"]

    drive(app, steps, size=SMALL)


def test_help_explains_the_marks_and_fits_80_columns(session: Session, tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "question_mark")
        view = app.screen.query_one("#help-text", TextLines)
        width = view.scrollable_content_region.width
        assert 70 <= width < 80
        lines = [view.line_text(i) for i in range(view.line_count)]
        assert all(cell_len(t) <= width for t in lines)  # nothing cut at the pane's edge
        text = "\n".join(lines)
        for mark in ("▶  !", "  >  ", "  ?  ", "⚡", "‼"):
            assert mark in text, mark
        assert "the CPU that panicked" in text and "ORC unwinder" in text
        # a description that was cut at 80 columns is whole now, wrapped under itself
        screen = screen_text(app)
        assert "(in the Log tab: the" in screen and " oops)" in screen
        # every key and mark in the help lines (scrolled: the overlay is shorter than them)
        await press(app, pilot, "G")
        assert "Esc or ? closes this help." in screen_text(app)

    drive(app, steps, size=SMALL)


def test_errors_once_and_export_asks_before_overwriting(session: Session, tmp_path: Path) -> None:
    app = make(session, tmp_path)
    existing = tmp_path / "old-report.md"
    existing.write_text("keep me\n")

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon")
        await pilot.press(*"bt -z")
        await press(app, pilot, "enter", "escape")
        out = app.query_one("#command-output", TextLines)
        text = [out.line_text(i) for i in range(out.line_count)]
        assert "bt: unsupported option -z" in text and not any("bt: bt:" in t for t in text)
        # export onto an existing file: the dialog says so, a second Enter overwrites
        await press(app, pilot, "e")
        box = app.screen.query_one("#export-path", Input)
        box.value = str(existing)
        await press(app, pilot, "enter")
        assert isinstance(app.screen, ExportScreen) and "exists" in str(box.border_title)
        assert existing.read_text() == "keep me\n"
        await press(app, pilot, "enter")
        await app.settle()
        assert not isinstance(app.screen, ExportScreen) and "sysrq" in existing.read_text()
        # a path in a directory that does not exist: one clear line
        await press(app, pilot, "e")
        bad = tmp_path / "no-such-dir" / "r.md"
        app.screen.query_one("#export-path", Input).value = str(bad)
        await press(app, pilot, "enter")
        await app.settle()
        messages = [str(n.message) for n in app._notifications]
        assert f"export: cannot write {bad}: No such file or directory" in messages
        assert not any("internal error" in m for m in messages)

    drive(app, steps, size=SMALL)


def test_y_copies_the_frame_and_Y_the_backtrace_with_osc52(session: Session,
                                                            tmp_path: Path) -> None:
    app = make(session, tmp_path)
    crash_bt = (SAMPLES / "6.1-sysrq" / "crash" / "bt.txt").read_text().splitlines()
    sent: list[str] = []

    def source_line(line: str) -> bool:
        return re.fullmatch(r"    \S+\.[chS]: \d+", line) is not None

    async def steps(pilot: Any) -> None:
        assert app._driver is not None
        monkey_write = app._driver.write

        def write(data: str) -> None:
            sent.append(data)
            monkey_write(data)

        app._driver.write = write  # type: ignore[method-assign]
        await press(app, pilot, "f", "y")  # the culprit frame: #3 sysrq_handle_crash
        lines = app.clipboard.splitlines()
        assert lines[0] == crash_bt[4] and source_line(lines[1])
        assert lines[1].endswith("drivers/tty/sysrq.c: 155")
        osc = f"\x1b]52;c;{base64.b64encode(app.clipboard.encode()).decode()}\a"
        assert osc in sent
        await press(app, pilot, "Y")
        lines = app.clipboard.splitlines()
        assert [s for s in lines if not source_line(s)] == crash_bt
        assert sum(map(source_line, lines)) >= 8
        # the log: y copies the cursor's line
        await press(app, pilot, "4", "y")
        log = app.query_one(LogLines)
        assert app.clipboard == log.line_text(log.cursor) == "[    8.232592] sysrq: Trigger a crash"

    drive(app, steps, size=SMALL)


def test_tasks_table_at_80_columns(session: Session, tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "5", "z")
        table = app.query_one(TasksTable)
        screen = screen_text(app)
        # COMM whole at 80 columns, the sort shown in its column's header
        assert "[swapper/0]" in screen and "[kthreadd]" in screen and "PID ▲" in screen
        # the swappers (PID 0) in CPU order
        cpus = [int(table.get_row_at(i)[2].plain) for i in range(table.row_count)
                if table.get_row_at(i)[0].plain.strip(" >") == "0"]
        assert cpus == sorted(cpus) and len(cpus) == 4
        await press(app, pilot, "s")
        assert "PPID ▲" in screen_text(app) and "PID ▲" not in screen_text(app).replace(
            "PPID ▲", "")
        await press(app, pilot, "r")
        assert "PPID ▼" in screen_text(app)

    drive(app, steps, size=SMALL)



def test_the_backtrace_title_keeps_the_pid_at_80_columns(session: Session,
                                                         tmp_path: Path) -> None:
    app = make(session, tmp_path)

    async def steps(pilot: Any) -> None:
        assert "Backtrace: PID 1 · init" in screen_text(app)
        await press(app, pilot, "t")
        await pilot.press(*"129")
        await press(app, pilot, "enter", "enter")
        screen = screen_text(app)
        assert "Backtrace: PID 129 " in screen  # not `PID 12…`

    drive(app, steps, size=SMALL)
