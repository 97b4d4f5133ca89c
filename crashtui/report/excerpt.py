"""The faulting frame's source lines (±10 around the marked line), or its disassembly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import SourceLocation
from crashtui.errors import CrashtuiError
from crashtui.report.gather import Excerpt, ExcerptLine, FaultSite

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

CONTEXT = 10
MAX_INSNS_BEFORE = 24
MAX_INSNS_AFTER = 8


def fault_excerpt(session: Session, site: FaultSite) -> Excerpt | None:
    """Source when a file is found, else the disassembly of the faulting function."""
    if site.source is not None:
        text = read_source(session, site.source, site.module)
        if text is not None:
            return source_excerpt(site.source, text)
    return disassembly(session, site)


def source_excerpt(loc: SourceLocation, text: str, context: int = CONTEXT) -> Excerpt:
    """Lines loc.line-context .. loc.line+context of text, the faulting line marked."""
    lines = text.splitlines()
    lo, hi = max(1, loc.line - context), min(len(lines), loc.line + context)
    rows = [ExcerptLine(n, lines[n - 1].expandtabs(8), n == loc.line) for n in range(lo, hi + 1)]
    return Excerpt("source", f"{loc.file}:{loc.line}", "c", rows)


def read_source(session: Session, loc: SourceLocation, module: str | None = None) -> str | None:
    """The text of loc's file, found like the app finds it (--source, CRASHTUI_SOURCE, DWARF)."""
    from crashtui.analysis.source import SourceFinder
    from crashtui.analysis.source import read_source as read_text

    finder = getattr(session, "source_finder", None)
    if not isinstance(finder, SourceFinder):
        finder = SourceFinder(release=session.kernel.release)
    found = finder.find(loc.file, loc.comp_dir, module=module, fetch=True)
    if found.path is None:
        return None
    try:
        return read_text(found.path)
    except OSError:
        return None


def disassembly(session: Session, site: FaultSite) -> Excerpt | None:
    """`dis -l FUNCTION` from the command layer, or capstone over the function's bytes."""
    if site.function:
        from crashtui.commands import run_command

        command = f"dis -l {site.function}"
        try:
            out = run_command(session, command)
        except (CrashtuiError, LookupError):
            out = []
        if out:
            return Excerpt("disassembly", command, "text", _mark_dis(out, site.address,
                                                                    site.reason))
    return _capstone(session, site)


def _mark_dis(lines: list[str], address: int, reason: str) -> list[ExcerptLine]:
    """crash's `dis` lines, the faulting instruction marked (the call before a return address)."""
    addrs = [_line_address(line) for line in lines]
    target = None
    if reason == "exception RIP":
        target = next((i for i, a in enumerate(addrs) if a == address), None)
    else:
        prev = None
        for i, a in enumerate(addrs):
            if a is not None and a >= address:
                target = prev
                break
            if a is not None:
                prev = i
    return [ExcerptLine(None, line, i == target) for i, line in enumerate(lines)]


def _line_address(line: str) -> int | None:
    head = line.split(None, 1)[0] if line.strip() else ""
    if not head.startswith("0x"):
        return None
    try:
        return int(head, 16)
    except ValueError:
        return None


def _capstone(session: Session, site: FaultSite) -> Excerpt | None:
    """Disassemble the faulting function from the dump's memory (AT&T syntax, like crash)."""
    import capstone  # type: ignore[import-untyped,unused-ignore]

    kernel = session.kernel
    start = site.address - site.offset
    size = 0
    hit = kernel.symbolize(site.address)
    if hit is not None and hit[0].name == site.function:
        size = hit[0].size
    if not size:
        size = site.offset + 64
    size = min(size, 16384)
    code = kernel.read(start, size)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    insns = list(md.disasm(code, start))
    if not insns:
        return None
    if site.reason == "exception RIP":
        mark = next((i for i, x in enumerate(insns) if x.address == site.address), None)
    else:
        mark = next((i for i, x in enumerate(insns) if x.address + x.size == site.address), None)
    at = mark if mark is not None else 0
    lo, hi = max(0, at - MAX_INSNS_BEFORE), min(len(insns), at + MAX_INSNS_AFTER + 1)
    name = site.function or "?"
    rows = []
    for i in range(lo, hi):
        x = insns[i]
        off = x.address - start
        where = f"<{name}+{off}>" if off else f"<{name}>"
        rows.append(ExcerptLine(None, f"{x.address:#x} {where}:\t{x.mnemonic:<6} {x.op_str}"
                                .rstrip(), i == mark))
    return Excerpt("disassembly", f"disassembly of {name} (capstone)", "text", rows)
