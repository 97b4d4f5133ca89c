"""The app's one door to the analysis: a thread-safe facade over one Session.

Every call may be slow and runs in a worker; one lock serialises access to the Session. The
facade returns the model's own dataclasses (Backtrace, PsTable, KmemInfo, ModuleTable, ...)
and owns the app's SourceFinder (--source, the tarballs, the .ko directories).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crashtui.analysis.backtrace import Backtrace, Frame, SourceLocation
from crashtui.analysis.source import Progress, SourceFinder, SourceResult
from crashtui.commands import command_names, run_command
from crashtui.commands.context import set_context_address, set_context_frame
from crashtui.tui.frameref import FrameRef

if TYPE_CHECKING:
    from crashtui.analysis.regnotes import FrameRegisters
    from crashtui.analysis.session import Session
    from crashtui.analysis.summary import Summary
    from crashtui.analysis.triage import Triage
    from crashtui.analysis.variables import FrameVariables, ValueNode
    from crashtui.kernel.mm import KmemInfo
    from crashtui.kernel.modules import ModuleTable
    from crashtui.kernel.ps import PsTable
    from crashtui.kernel.sched import RunQueue
    from crashtui.kernel.slab import SlabCacheList
    from crashtui.kernel.zones import ZoneTable


class SessionFacade:
    """Thread-safe access to one Session for the app's workers."""

    def __init__(self, session: Session, source: str | None = None,
                 modules: Sequence[str] = (), cache_root: Path | None = None,
                 auto_source: bool = True) -> None:
        self.session = session
        self.lock = threading.RLock()
        self.sources = (source,) if source else ()
        self.module_dirs = [Path(m) for m in modules]
        self.finder = SourceFinder(list(self.sources), cache_root=cache_root,
                                   release=session.kernel.release, module_dirs=modules,
                                   auto=auto_source)
        self._debug: tuple[str, str | None] | None = None
        self._slabs: SlabCacheList | None = None
        self._zones: ZoneTable | None = None

    # -- commands ---------------------------------------------------------------------------

    def run(self, line: str) -> list[str]:
        """Output lines of a crash-style command (raises CommandError / CrashtuiError)."""
        with self.lock:
            return run_command(self.session, line)

    def set_context(self, task_address: int | None) -> None:
        """The command line's current task (crash's `set`; None: the panic task): the app
        sets it to the task whose backtrace it shows. A dict write: no lock needed."""
        set_context_address(self.session, task_address)

    def set_frame(self, number: int | None, exception: bool = False) -> None:
        """The frame selected in the current task's backtrace: `locals` with no frame number
        shows it (None: the culprit frame). A dict write: no lock needed."""
        set_context_frame(self.session, number, exception)

    def context_label(self) -> str:
        """`PID 127 init`: the current task, for the command line's prompt."""
        from crashtui.commands.task import current_task

        with self.lock:
            t = current_task(self.session)
        return f"PID {t.pid} {t.comm}"

    def complete(self, text: str) -> list[str]:
        """The lines a command line can become on Tab (crashtui.commands.complete)."""
        from crashtui.commands.complete import complete

        with self.lock:
            return complete(self.session, text)

    def command_names(self) -> list[str]:
        return command_names()

    # -- facts ------------------------------------------------------------------------------

    def summary(self) -> Summary:
        with self.lock:
            return self.session.summary

    def triage(self, refresh: bool = False) -> Triage:
        """The crash's triage, built once; refresh=True builds it again (after a .ko was
        loaded: the culprit gains its file:line)."""
        with self.lock:
            if refresh:  # Session.triage and .hang are cached properties: build them again
                self.session.__dict__.pop("triage", None)
                self.session.__dict__.pop("hang", None)
            return self.session.triage

    def debug_info(self) -> tuple[str, str | None]:
        """The line saying which debug info is used (a vmlinux, or the dump's own kallsyms,
        BTF and ORC), and how to get source lines when there are none (else None)."""
        if self._debug is None:
            with self.lock:
                ds = self.session.kernel.debug_sources
                self._debug = (ds.describe(), ds.hint())
        return self._debug

    def log_lines(self) -> list[str]:
        with self.lock:
            return self.session.log.lines()

    def ps(self) -> PsTable:
        """crash's `ps`: every task, its memory use and running mark, and what was unreadable."""
        with self.lock:
            return self.session.ps

    def kmem(self) -> KmemInfo:
        """crash's `kmem -i` rows."""
        with self.lock:
            return self.session.kmem

    def slab_caches(self) -> SlabCacheList:
        """crash's `kmem -s` data: every slab cache with its usage (read once)."""
        from crashtui.kernel.slab import slab_caches

        with self.lock:
            if self._slabs is None:
                self._slabs = slab_caches(self.session.kernel)
            return self._slabs

    def zones(self) -> ZoneTable:
        """crash's `kmem -z` data: each node's zones, sizes, watermarks, counters (read once)."""
        from crashtui.kernel.zones import memory_zones

        with self.lock:
            if self._zones is None:
                self._zones = memory_zones(self.session.kernel)
            return self._zones

    def run_queues(self) -> list[RunQueue]:
        """crash's `runq` data: each CPU's current task and queued RT/CFS tasks."""
        from crashtui.kernel.sched import run_queues

        with self.lock:
            return run_queues(self.session.kernel)

    def modules(self) -> ModuleTable:
        """The loaded modules, their .ko debug info and why the list may be incomplete."""
        with self.lock:
            table = self.session.modules
            table.modules  # noqa: B018 - read the list here, in the worker, under the lock
            return table

    def backtraces(self) -> list[Backtrace]:
        with self.lock:
            return [_with_sources(bt) for bt in self.session.backtraces]

    def panic_backtrace(self) -> Backtrace | None:
        """The panic CPU's backtrace alone (the first screen's; None: no panic CPU known),
        its frames' file:line not looked up yet (with_sources does)."""
        with self.lock:
            return self.session.panic_backtrace

    def with_sources(self, bt: Backtrace) -> Backtrace:
        """The backtrace with its frames' file:line looked up."""
        with self.lock:
            return _with_sources(bt)

    def backtrace_of(self, task: int) -> Backtrace:
        with self.lock:
            return _with_sources(self.session.backtrace_of(task))

    def frame_registers(self, bt: Backtrace, ref: FrameRef | None) -> FrameRegisters | None:
        """The annotated registers of a frames-pane row (None: a trace with no frame and no
        saved registers): an exception row's saved set, a frame's own, else the CPU's."""
        from crashtui.analysis.regnotes import RegisterAnnotator, frame_registers

        with self.lock:
            annotator = self.__dict__.get("_register_annotator")
            if annotator is None:
                annotator = self.__dict__["_register_annotator"] = \
                    RegisterAnnotator(self.session)
            if ref is not None and (ref.exception is not None or ref.frame is not None):
                return frame_registers(self.session, annotator, bt, ref.frame, ref.exception)
            if bt.start is not None:
                return frame_registers(self.session, annotator, bt, None, bt.start)
            frame = next((f for f in bt.frames if not f.inline), None)
            return None if frame is None else frame_registers(self.session, annotator, bt,
                                                                frame)

    # -- frame variables --------------------------------------------------------------------

    def frame_variables(self, ref: FrameRef) -> FrameVariables | None:
        """The arguments and locals of a frames-pane row (crashtui.kernel.framevars)."""
        from crashtui.kernel.framevars import frame_variables

        if ref.frame is None:
            return None
        with self.lock:
            return frame_variables(self.session, ref.backtrace, ref.frame,
                                   exception=ref.exception is not None)

    def expand_value(self, ctype: Any, data: bytes | None, address: int | None
                     ) -> list[ValueNode]:
        """The members/elements of a variable's value, or of the struct a pointer points to."""
        from crashtui.kernel.framevars import expand

        with self.lock:
            return expand(self.session, ctype, data, address)

    # -- addresses --------------------------------------------------------------------------

    def symbolize(self, addr: int) -> str | None:
        """`function+0xoff [module]` of an address, or None."""
        with self.lock:
            hit = self.session.symbolize(addr)
        if hit is None:
            return None
        function, offset, module = hit
        text = f"{function}+{offset:#x}" if offset else function
        return f"{text} [{module}]" if module else text

    def source_line(self, addr: int) -> SourceLocation | None:
        with self.lock:
            return self.session.source_line(addr)

    def frame_source(self, frame: Frame) -> SourceLocation | None:
        """A frame's file:line. Under the lock: the model looks it up on first read, and a
        second thread reading it meanwhile would see None (backtrace.py's _get_source)."""
        with self.lock:
            return frame.source

    def location(self, ref: FrameRef) -> SourceLocation | None:
        """The source location of a row (return addresses looked up at pc - 1)."""
        with self.lock:
            if ref.exception is None and ref.frame is not None and ref.frame.source is not None:
                return ref.frame.source
            if ref.exception is not None and ref.exception.source is not None:
                return ref.exception.source
            return self.source_line(ref.lookup)

    def function_of(self, ref: FrameRef) -> str | None:
        """The function name of a row (exception RIPs symbolized)."""
        if ref.exception is not None:
            if ref.exception.function:
                return ref.exception.function
            with self.lock:
                hit = self.session.symbolize(ref.exception.rip)
            return hit[0] if hit else None
        return ref.frame.function if ref.frame is not None else None

    def module_of(self, ref: FrameRef) -> str | None:
        if ref.exception is None:
            return ref.frame.module if ref.frame is not None else None
        if ref.exception.module:
            return ref.exception.module
        with self.lock:
            hit = self.session.symbolize(ref.pc)
        return hit[2] if hit else None

    def symbol_names(self, prefix: str, limit: int = 30) -> list[str]:
        """Kernel and module symbol names starting with prefix (for the palette)."""
        with self.lock:
            return self.session.symbol_names(prefix, limit)

    def symbol_address(self, name: str) -> int | None:
        """Runtime address of a kernel (or module) symbol, None if unknown."""
        with self.lock:
            return self.session.find_symbol(name)

    def disassembly(self, function: str) -> list[str]:
        """crash's `dis -l FUNCTION` output."""
        return self.run(f"dis -l {function}")

    # -- source files -----------------------------------------------------------------------

    def find_source(self, loc: SourceLocation, module: str | None,
                    progress: Progress | None = None, fetch: bool = True) -> SourceResult:
        """Where the file of a location is (reads tarballs when fetch=True: slow)."""
        return self.finder.find(loc.file, loc.comp_dir, module, progress=progress, fetch=fetch)

    # -- modules ----------------------------------------------------------------------------

    def load_module(self, name: str, ko: Path) -> None:
        """Load a module's .ko debug info (like crash's mod -s)."""
        with self.lock:
            self.session.load_module_debuginfo(name, ko)
        self.finder.add_module(name, ko)

    def load_module_dirs(self) -> list[str]:
        """Load the .ko files of the --modules dirs that match loaded modules (once: the
        app's, not also the command line's); returns the problems."""
        problems: list[str] = []
        for d in self.module_dirs:
            with self.lock:
                problems += self.session.load_modules_dir(d)
        with self.lock:
            loaded = dict(self.session.modules.debuginfo)
        for name, di in loaded.items():
            self.finder.add_module(name, di.path)
        return problems

    # -- export -----------------------------------------------------------------------------

    def export(self, path: str) -> str:
        """Write the Markdown report (its source excerpt found with --source, like the
        app's); returns the path written."""
        from crashtui.report.markdown import ReportOptions, write_report

        target = Path(path).expanduser()
        with self.lock:
            write_report(self.session, target, ReportOptions(sources=self.sources))
        return str(target)


def _with_sources(bt: Backtrace) -> Backtrace:
    """The backtrace with every frame's file:line looked up now, in the worker, under the lock
    (the model defers them to first use)."""
    for frame in bt.frames:
        frame.source  # noqa: B018
    return bt
