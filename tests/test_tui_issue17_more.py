"""Issue 17, the rest: --source that cannot be used, a source tarball of another kernel
version, an xz-compressed dump in the app; at 80x24 on the real sample dumps."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SAMPLES, vmlinux_of
from test_source import SYSRQ_DWARF, linux_source  # noqa: F401 - the tarball fixture
from test_tui import drive, press, screen_text, source_cache  # noqa: F401 - fixtures
from textual.widgets import Input
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.analysis.source import (
    SourceFinder,
    SourceTarball,
    kernel_upstream_version,
    makefile_version,
    version_note,
)
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.modules import ModulesTable, complete_path
from crashtui.tui.source import SourceView

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


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=dict(os.environ))


def messages(app: CrashtuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


# -- 1. --source that cannot be used ---------------------------------------------------------

@pytest.mark.parametrize(("source", "why"), [
    ("/nonexistent", "no such file or directory"),
    ("sample-dumps/6.1-sysrq/MANIFEST", "neither a directory nor a source tarball"),
])
def test_a_bad_source_is_one_warning_line_and_c_goes_on(sysrq_dump: Path, vmlinux_path: Path,
                                                        source: str, why: str) -> None:
    r = crashtui(str(sysrq_dump), str(vmlinux_path), "--source", source, "-c", "sys")
    assert r.returncode == 0 and "PANIC: \"Kernel panic - not syncing" in r.stdout
    assert r.stderr.splitlines() == [
        f"crashtui: warning: --source {source}: {why}"
        + (" (.tar, .tar.xz, .txz, .tar.gz…)" if "neither" in why else "")
        + "; source pane without it"]
    report = crashtui(str(sysrq_dump), str(vmlinux_path), "--source", source, "--report", "-")
    assert report.returncode == 0 and report.stdout.startswith("#")
    assert f"--source {source}: {why}" in report.stderr


def test_a_bad_source_is_a_toast_in_the_app(session: Session, tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(session, source="/nonexistent", cache_root=tmp_path,
                                    auto_source=False))

    async def steps(pilot: Any) -> None:
        assert "--source /nonexistent: no such file or directory; source pane without it" \
            in messages(app)
        # the analysis went on: the culprit frame, its disassembly (no source)
        frames = app.query_one(FramesView)
        assert frames.current is not None and frames.current.frame is not None
        assert frames.current.frame.function == "sysrq_handle_crash"
        assert app.query_one(SourceView).kind == "disassembly"

    drive(app, steps, SMALL)


def test_crashtui_source_env_entry_that_is_no_tree_is_named(session: Session, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHTUI_SOURCE", str(tmp_path / "gone"))
    facade = SessionFacade(session, cache_root=tmp_path, auto_source=False)
    assert facade.finder.problems == [
        f"CRASHTUI_SOURCE {tmp_path / 'gone'}: no such file or directory; source pane without it"]


# -- 2. a source tarball of another version ---------------------------------------------------

def test_every_samples_upstream_version_is_its_source_packages() -> None:
    """The kernel's X.Y.Z from crash's RELEASE/VERSION lines = the MANIFEST's linux-source."""
    checked = 0
    for sys_txt in sorted(SAMPLES.glob("*/crash/sys.txt")):
        fields = dict(line.strip().split(": ", 1) for line in sys_txt.read_text().splitlines()
                      if ": " in line)
        manifest = (sys_txt.parent.parent / "MANIFEST").read_text()
        source_version = manifest.split("source_package=", 1)[1].split()[1].split("-")[0]
        assert kernel_upstream_version(fields["RELEASE"], fields["VERSION"]) == source_version
        checked += 1
    assert checked >= 10
    # Debian's ABI names (6.1.0-56) carry no sublevel: without a version string, no guess
    assert kernel_upstream_version("6.1.0-56-cloud-amd64", None) is None
    assert kernel_upstream_version("6.12.118+deb13-cloud-amd64", None) == "6.12.118"


def test_the_real_tarballs_version_is_read_from_its_makefile(
        linux_source: Path, source_cache: Path) -> None:  # noqa: F811
    tb = SourceTarball(linux_source, source_cache)
    assert tb.version() == "6.1.192"
    assert makefile_version("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 190\n") == "6.1.190"
    assert version_note("linux-source-6.1.tar.xz", "6.1.190", "6.1.192") == \
        "linux-source-6.1.tar.xz is 6.1.190, the kernel is 6.1.192"
    assert version_note("linux-source-6.1.tar.xz", "6.1.192", "6.1.192") == ""


