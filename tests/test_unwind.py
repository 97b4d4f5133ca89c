"""The ORC unwinder, registers and stacks: synthetic stacks for the rules, real dumps for the rest.

The synthetic tests run the Unwinder over a fake kernel (a dict of 8-byte words), a fake ORC
lookup and fake stacks, to pin the unwind_orc.c rules down: CALL/REGS/REGS_PARTIAL steps,
user-mode pt_regs ending a trace, and every way a trace must stop cleanly (unreadable word,
stack pointer not moving up, too many frames, no known stack) instead of raising or looping.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from crashtui.debuginfo.orc import (
    ORC_REG_BP,
    ORC_REG_PREV_SP,
    ORC_REG_SP,
    ORC_REG_SP_INDIRECT,
    ORC_REG_UNDEFINED,
    OrcEntry,
    OrcType,
)
from crashtui.dumpfile import ElfNote
from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.regs import (
    PT_REGS_SIZE,
    USER_REGS,
    parse_prstatus,
    prstatus_registers,
    user_mode,
)
from crashtui.kernel.stacks import EXCEPTION, IRQ, TASK, Stack
from crashtui.kernel.unwind import MAX_FRAMES, Unwinder, prologue_depth

TEXT = 0xFFFFFFFF81000000
TASK_STACK = Stack(TASK, 0xFFFFC90000000000, 0xFFFFC90000004000)
IRQ_STACK = Stack(IRQ, 0xFFFFC90000100000, 0xFFFFC90000104000, cpu=0)
NMI_STACK = Stack(EXCEPTION, 0xFFFFFE0000010000, 0xFFFFFE0000012000, cpu=0, name="NMI")
PT_REGS_ORDER = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
                 "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss")


class FakeKernel:
    """Just enough of Kernel for the unwinder: word memory, no BTF, no symbols."""

    kaslr_offset = 0
    vmlinux = None

    def __init__(self) -> None:
        self.mem: dict[int, int] = {}
        self.bad: set[int] = set()

    def put(self, addr: int, *words: int) -> None:
        for i, w in enumerate(words):
            self.mem[addr + 8 * i] = w & (1 << 64) - 1

    def put_regs(self, addr: int, **regs: int) -> None:
        self.put(addr, *(regs.get(name, 0) for name in PT_REGS_ORDER))

    def read(self, addr: int, size: int) -> bytes:
        out = bytearray()
        for a in range(addr, addr + size, 8):
            if a in self.bad or a not in self.mem:
                raise KernelReadError(f"cannot read {a:#x}", a)
            out += struct.pack("<Q", self.mem[a])
        return bytes(out[:size])

    def read_u64(self, addr: int) -> int:
        return int(struct.unpack("<Q", self.read(addr, 8))[0])

    def offsetof(self, struct_name: str, member: str) -> int:
        raise CrashtuiError("no BTF")

    def sizeof(self, type_name: str) -> int:
        raise CrashtuiError("no BTF")

    def symbol_or_none(self, name: str) -> int | None:
        return None

    def symbolize(self, addr: int) -> None:
        return None


class FakeStacks:
    def __init__(self, *stacks: Stack) -> None:
        self.stacks = stacks

    def find(self, addr: int, task_stack: Stack | None = None) -> Stack | None:
        return next((s for s in self.stacks if s.contains(addr)), None)


class FakeCode:
    """ORC entries by function: each function is 0x100 bytes at TEXT + 0x100 * n."""

    def __init__(self, entries: dict[int, OrcEntry]) -> None:
        self.entries = entries

    def lookup(self, addr: int) -> OrcEntry | None:
        return self.entries.get((addr - TEXT) // 0x100)

    def is_text(self, addr: int) -> bool:
        return TEXT <= addr < TEXT + 0x100000

    def in_kernel_text(self, addr: int) -> bool:
        return self.is_text(addr)

    def code(self, addr: int, size: int) -> bytes:
        raise KernelReadError("no code")


def fn(n: int, off: int = 0x10) -> int:
    """An address inside fake function n."""
    return TEXT + 0x100 * n + off


def call(sp_offset: int, sp_reg: int = ORC_REG_SP, bp_reg: int = ORC_REG_UNDEFINED,
         bp_offset: int = 0) -> OrcEntry:
    return OrcEntry(0, sp_reg, bp_reg, sp_offset, bp_offset, OrcType.CALL, False)


def regs_entry(sp_offset: int = 0, partial: bool = False) -> OrcEntry:
    typ = OrcType.REGS_PARTIAL if partial else OrcType.REGS
    return OrcEntry(0, ORC_REG_SP, ORC_REG_UNDEFINED, sp_offset, 0, typ, True)


END = OrcEntry(0, ORC_REG_UNDEFINED, ORC_REG_UNDEFINED, 0, 0, OrcType.END_OF_STACK, False,
               True)


def unwinder(k: FakeKernel, entries: dict[int, OrcEntry], *stacks: Stack) -> Unwinder:
    return Unwinder(k, FakeStacks(*(stacks or (TASK_STACK,))), FakeCode(entries))  # type: ignore[arg-type]


# -- registers ----------------------------------------------------------------------------

def prstatus(pid: int, **regs: int) -> bytes:
    desc = bytearray(336)
    struct.pack_into("<i", desc, 32, pid)
    struct.pack_into(f"<{len(USER_REGS)}Q", desc, 112, *(regs.get(n, 0) for n in USER_REGS))
    return bytes(desc)


def test_prstatus_layout() -> None:
    pid, regs = parse_prstatus(prstatus(127, rip=0xFFFFFFFF81000010, rsp=0x1234, cs=0x10,
                                        r15=15, gs=0x2B))
    assert pid == 127
    assert (regs["rip"], regs["rsp"], regs["cs"], regs["r15"], regs["gs"]) == (
        0xFFFFFFFF81000010, 0x1234, 0x10, 15, 0x2B)
    assert not user_mode(regs)
    with pytest.raises(CrashtuiError):
        parse_prstatus(b"\0" * 100)


def test_prstatus_notes_in_cpu_order() -> None:
    notes = [ElfNote("CORE", 1, prstatus(0, cs=0x10)), ElfNote("VMCOREINFO", 0, b"x"),
             ElfNote("CORE", 1, prstatus(125, cs=0x33)), ElfNote("CORE", 1, b"short"),
             ElfNote("CORE", 1, prstatus(1, cs=0x10))]
    cpus = prstatus_registers(notes)
    assert [(c.cpu, c.pid, c.user_mode) for c in cpus] == [(0, 0, False), (1, 125, True),
                                                           (2, 1, False)]


# -- prologue analysis (the fallback where ORC has nothing, e.g. __crash_kexec) -----------

def test_prologue_depth_counts_pushes_and_frame() -> None:
    # call __fentry__; push %rbx; mov $1,%edx; sub $0xb0,%rsp; call x  (__crash_kexec's shape)
    code = bytes.fromhex("e800000000" "53" "ba01000000" "4881ecb0000000" "e800000000" "90")
    assert prologue_depth(code, 0x1000, 0x1000 + 5) == (0, None)
    assert prologue_depth(code, 0x1000, 0x1000 + 6) == (8, None)
    assert prologue_depth(code, 0x1000, 0x1000 + 23) == (0xB8, None)
    # push %rbp; mov %rsp,%rbp; push %rbx: rbp saved 8 below the return address slot
    code = bytes.fromhex("55" "4889e5" "53" "90")
    assert prologue_depth(code, 0, 5) == (16, 8)


def test_prologue_depth_after_an_epilogue_returns_to_body_depth() -> None:
    # push %rbx; sub $0x10,%rsp; add $0x10,%rsp; pop %rbx; ret; nop (cold path at body depth)
    code = bytes.fromhex("53" "4883ec10" "4883c410" "5b" "c3" "90" "90")
    assert prologue_depth(code, 0, 12) == (0x18, None)


def test_prologue_depth_gives_up_on_stack_realignment() -> None:
    code = bytes.fromhex("55" "4889ec" "90")  # push %rbp; mov %rbp,%rsp
    assert prologue_depth(code, 0, 4) is None


# -- unwinding ------------------------------------------------------------------------------

def test_call_chain_to_end_of_stack() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x100
    # f0 has 0x10 bytes of frame, f1 0x20, f2 is the end of the stack
    k.put(sp + 0x08, fn(1))  # f0's return address, above its 8 bytes of locals
    k.put(sp + 0x10 + 0x18, fn(2))
    u = unwinder(k, {0: call(0x10), 1: call(0x20), 2: END})
    res = u.from_registers({"rip": fn(0), "rsp": sp, "rbp": 0, "cs": 0x10}, TASK_STACK)
    assert res.error is None
    assert [(f.pc, f.sp, f.signal) for f in res.frames] == [
        (fn(0), sp, True), (fn(1), sp + 0x08, False), (fn(2), sp + 0x28, False)]
    assert all(f.reliable for f in res.frames)


def test_return_address_is_looked_up_at_pc_minus_one() -> None:
    """A call to a noreturn function as the last instruction returns one past the function:
    ORC (and names) must come from pc - 1, the call itself."""
    k = FakeKernel()
    sp = TASK_STACK.end - 0x100
    k.put(sp, fn(1, 0))  # return address = first byte of function 1 (end of function 0)
    k.put(sp + 8 + 0x10 + 8, fn(3))
    # looked up at pc - 1 (function 0: 0x18 frame); function 1's entry (0x99) would break it
    u = unwinder(k, {0: call(0x20), 1: call(0x99), 2: END, 3: END})
    res = u.from_return_address(sp, TASK_STACK)
    assert [f.pc for f in res.frames] == [fn(1, 0), fn(3)]
    assert res.error is None


def test_regs_frame_kernel_mode_continues_at_the_interrupted_pc() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x400
    regs_at = sp + 8
    interrupted_sp = regs_at + PT_REGS_SIZE + 0x20
    k.put(sp - 8, fn(0), fn(1, 0x20))  # f0 returns into the entry code (f1) ...
    k.put_regs(regs_at, rip=fn(2), rsp=interrupted_sp, cs=0x10, ss=0x18, rbp=0x55, rflags=0x246)
    k.put(interrupted_sp, fn(3))  # ... which saved pt_regs of f2, interrupted with no frame
    u = unwinder(k, {0: call(8), 1: regs_entry(), 2: call(8), 3: END})
    res = u.from_return_address(sp - 8, TASK_STACK)
    frames = res.frames
    assert [f.pc for f in frames] == [fn(0), fn(1, 0x20), fn(2), fn(3)]
    assert frames[1].regs is not None and frames[1].regs.address == regs_at
    assert frames[1].regs.registers["rip"] == fn(2) and not frames[1].regs.user_mode
    # same stack: crash shows the interrupted pc only as [exception RIP: ...]
    assert frames[2].signal and not frames[2].shown and frames[2].sp == interrupted_sp
    assert frames[3].sp == interrupted_sp


def test_regs_on_an_exception_stack_show_the_interrupted_pc_as_a_frame() -> None:
    k = FakeKernel()
    nmi_sp = NMI_STACK.end - 0x200
    regs_at = nmi_sp + 8
    task_sp = TASK_STACK.end - 0x300
    k.put(nmi_sp - 8, fn(0), fn(1, 0x20))
    k.put_regs(regs_at, rip=fn(2), rsp=task_sp, cs=0x10, ss=0x18)
    k.put(task_sp, fn(3))
    u = unwinder(k, {0: call(8), 1: regs_entry(), 2: call(8), 3: END}, TASK_STACK, NMI_STACK)
    res = u.from_return_address(nmi_sp - 8, TASK_STACK)
    assert [(f.pc, f.stack, f.shown) for f in res.frames] == [
        (fn(0), NMI_STACK, True), (fn(1, 0x20), NMI_STACK, True), (fn(2), TASK_STACK, True),
        (fn(3), TASK_STACK, True)]


def test_user_mode_regs_end_the_trace() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - PT_REGS_SIZE - 8
    k.put(sp - 8, fn(0), fn(1, 0x20))
    k.put_regs(sp + 8, rip=0x401000, rsp=0x7FFC0000, cs=0x33, ss=0x2B, orig_rax=1)
    u = unwinder(k, {0: call(8), 1: regs_entry()})
    res = u.from_return_address(sp - 8, TASK_STACK)
    assert res.error is None
    assert len(res.frames) == 2
    last = res.frames[-1].regs
    assert last is not None and last.user_mode and last.registers["orig_rax"] == 1


def test_partial_regs_from_an_entry_point() -> None:
    """Interrupted at an exception entry: only the hardware iret frame is valid."""
    k = FakeKernel()
    sp = TASK_STACK.end - 0x30
    k.put(sp, 0xE)  # error code
    k.put(sp + 8, 0x410338, 0x33, 0x202, 0x7FFE0000, 0x2B)  # rip cs rflags rsp ss
    u = unwinder(k, {0: regs_entry(8, partial=True)})
    res = u.from_registers({"rip": fn(0, 0), "rsp": sp, "rbp": 0, "cs": 0x10}, TASK_STACK)
    regs = res.frames[0].regs
    assert res.error is None and regs is not None and regs.partial and regs.user_mode
    assert regs.registers == {"rip": 0x410338, "cs": 0x33, "rflags": 0x202, "rsp": 0x7FFE0000,
                              "ss": 0x2B}


def test_irq_stack_switch_through_sp_indirect() -> None:
    k = FakeKernel()
    irq_top = IRQ_STACK.end - 8
    task_sp = TASK_STACK.end - 0x200
    k.put(irq_top, task_sp)  # call_on_irqstack: the old rsp at the top of the IRQ stack
    k.put(irq_top - 16, fn(0), fn(1, 0x30))  # returns into the switching function (IRQ stack)
    k.put(task_sp + 0x10, fn(2))  # its caller's return address on the task stack
    u = unwinder(k, {0: call(8), 1: call(0x18, ORC_REG_SP_INDIRECT), 2: END},
                 TASK_STACK, IRQ_STACK)
    res = u.from_return_address(irq_top - 16, TASK_STACK)
    assert [(f.pc, f.stack) for f in res.frames] == [
        (fn(0), IRQ_STACK), (fn(1, 0x30), IRQ_STACK), (fn(2), TASK_STACK)]
    assert res.frames[2].sp == task_sp + 0x10


def test_bp_based_frames() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x200
    bp = sp + 0x40
    k.put(bp, 0x1234, fn(1))  # saved rbp, return address
    u = unwinder(k, {0: call(16, ORC_REG_BP, ORC_REG_PREV_SP, -16), 1: END})
    res = u.from_registers({"rip": fn(0), "rsp": sp, "rbp": bp, "cs": 0x10}, TASK_STACK)
    assert [f.pc for f in res.frames] == [fn(0), fn(1)] and res.error is None


def test_unreadable_stack_word_ends_with_an_error() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x100
    k.put(sp - 8, fn(0), fn(1))
    k.bad.add(sp + 8 + 0x18)  # f1's return address slot: an excluded page
    u = unwinder(k, {0: call(8), 1: call(0x20)})
    res = u.from_return_address(sp - 8, TASK_STACK)
    assert len(res.frames) == 2
    assert res.error is not None and "cannot read" in res.error


@pytest.mark.parametrize("sp_offset", [0, -8])
def test_stack_pointer_must_move_up(sp_offset: int) -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x100
    for a in range(sp - 0x20, sp + 0x20, 8):
        k.put(a, fn(0))
    u = unwinder(k, {0: call(sp_offset)})
    res = u.from_return_address(sp, TASK_STACK)
    assert res.error is not None and "wrong direction" in res.error
    assert len(res.frames) == 1


def test_at_most_max_frames() -> None:
    k = FakeKernel()
    big = Stack(TASK, 0xFFFFC90000000000, 0xFFFFC90000000000 + 8 * (MAX_FRAMES + 50))
    for a in range(big.begin, big.end, 8):
        k.put(a, fn(0))  # every word returns into f0, whose frame is just the return address
    u = unwinder(k, {0: call(8)}, big)
    res = u.from_return_address(big.begin, big)
    assert len(res.frames) == MAX_FRAMES
    assert res.error is not None and str(MAX_FRAMES) in res.error


def test_stack_pointer_off_every_stack_is_an_error() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x10
    k.put(sp - 8, fn(0), fn(1))
    u = unwinder(k, {0: call(8), 1: call(0x1000)})
    res = u.from_return_address(sp - 8, TASK_STACK)
    assert res.error is not None and "stack" in res.error
    res = u.from_registers({"rip": fn(0), "rsp": 0x1000, "rbp": 0, "cs": 0x10}, TASK_STACK)
    assert res.error is not None and not res.frames[1:]


def test_no_orc_falls_back_to_the_frame_pointer_and_marks_it_unreliable() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x200
    bp = sp + 0x30
    k.put(bp, bp + 0x40, fn(1))
    u = unwinder(k, {1: END})  # nothing for function 0
    res = u.from_registers({"rip": fn(0), "rsp": sp, "rbp": bp, "cs": 0x10}, TASK_STACK)
    assert [(f.pc, f.reliable) for f in res.frames] == [(fn(0), True), (fn(1), False)]
    assert res.frames[1].sp == bp + 8


def test_no_orc_and_no_frame_pointer_scans_for_a_return_address() -> None:
    k = FakeKernel()
    sp = TASK_STACK.end - 0x200
    k.put(sp, *[0] * (0x200 // 8))
    k.put(sp, 0, 0x1234, fn(2), 0)
    u = unwinder(k, {2: END})
    res = u.from_registers({"rip": fn(0), "rsp": sp, "rbp": 0, "cs": 0x10}, TASK_STACK)
    assert [(f.pc, f.sp, f.reliable) for f in res.frames] == [
        (fn(0), sp, True), (fn(2), sp + 16, False)]


# -- the real dumps ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sysrq_session(sysrq_dump: Path, vmlinux_path: Path):  # type: ignore[no-untyped-def]
    from crashtui.analysis.session import Session

    session = Session.open(sysrq_dump, vmlinux_path)
    yield session
    session.close()


def test_stack_map_of_a_real_dump(sysrq_session) -> None:  # type: ignore[no-untyped-def]
    from crashtui.kernel.stacks import StackMap

    stacks = StackMap(sysrq_session.kernel)
    assert stacks.thread_size == 16384
    kinds = {(s.cpu, s.kind, s.name) for s in stacks.cpu_stacks}
    for cpu in range(4):
        assert (cpu, IRQ, "") in kinds and (cpu, EXCEPTION, "NMI") in kinds
    nmi0 = next(s for s in stacks.cpu_stacks if s.cpu == 0 and s.name == "NMI")
    assert nmi0.contains(0xFFFFFE000000DEA8) and nmi0.label == "NMI exception stack"
    assert stacks.find(0xFFFFFE000000DEA8) == nmi0


def test_panic_trace_reliability(sysrq_session) -> None:  # type: ignore[no-untyped-def]
    """Only the caller of __crash_kexec (STACK_FRAME_NON_STANDARD: no ORC) is found by the
    prologue fallback; everything else is ORC."""
    bt = sysrq_session.panic_backtrace
    assert [f.function for f in bt.frames if not f.reliable] == ["panic"]


def _failing_reads(kernel, bad_page: int) -> Callable[[int, int], bytes]:  # type: ignore[no-untyped-def]
    real = kernel.read

    def read(addr: int, size: int) -> bytes:
        if addr <= bad_page + 0xFFF and addr + size > bad_page:
            raise KernelReadError(f"page {bad_page:#x} excluded", addr)
        return real(addr, size)

    return read


def test_excluded_stack_page_ends_the_trace_cleanly(sysrq_dump: Path,
                                                     vmlinux_path: Path) -> None:
    """CPU 2 of the sysrq dump: NMI-stack frames, then its task stack page is excluded."""
    from crashtui.analysis.session import Session

    session = Session.open(sysrq_dump, vmlinux_path)
    full = session.backtraces[2]
    bad = full.frames[5].sp & ~0xFFF  # the task stack page of frames #4..#9
    assert full.frames[3].sp & ~0xFFF != bad and full.error is None
    session.kernel.read = _failing_reads(session.kernel, bad)  # type: ignore[method-assign,assignment]
    try:
        bt = session.backtrace_builder.for_cpu(2)
        assert bt.error is not None and "cannot read" in bt.error
        assert [f.function for f in bt.frames] == [
            "crash_nmi_callback", "default_do_nmi", "exc_nmi", "end_repeat_nmi",
            "clear_user_erms"]
        assert bt.frames[3].exception is not None
    finally:
        session.close()


def test_start_from_prstatus_registers_when_crash_search_finds_nothing(
        sysrq_session) -> None:  # type: ignore[no-untyped-def]
    """Without crash's start words (machine_kexec, crash_nmi_callback) a CPU's trace starts
    from its NT_PRSTATUS registers: the interrupted context of an NMI'd CPU, the
    crash_setup_regs() snapshot in __crash_kexec (no ORC there: prologue analysis) for the
    panic CPU, and only the user registers for a CPU that was in user mode."""
    from crashtui.analysis.backtraces import BacktraceBuilder

    builder = BacktraceBuilder(sysrq_session.kernel, sysrq_session.tasks.tasks)
    builder._crash_start = lambda *args: None  # type: ignore[method-assign]
    idle, user, dd, panic = (builder.for_cpu(cpu) for cpu in range(4))
    assert idle.start is not None and idle.start.rip_symbol == "native_safe_halt+11"
    assert [f.function for f in idle.frames][:2] == ["amd_e400_idle", "default_idle_call"]
    assert user.start is not None and user.start.user_mode and not user.frames
    assert dd.start is not None and dd.frames[0].function == "read_zero"
    assert panic.start is not None and panic.start.function == "__crash_kexec"
    assert [f.function for f in panic.frames][:2] == ["panic", "sysrq_handle_crash"]
    assert [f.reliable for f in panic.frames][:2] == [False, True]
    assert all(bt.error is None for bt in (idle, user, dd, panic))
