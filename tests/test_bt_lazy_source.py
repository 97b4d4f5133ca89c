"""file:line is looked up only where it is shown: `bt` prints none, `bt -l` and the app do."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import run_command

pytestmark = pytest.mark.needs_vmlinux


def pending(session: Session) -> list[bool]:
    return ["_source_lookup" in f.__dict__ for f in session.panic_backtrace.frames]


def test_bt_looks_up_no_source_line(sysrq_dump: Path, vmlinux_path: Path) -> None:
    session = Session.open(sysrq_dump, vmlinux_path)
    run_command(session, "bt")
    assert all(pending(session))
    lines = run_command(session, "bt -l")
    assert not any(pending(session))
    assert "    debian/build/build_amd64_none_cloud-amd64/drivers/tty/sysrq.c: 155" in lines


def test_the_app_gets_frames_with_their_lines(sysrq_dump: Path, vmlinux_path: Path) -> None:
    from crashtui.tui.facade import SessionFacade

    facade = SessionFacade(Session.open(sysrq_dump, vmlinux_path))
    bts = facade.backtraces()
    assert all("_source_lookup" not in f.__dict__ for bt in bts for f in bt.frames)
    panic = next(bt for bt in bts if bt.panic)
    assert any(f.source is not None and f.source.file.endswith("sysrq.c") for f in panic.frames)
