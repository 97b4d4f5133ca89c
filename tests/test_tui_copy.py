"""Registers per frame (annotated) and copying (OSC 52, mouse selection) in the app at 80x24,
driven with Pilot on the real 6.1 sample dumps (issue 17)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tui import drive, press
from textual.geometry import Offset
from textual.selection import Selection
from textual.widgets import TabbedContent
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.logview import LogLines
from crashtui.tui.registers import RegistersView
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
def testmod(testmod_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(testmod_dump, vmlinux_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def sysrq(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(sysrq_dump, vmlinux_path)
    yield s
    s.close()


def make(session: Session, tmp_path: Path, modules: list[str] | None = None) -> CrashtuiApp:
    return CrashtuiApp(SessionFacade(session, cache_root=tmp_path, auto_source=False,
                                     modules=modules or []))


def capture(app: CrashtuiApp) -> list[str]:
    """What the app writes to the terminal from now on."""
    sent: list[str] = []
    assert app._driver is not None
    original = app._driver.write

    def write(data: str) -> None:
        sent.append(data)
        original(data)

    app._driver.write = write  # type: ignore[method-assign]
    return sent


def osc52(text: str) -> str:
    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\a"


def lines_of(view: Any) -> list[str]:
    return [view.line_text(i) for i in range(view.line_count)]


def test_registers_follow_the_selected_frame(testmod: Session, testmod_ko: Path,
                                             tmp_path: Path) -> None:
    """The exception row shows the page fault's pt_regs annotated (RBX is test_module_init);
    a caller frame shows only what unwinding knows, the rest named unknown; y copies a value."""
    app = make(testmod, tmp_path, [str(testmod_ko.parent)])

    async def steps(pilot: Any) -> None:
        sent = capture(app)
        frames = app.query_one(FramesView)
        ref = frames.current
        assert ref is not None and ref.exception is not None  # the culprit: exception RIP
        await press(app, pilot, "2")
        assert app.query_one("#tabs", TabbedContent).active == "tab-registers"
        regs = app.query_one(RegistersView)
        assert str(regs.border_title) == "Registers of exception RIP test_module_init+5"
        text = lines_of(regs)
        rbx = next(i for i, t in enumerate(text) if t.split()[:1] == ["RBX"])
        assert text[rbx].split() == ["RBX", "ffffffffc03c4000", "test_module_init",
                                     "[test_module]"]
        rip = next(t for t in text if t.split()[:1] == ["RIP"])
        assert rip.split()[1:] == ["ffffffffc03c4005", "test_module_init+0x5", "[test_module]"]
        assert any(t.split() == ["RFLAGS", "0000000000000246", "IF", "ZF", "PF"] for t in text)
        assert not any(t.startswith("not known") for t in text)  # a whole pt_regs
        # y on the RBX line copies its value, with OSC 52
        assert app.focused is regs
        assert regs.cursor == 2  # on crash's block, in view
        await press(app, pilot, "y")
        assert app.clipboard == text[2]  # a line of the block: the line
        await press(app, pilot, *["j"] * (rbx - 2), "y")
        assert app.clipboard == "ffffffffc03c4000"
        assert osc52("ffffffffc03c4000") in sent
        await press(app, pilot, "Y")
        assert app.clipboard.splitlines() == [t.rstrip() for t in text]
        # a caller frame: do_one_initcall, unwound
        row = next(i for i, r in enumerate(frames.rows)
                   if r.ref is not None and r.ref.frame is not None
                   and r.ref.exception is None and r.ref.frame.function == "do_one_initcall")
        frames.focus()
        frames.highlighted = row
        await app.settle()
        await pilot.pause()
        frame = frames.rows[row].ref.frame  # type: ignore[union-attr]
        assert str(regs.border_title) == f"Registers of #{frame.index} {frame.symbol}"
        text = lines_of(regs)
        shown = {t.split()[0].lower(): int(t.split()[1], 16) for t in text
                 if t[:7].strip().lower() in ("rip", "rsp", "rbp", "rbx", "r12", "r13", "r14",
                                              "r15", "rax", "rcx", "rdx")}
        assert shown["rip"] == frame.pc and shown["rsp"] == frame.sp + 8
        assert {k: v for k, v in frame.registers.items() if k in shown} == \
            {k: shown[k] for k in frame.registers if k in shown}
        assert "rax" not in shown and "rcx" not in shown  # not the exception frame's values
        assert regs.cursor == 2 and text[2].split()[0] == "RIP"  # the first register, in view
        unknown = next(t for t in text if t.startswith("not known in this frame:"))
        assert "RAX" in unknown.split() and "RIP" not in unknown.split()
        assert any(t.split()[:1] == ["RSP"] and t.endswith("stack of PID 526") for t in text)

    drive(app, steps, size=SMALL)


def test_tasks_y_copies_the_task_address_and_Y_the_row(sysrq: Session, tmp_path: Path) -> None:
    app = make(sysrq, tmp_path)

    async def steps(pilot: Any) -> None:
        sent = capture(app)
        await press(app, pilot, "5")
        table = app.query_one(TasksTable)
        table.focus()
        await press(app, pilot, "j", "j")
        cells = [c.plain.strip() for c in table.get_row_at(table.cursor_row)]
        await press(app, pilot, "y")
        task = next(r.task for r in table.rows_data if f"{r.task.address:016x}" == cells[-1])
        assert app.clipboard == f"{task.address:016x}"
        assert osc52(app.clipboard) in sent
        await press(app, pilot, "Y")
        assert app.clipboard == "  ".join(cells) + "\n"
        assert task.comm in app.clipboard and f"{task.address:016x}" in app.clipboard

    drive(app, steps, size=SMALL)


def test_log_mouse_selection_is_copied(sysrq: Session, tmp_path: Path) -> None:
    """Textual's text selection works in the text panes (the log here): the selected text is
    highlighted, Ctrl+C copies it (it interrupts only a running command) and so does y."""
    app = make(sysrq, tmp_path)

    async def steps(pilot: Any) -> None:
        sent = capture(app)
        await press(app, pilot, "4")
        log = app.query_one(LogLines)
        log.focus()
        i = log.cursor
        first, second = log.line_text(i), log.line_text(i + 1)
        app.screen.selections = {log: Selection(Offset(4, i), Offset(10, i + 1))}
        await pilot.pause()
        assert app.screen.get_selected_text() == first[4:] + "\n" + second[:10]
        await press(app, pilot, "ctrl+c")
        assert app.clipboard == first[4:] + "\n" + second[:10]
        assert osc52(app.clipboard) in sent
        assert not app.screen.selections  # cleared once copied
        # y with nothing selected: the cursor's line
        await press(app, pilot, "y")
        assert app.clipboard == first

    drive(app, steps, size=SMALL)


def test_mouse_drag_selects_log_text(sysrq: Session, tmp_path: Path) -> None:
    """A real drag with the mouse over the log selects its text (Textual 8.2's selection)."""
    app = make(sysrq, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "4")
        log = app.query_one(LogLines)
        await pilot.mouse_down(log, offset=(0, 0))
        await pilot.hover(log, offset=(20, 1))
        await pilot.mouse_up(log, offset=(20, 1))
        await pilot.pause()
        selected = app.screen.get_selected_text()
        top = log.scroll_offset.y
        # the cell under the pointer is included
        assert selected == log.line_text(top) + "\n" + log.line_text(top + 1)[:21]

    drive(app, steps, size=SMALL)


def test_task_list_and_modules_y_copy_addresses(testmod: Session, tmp_path: Path) -> None:
    """y in the task list copies the task's address; in the Modules tab the module's base."""
    from crashtui.tui.modules import ModulesTable
    from crashtui.tui.taskpick import TaskOptions, TaskPicker

    app = make(testmod, tmp_path)

    async def steps(pilot: Any) -> None:
        sent = capture(app)
        options = app.query_one(TaskOptions)
        options.focus()
        await press(app, pilot, "j", "j", "y")
        row = app.query_one(TaskPicker).shown[options.highlighted or 0]
        assert app.clipboard == f"{row.task.address:016x}"
        assert osc52(app.clipboard) in sent
        await press(app, pilot, "6")
        table = app.query_one(ModulesTable)
        table.focus()
        await press(app, pilot, "y")
        module = table.current
        assert module is not None and app.clipboard == f"{module.base:016x}"
        assert osc52(app.clipboard) in sent

    drive(app, steps, size=SMALL)
