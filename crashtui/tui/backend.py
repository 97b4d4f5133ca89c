"""The app's only door to the analysis: Session facts, commands and source, thread-safe.

Every call may be slow and runs in a worker; a lock serialises access to the Session. Pieces
the backend does not have yet raise `Missing`, which the panes show as "not available yet".
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame, Frame
from crashtui.analysis.source import Progress, SourceFinder, SourceResult


class Missing(Exception):
    """A backend piece that has not landed yet."""


class Location(Protocol):
    """A DWARF source location (SourceLocation or debuginfo's SourceLine)."""

    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...


@dataclass
class FrameRef:
    """A row of the frames pane: a frame, or the exception RIP of an exception frame."""

    backtrace: Backtrace
    frame: Frame | None
    exception: ExceptionFrame | None = None

    @property
    def pc(self) -> int:
        if self.exception is not None:
            return self.exception.rip
        return self.frame.pc if self.frame is not None else 0

    @property
    def exact(self) -> bool:
        """True when pc is the faulting instruction, not a return address."""
        if self.exception is not None:
            return True
        return self.frame is not None and not getattr(self.frame, "return_address", True)


@dataclass
class PsRow:
    """One task as `ps` prints it (memory columns empty when `ps` is not available)."""

    pid: int
    ppid: int
    cpu: int
    task: int
    state: str
    comm: str
    active: bool = False
    mem: str = ""
    vsz: str = ""
    rss: str = ""
    kthread: bool = False


@dataclass
class ModuleRow:
    """One loaded module, with what marks it as tainting the kernel."""

    name: str
    base: int | None
    size: int | None
    object_file: str
    flags: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def tainting(self) -> bool:
        return bool(self.flags.strip("-"))


@dataclass
class KmemRow:
    """One `kmem -i` row."""

    label: str
    pages: str
    total: str
    percent: int | None
    of: str


_PS_LINE = re.compile(r"^(?P<act>>?)\s*(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<cpu>\d+)\s+"
                      r"(?P<task>[0-9a-f]+)\s+(?P<st>\S+)\s+(?P<mem>[\d.]+)\s+(?P<vsz>\d+)\s+"
                      r"(?P<rss>\d+)\s(?P<comm>.*)$")
_KMEM_LINE = re.compile(r"^\s*(?P<label>[A-Z][A-Z ]*?)\s{2,}(?P<pages>\d+)\s+(?P<total>\d+(?:\.\d+)?"
                        r"(?: [KMGT]?B)?)\s+(?P<rest>.*)$")
_MOD_LINE = re.compile(r"^(?P<mod>[0-9a-f]{8,})\s+(?P<name>\S+)\s+(?P<base>[0-9a-f]{8,})\s+"
                       r"(?P<size>\d+)\s+(?P<obj>.*?)\s*$")
TAINT_ATTRS = ("taint_flags", "taints", "flags", "taint")


def _symbol_text(hit: object) -> str | None:
    """`name+0xoff` from whatever a symbolizer returned."""
    if hit is None:
        return None
    if isinstance(hit, str):
        return hit
    if isinstance(hit, tuple) and len(hit) in (2, 3):
        sym, off = hit[0], hit[1]
        name = getattr(sym, "name", sym)
        text = f"{name}+{off:#x}" if off else str(name)
        return f"{text} [{hit[2]}]" if len(hit) == 3 and hit[2] else text
    name = getattr(hit, "name", None)
    if name is not None:
        off = getattr(hit, "offset", 0) or 0
        return f"{name}+{off:#x}" if off else str(name)
    return str(hit)


class Backend:
    """Thread-safe access to one Session for the app's workers."""

    def __init__(self, session: Any, source: str | None = None,
                 modules: Sequence[str] = (), cache_root: Path | None = None,
                 auto_source: bool = True) -> None:
        self.session = session
        self.lock = threading.RLock()
        self.module_dirs = [Path(m) for m in modules]
        release = None
        try:
            release = session.kernel.release
        except Exception:  # noqa: BLE001 - only used to guess /usr/src/linux-source-X.Y
            release = None
        self.finder = SourceFinder([source] if source else [], cache_root=cache_root,
                                   release=release, module_dirs=modules, auto=auto_source)
        self.loaded_modules: dict[str, Path] = {}
        self._debug: tuple[str, str | None] | None = None

    # -- generic ---------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """True if the Session offers `name` (the backend piece has landed)."""
        return hasattr(type(self.session), name) or name in getattr(self.session, "__dict__", {})

    def attr(self, name: str) -> Any:
        """session.<name> under the lock; Missing if the Session has no such fact yet."""
        if not self.has(name):
            raise Missing(f"session.{name} is not available yet")
        with self.lock:
            return getattr(self.session, name)

    def call(self, name: str, *args: Any) -> Any:
        """session.<name>(*args) under the lock."""
        fn = self.attr(name)
        with self.lock:
            return fn(*args)

    def has_command(self, name: str) -> bool:
        """True if the command layer knows `name`."""
        from crashtui.commands import command_names

        return name in command_names()

    def run(self, line: str) -> list[str]:
        """Output lines of a crash-style command (raises CommandError / CrashtuiError)."""
        from crashtui.commands import run_command

        with self.lock:
            return run_command(self.session, line)

    def complete(self, text: str) -> list[str]:
        """The lines a command line can become on Tab (command names, kernel and module
        symbols, struct names, module names: crashtui.commands.complete)."""
        from crashtui.commands.complete import complete

        with self.lock:
            return complete(self.session, text)

    def command_names(self) -> list[str]:
        from crashtui.commands import command_names

        return command_names()

    # -- facts -----------------------------------------------------------------------------

    def summary(self) -> Any:
        return self.attr("summary")

    def triage(self, refresh: bool = False) -> Any:
        """The crash's triage (crashtui.analysis.triage.Triage), built once; refresh=True
        builds it again (after a .ko was loaded: the culprit gains its file:line)."""
        from crashtui.commands.triage import session_triage

        with self.lock:
            if refresh:  # session_triage keeps it on the session under this name
                self.session.__dict__.pop("_crashtui_triage", None)
            return session_triage(self.session)

    def debug_info(self) -> tuple[str, str | None]:
        """The line saying which debug info is used (a vmlinux, or the dump's own kallsyms,
        BTF and ORC), and how to get source lines when there are none (else None)."""
        if self._debug is None:
            with self.lock:
                ds = self.session.kernel.debug_sources
                self._debug = (ds.describe(), ds.hint())
        return self._debug

    def log_lines(self) -> list[str]:
        log = self.attr("log")
        with self.lock:
            return list(log.lines())

    def tasks(self) -> list[Any]:
        return list(self.attr("tasks").tasks)

    def backtraces(self) -> list[Backtrace]:
        return list(self.attr("backtraces"))

    def backtrace_of(self, task: int) -> Backtrace:
        if self.has("backtrace_of"):
            return self.call("backtrace_of", task)  # type: ignore[no-any-return]
        for bt in self.backtraces():
            if bt.task == task:
                return bt
        raise Missing("session.backtrace_of (backtraces of tasks not running on a CPU) "
                      "is not available yet")

    def symbolize(self, addr: int) -> str | None:
        """`function+0xoff` of an address."""
        if self.has("symbolize"):
            return _symbol_text(self.call("symbolize", addr))
        with self.lock:
            try:
                return _symbol_text(self.session.kernel.symbolize(addr))
            except Exception:  # noqa: BLE001 - a name is only decoration here
                return None

    def location(self, ref: FrameRef) -> Location | None:
        """The source location of a frame (return addresses looked up at pc - 1)."""
        if ref.exception is None and ref.frame is not None and ref.frame.source is not None:
            return ref.frame.source
        if not self.has("source_line"):
            return None
        addr = ref.pc if ref.exact else ref.pc - 1
        loc = self.call("source_line", addr)
        return loc if loc is not None and getattr(loc, "file", None) else None

    def function_of(self, ref: FrameRef) -> str | None:
        """The function name of a row (exception RIPs symbolized)."""
        if ref.exception is not None:
            sym = self.symbolize(ref.exception.rip)
            return sym.split("+")[0] if sym else None
        return ref.frame.function if ref.frame is not None else None

    def module_of(self, ref: FrameRef) -> str | None:
        if ref.frame is not None and ref.exception is None:
            return ref.frame.module
        sym = self.symbolize(ref.pc) or ""
        m = re.search(r"\[(\S+)\]$", sym)
        return m.group(1) if m else None

    def disassembly(self, function: str) -> list[str]:
        """crash's `dis -l FUNCTION` output."""
        if not self.has_command("dis"):
            raise Missing("disassembly (the `dis` command) is not available yet")
        return self.run(f"dis -l {function}")

    def find_source(self, loc: Location, module: str | None,
                    progress: Progress | None = None, fetch: bool = True) -> SourceResult:
        """Where the file of a location is (reads tarballs when fetch=True: slow)."""
        return self.finder.find(loc.file, getattr(loc, "comp_dir", None), module,
                                progress=progress, fetch=fetch)

    def prefetch_sources(self, backtraces: Sequence[Backtrace], progress: Progress) -> None:
        """Read every frame's source file out of a tarball in one pass."""
        locs: list[tuple[str, str | None]] = []
        for bt in backtraces:
            for fr in bt.frames:
                if fr.source is not None:
                    locs.append((fr.source.file, fr.source.comp_dir))
        if locs:
            self.finder.prefetch(locs, progress)

    def kmem(self) -> list[KmemRow]:
        """`kmem -i` rows."""
        if not self.has_command("kmem"):
            raise Missing("kmem -i is not available yet")
        rows: list[KmemRow] = []
        for line in self.run("kmem -i"):
            m = _KMEM_LINE.match(line)
            if not m:
                continue
            rest = m.group("rest").strip()
            pm = re.match(r"(\d+)%\s*(.*)", rest)
            rows.append(KmemRow(m.group("label").strip(), m.group("pages"), m.group("total"),
                                int(pm.group(1)) if pm else None,
                                pm.group(2) if pm else rest))
        return rows

    def ps(self) -> list[PsRow]:
        """Every task, from `ps` when the command exists, else from session.tasks."""
        tasks = {t.address: t for t in self.tasks()}
        rows: list[PsRow] = []
        if self.has_command("ps"):
            for line in self.run("ps"):
                m = _PS_LINE.match(line)
                if not m:
                    continue
                addr = int(m.group("task"), 16)
                t = tasks.get(addr)
                comm = t.comm if t is not None else m.group("comm").strip().strip("[]")
                rows.append(PsRow(int(m.group("pid")), int(m.group("ppid")),
                                  int(m.group("cpu")), addr, m.group("st"), comm,
                                  m.group("act") == ">", m.group("mem"), m.group("vsz"),
                                  m.group("rss"), t.is_kthread if t is not None else False))
            if rows:
                return rows
        for t in tasks.values():
            rows.append(PsRow(t.pid, t.ppid, t.cpu, t.address, t.state_code, t.comm,
                              False, kthread=t.is_kthread))
        return rows

    def modules(self) -> list[ModuleRow]:
        """The loaded modules, flagged when they taint the kernel."""
        if self.has("modules"):
            table = self.attr("modules")
            with self.lock:
                mods = list(getattr(table, "modules", table))
                loaded = getattr(table, "debuginfo", {})
            rows = []
            for m in mods:
                flags = ""
                for a in TAINT_ATTRS:
                    v = getattr(m, a, None)
                    if v and isinstance(v, str):
                        flags = v
                        break
                name = str(getattr(m, "name", "?"))
                di = loaded.get(name) if isinstance(loaded, dict) else None
                obj = getattr(di, "path", None) or self.loaded_modules.get(name) or "(not loaded)"
                rows.append(ModuleRow(name, getattr(m, "base", None), getattr(m, "size", None),
                                      str(obj), flags))
            return rows
        if self.has_command("mod"):
            rows = []
            for line in self.run("mod"):
                mm = _MOD_LINE.match(line)
                if mm:
                    rows.append(ModuleRow(mm.group("name"), int(mm.group("base"), 16),
                                          int(mm.group("size")), mm.group("obj")))
            return rows
        raise Missing("the module list (session.modules / `mod`) is not available yet")

    def module_errors(self) -> list[str]:
        """Why the module list may be incomplete (a damaged or unreadable entry ended the
        walk), as `mod` prints them after the table; [] when it was read to its end."""
        if not self.has("modules"):
            return []
        table = self.attr("modules")
        with self.lock:
            return [str(e) for e in getattr(table, "errors", [])]

    def load_module(self, name: str, ko: Path) -> None:
        """Load a module's .ko debug info (like crash's mod -s)."""
        self.call("load_module_debuginfo", name, str(ko))
        self.loaded_modules[name] = ko
        self.finder.add_module(name, ko)

    def load_module_dirs(self) -> list[str]:
        """Load the .ko files of --modules dirs that match loaded modules; returns problems."""
        problems: list[str] = []
        if self.has("load_modules_dir"):
            for d in self.module_dirs:
                try:
                    problems += self.call("load_modules_dir", d)
                except Exception as exc:  # noqa: BLE001 - reported, the rest still loads
                    problems.append(str(exc))
            for d in self.module_dirs:
                self.finder.extra_module_dirs.append(d)
            return problems
        names = [r.name for r in self.modules()]
        for name, ko in self.find_module_kos(names).items():
            try:
                self.load_module(name, ko)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{ko}: {exc}")
        return problems

    def find_module_kos(self, names: Sequence[str]) -> dict[str, Path]:
        """The .ko files in the --modules dirs matching module names (- and _ alike)."""
        found: dict[str, Path] = {}
        for d in self.module_dirs:
            kos = list(d.glob("*.ko")) + list(d.glob("*/*.ko")) if d.is_dir() else []
            by_name = {ko.name.removesuffix(".ko").replace("-", "_"): ko for ko in kos}
            for n in names:
                ko = by_name.get(n.replace("-", "_"))
                if ko is not None and n not in found:
                    found[n] = ko
        return found

    def symbol_names(self, prefix: str, limit: int = 30) -> list[str]:
        """Kernel and module symbol names starting with prefix (for the palette)."""
        if not prefix:
            return []
        try:
            return list(self.call("symbol_names", prefix, limit))
        except Exception:  # noqa: BLE001 - no symbols: no suggestions
            return []

    def symbol_address(self, name: str) -> int | None:
        """Runtime address of a kernel (or module) symbol, None if unknown."""
        try:
            return self.call("find_symbol", name)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - unknown symbol
            return None

    def export(self, path: str) -> str:
        """Write the Markdown report; returns the path written."""
        try:
            mod = importlib.import_module("crashtui.report.markdown")
        except ImportError as exc:
            raise Missing("the Markdown report is not available yet") from exc
        write: Callable[[Any, str], Any] | None = getattr(mod, "write_report", None)
        if write is None:
            raise Missing("the Markdown report is not available yet")
        with self.lock:
            write(self.session, path)
        return path
