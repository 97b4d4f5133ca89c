"""Backtraces of arm64 kernels: BacktraceBuilder with the frame-pointer unwinder
(crashtui.arch.arm64_unwind) instead of ORC.

A task running on a CPU is traced from that CPU's NT_PRSTATUS registers (crash_setup_regs in
a kdump; the live registers in QEMU's dump-guest-memory), any other from the cpu_context
cpu_switch_to saved. Frames are the kernel's own (and drgn's without DWARF): the exact pc,
then each frame record's return address; an EL1 exception's interrupted pc is a frame of its
own, the vector before it carrying the saved pt_regs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame
from crashtui.analysis.backtraces import BacktraceBuilder, SourceResolver, Symbolizer
from crashtui.arch.arm64 import ARM64
from crashtui.arch.arm64_unwind import Arm64Unwinder
from crashtui.errors import CrashtuiError
from crashtui.kernel.unwind import SavedRegs

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.regs import CpuRegisters
    from crashtui.kernel.tasks import Task


class Arm64BacktraceBuilder(BacktraceBuilder):
    """BacktraceBuilder for arm64 dumps."""

    def __init__(self, kernel: Kernel, tasks: Sequence[Task],
                 symbolizers: Sequence[Symbolizer] = (),
                 source_resolvers: Sequence[SourceResolver] = (),
                 with_source: bool = True) -> None:
        super().__init__(kernel, tasks, symbolizers, source_resolvers, with_source)
        self.fp_unwinder = Arm64Unwinder(kernel, self.stacks)

    @cached_property
    def cpu_registers(self) -> list[CpuRegisters]:
        return ARM64.prstatus_registers(self.kernel.dump.notes)

    def for_task(self, task: Task) -> Backtrace:
        cpu = self.task_cpu_if_active(task)
        if cpu is not None:
            regs = self.cpu_registers[cpu] if cpu < len(self.cpu_registers) else None
            return self._active(task, cpu, regs)
        bt = Backtrace(task.pid, task.comm, task.address, task.cpu, arch="arm64")
        if not task.stack:
            bt.no_stack = True
            return bt
        stack = self.fp_unwinder.task_stack(task.stack)
        self._fill(bt, self.fp_unwinder.from_inactive_task(task.address, stack))
        return bt

    def _active(self, task: Task, cpu: int, regs: CpuRegisters | None) -> Backtrace:
        bt = Backtrace(task.pid, task.comm, task.address, cpu, active=True,
                       panic=cpu == self.panic_cpu, arch="arm64")
        if regs is None:
            bt.error = f"no registers for CPU {cpu} in the dump"
            return bt
        if ARM64.user_mode(regs.registers):
            bt.start = self._exception(self._user_entry(task, regs.registers))
            return bt
        stack = self.fp_unwinder.task_stack(task.stack) if task.stack else None
        self._fill(bt, self.fp_unwinder.from_registers(regs.registers, stack))
        return bt

    def _user_entry(self, task: Task, registers: dict[str, int]) -> SavedRegs:
        """An active task's user-mode registers: the pt_regs at the top of its stack when
        they are the CPU's note (crash prints those: they add orig_x0 and syscallno, which
        NT_PRSTATUS lacks), else the note's. In a kdump, crash_save_cpu() in the stop IPI
        saved the interrupted registers, which the exception entry from EL0 had stored
        there (kernel_entry 0, arch/arm64/kernel/entry.S)."""
        if task.stack:
            unwinder = self.fp_unwinder
            # crash's USER_EFRAME_OFFSET: 16 bytes more before pt_regs had its stackframe
            size = unwinder.pt_regs_size + (0 if unwinder.stackframe_offset is not None else 16)
            top = task.stack + self.stacks.thread_size - size
            try:
                saved = unwinder.read_pt_regs(top)
            except CrashtuiError:
                saved = None
            if saved is not None and all(saved.get(n) == v for n, v in registers.items()):
                return SavedRegs(top, saved)
        return SavedRegs(0, dict(registers))

    def _exception(self, saved: SavedRegs) -> ExceptionFrame:
        regs = saved.registers
        user = ARM64.user_mode(regs)
        ef = ExceptionFrame(saved.address, dict(regs), user)
        if not user and "pc" in regs:
            named = self.name(regs["pc"])
            if named is not None:
                ef.function, ef.offset, ef.module = named.function, named.offset, named.module
            ef.source = self.source(regs["pc"])
            lr = self.fp_unwinder.layout.strip_pac(regs.get("x30", 0))
            named = self.name(lr) if lr else None
            if named is not None:  # crash: [name+decimal offset], like the PC, and the
                ef.registers["x30"] = lr  # LR of kernel text shown without its PAC
                ef.lr_symbol = named.function + (f"+{named.offset}" if named.offset else "")
        return ef

    def _add_user_exception(self, bt: Backtrace, task: Task, stack: object) -> None:
        """The user-mode pt_regs come from the unwinder's final frame record."""


def arm64_builder(kernel: Kernel) -> bool:
    """True when `kernel` needs Arm64BacktraceBuilder."""
    try:
        return kernel.arch.name == "arm64"
    except (AttributeError, CrashtuiError):
        return False
