"""Which kernel stack an address is on: task, IRQ, exception (IST) or entry stack.

Follows arch/x86/kernel/dumpstack_64.c (in_exception_stack, in_irq_stack, in_entry_stack):
- task stacks are task->stack .. + THREAD_SIZE;
- each CPU's IRQ stack ends just above the per-CPU pointer `hardirq_stack_ptr` (5.x, 6.1) or
  `pcpu_hot.hardirq_stack_ptr` (6.2+), which points at its top-most word;
- each CPU's IST stacks live in its `struct cea_exception_stacks` (per-CPU pointer
  `cea_exception_stacks`, arch/x86/include/asm/cpu_entry_area.h), laid out DF, NMI, DB, MCE,
  VC, VC2 with guard pages between;
- the entry (trampoline) stack is cpu_entry_area.entry_stack_page, found from the same pointer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

DEFAULT_THREAD_SIZE = 16 * 1024  # x86-64 since 3.15 without KASAN (page_64_types.h)
DEFAULT_IRQ_STACK_SIZE = 16 * 1024

# cea_exception_stacks members and the names crash prints in "--- <NAME exception stack> ---"
# (crash names them from the IDT handler names: nmi, debug, double_fault, machine_check, vmm).
EXCEPTION_STACKS = (("DF_stack", "DOUBLEFAULT"), ("NMI_stack", "NMI"), ("DB_stack", "DEBUG"),
                    ("MCE_stack", "MCE"), ("VC_stack", "VC"), ("VC2_stack", "VC2"))

TASK = "task"
IRQ = "irq"
EXCEPTION = "exception"
ENTRY = "entry"


@dataclass(frozen=True)
class Stack:
    """One kernel stack: [begin, end) with its kind, the CPU it belongs to and crash's name."""

    kind: str  # TASK, IRQ, EXCEPTION or ENTRY
    begin: int
    end: int
    cpu: int | None = None  # None for a task stack
    name: str = ""  # e.g. "NMI" for an exception stack

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.begin <= addr and addr + size <= self.end

    @property
    def label(self) -> str:
        """What crash prints between `--- <` and `> ---` when a trace leaves this stack."""
        if self.kind == EXCEPTION:
            return f"{self.name} exception stack"
        if self.kind == IRQ:
            return "IRQ stack"
        if self.kind == ENTRY:
            return "entry trampoline stack"
        return "process stack"


class StackMap:
    """The per-CPU IRQ, exception and entry stacks of a kernel, computed once."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @cached_property
    def thread_size(self) -> int:
        """THREAD_SIZE: __end_init_task - init_stack (vmlinux.lds), else 16 KiB."""
        k = self.kernel
        start = k.symbol_or_none("init_stack") or k.symbol_or_none("init_thread_union")
        end = k.symbol_or_none("__end_init_task")
        if start is not None and end is not None and 0 < end - start <= 1 << 20:
            size = end - start
            if size & (size - 1) == 0:
                return size
        return DEFAULT_THREAD_SIZE

    def task_stack(self, stack_base: int) -> Stack:
        """The stack of a task whose task->stack is `stack_base`."""
        return Stack(TASK, stack_base, stack_base + self.thread_size)

    @cached_property
    def cpu_stacks(self) -> list[Stack]:
        """Every CPU's IRQ, exception and entry stacks that can be located."""
        out: list[Stack] = []
        for cpu in range(self.kernel.nr_cpu_ids):
            out.extend(self._irq_stacks(cpu))
            out.extend(self._cea_stacks(cpu))
        return out

    def _irq_stacks(self, cpu: int) -> list[Stack]:
        k = self.kernel
        ptr_addr = k.symbol_or_none("hardirq_stack_ptr")
        try:
            if ptr_addr is None:
                hot = k.symbol_or_none("pcpu_hot")
                if hot is None:
                    return []
                ptr_addr = hot + k.offsetof("pcpu_hot", "hardirq_stack_ptr")
            top = k.read_u64(k.per_cpu(ptr_addr, cpu))
        except CrashtuiError:
            return []
        if not top:
            return []
        try:
            size = k.sizeof("struct irq_stack")
        except CrashtuiError:
            size = DEFAULT_IRQ_STACK_SIZE
        end = top + 8  # hardirq_stack_ptr points at the top-most word (dumpstack_64.c)
        return [Stack(IRQ, end - size, end, cpu)]

    def _cea_stacks(self, cpu: int) -> list[Stack]:
        k = self.kernel
        sym = k.symbol_or_none("cea_exception_stacks")
        if sym is None:
            return []
        try:
            base = k.read_u64(k.per_cpu(sym, cpu))
        except CrashtuiError:
            return []
        if not base:
            return []
        out: list[Stack] = []
        for member, name in EXCEPTION_STACKS:
            try:
                off = k.offsetof("cea_exception_stacks", member)
                size = k.btf.member_type("cea_exception_stacks", member).size or 0
            except CrashtuiError:
                continue
            if size:
                out.append(Stack(EXCEPTION, base + off, base + off + size, cpu, name))
        try:
            cea = base - k.offsetof("cpu_entry_area", "estacks")
            entry = cea + k.offsetof("cpu_entry_area", "entry_stack_page")
            size = k.sizeof("struct entry_stack")
        except CrashtuiError:
            return out
        out.append(Stack(ENTRY, entry, entry + size, cpu, "ENTRY"))
        return out

    def find(self, addr: int, task_stack: Stack | None = None) -> Stack | None:
        """The stack holding `addr`: the given task's stack first, then every CPU stack."""
        if task_stack is not None and task_stack.contains(addr):
            return task_stack
        for stack in self.cpu_stacks:
            if stack.contains(addr):
                return stack
        return None