def test_a_tree_knows_its_version_too(linux_source: Path,  # noqa: F811
                                      source_cache: Path, tmp_path: Path) -> None:  # noqa: F811
    """A kernel tree (here the files read out of the real tarball, laid out as a tree)."""
    tb = SourceTarball(linux_source, source_cache)
    got = tb.extract(["drivers/tty/sysrq.c", "Makefile"])
    tree = tmp_path / "linux"
    for rel, path in got.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(path.read_bytes())
    res = SourceFinder([tree], env={}, cache_root=tmp_path, auto=False).find(SYSRQ_DWARF)
    assert res.path == tree / "drivers/tty/sysrq.c" and res.tree == tree
    assert res.tree_version == "6.1.192"
    assert version_note(str(tree), res.tree_version, "6.12.118") == \
        f"{tree} is 6.1.192, the kernel is 6.12.118"


def test_a_tarball_of_another_version_says_so(linux_source: Path,  # noqa: F811
                                              source_cache: Path) -> None:  # noqa: F811
    """The 6.12 sample's source pane fed Debian's 6.1.192 tarball: sysrq.c is shown (the
    file exists there) with a note in the pane and a toast."""
    s = Session.open(next((SAMPLES / "6.12-sysrq").glob("dump.*")), vmlinux_of("6.12-sysrq"))
    app = CrashtuiApp(SessionFacade(s, source=str(linux_source), cache_root=source_cache,
                                    auto_source=False))
    note = "linux-source-6.1.tar.xz is 6.1.192, the kernel is 6.12.118"

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind == "source" and str(src.border_title).startswith("drivers/tty/sysrq.c")
        assert str(src.border_subtitle).startswith("⚠ 6.1.192, kernel 6.12.118")
        assert note in messages(app)
        text = screen_text(app)
        assert "⚠ 6.1.192, kernel 6.12" in text  # the pane's subtitle, at 80 columns
        await press(app, pilot, "up", "down")  # another frame: the toast is not repeated
        assert messages(app).count(note) == 1

    try:
        drive(app, steps, SMALL)
    finally:
        s.close()


def test_the_matching_tarball_has_no_note(session: Session, linux_source: Path,  # noqa: F811
                                          source_cache: Path) -> None:  # noqa: F811
    app = CrashtuiApp(SessionFacade(session, source=str(linux_source), cache_root=source_cache,
                                    auto_source=False))

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind == "source"
        assert str(src.border_subtitle) == "tarball linux-source-6.1.tar.xz"
        assert not any("the kernel is" in m for m in messages(app))

    drive(app, steps, SMALL)


# -- 3. an xz-compressed dump in the app ------------------------------------------------------

