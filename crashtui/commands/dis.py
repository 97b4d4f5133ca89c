"""dis: disassemble a function or address range like crash (gdb's AT&T syntax), -l with lines.

Forms: `dis [-l] FUNCTION|ADDR` (a whole function when given its name or start, else one
instruction), `dis [-l] ADDR COUNT`, and `dis -r[l] ADDR` (from the start of the function up
to and including ADDR). Bytes come from the dump's memory (what ran: ftrace's patched nops
show as crash's `[FTRACE NOP]`), else from the vmlinux. Source lines print whenever they
change, from the vmlinux DWARF or a loaded module's .ko.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_DIS_BYTES = 1 << 16


def _code(session: Session, start: int, size: int) -> bytes:
    k = session.kernel
    try:
        return k.read(start, size)
    except CrashtuiError:
        pass
    vm = k.vmlinux
    if vm is not None:
        try:
            return vm.read_at(start - k.kaslr_offset, size)
        except CrashtuiError:
            pass
    raise CommandError(f"dis: cannot read the code at {start:x}")


def _module_symbol(session: Session, name: str) -> tuple[int, int] | None:
    """(address, size) of a module function named `name`."""
    try:
        table = session.modules
        for mod in table.modules:
            addr = table.symbols(mod).lookup(name)
            if addr is not None:
                hit = table.symbolize(addr)
                return addr, (hit.extent or hit.size) if hit is not None else 0
    except CrashtuiError:
        return None
    return None


def _function_bounds(session: Session, addr: int) -> tuple[int, int] | None:
    """[start, end) of the function holding `addr` (vmlinux symbol size, else module's)."""
    k = session.kernel
    hit = k.symbolize(addr)
    if hit is not None and hit[1] <= MAX_DIS_BYTES:
        sym, off = hit
        start = addr - off
        size = sym.size
        if size == 0 or off >= size:
            size = off + 1
        in_text = session.symbolize(addr)
        if in_text is not None and in_text[2] is None:
            return start, start + size
    try:
        mhit = session.modules.symbolize(addr)
    except CrashtuiError:
        mhit = None
    if mhit is not None:
        start = addr - mhit.offset
        return start, start + max(mhit.extent or mhit.size, mhit.offset + 1)
    return None


def _resolve(session: Session, text: str) -> tuple[int, tuple[int, int] | None]:
    """(address, function bounds when `text` names a function or its start)."""
    k = session.kernel
    addr = k.symbol_or_none(text)
    if addr is not None:
        try:
            sym = k.symbols.lookup(text)
        except CrashtuiError:
            sym = None
        size = sym.size if sym is not None and sym.size else 1
        return addr, (addr, addr + size)
    found = _module_symbol(session, text)
    if found is not None:
        addr, size = found
        return addr, (addr, addr + max(size, 1))
    name, plus, off = text.partition("+")
    if plus and name and not name.lower().startswith("0x"):  # symbol+offset (crash/gdb)
        try:
            offset = int(off, 0)  # decimal as crash prints it (+28), or 0x1c
        except ValueError:
            raise CommandError(f"dis: bad offset in {text}") from None
        base, _ = _resolve(session, name)
        addr = base + offset
        bounds = _function_bounds(session, addr)
        return addr, bounds if bounds is not None and bounds[0] == addr else None
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CommandError(f"dis: symbol not found: {text}")
    addr = int(t, 16)
    bounds = _function_bounds(session, addr)
    if bounds is not None and bounds[0] == addr:
        return addr, bounds
    return addr, None


def listing(session: Session, start: int, end: int, with_lines: bool,
            count: int = 0, through: int | None = None) -> list[str]:
    """Disassemble [start, end) (or `count` instructions, or up to and including `through`)."""
    size = min(max(end - start, 16), MAX_DIS_BYTES)
    if through is not None:
        size = min(through - start + 16, MAX_DIS_BYTES)
    code = _code(session, start, size)

    def symbolize(addr: int) -> tuple[str, int] | None:
        named = session.symbolize(addr)
        return None if named is None else (named[0], named[1])

    def line(addr: int) -> str | None:
        src = session.source_line(addr)
        return None if src is None else f"{src.file}: {src.line}"

    try:
        from crashtui.debuginfo import disasm
    except ImportError:
        return _plain_listing(code, start, end, count, through)
    if session.kernel.arch.name == "arm64":  # crashtui.arch: A64, not x86-64
        from crashtui.debuginfo import disasm_arm64

        insns = disasm_arm64.disassemble(code, start)
    else:
        insns = disasm.disassemble(code, start)
    if through is not None:
        insns = [i for i in insns if i.address <= through]
    elif count:
        insns = insns[:count]
    else:
        insns = [i for i in insns if i.address < end]
    return disasm.format_listing(insns, symbolize, line if with_lines else None)


def _plain_listing(code: bytes, start: int, end: int, count: int,
                   through: int | None) -> list[str]:
    """Capstone's own AT&T text, for when the GNU-style formatter is unavailable."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    out = []
    for n, ins in enumerate(md.disasm(code, start)):
        if (through is not None and ins.address > through) or (
                through is None and (count and n >= count or not count and ins.address >= end)):
            break
        out.append(f"0x{ins.address:x}:\t{ins.mnemonic:<6} {ins.op_str}")
    return out


@command("dis", "disassemble a function or address (-l source lines, -r up to an address)",
         "dis [-l] [-r] FUNCTION|ADDRESS [COUNT]")
def cmd_dis(session: Session, args: list[str]) -> list[str]:
    flags: set[str] = set()
    rest: list[str] = []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1:
            for ch in arg[1:]:
                if ch not in "lr":
                    raise CommandError(f"dis: unsupported option -{ch}")
                flags.add(ch)
        else:
            rest.append(arg)
    if not rest or len(rest) > 2:
        raise CommandError("dis: usage: dis [-l] [-r] FUNCTION|ADDRESS [COUNT]")
    addr, bounds = _resolve(session, rest[0])
    with_lines = "l" in flags
    if "r" in flags:
        fb = _function_bounds(session, addr)
        if fb is None:
            raise CommandError(f"dis: no function contains {addr:x}")
        return listing(session, fb[0], addr + 1, with_lines, through=addr)
    if len(rest) == 2:
        try:
            count = int(rest[1], 0)
        except ValueError:
            raise CommandError(f"dis: invalid count: {rest[1]}") from None
        return listing(session, addr, addr + 16 * max(count, 1), with_lines, count=count)
    if bounds is not None:
        return listing(session, bounds[0], bounds[1], with_lines)
    return listing(session, addr, addr + 16, with_lines, count=1)
