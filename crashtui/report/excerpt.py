"""The faulting frame's source lines (±10 around the marked line), or its disassembly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import ExceptionFrame, SourceLocation

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.analysis.source import SourceResult
    from crashtui.kernel.modules import ModuleTable

CONTEXT = 10
MAX_INSNS_BEFORE = 24
MAX_INSNS_AFTER = 8


@dataclass
class FaultSite:
    """Where the crash happened: the triage's culprit (crashtui.analysis.culprit), with what
    the report's excerpt needs to find its source or disassembly."""

    reason: str  # "exception RIP" | "first frame outside the panic path" | ...
    address: int  # the RIP, or the frame's return address
    lookup: int  # the address to look up in the line table (return address - 1)
    function: str | None
    offset: int
    module: str | None
    frame_index: int | None
    exception: ExceptionFrame | None
    source: SourceLocation | None = None
    location: str | None = None  # the culprit's file:line as the triage prints it
    pid: int | None = None  # the task whose backtrace holds it
    command: str | None = None

    @property
    def symbol(self) -> str:
        """`function+0x16`, or the raw address."""
        if self.function is None:
            return f"{self.address:#x}"
        return f"{self.function}+{self.offset:#x}" if self.offset else self.function


@dataclass(frozen=True)
class ExcerptLine:
    """One line of a source or disassembly excerpt."""

    number: int | None  # source line number (None for disassembly)
    text: str
    marked: bool  # the faulting line / instruction


@dataclass
class Excerpt:
    """Source lines around the faulting line, or the disassembly of the faulting function."""

    kind: str  # "source" | "disassembly"
    title: str  # the file shown, or the command that produced the disassembly
    language: str  # fence info string: "c", "asm", "text"
    lines: list[ExcerptLine]
    origin: str = ""  # where the source file was found ("tree DIR", "next to MOD.ko", ...)


def module_files(session: Session) -> dict[str, str]:
    """The .ko files whose debug info the session uses, by module name (crash's mod -s)."""
    table: ModuleTable | None = session.__dict__.get("modules")  # only if read already
    if table is None:
        return {}
    return {name: str(di.path) for name, di in sorted(table.debuginfo.items())}


def fault_excerpt(session: Session, site: FaultSite, sources: Sequence[str] = ()) -> Excerpt | None:
    """Source when a file is found, else the disassembly of the faulting function."""
    if site.source is not None:
        found = read_source(session, site.source, site.module, sources)
        if found is not None:
            excerpt = source_excerpt(site.source, found[0])
            excerpt.origin = found[1]
            return excerpt
    return disassembly(session, site)


def source_excerpt(loc: SourceLocation, text: str, context: int = CONTEXT) -> Excerpt:
    """Lines loc.line-context .. loc.line+context of text, the faulting line marked."""
    lines = text.splitlines()
    lo, hi = max(1, loc.line - context), min(len(lines), loc.line + context)
    rows = [ExcerptLine(n, lines[n - 1].expandtabs(8), n == loc.line) for n in range(lo, hi + 1)]
    return Excerpt("source", f"{loc.file}:{loc.line}", "c", rows)


def read_source(session: Session, loc: SourceLocation, module: str | None = None,
                sources: Sequence[str] = ()) -> tuple[str, str] | None:
    """(text, origin) of loc's file, found like the app finds it (--source, CRASHTUI_SOURCE,
    next to a module's .ko, the DWARF path)."""
    from crashtui.analysis.source import SourceFinder
    from crashtui.analysis.source import read_source as read_text

    finder = SourceFinder(list(sources), release=session.kernel.release)
    for name, path in module_files(session).items():
        finder.add_module(name, path)
    found = finder.find(loc.file, loc.comp_dir, module=module, fetch=True)
    if found.path is None:
        return None
    try:
        text = read_text(found.path)
    except OSError:
        return None
    return text, found.origin + _version_note(session, found)


def _version_note(session: Session, found: SourceResult) -> str:
    """` (⚠ linux-source-6.1.tar.xz is 6.1.190, the kernel is 6.1.192)` when the tree or
    tarball the file came from is of another kernel version than the dump's, else ""."""
    from crashtui.analysis.source import kernel_upstream_version, version_note

    place = (found.tarball.path.name if found.tarball is not None
             else str(found.tree) if found.tree is not None else "")
    fields = session.summary.fields
    note = version_note(place, found.tree_version,
                        kernel_upstream_version(fields.get("RELEASE"), fields.get("VERSION")))
    return f" (⚠ {note})" if note else ""


def disassembly(session: Session, site: FaultSite) -> Excerpt | None:
    """`dis -l FUNCTION` from the command layer, around the faulting instruction."""
    if not site.function:
        return None
    from crashtui.commands import dis, run_command  # noqa: F401 - dis alone, not all 30 modules

    command = f"dis -l {site.function}"
    out = run_command(session, command)  # CommandError/CrashtuiError: a note in the report
    if not out:
        return None
    return Excerpt("disassembly", command, "text", _mark_dis(out, site.address, site.reason))


def _mark_dis(lines: list[str], address: int, reason: str) -> list[ExcerptLine]:
    """crash's `dis` lines around the faulting instruction (the call before a return address),
    marked; at most MAX_INSNS_BEFORE / MAX_INSNS_AFTER instructions either side."""
    addrs = [_line_address(line) for line in lines]
    target = None
    if reason == "exception RIP":
        target = next((i for i, a in enumerate(addrs) if a == address), None)
    else:
        target = max((i for i, a in enumerate(addrs) if a is not None and a < address),
                     default=None)
    at = target if target is not None else 0
    insns = [i for i, a in enumerate(addrs) if a is not None]
    k = insns.index(at) if at in insns else 0
    lo = insns[max(0, k - MAX_INSNS_BEFORE)] if insns else 0
    while lo > 0 and addrs[lo - 1] is None:  # keep the source line above the first instruction
        lo -= 1
    hi = insns[min(len(insns) - 1, k + MAX_INSNS_AFTER)] + 1 if insns else len(lines)
    return [ExcerptLine(None, lines[i], i == target) for i in range(lo, hi)]


def _line_address(line: str) -> int | None:
    head = line.split(None, 1)[0] if line.strip() else ""
    if not head.startswith("0x"):
        return None
    try:
        return int(head, 16)
    except ValueError:
        return None