def test_the_xz_vmcore_opens_in_the_app(vmlinux_path: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHTUI_CACHE", str(tmp_path / "cache"))
    xz = next((SAMPLES / "6.1-sysrq").glob("vmcore-d31.elf.*.xz"))
    s = Session.open(xz, vmlinux_path)
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        assert frames.current is not None and frames.current.frame is not None
        assert frames.current.frame.function == "sysrq_handle_crash"
        text = screen_text(app)
        assert "#3  sysrq_handle_crash+0x16" in text and "Backtrace: PID 1 · init" in text

    try:
        drive(app, steps, SMALL)
    finally:
        s.close()


# -- 4. path completion in the `l` (load .ko) prompt -----------------------------------------

def test_complete_path_lists_directories_and_ko_files(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    mod_dir = SAMPLES / "6.1-test-module"
    assert complete_path(f"{mod_dir}/te") == (f"{mod_dir}/test-module/", ["test-module/"])
    # Makefile and test-module.c are no .ko: the one match is typed in whole
    assert complete_path(f"{mod_dir}/test-module/") == (
        f"{mod_dir}/test-module/test-module.ko", ["test-module.ko"])
    done, matches = complete_path(f"{SAMPLES}/6.1-")
    assert done == f"{SAMPLES}/6.1-" and "6.1-test-module/" in matches and len(matches) >= 7
    assert complete_path(f"{SAMPLES}/6.1-t") == (f"{SAMPLES}/6.1-test-module/",
                                                 ["6.1-test-module/"])
    # ~ stays as typed; hidden entries only when asked for; nothing: the text as it was
    (tmp_path / "mods").mkdir()
    (tmp_path / ".hidden").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert complete_path("~/m") == ("~/mods/", ["mods/"])
    assert complete_path("~/") == ("~/mods/", ["mods/"])
    assert complete_path("~/.h") == ("~/.hidden/", [".hidden/"])
    assert complete_path("/nonexistent/x") == ("/nonexistent/x", [])


def test_tab_completes_the_ko_path_and_loads_it(testmod_dump: Path, vmlinux_path: Path,
                                                tmp_path: Path) -> None:
    s = Session.open(testmod_dump, vmlinux_path)
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "6")
        table = app.query_one(ModulesTable)
        table.move_cursor(row=next(i for i, r in enumerate(table.rows_data)
                                   if r.name == "test_module"))
        await press(app, pilot, "l")
        box = app.query_one("#ko-path", Input)
        assert app.focused is box
        await pilot.press(*f"{SAMPLES}/6.1-")
        await press(app, pilot, "tab")  # many matches: listed, focus stays
        assert app.focused is box and box.value == f"{SAMPLES}/6.1-"
        assert any("6.1-test-module/" in m for m in messages(app))
        await press(app, pilot, "t", "tab")
        assert box.value == f"{SAMPLES}/6.1-test-module/"
        await press(app, pilot, "t", "e", "tab", "tab")
        assert box.value == f"{SAMPLES}/6.1-test-module/test-module/test-module.ko"
        assert "Tab completes" in str(box.placeholder)
        await press(app, pilot, "enter")
        await app.settle()
        await pilot.pause()
        assert table.object_file(next(r for r in table.rows_data if r.name == "test_module")
                                 ) == box.value
        assert "test-module.c:9" in screen_text(app).splitlines()[1]  # the culprit's line

    try:
        drive(app, steps, SMALL)
    finally:
        s.close()


# -- 6. a new user's smaller items at 80x24 ----------------------------------------------------

def test_the_source_cursor_stays_in_view_after_a_resize(
        session: Session, linux_source: Path, source_cache: Path) -> None:  # noqa: F811
    """sysrq.c:155 is centred; the terminal shrinks: line 155 is still on screen (and back)."""
    app = CrashtuiApp(SessionFacade(session, source=str(linux_source), cache_root=source_cache,
                                    auto_source=False))

    def in_view(src: SourceView) -> bool:
        top, height = int(src.scroll_offset.y), src.scrollable_content_region.height
        return top <= src.cursor < top + height

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind == "source" and src.cursor == 154 and in_view(src)
        for size in ((120, 40), (80, 24), (80, 14), (80, 40), (80, 24), (60, 13)):
            await pilot.resize_terminal(*size)
            await app.settle()
            await pilot.pause()
            await pilot.pause()
            assert src.scrollable_content_region.height > 0
            assert in_view(src), size
            assert "▶155" in screen_text(app).replace(" ", ""), size

    drive(app, steps, SMALL)


def test_the_marked_instruction_stays_in_view_after_a_resize(testmod_dump: Path,
                                                             vmlinux_path: Path,
                                                             tmp_path: Path) -> None:
    """No .ko: test_module_init's disassembly, +5 marked; the terminal shrinks (tmux showed
    the mark out of view at 80x14 before)."""
    s = Session.open(testmod_dump, vmlinux_path)
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind == "disassembly" and src.mark_line is not None
        for size in ((120, 40), (80, 24), (80, 14), (80, 24)):
            await pilot.resize_terminal(*size)
            await app.settle()
            await pilot.pause()
            await pilot.pause()
            top, height = int(src.scroll_offset.y), src.scrollable_content_region.height
            assert top <= src.mark_line < top + height, size
            assert "mov    0x1,%esi" in screen_text(app), size

    try:
        drive(app, steps, SMALL)
    finally:
        s.close()


def test_a_user_space_frame_says_so_within_80_columns(testmod_dump: Path, vmlinux_path: Path,
                                                      tmp_path: Path) -> None:
    s = Session.open(testmod_dump, vmlinux_path)
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", "end")
        await app.settle()
        await pilot.pause()
        src = app.query_one(SourceView)
        assert str(src.border_title) == "user space"
        text = screen_text(app)
        for part in ("RIP 0x47fbe9", "is a user-space address:", "no kernel source."):
            assert part in text, part

    try:
        drive(app, steps, SMALL)
    finally:
        s.close()


def test_the_selected_frame_stays_in_view_after_a_resize(session: Session,
                                                         tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        for keys in (("f", "end"), ("f", "home"), ("f", "end", "up", "up")):
            await press(app, pilot, *keys)
            index = frames.highlighted
            assert index is not None
            shown = frames.get_option_at_index(index).prompt
            head = str(getattr(shown, "plain", shown)).splitlines()[0][:18]
            for size in ((80, 14), (120, 40), (80, 24), (70, 12), (80, 24)):
                await pilot.resize_terminal(*size)
                await app.settle()
                await pilot.pause()
                await pilot.pause()
                assert frames.highlighted == index
                text = screen_text(app)
                assert head in text, (keys, size, head, text)

    drive(app, steps, SMALL)
