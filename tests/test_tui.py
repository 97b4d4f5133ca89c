"""The app driven with Textual's Pilot on the real sample dumps."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, cache_dir
from test_source import SYSRQ_DWARF, linux_source  # noqa: F401 - the tarball fixture
from textual.widgets import Static, TabbedContent
from tui_helpers import utc_timezone

from crashtui.analysis.session import Session
from crashtui.analysis.source import SourceFinder
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.command import CommandInput, apply_completion
from crashtui.tui.cpus import CpuList
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.help import HelpScreen
from crashtui.tui.logview import LogLines
from crashtui.tui.memory import MemoryView
from crashtui.tui.modules import ModulesTable
from crashtui.tui.registers import RegistersView
from crashtui.tui.source import SourceView
from crashtui.tui.summary import SummaryView
from crashtui.tui.taskpick import TaskPicker
from crashtui.tui.tasks import TasksTable

pytestmark = pytest.mark.needs_vmlinux
CRASH = {"sysrq": SAMPLES / "6.1-sysrq" / "crash", "testmod": SAMPLES / "6.1-test-module" / "crash"}
HOSTILE = "[bold]x[/bold]\x1b[2J\x07"
HOSTILE_SHOWN = "[bold]x[/bold]\\x1b[2J\\x07"


@pytest.fixture(scope="module", autouse=True)
def utc() -> Iterator[None]:
    """Dates as crash printed them (UTC), whatever the machine's zone."""
    with utc_timezone():
        yield


@pytest.fixture(autouse=True)
def no_env_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHTUI_SOURCE", raising=False)


