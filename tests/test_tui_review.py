"""A new user's review of the Variables and Registers tabs at 80x24 (issue 17): nothing cut,
the tabs follow the frame moved to with j/k; driven with Pilot on the 6.1-test-module dump."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_tui import drive, press, screen_text  # noqa: E402

from crashtui.tui.app import CrashtuiApp  # noqa: E402
from crashtui.tui.facade import SessionFacade  # noqa: E402
from crashtui.tui.frames import FramesView  # noqa: E402
from crashtui.tui.registers import RegistersView  # noqa: E402
from crashtui.tui.variables import VariablesView  # noqa: E402
from tests.test_frame_variables import _session  # noqa: E402

pytestmark = pytest.mark.needs_vmlinux
SMALL = (80, 24)


def make(sessions: Any, tmp_path: Path) -> CrashtuiApp:
    s = _session(sessions, "6.1-test-module")
    return CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))


def frame_name(app: CrashtuiApp) -> str:
    ref = app.query_one(FramesView).current
    assert ref is not None and ref.frame is not None
    return f"#{ref.frame.index} {ref.frame.function}"


def test_variables_reason_under_the_head_at_80x24(sessions: Any, tmp_path: Path) -> None:
    """#6 asm_exc_page_fault has no DWARF function: the reason is a line of its own, whole
    (it was cut after the head at 80 columns), and the head names the frame moved to."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", "k", "9")
        assert frame_name(app) == "#6 asm_exc_page_fault"
        text = screen_text(app)
        assert "#6 asm_exc_page_fault at " in text
        assert "no DWARF function covers this address" in text, text
        view = app.query_one(VariablesView)
        assert [str(n.label) for n in view.root.children] == [
            "no DWARF function covers this address"]

    drive(app, steps, size=SMALL)


def test_variables_unknown_register_fits_80_columns(sessions: Any, tmp_path: Path) -> None:
    """#4 page_fault_oops: an argument in a register the unwinder did not recover reads
    `<unknown: r13 not recovered>` and its type stays in view at 80 columns."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", "k", "k", "k", "9")
        assert frame_name(app) == "#4 page_fault_oops"
        text = screen_text(app)
        assert "#4 page_fault_oops at " in text
        line = next(t for t in text.splitlines() if "error_code = " in t)
        assert "error_code = <unknown: r13 not recovered>  unsigned long" in line, line
        # j/k in the frames: the tab follows
        await press(app, pilot, "f", "j", "9")
        assert frame_name(app) == "#5 exc_page_fault"
        assert "#5 exc_page_fault at " in screen_text(app)

    drive(app, steps, size=SMALL)


def test_registers_lines_fit_80_columns(sessions: Any, tmp_path: Path) -> None:
    """The Registers tab at 80 columns: the unknown registers' list wraps (R15 was cut), the
    exception row's title fits on one line, the cursor stays on crash's block."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "2")
        regs = app.query_one(RegistersView)
        width = regs.scrollable_content_region.width
        text = [regs.line_text(i).rstrip() for i in range(regs.line_count)]
        assert text[1].startswith("exception RIP test_module_init+5 · frame at ")
        assert all(len(t) <= width for t in text), (width, text)
        assert regs.cursor == 2 and text[2].split()[0] == "RIP:"
        await press(app, pilot, "f", "k", "k", "k", "2")
        assert frame_name(app) == "#4 page_fault_oops"
        text = [regs.line_text(i).rstrip() for i in range(regs.line_count)]
        assert all(len(t) <= width for t in text), (width, text)
        start = next(i for i, t in enumerate(text) if t.startswith("not known in this frame:"))
        names = " ".join(text[start:]).split()[5:]
        assert names[0] == "RFLAGS" and "R15" in names and "RBX" in names
        assert len(text) > start + 1  # wrapped
        assert "R15" in screen_text(app)

    drive(app, steps, size=SMALL)


def test_variables_y_copies_the_value_and_Y_the_tree(sessions: Any, tmp_path: Path) -> None:
    """y in the Variables tab (it did nothing): a pointer copies its address, an expanded
    struct member its value; Y copies the tree as shown (6.1-deadlock's take_both)."""
    s = _session(sessions, "6.1-deadlock")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "9")
        view = app.query_one(VariablesView)
        assert app.focused is view
        first = next(n for n in view.root.children if str(n.label).startswith("arg first ="))
        view.move_cursor(first)
        await press(app, pilot, "y")
        assert app.clipboard == "0xffffffffc028d000"  # lock_b, without `<lock_b>`
        await press(app, pilot, "enter")
        owner = next(n for n in first.children if str(n.label).startswith("owner = "))
        view.move_cursor(owner)
        await press(app, pilot, "enter", "j", "y")
        counter = owner.children[0]
        assert str(counter.label).startswith("counter = ")
        value = str(counter.label).split(" = ")[1].split("  ")[0]
        assert app.clipboard == value
        view.move_cursor(view.root)
        await press(app, pilot, "y")
        assert app.clipboard == value  # unchanged: the head has no value
        await press(app, pilot, "Y")
        lines = app.clipboard.splitlines()
        assert lines[0].startswith("#4 take_both.cold at ")
        assert "  arg first = 0xffffffffc028d000 <lock_b>  struct mutex *" in lines
        assert any(t.startswith("      counter = ") for t in lines)
        assert lines[-1] == '  arg who = 0xffffffffc028c091 "deadlock_ba"  const char *'

    drive(app, steps, size=SMALL)


