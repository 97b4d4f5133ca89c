"""Snapshots of the main screens at 80x24 and 160x48 (pytest-textual-snapshot).

Update after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the report (snapshot_report.html) before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.facade import SessionFacade

pytestmark = pytest.mark.needs_vmlinux
SIZES = [(80, 24), (160, 48)]


class _SnapshotsDir(pytest_textual_snapshot.SVGImageExtension):
    """Keep the SVGs in tests/snapshots/<this module>/ rather than __snapshots__."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        test_file = Path(test_location.filepath)
        return str(test_file.parent / "snapshots" / test_file.stem)


@pytest.fixture(autouse=True)
def snapshots_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", _SnapshotsDir)
    monkeypatch.delenv("CRASHTUI_SOURCE", raising=False)


@pytest.fixture(scope="module", autouse=True)
def utc() -> Iterator[None]:
    with utc_timezone():
        yield


_SESSIONS: dict[Path, Session] = {}


@pytest.fixture(scope="module", autouse=True)
def close_sessions() -> Iterator[None]:
    yield
    for s in _SESSIONS.values():
        s.close()
    _SESSIONS.clear()


def _app(dump: Path, vmlinux: Path, tmp: Path, modules: list[str] | None = None) -> CrashtuiApp:
    """An app on the dump's session (opened once per module: the facts are cached)."""
    if dump not in _SESSIONS:
        _SESSIONS[dump] = Session.open(dump, vmlinux)
    return CrashtuiApp(SessionFacade(_SESSIONS[dump], modules=modules or [], cache_root=tmp,
                               auto_source=False))


def _keys(*keys: str) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await app.settle()
        for key in keys:
            await pilot.press(key)
            await app.settle()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_module_source(snap_compare: Any, testmod_dump: Path, vmlinux_path: Path,
                                   testmod_ko: Path, tmp_path: Path,
                                   size: tuple[int, int]) -> None:
    """test-module dump with its .ko: the exception frame selected, test-module.c:9 marked."""
    app = _app(testmod_dump, vmlinux_path, tmp_path, [str(testmod_ko.parent)])
    assert snap_compare(app, terminal_size=size, run_before=_keys())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_disassembly(snap_compare: Any, sysrq_dump: Path, vmlinux_path: Path,
                                 tmp_path: Path, size: tuple[int, int]) -> None:
    """sysrq dump without source: sysrq_handle_crash's dis -l, the call to panic marked."""
    app = _app(sysrq_dump, vmlinux_path, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_keys())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_log_at_the_panic(snap_compare: Any, sysrq_dump: Path, vmlinux_path: Path,
                          tmp_path: Path, size: tuple[int, int]) -> None:
    """The Log tab, zoomed, at the oops block."""
    app = _app(sysrq_dump, vmlinux_path, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_keys("4", "p", "z"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tasks_and_memory(snap_compare: Any, sysrq_dump: Path, vmlinux_path: Path,
                          tmp_path: Path, size: tuple[int, int]) -> None:
    """The Tasks tab (the panic CPU's frames above); then Memory with bars."""
    app = _app(sysrq_dump, vmlinux_path, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_keys("5"))
    app = _app(sysrq_dump, vmlinux_path, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_keys("3", "z"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, sysrq_dump: Path, vmlinux_path: Path, tmp_path: Path,
              size: tuple[int, int]) -> None:
    """`?`: every key."""
    app = _app(sysrq_dump, vmlinux_path, tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=_keys("question_mark"))
