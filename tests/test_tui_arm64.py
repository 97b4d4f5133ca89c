"""The app on a real arm64 oops (sample-dumps/6.12-arm64-test-module): it opens on the
culprit the oops's `pc :` names, with its source line, the triage headline and the
exception's registers in crash's arm64 layout."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, dump_of, vmlinux_of
from textual.widgets import TabbedContent

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.registers import RegistersView
from crashtui.tui.source import SourceView

NAME = "6.12-arm64-test-module"
MODULES = SAMPLES / NAME / "test-module"


@pytest.fixture
def session() -> Iterator[Session]:
    s = Session.open(dump_of(NAME), vmlinux_of(NAME))
    yield s
    s.close()


def console_pc() -> tuple[str, str]:
    text = next((SAMPLES / NAME).glob("console.*")).read_text(errors="replace")
    m = re.search(r"\] pc : (\S+)\+(0x[0-9a-f]+)/", text)
    assert m is not None
    return m.group(1), m.group(2)


def screen_text(app: CrashtuiApp) -> str:
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(seg.text for strip in line for seg in strip)
                     for line in update.strips)


def test_app_opens_on_the_arm64_culprit(session: Session, tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(session, modules=[str(MODULES)], cache_root=tmp_path,
                                    auto_source=False))
    function, offset = console_pc()

    async def main() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await app.settle()
            await pilot.pause()
            frames = app.query_one(FramesView)
            row = frames.rows[frames.highlighted or 0]
            assert row.kind == "exception"
            assert row.symbol == f"{function}+{offset} [test_module]"
            assert row.where == "test-module.c:9"
            src = app.query_one(SourceView)
            assert src.border_title == "/usr/src/test-module/test-module.c:9"
            assert src.marked_text().strip().endswith('printk("%d\\n", *p);')
            second = screen_text(app).splitlines()[1]
            assert second.startswith(f" NULL pointer dereference in {function}+{offset} "
                                     "[test_module]  test-module.c:9")
            assert app.query_one("#tabs", TabbedContent).active == "tab-triage"
            regs = app.query_one(RegistersView)
            shown = "\n".join(regs.line_text(i) for i in range(regs.line_count))
            assert re.search(r"PC: [0-9a-f]{16}", shown) and "X29:" in shown
            assert "RIP" not in shown

    asyncio.run(main())
