"""Backtraces of every CPU and of any task, built from the ORC unwinder, in crash's terms.

Where a trace starts follows crash 8.0 (x86_64.c, x86_64_get_dumpfile_stack_frame):
- a task running on a CPU is traced from the first (lowest) word on its stacks that returns
  into the function the CPU stopped in: for the panic task `machine_kexec` / `crash_kexec`
  (else `panic`, `die`, `sysrq_handle_crash`), for the other CPUs `crash_nmi_callback` (the NMI
  that stopped them); stacks are searched task stack first, then the CPU's IRQ stack, then
  its exception stacks. That word's slot is frame #0's bracketed stack address;
- failing that, the CPU's NT_PRSTATUS registers are the starting point;
- a task that is not running starts from task->thread.sp (`struct inactive_task_frame`), whose
  return address is in `__schedule`.

Return addresses are named from `pc - 1`: a call to a noreturn function can be the last
instruction of a function, leaving the return address one past its end. crash drops such
frames; the kernel's own traces and drgn keep them, and so does crashtui. The printed pc stays
the real return address, with the offset counted from the function containing `pc - 1`.
Source lines of return addresses are those of `pc - 1` too (the call), not crash's.

Frames are crash's printed frames, in its order, with its bracketed stack addresses, except:
- after `--- <IRQ stack> ---` crash prints the address of the interrupt's pt_regs, one word
  above the slot holding the return address; crashtui prints the slot;
- an NMI that hit an entry point still on the entry (trampoline) stack: crash gives up
  ("cannot transition from exception stack ..."); crashtui follows ORC's REGS_PARTIAL entry to
  the iret frame (ExceptionFrame.partial) and stops there if it returns to user mode;
- an interrupted pc whose pt_regs sits on the same stack is not a Frame (crash prints it as
  `[exception RIP: ...]`): it is the `function`/`offset`/`source` of that ExceptionFrame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame, Frame, SourceLocation
from crashtui.debuginfo.symbols import crash_name
from crashtui.errors import CrashtuiError
from crashtui.kernel.regs import CpuRegisters, prstatus_registers, user_mode
from crashtui.kernel.stacks import EXCEPTION, IRQ, Stack, StackMap
from crashtui.kernel.tasks import Task, TaskReader, current_task
from crashtui.kernel.unwind import SavedRegs, Unwinder, UnwindFrame, UnwindResult

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

# (function, offset, module) for a runtime address, or None: extra namers such as modules'.
Symbolizer = Callable[[int], "tuple[str, int, str | None] | None"]
# A SourceLocation-like object (file, line, column) for a runtime address, or None.
SourceResolver = Callable[[int], Any]
_R = TypeVar("_R")

# crash's x86_64_get_dumpfile_stack_frame() names, checked per stack word.
_KEXEC_NAMES = frozenset({"netconsole_netdump", "netpoll_start_netdump", "start_disk_dump",
                          "disk_dump", "crash_kexec", "machine_kexec", "try_crashdump"})
_SEARCH_NAMES = _KEXEC_NAMES | {"panic", "die", "sysrq_handle_crash", "crash_nmi_callback",
                                "smp_call_function_interrupt", "stop_this_cpu", "notify_die"}


@dataclass(frozen=True)
class Symbolized:
    """A runtime address named: function, offset from its start, module (None: vmlinux)."""

    function: str
    offset: int
    module: str | None = None


def symbolize(kernel: Kernel, addr: int, extra: Sequence[Symbolizer] = (),
              return_address: bool = False) -> Symbolized | None:
    """Name a runtime address; a return address is looked up at addr - 1 (see the module
    docstring) but its offset is still counted to `addr`."""
    look = addr - 1 if return_address else addr
    hit = kernel.symbolize(look)
    if hit is not None and _in_kernel_text(kernel, look):
        sym, off = hit
        return Symbolized(crash_name(sym.name), off + (addr - look))
    res = _first_answer(extra, look)
    if res is not None:
        name, off, module = res
        return Symbolized(name, off + (addr - look), module)
    if hit is not None:
        sym, off = hit
        return Symbolized(sym.name, off + (addr - look))
    return None


def _in_kernel_text(kernel: Kernel, addr: int) -> bool:
    lo, hi = kernel.symbol_or_none("_stext"), kernel.symbol_or_none("_etext")
    if lo is not None and hi is not None and lo <= addr < hi:
        return True
    lo, hi = kernel.symbol_or_none("_sinittext"), kernel.symbol_or_none("_einittext")
    return lo is not None and hi is not None and lo <= addr < hi


def source_line(kernel: Kernel, addr: int, extra: Sequence[SourceResolver] = ()
                ) -> SourceLocation | None:
    """file:line of a runtime address from the vmlinux's DWARF (KASLR slide removed), else
    from the extra resolvers (modules' .ko files)."""
    vm = kernel.vmlinux
    if vm is not None and _in_kernel_text(kernel, addr):
        try:
            lines = vm.lines
            row = lines.source_line(addr - kernel.kaslr_offset) if lines is not None else None
        except CrashtuiError:
            row = None
        return _location(row) if row is not None else None
    row = _first_answer(extra, addr)
    return _location(row) if row is not None else None


def _location(row: Any) -> SourceLocation:
    """A SourceLocation from a line-table row (file, line, optional column and comp_dir)."""
    return SourceLocation(str(row.file), int(row.line), int(getattr(row, "column", 0)),
                          getattr(row, "comp_dir", None))


def _first_answer(resolvers: Sequence[Callable[[int], _R | None]], addr: int) -> _R | None:
    """The first resolver's answer for addr that is not None; one failing (CrashtuiError)
    counts as no answer."""
    for fn in resolvers:
        try:
            res = fn(addr)
        except CrashtuiError:
            res = None
        if res is not None:
            return res
    return None


class BacktraceBuilder:
    """Builds Backtrace objects for CPUs and tasks of one kernel (caches per-kernel facts)."""

    def __init__(self, kernel: Kernel, tasks: Sequence[Task],
                 symbolizers: Sequence[Symbolizer] = (),
                 source_resolvers: Sequence[SourceResolver] = (),
                 with_source: bool = True) -> None:
        self.kernel = kernel
        self.tasks = list(tasks)
        self.symbolizers = list(symbolizers)
        self.source_resolvers = list(source_resolvers)
        self.with_source = with_source
        self.stacks = StackMap(kernel)
        self.unwinder = Unwinder(kernel, self.stacks)
        self.task_cache: dict[int, Backtrace] = {}  # task address -> its backtrace
        self._active_task_errors: dict[int, str] = {}  # cpu -> why its task is unknown

    # -- facts about the CPUs -----------------------------------------------------------------

    @cached_property
    def cpu_registers(self) -> list[CpuRegisters]:
        """NT_PRSTATUS registers of each CPU, in note order (= CPU order)."""
        return prstatus_registers(self.kernel.dump.notes)

    @cached_property
    def panic_cpu(self) -> int | None:
        """The CPU that panicked: `panic_cpu` (set by panic() and crash_kexec()), else
        `crashing_cpu`; None if neither is set."""
        for name in ("panic_cpu", "crashing_cpu"):
            addr = self.kernel.symbol_or_none(name)
            if addr is None:
                continue
            try:
                cpu = self.kernel.read_s32(addr)
            except CrashtuiError:
                continue
            if 0 <= cpu < max(self.nr_cpus, 1):
                return cpu
        return None

    @cached_property
    def nr_cpus(self) -> int:
        """CPUs with registers in the dump (else the kernel's CPU count)."""
        return len(self.cpu_registers) or self.kernel.nr_cpu_ids

    @cached_property
    def _tasks_by_address(self) -> dict[int, Task]:
        return {t.address: t for t in self.tasks}

    def task_at(self, address: int) -> Task:
        """The task whose task_struct is at `address` (read if not in the task list)."""
        task = self._tasks_by_address.get(address)
        if task is not None:
            return task
        try:
            return TaskReader(self.kernel).read(address)
        except CrashtuiError as exc:
            raise CrashtuiError(f"no task at {address:#x}: {exc.message}") from None

    @cached_property
    def active_tasks(self) -> dict[int, Task]:
        """cpu -> the task running there at the time of the dump (rq->curr)."""
        out: dict[int, Task] = {}
        reader: TaskReader | None = None
        for cpu in range(self.nr_cpus):
            try:
                addr = current_task(self.kernel, cpu)
                task = self._tasks_by_address.get(addr)
                if task is None:
                    reader = reader or TaskReader(self.kernel)
                    task = reader.read(addr)
            except CrashtuiError as exc:
                self._active_task_errors[cpu] = exc.message
                continue
            out[cpu] = task
        return out

    @cached_property
    def panic_task(self) -> Task | None:
        cpu = self.panic_cpu
        return self.active_tasks.get(cpu) if cpu is not None else None

    def task_cpu_if_active(self, task: Task) -> int | None:
        """The CPU `task` is running on, or None if it is not running."""
        for cpu, t in self.active_tasks.items():
            if t.address == task.address:
                return cpu
        return None

    # -- building -------------------------------------------------------------------------

    def all_cpus(self) -> list[Backtrace]:
        """One backtrace per CPU, in CPU order (like `bt -a`)."""
        return [self.for_cpu(cpu) for cpu in range(self.nr_cpus)]

    def for_cpu(self, cpu: int) -> Backtrace:
        """The backtrace of the task running on `cpu`."""
        task = self.active_tasks.get(cpu)
        regs = self.cpu_registers[cpu] if cpu < len(self.cpu_registers) else None
        if task is None:
            pid = regs.pid if regs else -1
            bt = Backtrace(pid, "?", 0, cpu, active=True, panic=cpu == self.panic_cpu)
            why = self._active_task_errors.get(cpu)
            bt.error = f"cannot read the task running on CPU {cpu}" + (f": {why}" if why else "")
            return bt
        return self._active(task, cpu, regs)

    def for_task(self, task: Task) -> Backtrace:
        """The backtrace of any task: a running one like its CPU's, else from its saved
        context."""
        cpu = self.task_cpu_if_active(task)
        if cpu is not None:
            regs = self.cpu_registers[cpu] if cpu < len(self.cpu_registers) else None
            return self._active(task, cpu, regs)
        bt = Backtrace(task.pid, task.comm, task.address, task.cpu)
        if not task.stack:
            bt.no_stack = True  # an exited task whose stack was freed
            return bt
        task_stack = self.stacks.task_stack(task.stack)
        try:
            thread_sp = self.kernel.read_u64(
                task.address + self.kernel.offsetof("task_struct", "thread.sp"))
        except CrashtuiError as exc:
            bt.error = f"cannot read the saved stack pointer: {exc.message}"
            return bt
        result = self.unwinder.from_inactive_task(thread_sp, task_stack)
        if result.frames and result.frames[0].pc in self.unwinder.fork_entries:
            # A forked task that never ran: it will start at ret_from_fork; crash shows no
            # frame (a text address at offset 0 is not a return address), only user regs.
            result.frames, result.error = [], None
        self._fill(bt, result)
        self._add_user_exception(bt, task, task_stack)
        return bt

    def _add_user_exception(self, bt: Backtrace, task: Task, stack: Stack) -> None:
        """crash prints a user task's top-of-stack pt_regs when its trace did not."""
        if task.is_kthread or bt.error is not None:
            return
        if any(f.exception is not None and f.exception.user_mode for f in bt.frames):
            return
        addr = stack.end - self.unwinder.pt_regs.size
        try:
            regs = self.unwinder.pt_regs.read(addr)
        except CrashtuiError:
            return
        if user_mode(regs):
            bt.user_exception = self._exception(SavedRegs(addr, regs))

    def _active(self, task: Task, cpu: int, regs: CpuRegisters | None) -> Backtrace:
        panic = cpu == self.panic_cpu
        bt = Backtrace(task.pid, task.comm, task.address, cpu, active=True, panic=panic)
        task_stack = self.stacks.task_stack(task.stack) if task.stack else None
        slot = self._crash_start(cpu, task_stack, panic)
        if slot is not None:
            self._fill(bt, self.unwinder.from_return_address(slot, task_stack))
            return bt
        if regs is None:
            bt.error = f"no registers for CPU {cpu} in the dump"
            return bt
        registers = {k: v for k, v in regs.registers.items() if k in _PT_REGS_NAMES}
        bt.start = self._exception(SavedRegs(0, registers))
        if user_mode(registers):
            return bt
        result = self.unwinder.from_registers(regs.registers, task_stack)
        if result.frames:
            result.frames[0].shown = False  # printed as the "[exception RIP: ...]" header
        self._fill(bt, result)
        return bt

    # -- where crash starts an active task's trace --------------------------------------------

    @cached_property
    def _search_ranges(self) -> list[tuple[int, int, str]]:
        """[start, end) of each function crash's start search looks for (runtime addresses;
        end = the next symbol, as crash's closest_symbol() sees it)."""
        try:
            symbols = self.kernel.symbols  # link-time: the vmlinux's or the in-memory kallsyms
        except CrashtuiError:
            return []
        out = []
        for name in sorted(_SEARCH_NAMES):
            sym = symbols.lookup(name)
            if sym is None or sym.kind != "func":
                continue
            nxt = next((s for s in symbols.in_range(sym.address + 1, sym.address + 0x100000)
                        if s.address > sym.address), None)
            end = nxt.address if nxt is not None else sym.address + max(sym.size, 1)
            out.append((sym.address + self.kernel.kaslr_offset,
                        end + self.kernel.kaslr_offset, name))
        return sorted(out)

    def _stack_words(self, stack: Stack) -> np.ndarray:
        """The readable words of a stack (unreadable pages read as zeros)."""
        size = stack.end - stack.begin
        buf = bytearray(size)
        pos = stack.begin
        while pos < stack.end:
            chunk = min(stack.end - pos, 0x1000 - (pos & 0xFFF))
            try:
                buf[pos - stack.begin:pos - stack.begin + chunk] = self.kernel.read(pos, chunk)
            except CrashtuiError:
                pass
            pos += chunk
        return np.frombuffer(bytes(buf[:size - size % 8]), dtype="<u8")

    def _crash_start(self, cpu: int, task_stack: Stack | None, panic: bool) -> int | None:
        """The slot crash starts an active CPU's trace at (see the module docstring)."""
        ranges = self._search_ranges
        if not ranges:
            return None
        stacks: list[Stack] = [task_stack] if task_stack is not None else []
        cpu_stacks = [s for s in self.stacks.cpu_stacks if s.cpu == cpu]
        stacks += [s for s in cpu_stacks if s.kind == IRQ]
        stacks += [s for s in cpu_stacks if s.kind == EXCEPTION]
        panic_slot = crash_kexec_slot = sysrq_slot = notify_slot = call_fn_slot = None
        lo = np.array([r[0] for r in ranges], dtype=np.uint64)
        hi = np.array([r[1] for r in ranges], dtype=np.uint64)
        for stage, stack in enumerate(stacks):
            words = self._stack_words(stack)
            idx = np.searchsorted(lo, words, side="right") - 1
            ok = (idx >= 0) & (words < hi[np.clip(idx, 0, None)])
            for i in np.nonzero(ok)[0]:
                name = ranges[int(idx[i])][2]
                slot = stack.begin + 8 * int(i)
                word = int(words[i])
                if panic and name in _KEXEC_NAMES:
                    if name == "crash_kexec":
                        if self._calls(word, "machine_kexec"):
                            return slot
                        if crash_kexec_slot is None:
                            crash_kexec_slot = slot
                            continue
                    return slot
                if panic and name == "panic":
                    panic_slot = slot
                elif panic and name == "die":
                    return slot
                elif name == "sysrq_handle_crash":
                    sysrq_slot = slot
                elif not panic and name == "crash_nmi_callback":
                    return slot
                elif not panic and stage > 0 and name in ("smp_call_function_interrupt",
                                                          "stop_this_cpu"):
                    call_fn_slot = slot
                elif not panic and stack.kind == EXCEPTION and stack.name == "NMI" \
                        and name == "notify_die":
                    notify_slot = slot
            if stage == 0:
                if panic_slot is not None:
                    return panic_slot
                if crash_kexec_slot is not None:
                    return crash_kexec_slot
        for slot_ in (sysrq_slot, notify_slot, call_fn_slot):
            if slot_ is not None:
                return slot_
        return None

    def _calls(self, ret: int, target: str) -> bool:
        """True if the instruction before return address `ret` is `call target` (e8 rel32)."""
        addr = self.kernel.symbol_or_none(target)
        try:
            code = self.unwinder.code.code(ret - 5, 5)
        except CrashtuiError:
            return False
        if addr is None or code[0] != 0xE8:
            return False
        return ret + int.from_bytes(code[1:5], "little", signed=True) == addr

    # -- converting unwinder frames -----------------------------------------------------------

    def name(self, addr: int, return_address: bool = False) -> Symbolized | None:
        return symbolize(self.kernel, addr, self.symbolizers, return_address)

    def source(self, addr: int) -> SourceLocation | None:
        if not self.with_source:
            return None
        return source_line(self.kernel, addr, self.source_resolvers)

    def _exception(self, saved: SavedRegs) -> ExceptionFrame:
        regs = saved.registers
        ef = ExceptionFrame(saved.address, dict(regs), user_mode(regs))
        ef.partial = saved.partial
        if not ef.user_mode and "rip" in regs:
            named = self.name(regs["rip"])
            if named is not None:
                ef.function, ef.offset, ef.module = named.function, named.offset, named.module
            ef.source = self.source(regs["rip"])
        return ef

    def _fill(self, bt: Backtrace, result: UnwindResult) -> None:
        """Turn unwinder frames into crash-numbered Frames (hidden interrupted pcs are
        folded into the previous frame's exception)."""
        prev_stack: Stack | None = None
        for uf in result.frames:
            if not uf.shown and uf.regs is None:
                prev_stack = uf.stack or prev_stack
                continue
            frame = self._frame(len(bt.frames), uf)
            if prev_stack is not None and uf.stack is not None and uf.stack != prev_stack:
                frame.stack_name = prev_stack.label
            prev_stack = uf.stack or prev_stack
            bt.frames.append(frame)
        bt.error = result.error

    def _frame(self, index: int, uf: UnwindFrame) -> Frame:
        named = self.name(uf.pc, return_address=not uf.signal)
        look = uf.pc if uf.signal else uf.pc - 1
        frame = Frame(index, uf.sp, uf.pc, named.function if named else None,
                      named.offset if named else 0, named.module if named else None,
                      reliable=uf.reliable)
        if self.with_source:
            frame.resolve_source_later(lambda: self.source(look))
        frame.return_address = not uf.signal
        frame.stack = uf.stack.label if uf.stack is not None else None
        frame.registers = dict(uf.registers)
        if uf.regs is not None:
            frame.exception = self._exception(uf.regs)
            frame.exception.kind = uf.stack.label if uf.stack is not None else ""
        return frame


_PT_REGS_NAMES = frozenset({"rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                            "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                            "orig_rax", "cs", "ss"})


def build_backtraces(kernel: Kernel, tasks: Sequence[Task],
                     symbolizers: Sequence[Symbolizer] = ()) -> list[Backtrace]:
    """Every CPU's backtrace in CPU order (convenience wrapper around BacktraceBuilder)."""
    return BacktraceBuilder(kernel, tasks, symbolizers).all_cpus()


def module_hooks(session: Any) -> tuple[list[Symbolizer], list[SourceResolver]]:
    """Namers/line resolvers for module addresses from crashtui.kernel.modules, if present."""
    try:
        from crashtui.kernel import modules
    except ImportError:
        return [], []
    syms: list[Symbolizer] = []
    lines: list[SourceResolver] = []
    fn = getattr(modules, "module_symbolize", None)
    if fn is not None:
        syms.append(lambda addr: fn(session, addr))
    fl = getattr(modules, "module_line", None)
    if fl is not None:
        lines.append(lambda addr: fl(session, addr))
    return syms, lines


def backtrace_of_task(session: Any, task_address: int) -> Backtrace:
    """Session.backtrace_of: a task on a CPU gets that CPU's trace (session.backtraces),
    any other its saved context's, built once per task."""
    builder: BacktraceBuilder = session.backtrace_builder
    cached = builder.task_cache.get(task_address)
    if cached is not None:
        return cached
    task = builder.task_at(task_address)
    cpu = builder.task_cpu_if_active(task)
    backtraces: list[Backtrace] = session.backtraces
    bt = backtraces[cpu] if cpu is not None and cpu < len(backtraces) else builder.for_task(task)
    builder.task_cache[task_address] = bt
    return bt


def add_inline_frames(kernel: Kernel, bt: Backtrace) -> Backtrace:
    """A copy of `bt` whose frames are preceded by their DWARF inline frames (inline=True,
    innermost first, same index/sp/pc), from the vmlinux's DwarfLines.inline_frames()."""
    import dataclasses

    vm = kernel.vmlinux
    lines = vm.lines if vm is not None else None
    out = dataclasses.replace(bt, frames=[])
    for frame in bt.frames:
        if frame.inline:
            continue
        look = frame.pc - 1 if frame.return_address else frame.pc
        extra: list[Frame] = []
        if lines is not None and _in_kernel_text(kernel, look):
            try:
                chain = lines.inline_frames(look - kernel.kaslr_offset)
            except CrashtuiError:
                chain = []
            for inl in chain:
                if not inl.inlined:
                    continue
                src = SourceLocation(inl.file, inl.line, inl.column) if inl.file else None
                extra.append(Frame(frame.index, frame.sp, frame.pc, inl.function, 0,
                                   frame.module, src, inline=True, reliable=frame.reliable,
                                   stack=frame.stack, return_address=frame.return_address))
        out.frames.extend(extra)
        out.frames.append(frame)
    return out


def fill_missing_sources(builder: BacktraceBuilder, bt: Backtrace) -> Backtrace:
    """Look up the source lines still missing in `bt` (e.g. a module's .ko was loaded after
    the trace was built); frames are updated in place."""
    for frame in bt.frames:
        if frame.source is None and not frame.inline:
            frame.source = builder.source(frame.pc - 1 if frame.return_address else frame.pc)
        ef = frame.exception
        if ef is not None and ef.source is None and not ef.user_mode and "rip" in ef.registers:
            ef.source = builder.source(ef.registers["rip"])
    return bt
