"""The arm64 frame-pointer unwinder (arch/arm64/kernel/stacktrace.c): frame records
{x29, x30} chained from x29, return addresses stripped of their pointer authentication code.

An exception taken at EL1 leaves a `struct pt_regs` on the stack whose `stackframe` member is
a frame record {interrupted x29, interrupted pc} (arch/arm64/kernel/entry.S kernel_entry: `stp
x29, x22, [sp, #S_STACKFRAME]`, x22 = ELR_EL1), so the chain runs through it; such a record
is recognised by the pt_regs around it (its pc and x29 equal the record's) and the frame
carries the saved registers. An exception from EL0 writes a zero record there: the end.

Besides the task stack a frame may be on its CPU's IRQ stack or, with VMAP_STACK, its
overflow stack: kernel_ventry (entry.S) takes an exception whose SP is below the task stack
on the per-CPU `overflow_stack`, where __bad_stack saves the pt_regs (their record chains
back into the task stack) and calls handle_bad_stack, which panics "kernel stack overflow".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from crashtui.arch.arm64 import ARM64, REGISTERS, Layout
from crashtui.errors import CrashtuiError
from crashtui.kernel.stacks import IRQ, TASK, Stack
from crashtui.kernel.unwind import SavedRegs, UnwindFrame, UnwindResult

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.stacks import StackMap

MAX_FRAMES = 256
# OVERFLOW_STACK_SIZE (arch/arm64/include/asm/stacktrace.h): SZ_4K
OVERFLOW_STACK_SIZE = 4096
OVERFLOW = "overflow"
# struct pt_regs (arch/arm64/include/asm/ptrace.h): regs[31], sp, pc, pstate first.
PT_REGS_WORDS = 34
PSR_MODE_EL1H = 0x5


@dataclass(frozen=True)
class CpuContext:
    """task->thread.cpu_context (arch/arm64/include/asm/processor.h): what cpu_switch_to
    saved for a task that is not running."""

    fp: int
    sp: int
    pc: int


@dataclass(frozen=True)
class OverflowStack(Stack):
    """A CPU's overflow_stack, named as crash's arm64_switch_stack_from_overflow does."""

    @property
    def label(self) -> str:
        return "Overflow stack"


class Arm64Unwinder:
    """Frame-pointer unwinding of arm64 kernel stacks."""

    def __init__(self, kernel: Kernel, stacks: StackMap) -> None:
        self.kernel = kernel
        self.stacks = stacks
        self.layout: Layout = ARM64.layout(kernel)

    @cached_property
    def pt_regs_size(self) -> int:
        try:
            return self.kernel.sizeof("struct pt_regs")
        except CrashtuiError:
            return 8 * PT_REGS_WORDS + 8 * 8  # 6.x: + orig_x0, syscallno, ..., stackframe

    @cached_property
    def stackframe_offset(self) -> int | None:
        """offsetof(struct pt_regs, stackframe), None if the kernel's BTF lacks it."""
        try:
            return self.kernel.offsetof("pt_regs", "stackframe")
        except CrashtuiError:
            return None

    @cached_property
    def irq_stacks(self) -> list[Stack]:
        """Each CPU's IRQ stack: per-CPU irq_stack_ptr, IRQ_STACK_SIZE = THREAD_SIZE."""
        out: list[Stack] = []
        k = self.kernel
        ptr = k.symbol_or_none("irq_stack_ptr")
        if ptr is None:
            return out
        for cpu in range(k.nr_cpu_ids):
            try:
                base = k.read_u64(k.per_cpu(ptr, cpu))
            except CrashtuiError:
                continue
            if base:
                out.append(Stack(IRQ, base, base + self.stacks.thread_size, cpu))
        return out

    @cached_property
    def overflow_stacks(self) -> list[Stack]:
        """Each CPU's overflow stack: the per-CPU array `overflow_stack` (traps.c)."""
        out: list[Stack] = []
        k = self.kernel
        sym = k.symbol_or_none("overflow_stack")
        if sym is None:
            return out
        for cpu in range(k.nr_cpu_ids):
            try:
                base = k.per_cpu(sym, cpu)
            except CrashtuiError:
                continue
            out.append(OverflowStack(OVERFLOW, base, base + OVERFLOW_STACK_SIZE, cpu))
        return out

    def find_stack(self, addr: int, task_stack: Stack | None) -> Stack | None:
        if task_stack is not None and task_stack.contains(addr):
            return task_stack
        return next((s for s in (*self.irq_stacks, *self.overflow_stacks)
                     if s.contains(addr)), None)

    def task_stack(self, stack_base: int) -> Stack:
        return Stack(TASK, stack_base, stack_base + self.stacks.thread_size)

    def read_pt_regs(self, addr: int) -> dict[str, int]:
        """regs[0..30], sp, pc, pstate, orig_x0 and syscallno of the pt_regs at `addr`
        (KernelReadError if not). syscallno is read as 8 bytes (with the u32 pmr after it),
        as crash's struct arm64_pt_regs does."""
        raw = self.kernel.read(addr, 8 * PT_REGS_WORDS + 16)
        out = dict(zip(REGISTERS, struct.unpack_from(f"<{PT_REGS_WORDS}Q", raw), strict=True))
        out["orig_x0"], out["syscallno"] = struct.unpack_from("<QQ", raw, 8 * PT_REGS_WORDS)
        return out

    def cpu_context(self, task_address: int) -> CpuContext:
        k = self.kernel
        base = task_address + k.offsetof("task_struct", "thread.cpu_context")
        return CpuContext(*(k.read_u64(base + k.offsetof("cpu_context", m))
                            for m in ("fp", "sp", "pc")))

    # -- starting points ------------------------------------------------------------------

    def from_registers(self, registers: dict[str, int], task_stack: Stack | None
                       ) -> UnwindResult:
        """From a full register set (NT_PRSTATUS): the pc is exact, x29 the first record."""
        pc = self.layout.strip_pac(registers["pc"])
        fp = registers["x29"]
        first = UnwindFrame(pc, *self._first_bracket(fp, registers["sp"], task_stack),
                            signal=True, registers=dict(registers))
        return self._walk(first, fp, task_stack)

    def from_inactive_task(self, task_address: int, task_stack: Stack | None) -> UnwindResult:
        """From the cpu_context cpu_switch_to saved: pc returns into __switch_to."""
        try:
            ctx = self.cpu_context(task_address)
        except CrashtuiError as exc:
            return UnwindResult([], f"cannot read thread.cpu_context: {exc.message}")
        first = UnwindFrame(self.layout.strip_pac(ctx.pc),
                            *self._first_bracket(ctx.fp, ctx.sp, task_stack),
                            registers={"pc": ctx.pc, "sp": ctx.sp, "x29": ctx.fp})
        return self._walk(first, ctx.fp, task_stack)

    def _first_bracket(self, fp: int, sp: int, task_stack: Stack | None
                       ) -> tuple[int, Stack | None]:
        """(address, stack) the first frame is named by: its frame record (x29), as every
        other frame and crash's frame #0, or the stack pointer when x29 is on no stack."""
        stack = self.find_stack(fp, task_stack)
        if stack is not None:
            return fp, stack
        return sp, self.find_stack(sp, task_stack)

    # -- the walk -------------------------------------------------------------------------

    def _walk(self, first: UnwindFrame, fp: int, task_stack: Stack | None) -> UnwindResult:
        frames = [first]
        seen: set[int] = set()
        while fp:
            if len(frames) >= MAX_FRAMES:
                return UnwindResult(frames, f"more than {MAX_FRAMES} frames: stopped")
            if fp & 0xF or fp in seen:
                return UnwindResult(frames, f"bad frame pointer {fp:#x}")
            seen.add(fp)
            try:
                next_fp, lr = struct.unpack("<QQ", self.kernel.read(fp, 16))
            except CrashtuiError as exc:
                return UnwindResult(frames, f"cannot read the frame record at {fp:#x}: "
                                    f"{exc.message}")
            stack = self.find_stack(fp, task_stack)
            # a frame's bracketed address is its own record (the bottom of its frame), as
            # crash's arm64_print_stackframe_entry prints frame->fp
            frames[-1].sp, frames[-1].stack = fp, stack
            if next_fp == 0 and lr == 0:
                user = self._user_regs(fp)
                if user is not None:
                    frames[-1].regs = user  # the entry from user mode: its pt_regs
                break
            pc = self.layout.strip_pac(lr)
            saved = self._exception_regs(fp, next_fp, lr)
            frames.append(UnwindFrame(pc, next_fp, self.find_stack(next_fp, task_stack),
                                      signal=saved is not None,
                                      registers={"pc": pc, "x29": next_fp}))
            if saved is not None:
                frames[-2].regs = saved  # printed after the vector that saved them
            fp = next_fp
        return UnwindResult(frames)

    def _regs_around(self, fp: int) -> tuple[int, dict[str, int]] | None:
        off = self.stackframe_offset
        if off is None:
            return None
        try:
            return fp - off, self.read_pt_regs(fp - off)
        except CrashtuiError:
            return None

    def _exception_regs(self, fp: int, next_fp: int, lr: int) -> SavedRegs | None:
        """The pt_regs whose stackframe record is at `fp` (an EL1 exception), or None."""
        found = self._regs_around(fp)
        if found is None:
            return None
        addr, regs = found
        if regs["pc"] != lr or regs["x29"] != next_fp or regs["pstate"] & 0xF != PSR_MODE_EL1H:
            return None
        return SavedRegs(addr, regs)

    def _user_regs(self, fp: int) -> SavedRegs | None:
        """The user-mode pt_regs of the final (zero) frame record at `fp`, or None."""
        found = self._regs_around(fp)
        if found is None or not ARM64.user_mode(found[1]):
            return None
        if not (found[1]["pc"] or found[1]["sp"]):
            return None  # the idle tasks' zeroed pt_regs (init_cpu_task, head.S): no entry
        return SavedRegs(found[0], found[1])
