"""One crash under analysis: the kernel model plus every fact built from it, computed lazily."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crashtui.analysis.summary import Summary, build_summary
from crashtui.kernel.printk import KernelLog, try_read_log
from crashtui.kernel.program import Kernel
from crashtui.kernel.tasks import TaskList, read_tasks

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, SourceLocation
    from crashtui.analysis.backtraces import BacktraceBuilder
    from crashtui.analysis.hang import HangReport
    from crashtui.analysis.triage import Triage
    from crashtui.debuginfo.ctype import Types
    from crashtui.kernel.mm import KmemInfo
    from crashtui.kernel.modules import ModuleDebugInfo, ModuleTable
    from crashtui.kernel.ps import PsTable


class Session:
    """The shared backend every view reads: open once, compute each fact on first use."""

    def __init__(self, kernel: Kernel, dump_path: Path, vmlinux_path: Path | None) -> None:
        self.kernel = kernel
        self.dump_path = dump_path
        self.vmlinux_path = vmlinux_path
        # Extra address namers / line resolvers (e.g. modules): addr -> (function, offset,
        # module) | None and addr -> SourceLocation-like | None. Add before the first backtrace.
        self.symbolizers: list[Any] = []
        self.source_resolvers: list[Any] = []

    @classmethod
    def open(cls, dump: str | Path, vmlinux: str | Path | None = None) -> Session:
        dump_path = Path(dump)
        vmlinux_path = Path(vmlinux) if vmlinux is not None else None
        return cls(Kernel.open(dump_path, vmlinux_path), dump_path, vmlinux_path)

    @cached_property
    def log(self) -> KernelLog:
        return try_read_log(self.kernel)

    @cached_property
    def tasks(self) -> TaskList:
        return read_tasks(self.kernel)

    @cached_property
    def summary(self) -> Summary:
        kernel_path = str(self.vmlinux_path) if self.vmlinux_path else "(none: in-memory symbols)"
        return build_summary(self.kernel, self.log, self.tasks, kernel_path, str(self.dump_path))

    @cached_property
    def modules(self) -> ModuleTable:
        """Loaded modules, their in-memory symbols and any .ko debug info loaded."""
        from crashtui.kernel.modules import module_table

        return module_table(self.kernel)

    @cached_property
    def kmem(self) -> KmemInfo:
        """The rows of crash's `kmem -i` (no SHARED: flat in the machine's RAM)."""
        from crashtui.kernel.mm import read_kmem_info

        return read_kmem_info(self.kernel)

    @cached_property
    def kmem_shared(self) -> KmemInfo:
        """`kmem -i=shared`: the rows plus SHARED, which reads every struct page."""
        from crashtui.kernel.mm import read_kmem_info

        return read_kmem_info(self.kernel, shared=True)

    @cached_property
    def ps(self) -> PsTable:
        """The rows of crash's `ps` (tasks with memory use and running marks)."""
        from crashtui.kernel.ps import read_ps

        return read_ps(self.kernel, self.tasks)

    @cached_property
    def types(self) -> Types:
        """The kernel's C types for `struct` and `p` (BTF: the vmlinux's or the dump's own)."""
        from crashtui.debuginfo.ctype import Types

        return Types(self.kernel.btf)

    @cached_property
    def triage(self) -> Triage:
        """What happened: kind, the culprit every view shows, signature (drop it from
        __dict__ to build it again, e.g. after a .ko gave the culprit its source line)."""
        from crashtui.analysis.triage import build_triage

        return build_triage(self)

    @cached_property
    def hang(self) -> HangReport:
        """The blocked tasks, the locks they wait on and the owners, lock cycles."""
        from crashtui.analysis.hang import analyse

        return analyse(self)

    def load_module_debuginfo(self, name: str, ko_path: str | Path) -> ModuleDebugInfo:
        """Use a .ko's DWARF for the loaded module `name` (crash's `mod -s NAME FILE`)."""
        return self.modules.load_debuginfo(name, ko_path)

    def load_modules_dir(self, directory: str | Path) -> list[str]:
        """Load every .ko under `directory` matching a loaded module; returns the problems."""
        return self.modules.load_dir(directory)[1]

    def module_source_line(self, addr: int) -> SourceLocation | None:
        """file:line of an address in a module whose .ko is loaded, else None."""
        from crashtui.analysis.backtrace import SourceLocation
        from crashtui.kernel.modules import module_source_line

        line = module_source_line(self.kernel, addr)
        if line is None:
            return None
        return SourceLocation(line.file, line.line, line.column, line.comp_dir)

    # -- backtraces (crashtui.analysis.backtraces) ----------------------------------------------

    @cached_property
    def backtrace_builder(self) -> BacktraceBuilder:
        from crashtui.analysis.backtraces import BacktraceBuilder, module_hooks

        symbolizers, resolvers = module_hooks(self)
        if self.kernel.arch.name == "arm64":  # the frame-pointer unwinder (crashtui.arch)
            from crashtui.analysis.backtraces_arm64 import Arm64BacktraceBuilder

            return Arm64BacktraceBuilder(self.kernel, self.tasks.tasks,
                                         [*self.symbolizers, *symbolizers],
                                         [*self.source_resolvers, *resolvers])
        return BacktraceBuilder(self.kernel, self.tasks.tasks,
                                [*self.symbolizers, *symbolizers],
                                [*self.source_resolvers, *resolvers])

    @cached_property
    def backtraces(self) -> list[Backtrace]:
        """One backtrace per CPU in CPU order (active=True; panic=True on the panic CPU)."""
        builder = self.backtrace_builder
        first = self.__dict__.get("panic_backtrace")
        if first is None:
            return builder.all_cpus()
        # the panic CPU's was built alone first (bt, triage): keep that object, add the rest
        return [first if cpu == first.cpu else builder.for_cpu(cpu)
                for cpu in range(builder.nr_cpus)]

    @cached_property
    def panic_backtrace(self) -> Backtrace | None:
        """The backtrace of the CPU that panicked, or None if unknown (built alone when the
        other CPUs' are not needed yet: `bt` unwinds one CPU, not all)."""
        if "backtraces" in self.__dict__:
            return next((bt for bt in self.backtraces if bt.panic), None)
        builder = self.backtrace_builder
        cpu = builder.panic_cpu
        return None if cpu is None else builder.for_cpu(cpu)

    def backtrace_of(self, task_address: int) -> Backtrace:
        """The backtrace of any task (a running task's is its CPU's)."""
        from crashtui.analysis.backtraces import backtrace_of_task

        return backtrace_of_task(self, task_address)

    def with_inline_frames(self, bt: Backtrace) -> Backtrace:
        """A copy of `bt` with DWARF inline frames (Frame.inline=True) before each frame."""
        from crashtui.analysis.backtraces import add_inline_frames

        return add_inline_frames(self.kernel, bt)

    def symbolize(self, runtime_addr: int) -> tuple[str, int, str | None] | None:
        """(function, offset, module) of a runtime address, or None."""
        named = self.backtrace_builder.name(runtime_addr)
        return None if named is None else (named.function, named.offset, named.module)

    def source_line(self, runtime_addr: int) -> SourceLocation | None:
        """file:line of a runtime address (vmlinux DWARF, or a loaded module's .ko)."""
        return self.backtrace_builder.source(runtime_addr)

    def find_symbol(self, name: str) -> int | None:
        """Runtime address of a kernel symbol (vmlinux or the dump's kallsyms), else of a
        loaded module's symbol; None if unknown."""
        from crashtui.errors import CrashtuiError

        try:
            addr = self.kernel.symbol_or_none(name)
        except CrashtuiError:
            addr = None
        if addr is not None:
            return addr
        try:
            table = self.modules
            for mod in table.modules:
                addr = table.symbols(mod).lookup(name)
                if addr is not None:
                    return addr
        except CrashtuiError:
            pass
        return None

    def symbol_names(self, prefix: str, limit: int = 50) -> list[str]:
        """Up to `limit` kernel and module symbol names starting with `prefix`, sorted."""
        from crashtui.errors import CrashtuiError

        if not prefix:
            return []
        out: list[str] = []
        try:
            out += self.kernel.symbols.names_with_prefix(prefix, limit)
        except CrashtuiError:
            pass
        try:
            table = self.modules
            for mod in table.modules:
                out += [n for n in table.symbols(mod).names if n.startswith(prefix)]
        except CrashtuiError:
            pass
        return sorted(set(out))[:limit]

    def close(self) -> None:
        self.kernel.close()
