"""Tab completion of members: `p EXPR.` / `p EXPR->` and `struct NAME.` complete member
names from BTF (EXPR typed without reading the dump), on a real sample; and in the app's `:`
line at 80x24."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crashtui.analysis.session import Session
from crashtui.commands.complete import complete
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.command import CommandInput
from crashtui.tui.facade import SessionFacade

OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"


def task(name: str) -> str:
    return (OUTPUTS / name / "pexpr-TASK").read_text().strip()


def test_members_after_dot_and_arrow(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    assert complete(s, "p init_task.se.lo") == ["p init_task.se.load"]  # no space: `.` may follow
    assert complete(s, "p init_task.mm->mmap_b") == ["p init_task.mm->mmap_base"]  # anonymous
    assert complete(s, "p *init_task.mm->pg") == ["p *init_task.mm->pgd",
                                                  "p *init_task.mm->pgtables_bytes"]
    assert complete(s, "p init_task.tasks.next->n") == ["p init_task.tasks.next->next"]
    assert complete(s, "p -x init_task.comm") == ["p -x init_task.comm"]
    t = task("6.1-sysrq")
    assert complete(s, f"p ((struct task_struct *)0x{t})->real_pa") == [
        f"p ((struct task_struct *)0x{t})->real_parent"]
    assert complete(s, "p runqueues:1.nr_runn") == ["p runqueues:1.nr_running"]
    everything = complete(s, "p init_task.")
    assert len(everything) == 50 and everything == sorted(everything)
    assert all(line.startswith("p init_task.") for line in everything)
    # not a struct, or no such symbol: nothing (never an error)
    assert complete(s, "p init_task.pid.") == [] and complete(s, "p no_such_sym.x") == []
    assert complete(s, "p init_task.(") == []


def test_types_in_casts_and_symbols_after_operators(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    assert complete(s, "p (struct task_stru") == ["p (struct task_struct "]
    assert complete(s, "p sizeof(struct task_stru") == ["p sizeof(struct task_struct "]
    assert complete(s, "p ((union sigv") == ["p ((union sigval "]
    assert complete(s, "p *init_ta") == ["p *init_task "]
    assert complete(s, "p (init_tas") == ["p (init_task "]


def test_struct_and_union_members(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    assert complete(s, "struct task_struct.se.on") == ["struct task_struct.se.on_rq"]
    assert complete(s, "struct task_struct.pid,co") == ["struct task_struct.pid,comm",
                                                        "struct task_struct.pid,compat_robust_list"]
    assert complete(s, "union sigval.sival_p") == ["union sigval.sival_ptr"]
    assert complete(s, "struct -o list_head.n") == ["struct -o list_head.next"]
    assert complete(s, "struct no_such_struct.x") == []
    assert "whatis task_struct" in complete(s, "whatis task_stru")


def test_members_on_5_10_and_6_12(sessions: dict[str, Session]) -> None:
    """Layouts differ (5.10's task_struct has `state`, 6.1+ `__state`): read from BTF."""
    old = complete(sessions["5.10-sysrq"], "p init_task.stat")
    assert "p init_task.state" in old and "p init_task.__state" not in old
    assert complete(sessions["6.12-sysrq"], "p init_task.__st") == ["p init_task.__state"]


def test_tab_in_the_command_line_at_80x24(sessions: dict[str, Session], tmp_path: Path) -> None:
    app = CrashtuiApp(SessionFacade(sessions["6.1-sysrq"], cache_root=tmp_path,
                                    auto_source=False))

    async def steps(pilot: Any) -> None:
        async def press(*keys: str) -> None:
            await pilot.press(*keys)
            await app.settle()
            await pilot.pause()

        await press("colon")
        box = app.query_one(CommandInput)
        for typed, completed in (("p init_task.mm->mmap_b", "p init_task.mm->mmap_base"),
                                 ("struct task_struct.se.on", "struct task_struct.se.on_rq"),
                                 ("p init_task.real_pa", "p init_task.real_parent")):
            box.value = typed
            box.cursor_position = len(typed)
            await press("tab")
            assert box.value == completed, typed
        box.value = "p *init_task.mm->pg"
        box.cursor_position = len(box.value)
        await press("tab")
        assert box.value == "p *init_task.mm->pg"  # two candidates: both listed
        assert any("pgtables_bytes" in n.message for n in app._notifications)
        box.value = "p init_task.real_parent->co"
        box.cursor_position = len(box.value)
        await press("tab")
        assert box.value == "p init_task.real_parent->com"  # comm, compat_robust_list...
        box.value = "p init_task.real_parent->comm"
        box.cursor_position = len(box.value)
        await press("enter")  # and it runs: PID 1's parent is swapper
        out = app.query_one("#command-output")
        text = [out.line_text(i) for i in range(out.line_count)]  # type: ignore[attr-defined]
        assert any('"swapper/0' in line for line in text), text

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await app.settle()
            await steps(pilot)

    asyncio.run(main())