@pytest.fixture(scope="module")
def sysrq_session(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(sysrq_dump, vmlinux_path)
    yield s
    s.close()


@pytest.fixture
def fresh_sysrq(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(sysrq_dump, vmlinux_path)
    yield s
    s.close()


@pytest.fixture
def testmod_session(testmod_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(testmod_dump, vmlinux_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def source_cache(linux_source: Path) -> Path:  # noqa: F811 - the imported fixture
    """A source cache (kept with the tests' downloads) already holding sysrq.c."""
    root = cache_dir() / "crashtui-src"
    SourceFinder([linux_source], env={}, cache_root=root, auto=False).prefetch([(SYSRQ_DWARF, None)])
    return root


def drive(app: CrashtuiApp, steps: Callable[[Any], Awaitable[None]],
          size: tuple[int, int] = (160, 48)) -> None:
    """Run the app headless at `size`, let it load, then run the test's steps."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await app.settle()
            await steps(pilot)

    asyncio.run(main())


async def press(app: CrashtuiApp, pilot: Any, *keys: str) -> None:
    await pilot.press(*keys)
    await app.settle()
    await pilot.pause()


def screen_text(app: CrashtuiApp) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(seg.text for strip in line for seg in strip)
                     for line in update.strips)


def crash_lines(dump: str, name: str) -> list[str]:
    return (CRASH[dump] / name).read_text().splitlines()


# -- frame → source -----------------------------------------------------------------------------

def test_panic_frame_shows_sysrq_source_from_the_tarball(
        sysrq_session: Session, linux_source: Path, source_cache: Path) -> None:  # noqa: F811
    app = CrashtuiApp(SessionFacade(sysrq_session, source=str(linux_source), cache_root=source_cache,
                              auto_source=False))

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        # the app lands on the culprit frame of the panic CPU
        assert frames.current is not None and frames.current.frame is not None
        assert frames.current.frame.function == "sysrq_handle_crash"
        await press(app, pilot, "home")
        assert frames.current.frame.function == "machine_kexec"
        await press(app, pilot, "down", "down", "down")
        assert frames.current.frame.function == "sysrq_handle_crash"
        src = app.query_one(SourceView)
        assert src.kind == "source"
        assert src.border_title == "drivers/tty/sysrq.c:155"  # crash's sym: sysrq.c: 155
        assert src.marked_text().strip().endswith('panic("sysrq triggered crash\\n");')
        assert src.marked_text().startswith("▶")
        top, height = src.scroll_offset.y, src.scrollable_content_region.height
        assert abs((154 - top) - height // 2) <= 1, "the marked line is centred"
        assert "▶155" in screen_text(app).replace(" ", "")

    drive(app, steps)


def test_no_source_shows_disassembly_with_lines_and_hint(sysrq_session: Session,
                                                         tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(sysrq_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind == "disassembly"
        assert src.border_title == "sysrq_handle_crash · disassembly"
        # the return address is one past `call panic`: that call is the marked instruction
        assert re.search(r"(<sysrq_handle_crash\+17>:|\+17)\s+call\s+0x[0-9a-f]+ <panic>",
                         src.marked_text())
        text = [src.line_text(i) for i in range(src.line_count)]
        assert any(t.endswith("drivers/tty/sysrq.c: 155") for t in text)  # crash's dis -l
        assert "No source for drivers/tty/sysrq.c:155." in text
        assert any("--source DIR" in t for t in text) and any("CRASHTUI_SOURCE" in t for t in text)

    drive(app, steps)


def test_module_frame_shows_the_modules_own_source(testmod_session: Session,
                                                   testmod_ko: Path, tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(testmod_session, modules=[str(testmod_ko.parent)],
                              cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        row = frames.rows[frames.highlighted or 0]
        assert row.kind == "exception" and row.symbol.startswith("test_module_init+0x5")
        assert row.where == "test-module.c:9"
        src = app.query_one(SourceView)
        assert src.kind == "source"
        assert src.border_title == "/usr/src/test-module/test-module.c:9"
        assert src.marked_text().strip().endswith('printk("%d\\n", *p);')
        regs = app.query_one(RegistersView)
        shown = [regs.line_text(i).strip() for i in range(regs.line_count)]
        expected = [line.strip() for line in crash_lines("testmod", "bt-after-mod-s.txt")[9:16]]
        assert shown[2:9] == expected  # the exception frame's registers, as crash prints them
        table = app.query_one(ModulesTable)
        mod = next(r for r in table.rows_data if r.name == "test_module")
        assert mod.taints and "O" in mod.taint_flags
        assert table.object_file(mod).endswith("test-module.ko")

    drive(app, steps)


def static_text(app: CrashtuiApp, selector: str) -> str:
    """The plain text a Static shows."""
    return str(getattr(app.query_one(selector, Static).content, "plain",
                       app.query_one(selector, Static).content))


def test_triage_is_what_shows_first(testmod_session: Session, testmod_ko: Path,
                                    tmp_path: Path) -> None:
    """What happened, at once: a line under the summary bar and the Triage tab, open."""
    app = CrashtuiApp(SessionFacade(testmod_session, modules=[str(testmod_ko.parent)],
                              cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        second = screen_text(app).splitlines()[1]
        assert second.startswith(" NULL pointer dereference in test_module_init+0x5 "
                                 "[test_module]  test-module.c:9")
        assert "out-of-tree module" in second and "sig d708b8660f752058" in second
        assert app.query_one("#tabs", TabbedContent).active == "tab-triage"
        body = static_text(app, "#triage-body")
        assert "Culprit      test_module_init+0x5 [test_module]" in body
        assert "Signature    d708b8660f752058" in body
        assert "ffffffffc03c4005: mov    0x1,%esi" in body
        await press(app, pilot, "2")
        assert app.query_one("#tabs", TabbedContent).active == "tab-registers"
        await press(app, pilot, "1")
        assert app.query_one("#tabs", TabbedContent).active == "tab-triage"
        assert app.focused is app.query_one("#triage")

    drive(app, steps, size=(160, 48))
    # at 80 columns the headline keeps the kind, culprit and its line
    app = CrashtuiApp(SessionFacade(testmod_session, modules=[str(testmod_ko.parent)],
                              cache_root=tmp_path, auto_source=False))

    async def narrow(pilot: Any) -> None:
        assert screen_text(app).splitlines()[1].rstrip() == (
            " NULL pointer dereference in test_module_init+0x5 [test_module]  test-module.c:9")

    drive(app, narrow, size=(80, 24))


def test_the_panic_backtrace_is_drawn_before_the_rest_is_read(
        sysrq_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """First paint: the summary and the panic CPU's frames do not wait for tasks, modules,
    the log or kmem (each made slow here); the launch-to-backtrace time is reported."""
    slow = ("ps", "modules", "log_lines", "kmem")
    for name in slow:
        real = getattr(SessionFacade, name)

        def slowed(self: SessionFacade, real: Any = real) -> Any:
            time.sleep(1.0)
            return real(self)

        monkeypatch.setattr(SessionFacade, name, slowed)
    app = CrashtuiApp(SessionFacade(sysrq_session, cache_root=tmp_path, auto_source=False))

    async def main() -> float:
        start = time.perf_counter()
        async with app.run_test(size=(120, 36)) as pilot:
            frames = app.query_one(FramesView)
            while not frames.rows and time.perf_counter() - start < 30:
                await asyncio.sleep(0.01)
            await pilot.pause()
            took = time.perf_counter() - start
            assert frames.current is not None and frames.current.frame is not None
            assert frames.current.frame.function == "sysrq_handle_crash"
            assert "sysrq triggered crash" in screen_text(app).splitlines()[0]
            assert not app.ps_rows and app.query_one(TasksTable).row_count == 0
            await app.settle()
            assert app.query_one(TasksTable).row_count == 78  # the rest came after
            return took

    took = asyncio.run(main())
    print(f"launch to the panic backtrace: {took:.3f} s")  # ~0.4 s on an idle machine


# -- the other panes show what crash prints ----------------------------------------------------

def test_panes_show_the_values_crash_prints(sysrq_session: Session, tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(sysrq_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        cpus = app.query_one(CpuList)
        assert [(b.cpu, b.panic) for b in cpus.backtraces][0] == (3, True)
        assert {b.cpu for b in cpus.backtraces} == {0, 1, 2, 3}
        frames = app.query_one(FramesView)
        names = [r.ref.frame.function for r in frames.rows if r.kind == "frame"
                 and r.ref and r.ref.frame]
        crash_names = [m.group(1) for line in crash_lines("sysrq", "bt.txt")
                       if (m := re.match(r"\s*#\d+ \[\w+\] (\S+) at", line))]
        assert names == crash_names
        # the user-mode entry registers, as crash prints them
        await press(app, pilot, "end")
        regs = app.query_one(RegistersView)
        shown = [regs.line_text(i).strip() for i in range(regs.line_count)]
        # (then each register annotated: tests/test_tui_copy.py)
        assert shown[2:9] == [line.strip() for line in crash_lines("sysrq", "bt.txt")[12:19]]
        # summary: crash's sys
        summary = app.query_one(SummaryView)
        sys_lines = [summary.line_text(i) for i in range(summary.line_count)]
        for line in crash_lines("sysrq", "sys.txt"):
            if line.split(":")[0].strip() not in ("KERNEL", "DUMPFILE"):
                assert line in sys_lines
        bar = screen_text(app).splitlines()[0]
        assert "6.1.0-56-cloud-amd64" in bar and "sysrq triggered crash" in bar
        assert "CPU 3" in bar and "init (1)" in bar and "10:23:31" in bar
        # memory: kmem -i pages
        mem = app.query_one(MemoryView)
        mem_text = "\n".join(mem.line_text(i) for i in range(mem.line_count))
        for line in crash_lines("sysrq", "kmem-i.txt")[1:]:
            m = re.match(r"\s*([A-Z][A-Z ]*?)\s{2,}(\d+)", line)
            # crash is wrong about COMMITTED (test_kmem.py); SHARED only on request (crash 9)
            if m and m.group(1) not in ("COMMITTED", "SHARED"):
                assert re.search(rf"{m.group(1)}\s+{m.group(2)}\s", mem_text), m.group(1)
        assert "█" in mem_text and "SHARED: not counted (reads every struct page): :kmem -i=shared" in mem_text
        # tasks: crash's ps
        table = app.query_one(TasksTable)
        ps = [line for line in crash_lines("sysrq", "ps.txt")[1:] if line.strip()]
        assert table.row_count == len(ps)
        crash_pids = sorted(int(line[1:].split()[0]) for line in ps)
        assert sorted(r.task.pid for r in table.rows_data) == crash_pids
        assert sum(r.active for r in table.rows_data) == sum(line.startswith(">") for line in ps)
        # modules: crash's mod
        mods = app.query_one(ModulesTable)
        assert {r.name for r in mods.rows_data} == {line.split()[1] for line in
                                                    crash_lines("sysrq", "mod.txt")[1:]}
        # log: the whole dmesg, the oops block marked
        log = app.query_one(LogLines)
        assert log.line_count == len(crash_lines("sysrq", "log.txt"))
        assert log.oops is not None
        assert log.line_text(log.oops[0]).endswith("sysrq: Trigger a crash")

    drive(app, steps)


# -- keys ---------------------------------------------------------------------------------------

def test_keyboard_walk_through_every_pane(sysrq_session: Session, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    app = CrashtuiApp(SessionFacade(sysrq_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        frames = app.query_one(FramesView)
        # task selector: filter, Enter, Enter → that task's backtrace
        await press(app, pilot, "t")
        assert app.focused is not None and app.focused.id == "task-filter"
        await pilot.press(*"kthreadd")
        await press(app, pilot, "enter")
        assert app.query_one(TaskPicker).shown[0].task.comm == "kthreadd"
        await press(app, pilot, "enter")
        assert frames.backtrace is not None and frames.backtrace.pid == 2
        assert "PID 2" in str(frames.border_title) and app.focused is frames
        # CPU list: c, down → another CPU's backtrace
        await press(app, pilot, "c", "down")
        assert frames.backtrace is not None and frames.backtrace.cpu == 0
        # p: back to the panic CPU's culprit frame
        await press(app, pilot, "p")
        assert frames.current is not None and frames.current.frame is not None
        assert frames.current.frame.function == "sysrq_handle_crash"
        # Tasks tab: sort, Enter → backtrace
        await press(app, pilot, "5")
        table = app.query_one(TasksTable)
        assert app.focused is table
        await press(app, pilot, "s")
        assert table.sort_column == "PPID"
        await press(app, pilot, "enter")
        assert frames.backtrace is not None
        # Log tab: / search, p panic
        await press(app, pilot, "4")
        log = app.query_one(LogLines)
        assert app.focused is log
        await press(app, pilot, "slash")
        await pilot.press(*"Call Trace")
        await press(app, pilot, "enter")
        assert "Call Trace" in log.line_text(log.cursor) and app.focused is log
        await press(app, pilot, "p")
        assert log.cursor == log.oops[0] if log.oops else False
        # command line: Tab completion, output, history
        await press(app, pilot, "colon")
        box = app.query_one(CommandInput)
        assert app.focused is box
        await pilot.press("k", "m")
        await press(app, pilot, "tab")
        assert box.value == "kmem "
        await pilot.press("-", "i")
        await press(app, pilot, "enter")
        await pilot.press(*"sys")
        await press(app, pilot, "enter")
        out = app.query_one("#command-output")
        text = [out.line_text(i) for i in range(out.line_count)]  # type: ignore[attr-defined]
        assert "     RELEASE: 6.1.0-56-cloud-amd64" in text
        assert any(t.startswith("    TOTAL MEM   183434") for t in text)
        await press(app, pilot, "up", "up")
        assert box.value == "kmem -i"
        await press(app, pilot, "escape")
        # help
        await press(app, pilot, "f", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "command palette" in screen_text(app)
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)
        # zoom the frames pane and back
        await press(app, pilot, "f", "z")
        assert app.screen.maximized is frames
        await press(app, pilot, "z")
        assert app.screen.maximized is None
        # command palette: jump to a CPU
        await press(app, pilot, "ctrl+p")
        await pilot.press(*"CPU 1")
        await asyncio.sleep(0.5)
        await press(app, pilot, "enter")
        assert frames.backtrace is not None and frames.backtrace.cpu == 1
        # command palette: a symbol's code in the source pane
        await press(app, pilot, "ctrl+p")
        await pilot.press(*"sysrq_handle_cr")
        await asyncio.sleep(0.5)
        await press(app, pilot, "enter")
        src = app.query_one(SourceView)
        assert src.border_title == "sysrq_handle_crash · disassembly"
        assert any(re.search(r"(<sysrq_handle_crash\+17>|\+17)\s+call", src.line_text(i))
                   for i in range(src.line_count))
        # export
        await press(app, pilot, "f", "e")
        export_box = app.screen.query_one("#export-path")
        export_box.value = str(report)  # type: ignore[attr-defined]
        await press(app, pilot, "enter")
        await app.settle()

    drive(app, steps)
    assert report.is_file() and "sysrq" in report.read_text()


def test_command_completion() -> None:
    assert apply_completion("sy", ["sym", "sys"]) == ("sy", ["sym", "sys"])
    assert apply_completion("sys", ["sys "]) == ("sys ", [])
    assert apply_completion("zz", []) == ("zz", [])
    assert apply_completion("dis -l sysrq_handle_c", ["dis -l sysrq_handle_crash",
                                                      "dis -l sysrq_handle_crashdump"]) == (
        "dis -l sysrq_handle_crash", ["sysrq_handle_crash", "sysrq_handle_crashdump"])


def test_tab_completes_symbols_structs_and_modules(testmod_session: Session,
                                                   tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(testmod_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon")
        box = app.query_one(CommandInput)
        for typed, completed in (("dis -l test_module_in", "dis -l test_module_init "),
                                 ("struct task_str", "struct task_struct "),
                                 ("mod test_m", "mod test_module "),
                                 ("rd linux_bann", "rd linux_banner "),
                                 ("he", "help ")):
            box.value = typed
            box.cursor_position = len(typed)
            await press(app, pilot, "tab")
            assert box.value == completed, typed
        # several candidates: their common prefix, the rest listed
        box.value = "dis -l sysrq_handle_cr"
        box.cursor_position = len(box.value)
        await press(app, pilot, "tab")
        assert box.value == "dis -l sysrq_handle_crash "
        box.value = "dis -l sysrq_ha"
        box.cursor_position = len(box.value)
        await press(app, pilot, "tab")
        assert box.value.startswith("dis -l sysrq_handle") and not box.value.endswith(" ")
        shown = [n.message for n in app._notifications]
        assert any("sysrq_handle_crash  " in m and "sysrq_handle_SAK" in m for m in shown)
        # completed text is kept before what follows the cursor
        box.value = "dis -l test_module_ini -r"
        box.cursor_position = len("dis -l test_module_ini")
        await press(app, pilot, "tab")
        assert box.value == "dis -l test_module_init  -r"
        await press(app, pilot, "enter")  # and it runs
        out = app.query_one("#command-output")
        assert any("test_module_init" in out.line_text(i)  # type: ignore[attr-defined]
                   for i in range(out.line_count))  # type: ignore[attr-defined]

    drive(app, steps)


def test_colon_in_the_command_line_is_not_typed(sysrq_session: Session, tmp_path: Path) -> None:
    """`:` pressed again once the command line has focus (`::sys`) types nothing at the start of
    the line; a leading `:` that got in anyway (pasted) is dropped when the line runs."""
    app = CrashtuiApp(SessionFacade(sysrq_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon")
        box = app.query_one(CommandInput)
        assert app.focused is box
        await press(app, pilot, "colon", "colon")
        assert box.value == ""
        await pilot.press(*"sym")
        await press(app, pilot, "space", "colon")  # not at the start: typed
        assert box.value == "sym :"
        box.value = ""
        await pilot.press(*"sys")
        await press(app, pilot, "enter")
        box.value = ":  struct list_head"  # pasted
        await press(app, pilot, "enter")
        out = app.query_one("#command-output")
        text = [out.line_text(i) for i in range(out.line_count)]  # type: ignore[attr-defined]
        assert "crash> sys" in text and "crash> struct list_head" in text
        assert "     RELEASE: 6.1.0-56-cloud-amd64" in text
        assert "struct list_head {" in text
        assert not any("command not found" in t for t in text), text
        assert box.history == ["sys", "struct list_head"]

    drive(app, steps)


# -- text from the dump is text -----------------------------------------------------------------

def test_hostile_strings_are_shown_literally(fresh_sysrq: Session, tmp_path: Path) -> None:
    s = fresh_sysrq
    tasks = s.tasks.tasks
    i = next(k for k, t in enumerate(tasks) if t.pid == 1)
    tasks[i] = dataclasses.replace(tasks[i], comm=HOSTILE)
    recs = s.log.records
    recs[-1] = dataclasses.replace(recs[-1], text=f"log {HOSTILE} end")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        main = screen_text(app)
        assert HOSTILE_SHOWN in main  # CPU list, task list, frames title
        assert "\x1b" not in main and "\x07" not in main
        await press(app, pilot, "4", "G")
        assert f"log {HOSTILE_SHOWN} end" in screen_text(app)
        await press(app, pilot, "5")
        assert HOSTILE_SHOWN in screen_text(app)
        await press(app, pilot, "ctrl+p")
        await pilot.press(*"CPU 3")
        await asyncio.sleep(0.5)
        await app.settle()
        assert HOSTILE_SHOWN in screen_text(app)

    drive(app, steps)


def test_loading_a_ko_from_the_modules_tab(testmod_session: Session, testmod_ko: Path,
                                           tmp_path: Path) -> None:
    """Without --modules the fault has no file:line; `l` on test_module loads its .ko."""
    app = CrashtuiApp(SessionFacade(testmod_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        src = app.query_one(SourceView)
        assert src.kind != "source"
        assert "test-module.c:9" not in screen_text(app).splitlines()[1]
        await press(app, pilot, "6")
        table = app.query_one(ModulesTable)
        assert app.focused is table
        row = next(i for i, r in enumerate(table.rows_data) if r.name == "test_module")
        table.move_cursor(row=row)
        assert table.rows_data[row].taints  # out-of-tree, unsigned: flagged
        assert "! OE" in screen_text(app)
        await press(app, pilot, "l")
        box = app.query_one("#ko-path")
        assert app.focused is box
        await pilot.press(*str(testmod_ko))
        await press(app, pilot, "enter")
        await app.settle()
        await pilot.pause()
        assert src.kind == "source" and src.border_title.endswith("test-module.c:9")
        assert src.marked_text().strip().endswith('printk("%d\\n", *p);')
        assert table.object_file(next(r for r in table.rows_data if r.name == "test_module")
                                 ).endswith("test-module.ko")
        # the triage's culprit now has its line
        assert "test-module.c:9" in screen_text(app).splitlines()[1]

    drive(app, steps)


def test_modules_tab_marks_a_damaged_module_list(testmod_session: Session, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged entry ends the module walk: the Modules tab lists what was read and says the
    list stopped there, instead of looking complete (or empty)."""
    from crashtui.kernel.modules import read_modules

    k = testmod_session.kernel
    virtio = next(m.address for m in read_modules(k).modules if m.name == "virtio")
    name_at = virtio + k.offsetof("module", "name")
    real_read = k.read

    def read(addr: int, size: int) -> bytes:  # virtio's name: no NUL in MODULE_NAME_LEN
        data = real_read(addr, size)
        if addr <= name_at < addr + size:
            i = name_at - addr
            data = data[:i] + b"A" * 56 + data[i + 56:]
        return data

    monkeypatch.setattr(k, "read", read)
    app = CrashtuiApp(SessionFacade(testmod_session, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "6")
        table = app.query_one(ModulesTable)
        names = [r.name for r in table.rows_data]
        assert "test_module" in names and "virtio" not in names
        assert table.row_count == len(names) + 1
        marker = str(table.get_row_at(len(names))[0])
        assert marker.startswith(f"⚠ module list: entry at {virtio:#x} looks damaged")
        assert marker.endswith("the list may be incomplete")
        assert "looks damaged" in screen_text(app)
        table.move_cursor(row=len(names))
        assert table.current is None  # the marker is no module to load

    drive(app, steps)
