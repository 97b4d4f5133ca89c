"""Frame.registers (the registers the unwinder knows in each frame) against drgn 0.3.0's
`StackFrame.registers()` on real dumps, recorded by tests/record_drgn_frame_regs.py.

Frames are matched by pc (drgn also lists inline frames; crashtui's frame 0 of a panic CPU is
crash's, a return address drgn's trace has no frame for). Every register crashtui claims to know
must equal drgn's; the interrupted context of an exception frame (crashtui's ExceptionFrame,
drgn's interrupted frame) is compared the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crashtui.analysis.backtraces import backtrace_of_task
from crashtui.kernel.unwind import FRAME_REGISTERS

OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
DUMPS = ("6.1-test-module", "6.1-bug-kthread", "6.12-test-module", "7.3-test-module",
         "6.1-sysrq")


def _drgn(name: str) -> list[dict[str, Any]]:
    threads: list[dict[str, Any]] = json.loads(
        (OUTPUTS / name / "drgn-frame-regs.json").read_text())["threads"]
    return [t for t in threads if "frames" in t]


def _compare(session: Any, thread: dict[str, Any]) -> tuple[int, int, set[str]]:
    """Compare one thread; (frames matched, exception frames matched, registers seen)."""
    task = next(t for t in session.tasks.tasks if t.pid == thread["tid"])
    bt = backtrace_of_task(session, task.address)
    by_pc: dict[int, dict[str, Any]] = {}
    interrupted: dict[int, dict[str, Any]] = {}
    for f in thread["frames"]:
        if "registers" not in f:
            continue
        if not f["inline"]:
            by_pc[f["pc"]] = f
        if f["interrupted"]:
            interrupted[f["pc"]] = f
    matched = exc_matched = 0
    seen: set[str] = set()
    for frame in bt.frames:
        assert {"rip", "rsp"} <= set(frame.registers), frame
        assert frame.registers["rip"] == frame.pc
        if frame.return_address:
            assert frame.registers["rsp"] == frame.sp + 8
        theirs = by_pc.get(frame.pc)
        if theirs is not None:
            matched += 1
            seen |= set(frame.registers)
            for reg, value in frame.registers.items():
                assert theirs["registers"].get(reg) == value, (
                    f"{thread['tid']} #{frame.index} {frame.symbol} {reg}: crashtui "
                    f"{value:#x}, drgn {theirs['registers'].get(reg)}")
    for ef in [bt.start] + [f.exception for f in bt.frames]:
        if ef is None or ef.user_mode or ef.partial or ef.rip not in interrupted:
            continue
        exc_matched += 1
        theirs = interrupted[ef.rip]
        for reg in FRAME_REGISTERS:
            if reg in ef.registers:
                assert theirs["registers"].get(reg) == ef.registers[reg], (thread["tid"], reg)
    return matched, exc_matched, seen


@pytest.mark.parametrize("name", DUMPS)
def test_frame_registers_equal_drgn(sessions: Any, name: str) -> None:
    session = sessions[name]
    matched = exc_matched = 0
    seen: set[str] = set()
    for thread in _drgn(name):
        m, e, s = _compare(session, thread)
        matched, exc_matched, seen = matched + m, exc_matched + e, seen | s
    assert matched >= 8
    # rbp where ORC recovers it; callee-saved registers of a sleeping task's __schedule frame
    # (struct inactive_task_frame)
    assert {"rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"} <= seen


def test_crashed_thread_exception_registers(sessions: Any) -> None:
    """The page fault's pt_regs in 6.1-test-module are drgn's interrupted frame 0 (RBX holds
    test_module_init's address, the value issue 17 names)."""
    session = sessions["6.1-test-module"]
    crashed = next(t for t in _drgn("6.1-test-module") if t["why"] == "crashed")
    _, exc_matched, _ = _compare(session, crashed)
    assert exc_matched == 1
    assert crashed["frames"][0]["registers"]["rbx"] == 0xFFFFFFFFC03C4000


def test_crashed_thread_matches_after_exception(sessions: Any) -> None:
    """Frames of the panicking thread after an exception frame (unwound from its pt_regs)
    agree with drgn's, rbp included."""
    session = sessions["6.12-test-module"]
    crashed = next(t for t in _drgn("6.12-test-module") if t["why"] == "crashed")
    matched, _, seen = _compare(session, crashed)
    assert matched >= 4 and "rbp" in seen


def test_cfi_completed_registers_equal_drgn(sessions: Any) -> None:
    """What the Registers tab and JSON show for a caller frame (Frame.registers completed with
    .debug_frame's callee-saved registers) equals drgn too, rbx and r12-r15 included."""
    from crashtui.analysis.regnotes import known_registers

    checked = 0
    for name in DUMPS:
        session = sessions[name]
        for thread in _drgn(name):
            task = next(t for t in session.tasks.tasks if t.pid == thread["tid"])
            bt = backtrace_of_task(session, task.address)
            by_pc = {f["pc"]: f for f in thread["frames"] if not f["inline"]
                     and "registers" in f}
            for frame in bt.frames:
                theirs = by_pc.get(frame.pc)
                if theirs is None:
                    continue
                regs, _ = known_registers(session, bt, frame)
                for reg, value in regs.items():
                    assert theirs["registers"].get(reg) == value, (name, frame.symbol, reg)
                    checked += 1
    assert checked > 400


def test_notes_on_a_real_dump(sessions: Any) -> None:
    """Each kind of note on 6.1-test-module, and no exception on hostile values."""
    from crashtui.analysis.regnotes import RegisterAnnotator

    session = sessions["6.1-test-module"]
    notes = RegisterAnnotator(session)
    assert notes.note(0xFFFFFFFFC03C4000) == "test_module_init [test_module]"
    assert notes.note(0xFFFFFFFFC03C4005) == "test_module_init+0x5 [test_module]"
    panic = session.kernel.symbol("panic")
    assert notes.note(panic + 0x13) == "panic+0x13"
    task = next(t for t in session.tasks.tasks if t.pid == 526)
    assert notes.note(task.address) == f"task 526 ({task.comm})"
    assert notes.note(task.address + 0x10) == f"in task 526 ({task.comm}) +0x10"
    assert notes.note(task.stack + 0x100) == "stack of PID 526"
    bt = session.panic_backtrace
    exc = next(f.exception for f in bt.frames if f.exception is not None)
    assert notes.note(exc.registers["rbp"]) == "[kmalloc-16]"
    irq = next(s for s in session.backtrace_builder.stacks.cpu_stacks if s.kind == "irq")
    assert notes.note(irq.begin + 8) == f"IRQ stack of CPU {irq.cpu}"
    assert notes.note(0) == "NULL"
    assert notes.note(0x18) == "near NULL"
    assert notes.note(-12 & (1 << 64) - 1) == "-ENOMEM"
    assert notes.note(-512 & (1 << 64) - 1) == "-ERESTARTSYS"
    assert notes.note(0x7FFDA8D26848) == "user address"
    assert notes.note(0xDEAD000000000122) == "LIST_POISON2"
    assert notes.note(0x0000900000000000) == "non-canonical"
    assert notes.note(0x246, "rflags") == "IF ZF PF"
    assert notes.note(0x10, "cs") == ""
    for hostile in (1 << 64, -1, 0xFFFF888000000000, 0xFFFFEA0000000000, 0xFFFFFFFFFF600000,
                    (1 << 64) - 4096, 0xFFFFC90000000000):
        notes.note(hostile)  # no exception, whatever it says


def test_json_culprit_registers(sessions: Any) -> None:
    """--json's triage.culprit.registers: the page fault's pt_regs, annotated."""
    from crashtui.report.jsondoc import build_document

    doc = build_document(sessions["6.1-test-module"])
    regs = doc["triage"]["culprit"]["registers"]
    assert regs["title"] == "exception RIP test_module_init+5"
    values = {v["name"]: v for v in regs["values"]}
    assert values["rbx"] == {"name": "rbx", "value": "0xffffffffc03c4000",
                             "note": "test_module_init [test_module]"}
    assert values["rax"]["note"] == "NULL" and regs["unknown"] == []


def test_notes_on_arm64(sessions: Any) -> None:
    """No x86-64 assumption on the arm64 sample: its registers, its address layout, no RFLAGS
    or x86 register names listed as unknown."""
    from crashtui.analysis.regnotes import RegisterAnnotator, frame_registers

    session = sessions["6.12-arm64-sysrq"]
    notes = RegisterAnnotator(session)
    assert not notes.x86 and notes.pc_name == "pc"
    bt = session.panic_backtrace
    first = frame_registers(session, notes, bt, bt.frames[0])
    by_name = {n.name: n for n in first.known}
    assert by_name["pc"].note == bt.frames[0].symbol and first.unknown == ()
    assert by_name["x28"].note == "task 1 (init)"
    caller = frame_registers(session, notes, bt, bt.frames[1])
    assert caller.origin == "unwound by frame pointer" and caller.unknown == ()
    assert [n.name for n in caller.known][0] == "pc"
    assert notes.note(0x466A2E04) == "user address"


# -- the rules on synthetic stacks (tests/test_unwind.py's fake kernel) ---------------------

def test_rbp_known_only_where_orc_or_the_saved_context_gives_it() -> None:
    """From a return address rbp is unknown; a PREV_SP entry reads it, which makes it known
    for the callers (unchanged while ORC says it is not saved); a full register set knows
    everything; a pt_regs frame's interrupted code knows the whole pt_regs."""
    from test_unwind import (
        END,
        PT_REGS_SIZE,
        TASK_STACK,
        FakeKernel,
        call,
        fn,
        regs_entry,
        unwinder,
    )

    from crashtui.debuginfo.orc import ORC_REG_PREV_SP

    k = FakeKernel()
    sp = TASK_STACK.end - 0x400
    # frame #0 (f0): 0x18 of frame, rbp pushed at CFA-16; f1: 0x10; f2: entry code, pt_regs
    k.put(sp, fn(0))                       # the slot frame #0 starts from
    k.put(sp + 0x10, 0x1234, fn(1))        # f0's saved rbp, its return address into f1
    k.put(sp + 0x28, fn(2, 0x20))          # f1's return address into the entry code f2
    regs_at = sp + 0x30
    interrupted = regs_at + PT_REGS_SIZE + 0x40
    k.put_regs(regs_at, rip=fn(3), rsp=interrupted, cs=0x10, ss=0x18, rbp=0x77, rbx=0x99,
               rflags=0x246)
    k.put(interrupted, fn(4))
    u = unwinder(k, {0: call(0x18, bp_reg=ORC_REG_PREV_SP, bp_offset=-16), 1: call(0x10),
                     2: regs_entry(), 3: call(8), 4: END})
    frames = u.from_return_address(sp, TASK_STACK).frames
    assert [f.pc for f in frames] == [fn(0), fn(1), fn(2, 0x20), fn(3), fn(4)]
    assert frames[0].registers == {"rip": fn(0), "rsp": sp + 8}
    assert frames[1].registers == {"rip": fn(1), "rsp": sp + 0x20, "rbp": 0x1234}
    assert frames[2].registers == {"rip": fn(2, 0x20), "rsp": sp + 0x30, "rbp": 0x1234}
    assert frames[3].registers["rbx"] == 0x99 and frames[3].registers["rbp"] == 0x77
    assert "orig_rax" not in frames[3].registers and len(frames[3].registers) == 20
    assert frames[4].registers == {"rip": fn(4), "rsp": interrupted + 8, "rbp": 0x77}


def test_a_frame_pointer_guess_knows_no_rbp() -> None:
    """Where ORC has nothing and the frame-pointer chain is followed, rbp is a guess."""
    from test_unwind import END, TASK_STACK, FakeKernel, fn, unwinder

    k = FakeKernel()
    sp = TASK_STACK.end - 0x200
    bp = sp + 0x20
    k.put(bp, 0x4242, fn(1))  # saved rbp, return address
    u = unwinder(k, {1: END})
    frames = u.from_registers({"rip": fn(0), "rsp": sp, "rbp": bp, "cs": 0x10}, TASK_STACK).frames
    assert [f.pc for f in frames] == [fn(0), fn(1)]
    assert not frames[1].reliable and frames[1].registers == {"rip": fn(1), "rsp": bp + 0x10}
