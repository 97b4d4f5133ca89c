"""rd: read memory and print it like crash's `rd`.

    rd ADDR|SYMBOL[+OFF] [COUNT]     COUNT 64-bit words in hex, with their ASCII
    -8 / -16 / -32 / -64             the unit size (COUNT counts units)
    -s                               64-bit words symbolically (`machine_kexec+447`), no ASCII
    -x                               hex without the ASCII column
    -d / -D                          signed / unsigned decimal
    -a                               ASCII text (up to the first unprintable byte, or COUNT)
    -p                               ADDR is a physical address

Lines hold 16 bytes, `ADDR:  ` first (right-aligned to 16 characters, as crash prints the
short addresses of -p); each hex unit is followed by a space, a short last line is padded
before the ASCII column, unprintable bytes are `.`. An unreadable unit ends the output with
crash's line naming it: `rd: page excluded: physical address: 3e000000  type: "64-bit
PHYSADDR"` for a page the dump filtered out (`kernel virtual address: ...  "64-bit KVADDR"`
without -p), `rd: seek error: ...` for memory the dump does not hold or an unmapped address.
The units of the line before it are printed on their own line (crash glues the message to
them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.struct import parse_address
from crashtui.errors import CrashtuiError, KernelReadError, PageExcludedError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_COUNT = 1 << 16
ASCII_LINE = 60  # characters per line of `rd -a`
# decimal field widths per unit size (crash prints 8- and 16-bit units unsigned even with -d)
_DEC_WIDTH = {8: 15, 4: 12, 2: 5, 1: 3}
_UDEC_WIDTH = {8: 20, 4: 12, 2: 5, 1: 3}


def value_symbol(session: Session, value: int) -> str | None:
    """`name+off` (decimal offset) for a value pointing into the kernel image or a module,
    the way `rd -s` names stack words; None for anything else."""
    k = session.kernel
    lo, hi = k.symbol_or_none("_text"), k.symbol_or_none("_end")
    if lo is not None and hi is not None and lo <= value < hi:
        hit = k.symbolize(value)
        if hit is not None:
            sym, off = hit
            return f"{sym.name}+{off}" if off else sym.name
        return None
    if value < 0xFFFF800000000000:
        return None
    try:
        mod = session.modules.module_at(value)
    except CrashtuiError:
        return None
    if mod is None:
        return None
    named = session.symbolize(value)
    if named is None:
        return None
    name, off, _module = named
    return f"{name}+{off}" if off else name


def read_error(exc: CrashtuiError, at: int, kind: str, physical: bool) -> str:
    """crash's message for an unreadable address: `page excluded` when the data page itself
    was filtered out of the dump (not a page table on the way to it), else `seek error`; kind
    is crash's type ("64-bit", "ascii")."""
    excluded = isinstance(exc, PageExcludedError) or (
        isinstance(exc, KernelReadError) and exc.address is not None
        and isinstance(exc.__cause__, PageExcludedError))
    what = "page excluded" if excluded else "seek error"
    space = "physical address" if physical else "kernel virtual address"
    if kind != "ascii":
        kind += " PHYSADDR" if physical else " KVADDR"
    return f'rd: {what}: {space}: {at:x}  type: "{kind}"'


def _ascii(raw: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in raw)


def memory_lines(read: Callable[[int, int], bytes], addr: int, count: int, unit: int,
                 mode: str, symbolic: Callable[[int], str | None] | None = None,
                 physical: bool = False) -> list[str]:
    """rd's lines for `count` units of `unit` bytes at `addr`; mode: hex (with ASCII),
    hexonly, sym, dec, udec."""
    per_line = 16 // unit
    out: list[str] = []
    done = 0
    while done < count:
        n = min(per_line, count - done)
        at = addr + done * unit
        try:
            raw = read(at, n * unit)
        except CrashtuiError:
            raw = b""
            for i in range(n):  # the first unit that cannot be read, as crash names it
                try:
                    raw += read(at + i * unit, unit)
                except CrashtuiError as exc:
                    if raw:
                        vals = [int.from_bytes(raw[j * unit:(j + 1) * unit], "little")
                                for j in range(i)]
                        out.append(f"{at:>16x}:  " + "".join(
                            _cells(vals, unit, mode, symbolic)).rstrip())
                    out.append(read_error(exc, at + i * unit, f"{unit * 8}-bit", physical))
                    return out
        vals = [int.from_bytes(raw[i * unit:(i + 1) * unit], "little") for i in range(n)]
        line = f"{at:>16x}:  " + "".join(_cells(vals, unit, mode, symbolic))
        if mode == "hex":
            line += " " * ((unit * 2 + 1) * (per_line - n)) + "  " + _ascii(raw)
        out.append(line)
        done += n
    return out