def test_variables_char_shows_the_character(sessions: Any, tmp_path: Path) -> None:
    """A char-typed variable reads as gdb and `locals` print it: 6.12-sysrq's
    sysrq_handle_crash(key) is `99 'c'` (SysRq-c), it was a bare 99."""
    s = _session(sessions, "6.12-sysrq")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "9")
        assert frame_name(app) == "#4 sysrq_handle_crash"
        assert "arg key = 99 'c'  u8" in screen_text(app)

    drive(app, steps, size=SMALL)


def test_variables_user_mode_row_is_not_an_exception_rip(sessions: Any,
                                                        tmp_path: Path) -> None:
    """The user-mode registers' row (6.12-sysrq's write(2) from init): the Variables head
    says user space, not `exception RIP ??`."""
    s = _session(sessions, "6.12-sysrq")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", *["j"] * 8, "9")
        ref = app.query_one(FramesView).current
        assert ref is not None and ref.exception is not None and ref.exception.user_mode
        text = screen_text(app)
        assert "#11 user space at 47b7a0" in text and "exception RIP ??" not in text
        assert "user-mode registers: no kernel variables" in text
        await press(app, pilot, "f", "k", "9")
        assert "#11 entry_SYSCALL_64_after_hwframe at " in screen_text(app)

    drive(app, steps, size=SMALL)


def test_member_completions_list_member_names(sessions: Any, tmp_path: Path) -> None:
    """Tab after `p init_task.mm->mmap_` (or a cast) lists the members' names: at 80 columns
    `init_task.mm->mmap_base` or `*)0xffff...)->comm` pushed them out of the list."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon", *"p init_task.mm->mmap_", "tab")
        listed = [n.message.split("  ") for n in app._notifications][-1]
        assert "mmap_base" in listed and "mmap_legacy_base" in listed, listed
        assert not any("->" in c for c in listed)
        task = app.query_one(FramesView).current.backtrace.task  # type: ignore[union-attr]
        await press(app, pilot, "ctrl+u", *f"p ((struct task_struct *){task:#x})->co", "tab")
        listed = [n.message.split("  ") for n in app._notifications][-1]
        assert "comm" in listed and not any(")" in c for c in listed), listed

    drive(app, steps, size=SMALL)


def test_variables_slash_finds_a_member(sessions: Any, tmp_path: Path) -> None:
    """`/` in the Variables tab (it did nothing): 6.1-deadlock's __schedule `prev` expanded
    (244 members of task_struct), `/comm` puts the cursor on `comm = "deadlock_ba"`."""
    s = _session(sessions, "6.1-deadlock")
    app = CrashtuiApp(SessionFacade(s, cache_root=tmp_path, auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", *["k"] * 4, "9")
        assert frame_name(app) == "#0 __schedule"
        view = app.query_one(VariablesView)
        prev = next(n for n in view.root.children if str(n.label).startswith("prev = "))
        view.move_cursor(prev)
        await press(app, pilot, "enter", "slash", *"comm", "enter")
        node = view.cursor_node
        assert node is not None and node.parent is prev
        assert str(node.label) == 'comm = "deadlock_ba"  char [16]'
        assert 'comm = "deadlock_ba"' in screen_text(app)  # scrolled into view
        await press(app, pilot, "n", "N")
        assert view.cursor_node is node  # n then N: back on it
        await press(app, pilot, "slash", *"no such member", "enter")
        assert "not found: no such member" in [n.message for n in app._notifications]

    drive(app, steps, size=SMALL)


def test_enter_takes_the_completions_off_the_output(sessions: Any, tmp_path: Path) -> None:
    """After Tab lists completions, Enter runs the command and the list goes: at 80x24 it
    covered the right half of the command's output for seconds."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon", *"p init_task.se", "tab")
        assert any(n.title.endswith("completions") for n in app._notifications)
        await press(app, pilot, "enter")
        assert not app._notifications
        assert "crash> p init_task.se" in screen_text(app)

    drive(app, steps, size=SMALL)


def test_locals_follows_the_selected_frame(sessions: Any, tmp_path: Path) -> None:
    """`:locals` with no frame number shows the frame selected with j/k (gdb's habit), the
    exception RIP when that row is selected, and the culprit again for another task."""
    app = make(sessions, tmp_path)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "f", "j", "j", "j")
        assert frame_name(app) == "#9 __do_sys_finit_module"
        await press(app, pilot, "colon", *"locals", "enter")
        out = app.facade.run("locals")
        assert out[1] == " #9 __do_sys_finit_module at ffffffffb733c67c", out[:3]
        assert "(arg) int fd = 3" in out[2]
        app.facade.set_context(None)  # another task chosen: the culprit again
        assert app.facade.run("locals")[1].startswith(" #6 [exception RIP: test_module_init]")

    drive(app, steps, size=SMALL)
