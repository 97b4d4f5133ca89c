"""The Variables tab (9) at 80x24: the selected frame's arguments and locals, a pointer to a
struct expanded lazily; driven with Pilot on the 6.1-deadlock dump (its .ko loaded)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_tui import drive, press, screen_text  # noqa: E402

from crashtui.tui.app import CrashtuiApp  # noqa: E402
from crashtui.tui.facade import SessionFacade  # noqa: E402
from crashtui.tui.variables import VariablesView  # noqa: E402
from tests.test_frame_variables import _session  # noqa: E402

pytestmark = pytest.mark.needs_vmlinux


def test_variables_tab_at_80x24(sessions: Any, tmp_path: Path) -> None:
    s = _session(sessions, "6.1-deadlock")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "9")
        text = screen_text(app)
        # the app lands on the culprit: deadlock_ba's take_both (its .cold part)
        assert "take_both" in text
        assert "first = 0xffffffffc028d000 <lock_b>" in text
        view = app.query_one(VariablesView)
        first = next(n for n in view.root.children if "first =" in str(n.label))
        assert first.allow_expand
        view.focus()
        view.move_cursor(first)
        await press(app, pilot, "enter")
        labels = [str(n.label) for n in first.children]
        assert any(lbl.startswith("owner = ") for lbl in labels), labels
        assert any(lbl.startswith("wait_list = {...}") for lbl in labels), labels
        # `z` gives the tab the whole screen
        await press(app, pilot, "z")
        assert view.size.height >= 18
        await press(app, pilot, "z")

    drive(app, steps, size=(80, 24))


def test_variables_tab_exception_rip(sessions: Any, tmp_path: Path) -> None:
    """The app lands on 6.1-test-module's exception RIP: test_module_init's `p`."""
    s = _session(sessions, "6.1-test-module")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "9")
        text = screen_text(app)
        assert "#6 exception RIP test_module_init at ffffffffc03c4005" in text
        assert "p = 0x1  int *" in text

    drive(app, steps, size=(80, 24))
