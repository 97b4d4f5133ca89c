"""sym: an address to its symbol and source line, or a symbol to its address, like crash.

`sym ffffffff9fca8a06` prints `ffffffff9fca8a06 (t) sysrq_handle_crash+22 FILE: LINE`: the
offset is decimal (crash's default output radix) and the line is that of the address itself.
Module addresses print `(m) name+off [module]` (names from the modules layer when present).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.debuginfo.symbols import crash_name
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.debuginfo.symbols import Symbol

SHT_NOBITS = 8


def type_letter(session: Session, sym: Symbol) -> str:
    """nm-style type letter of a vmlinux symbol (t/T text, d/D data, b/B bss, r/R rodata,
    W weak)."""
    known = session.kernel.symbol_type(sym.name)  # kallsyms' own letter (no vmlinux)
    if known is not None:
        return known
    if sym.binding == "weak":
        return "W" if sym.kind == "func" else "V"
    if sym.kind == "func":
        letter = "t"
    else:
        letter = "d"
        vm = session.kernel.vmlinux
        sec = vm.image.section_at(sym.address) if vm is not None else None
        if sec is not None:
            if sec.type == SHT_NOBITS:
                letter = "b"
            elif not sec.flags & 1:  # SHF_WRITE (vmlinux's .rodata is WA: nm and crash say D)
                letter = "r" if not sec.flags & 4 else "t"  # SHF_EXECINSTR
    return letter.upper() if sym.binding == "global" else letter


def _parse_address(text: str) -> int | None:
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        return None
    return int(t, 16)


def sym_line(session: Session, addr: int, name: str | None = None) -> str:
    """One `sym` output line for a runtime address (CommandError if no symbol covers it);
    `name` is the symbol asked for (an alias at the same address keeps its own name)."""
    k = session.kernel
    hit = None
    if addr < k.arch.image_start:  # x86-64's per-CPU offsets do not move with KASLR
        try:
            hit = k.symbols.nearest(addr)
        except CrashtuiError:
            hit = None
    elif _in_vmlinux(session, addr):
        hit = k.symbolize(addr)
    if hit is not None:
        sym, off = hit
        if name is not None and off == 0:
            sym = k.symbols.lookup(name) or sym
        text = f"{addr:x} ({type_letter(session, sym)}) {crash_name(sym.name)}" + (
            f"+{off}" if off else "")
        src = session.source_line(addr)
        return text + (f" {src.file}: {src.line}" if src is not None else "")
    named = session.symbolize(addr)
    if named is None:
        raise CommandError(f"sym: invalid address: {addr:x}")
    function, off, module = named
    text = f"{addr:x} ({'m' if module else 't'}) {function}" + (f"+{off}" if off else "")
    if module:
        text += f" [{module}]"
    src = session.source_line(addr)
    return text + (f" {src.file}: {src.line}" if src is not None else "")


def _in_vmlinux(session: Session, addr: int) -> bool:
    """True for a runtime address inside the kernel image's sections."""
    k = session.kernel
    vm = k.vmlinux
    if vm is None:  # in-memory kallsyms: the image runs from _text to _end
        lo, hi = k.symbol_or_none("_text"), k.symbol_or_none("_end")
        return lo is not None and hi is not None and lo <= addr < hi
    return vm.image.section_at(addr - k.kaslr_offset) is not None


def _module_symbol(session: Session, name: str) -> int | None:
    """The address of a loaded module's symbol `name` (its ELF symtab in memory)."""
    try:
        table = session.modules
        return next((a for mod in table.modules
                     if (a := table.symbols(mod).lookup(name)) is not None), None)
    except CrashtuiError:
        return None


@command("sym", "translate an address to a symbol and source line, or a symbol to an address",
         "sym ADDRESS | SYMBOL ...")
def cmd_sym(session: Session, args: list[str]) -> list[str]:
    if not args:
        raise CommandError("sym: needs an address or a symbol name")
    out: list[str] = []
    for arg in args:
        addr = session.kernel.symbol_or_none(arg)
        if addr is not None:
            out.append(sym_line(session, addr, arg))
            continue
        addr = _parse_address(arg)
        if addr is None:
            addr = _module_symbol(session, arg)
        if addr is None:
            raise CommandError(f"sym: {arg}: symbol not found")
        out.append(sym_line(session, addr))
    return out
