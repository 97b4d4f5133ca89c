"""The app at 80x24 with crash's habits (issue 17), driven with Pilot on the 6.1-sysrq dump."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tui import drive, press, screen_text
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.command import CommandInput
from crashtui.tui.facade import SessionFacade
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