def _cells(vals: list[int], unit: int, mode: str,
           symbolic: Callable[[int], str | None] | None) -> list[str]:
    """Each unit as rd prints it, with its trailing space."""
    if mode == "sym":
        return [f"{(symbolic(v) if symbolic else None) or f'{v:016x}':<16} " for v in vals]
    if mode == "dec":
        return [f"{_signed(v, unit):>{_DEC_WIDTH[unit]}} " for v in vals]
    if mode == "udec":
        return [f"{v:>{_UDEC_WIDTH[unit]}} " for v in vals]
    return [f"{v:0{unit * 2}x} " for v in vals]


def _signed(v: int, unit: int) -> int:
    if unit < 4:
        return v
    bits = unit * 8
    return v - (1 << bits) if v >> (bits - 1) else v


def ascii_lines(read: Callable[[int, int], bytes], addr: int, limit: int | None,
                physical: bool = False) -> list[str]:
    """`rd -a`: the string at addr, 60 characters a line, up to a NUL (or `limit` chars)."""
    text = bytearray()
    cap = limit if limit is not None else 4096
    while len(text) < cap:
        want = min(64, cap - len(text), 0x1000 - ((addr + len(text)) & 0xFFF))
        try:
            chunk = read(addr + len(text), want)
        except CrashtuiError as exc:
            if not text:
                return [read_error(exc, addr, "ascii", physical)]  # as crash: output, not usage
            break
        stop = next((i for i, b in enumerate(chunk) if not 0x20 <= b < 0x7F), -1)
        if stop >= 0:
            text += chunk[:stop]
            break
        text += chunk
    text = text[:cap]
    out = []
    for i in range(0, len(text), ASCII_LINE):
        out.append(f"{addr + i:>16x}:  " + _ascii(bytes(text[i:i + ASCII_LINE])))
    return out or [f"{addr:>16x}:  "]


@command("rd", "read memory: hex words with ASCII, -s symbols, -8/-16/-32, -d decimal, -a text",
         "rd [-8|-16|-32|-64] [-s|-x|-d|-D|-a] [-p] ADDRESS|SYMBOL [COUNT]")
def cmd_rd(session: Session, args: list[str]) -> list[str]:
    unit = 8
    mode = "hex"
    physical = False
    rest: list[str] = []
    for a in args:
        if a in ("-8", "-16", "-32", "-64"):
            unit = int(a[1:]) // 8
        elif a == "-s":
            mode = "sym"
        elif a == "-x":
            mode = "hexonly"
        elif a == "-d":
            mode = "dec"
        elif a == "-D":
            mode = "udec"
        elif a == "-a":
            mode = "ascii"
        elif a == "-p":
            physical = True
        elif a == "-u":
            raise CommandError("rd: user-space addresses (-u) are not supported")
        elif a.startswith("-") and len(a) > 1:
            raise CommandError(f"rd: unsupported option {a}")
        else:
            rest.append(a)
    if not rest or len(rest) > 2:
        raise CommandError("rd: usage: rd [-8|-16|-32|-64] [-s|-x|-d|-D|-a] ADDRESS [COUNT]")
    addr = parse_address(session, rest[0], "rd")
    count: int | None = None
    if len(rest) == 2:
        try:
            count = int(rest[1], 0)
        except ValueError:
            raise CommandError(f"rd: invalid count: {rest[1]}") from None
        if not 0 < count <= MAX_COUNT:
            raise CommandError(f"rd: count must be 1..{MAX_COUNT}")
    if mode == "sym":
        unit = 8
    read = session.kernel.dump.read_phys if physical else session.kernel.read
    if mode == "ascii":
        return ascii_lines(read, addr, count, physical)
    return memory_lines(read, addr, count or 1, unit, mode,
                        (lambda v: value_symbol(session, v)) if mode == "sym" else None,
                        physical)
