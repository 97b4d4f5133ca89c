"""C values printed the way crash's embedded gdb prints them (`struct`, `p`).

The types are crashtui.debuginfo.ctype's (BTF, and DWARF for a global variable's type).
The printing follows gdb 10 with crash's settings: `print pretty on` (two spaces per
level, `{{` for arrays of structs), no `<repeats N times>` folding, at most 256 elements or
characters of an array or string before `...`, a char array's one trailing NUL dropped,
chars as `115 's'`, octal escapes (`\\000`, a digit right after one escaped too), pointers
into the kernel image followed by `<symbol+offset>`, char pointers by their string, and gdb's
spellings of the C integer types (`unsigned long`, not BTF's `long unsigned int`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.debuginfo.ctype import CType, Field, Types, gdb_spelling
from crashtui.debuginfo.symbols import Symbol
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

PRINT_MAX = 256  # gdb's `print elements` as crash leaves it
_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
            27: "\\033"}


# -- printing ----------------------------------------------------------------------------------

@dataclass
class Printer:
    """Formats values read from the dump; `hex_ints` is crash's -x (gdb's output radix 16:
    integers and chars in hex, char arrays still strings, enums still named), `format_x`
    gdb's p/x on top of it."""

    session: Session
    types: Types
    hex_ints: bool = False
    errors: list[str] = field(default_factory=list)
    format_x: bool = False  # gdb's p/x: also enums, char arrays and pointers as bare hex

    def symbol_of(self, addr: int) -> str | None:
        """`name+off` for an address in the kernel image (what gdb's msymbols cover)."""
        k = self.session.kernel
        lo, hi = k.symbol_or_none("_text"), k.symbol_or_none("_end")
        if lo is None or hi is None or not lo <= addr < hi:
            return None
        etext = k.symbol_or_none("_etext")
        if etext is not None and addr >= etext:
            return self._data_symbol(addr)
        hit = k.symbolize(addr)
        if hit is None:
            return None
        sym, off = hit
        if not sym.size:
            sym = self._sized_alias(sym) or sym
        return f"{sym.name}+{off}" if off else sym.name

    def _data_symbol(self, addr: int) -> str | None:
        """gdb's msymbol for a data address: the nearest sized symbol at or below it, if the
        address is inside it; zero-sized labels (__end_rodata_aligned, init_stack) are
        never named (gdb's lookup_minimal_symbol_by_pc_section and build_address_symbolic)."""
        import numpy as np

        k = self.session.kernel
        try:
            table = k.symbols
        except CrashtuiError:
            return None
        link = addr - k.kaslr_offset
        i = int(np.searchsorted(table.addresses, np.uint64(link), side="right")) - 1
        for j in range(i, max(i - 256, -1), -1):
            size = int(table.sizes[j])
            if not size:
                continue
            start = int(table.addresses[j])
            if link >= start + size:
                return None
            name = table.name_at(j)
            return f"{name}+{link - start}" if link != start else name
        return None

    def _sized_alias(self, sym: Symbol) -> Symbol | None:
        """Of the symbols at sym's address, one with a size (gdb prefers an object's own
        name, idle_sched_class, to a linker label there, __begin_sched_classes)."""
        import numpy as np

        try:
            table = self.session.kernel.symbols
        except CrashtuiError:
            return None
        a = np.uint64(sym.address)
        lo = int(np.searchsorted(table.addresses, a, side="left"))
        hi = int(np.searchsorted(table.addresses, a, side="right"))
        for i in range(hi - 1, lo - 1, -1):
            if int(table.sizes[i]):
                return table.symbol_at(i)
        return None

    def read(self, addr: int, size: int) -> bytes:
        return self.session.kernel.read(addr, size)

    def value(self, ct: CType, data: bytes, addr: int, recurse: int) -> str:
        """One value; multi-line for structs (members indented 2 * (recurse + 1))."""
        kind = ct.kind
        if kind == "int":
            return self._int(ct, int.from_bytes(data[:ct.size or 0], "little", signed=ct.signed))
        if kind == "enum":
            v = int.from_bytes(data[:ct.size or 4], "little", signed=ct.signed)
            return self._enum(ct, v)
        if kind == "float":
            if ct.size == 4:
                return repr(struct.unpack("<f", data[:4])[0])
            if ct.size == 8:
                return repr(struct.unpack("<d", data[:8])[0])
            return "<float>"
        if kind == "ptr":
            return self._pointer(ct, int.from_bytes(data[:8], "little"))
        if kind == "array":
            return self._array(ct, data, addr, recurse)
        if kind in ("struct", "union"):
            return self._struct(ct, data, addr, recurse)
        if kind == "func":
            sym = self.symbol_of(addr)
            return f"{{{ct.name}}} {addr:#x}" + (f" <{sym}>" if sym else "")
        return "void"

    def _int(self, ct: CType, v: int) -> str:
        if self.hex_ints:
            return f"{v & ((1 << (8 * (ct.size or 8))) - 1):#x}"
        if ct.boolean:
            return {0: "false", 1: "true"}.get(v, str(v))
        if ct.char:
            return f"{v} {char_literal(v & 0xFF)}"
        return str(v)

    def _enum(self, ct: CType, v: int) -> str:
        if self.format_x:  # crash's -x (output radix 16) still names enumerators
            return f"{v & ((1 << (8 * (ct.size or 4))) - 1):#x}"
        values = self.types.enumerators(ct)
        for name, val in values.items():
            if val == v:
                return name
        flags = [val for val in values.values() if val > 0]
        if v > 0 and flags and all(f & (f - 1) == 0 for f in flags):
            names = [n for n, val in values.items() if val > 0 and v & val]
            rest = v & ~sum(values[n] for n in names)
            if names:
                return "(" + " | ".join(names) + (f" | unknown: {rest:#x}" if rest else "") + ")"
        return str(v)

    def _pointer(self, ct: CType, v: int) -> str:
        text = f"{v:#x}"
        if self.format_x:
            return text
        target = ct.target
        if target is not None and target.kind == "int" and target.char and target.size == 1 \
                and v:
            sym = self.symbol_of(v)
            return f"{text} <{sym}> {self._c_string_at(v)}" if sym else \
                f"{text} {self._c_string_at(v)}"
        sym = self.symbol_of(v) if v else None
        return f"{text} <{sym}>" if sym else text

    def _c_string_at(self, addr: int) -> str:
        """gdb's `"text"` for a char pointer (at most PRINT_MAX chars, `...` after)."""
        out = bytearray()
        try:
            while len(out) <= PRINT_MAX:
                chunk = self.read(addr + len(out), min(64, 0x1000 - ((addr + len(out)) & 0xFFF)))
                nul = chunk.find(b"\0")
                if nul >= 0:
                    out += chunk[:nul]
                    break
                out += chunk
        except CrashtuiError:
            if not out:
                return f"<error: Cannot access memory at address {addr:#x}>"
        if len(out) > PRINT_MAX:
            return string_literal(bytes(out[:PRINT_MAX])) + "..."
        return string_literal(bytes(out))

    def _array(self, ct: CType, data: bytes, addr: int, recurse: int) -> str:
        elem = ct.target
        n = ct.length if ct.length is not None else 0
        if elem is None or not elem.size:
            return "{}" if n == 0 else "{<unknown>}"
        if n == 0:  # a flexible array member: gdb shows where it starts
            if elem.kind == "int" and elem.char and elem.size == 1:
                sym = self.symbol_of(addr)
                return f"{addr:#x} " + (f"<{sym}> " if sym else "") + self._c_string_at(addr)
            return f"{addr:#x}"
        if elem.kind == "int" and elem.char and elem.size == 1 and not self.format_x:
            raw = bytes(data[:n])
            if raw.endswith(b"\0"):
                raw = raw[:-1]
            # gdb's printstr counts a run of one repeated character as its length but never
            # splits it: 4095 NULs print whole, 300 letters stop after 256 with `...`
            units = string_units(raw)
            pos = counted = 0
            while pos < len(units) and counted < PRINT_MAX:
                run = 1
                while pos + run < len(units) and units[pos + run] == units[pos]:
                    run += 1
                pos += run
                counted += run
            return string_literal(b"".join(units[:pos])) + ("..." if pos < len(units) else "")
        parts = []
        for i in range(min(n, PRINT_MAX)):
            off = i * elem.size
            parts.append(self.value(elem, data[off:off + elem.size], addr + off, recurse + 1))
        return "{" + ", ".join(parts) + ("..." if n > PRINT_MAX else "") + "}"

    def _struct(self, ct: CType, data: bytes, addr: int, recurse: int) -> str:
        fields = self.types.fields(ct)
        if ct.btf_id is None:
            return "<incomplete type>"
        if not fields:
            return "{<No data fields>}"
        pad = "  " * (recurse + 1)
        lines = [self.field_line(f, data, addr, recurse + 1, pad) for f in fields]
        return "{\n" + ",\n".join(lines) + "\n" + "  " * recurse + "}"

    def field_line(self, f: Field, data: bytes, addr: int, recurse: int, pad: str) -> str:
        """`pad name = value` for one member of a struct whose bytes are `data`."""
        text = self.field_value(f, data, addr, recurse)
        return f"{pad}{f.name} = {text}" if f.name else f"{pad}{text}"

    def field_value(self, f: Field, data: bytes, addr: int, recurse: int) -> str:
        """The value of one member of a struct whose bytes are `data`."""
        if f.bit_size:
            size = f.type.size or 4
            start = f.bit_offset // 8
            word = int.from_bytes(data[start:start + 8].ljust(8, b"\0"), "little")
            v = (word >> (f.bit_offset % 8)) & ((1 << f.bit_size) - 1)
            if f.type.signed and v >> (f.bit_size - 1):
                v -= 1 << f.bit_size
            if f.type.kind == "enum":
                return self._enum(f.type, v)
            return self._int(CType("int", f.type.name, size, f.type.signed, f.type.char,
                                   f.type.boolean), v)
        off = f.bit_offset // 8
        size = f.type.size or 0
        return self.value(f.type, data[off:off + size], addr + off, recurse)

    def top(self, ct: CType, data: bytes, addr: int) -> str:
        """A value printed at the top level (`$1 = ...`): pointers get their type in front."""
        if ct.kind == "ptr":
            v = int.from_bytes(data[:8], "little")
            target = ct.target
            if self.format_x:
                return f"{v:#x}"
            if target is not None and target.kind == "int" and target.char and v:
                return self._pointer(ct, v)
            prefix = f"({ct.name}) "
            if target is not None and target.kind == "func":
                prefix = f"({func_pointer_name(ct)}) "
            return prefix + self._pointer(ct, v)
        return self.value(ct, data, addr, 0)


def func_pointer_name(ct: CType) -> str:
    """gdb's spelling of a pointer-to-function type, e.g. `void (*)(void)`."""
    name = ct.name
    return name if "(*)" in name else name


def char_literal(c: int) -> str:
    """gdb's character literal: `'s'`, `'\\000'`, `'\\n'`, `'\\''`."""
    if c == 0x27:
        return "'\\''"
    if c == 0x5C:
        return "'\\\\'"
    if 0x20 <= c < 0x7F:
        return f"'{chr(c)}'"
    if c in _ESCAPES:
        return f"'{_ESCAPES[c]}'"
    return f"'\\{c:03o}'"


def string_units(raw: bytes) -> list[bytes]:
    """The characters gdb sees in a string: a valid UTF-8 sequence of a printable character
    is one (crash's gdb runs in a UTF-8 locale and prints it as is), any other byte one."""
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        n = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 1
        if n > 1:
            try:
                ch = raw[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                ch = ""
            if len(ch) == 1 and ch.isprintable():
                out.append(raw[i:i + n])
                i += n
                continue
        out.append(raw[i:i + 1])
        i += 1
    return out


def string_literal(raw: bytes) -> str:
    """gdb's string literal: printable ASCII (and printable UTF-8 characters) as is, octal
    escapes otherwise (and for a digit right after one), \\n and friends named, `"` and
    `\\` escaped."""
    out = ['"']
    after_octal = False
    for unit in string_units(raw):
        c = unit[0]
        if len(unit) > 1:
            out.append(unit.decode("utf-8"))
            after_octal = False
        elif c in (0x22, 0x5C):
            out.append("\\" + chr(c))
            after_octal = False
        elif 0x20 <= c < 0x7F and not (after_octal and 0x30 <= c <= 0x39):
            out.append(chr(c))
            after_octal = False
        elif c in _ESCAPES and c != 27:
            out.append(_ESCAPES[c])
            after_octal = False
        else:
            out.append(f"\\{c:03o}")
            after_octal = True
    out.append('"')
    return "".join(out)


# -- ptype (struct NAME without an address) --------------------------------------------------------

def declaration_lines(types: Types, ct: CType, offsets: bool,
                      address: int | None = None) -> list[str]:
    """crash's `struct NAME` (gdb ptype) and `struct -o NAME` layouts, SIZE line included;
    with an address (`struct -o NAME ADDR`) each member's address replaces its offset."""
    b = types.btf
    assert ct.btf_id is not None
    tag = "union" if ct.kind == "union" else "struct"
    size = ct.size or 0
    width = (len(f"{address:x}") if address is not None else len(str(size))) + 4

    def where(bits: int) -> str:
        return f"{address + bits // 8:x}" if address is not None else str(bits // 8)
    tag_name = b.string(b._raw(ct.btf_id)[2])
    out = [f"{tag} {tag_name} {{"]

    def walk(tid: int, base_bits: int, depth: int) -> Iterator[str]:
        for name, off, bsize, mtype in b._raw_members(tid):
            bits = base_bits + off
            inner = b.resolve_id(mtype)
            t = b.type(inner) if inner else None
            lead = (f"{'[' + where(bits) + ']':>{width}} " + "    " * (depth - 1)) \
                if offsets else "    " * depth
            blank = (" " * (9 if address is not None else width + 1) + "    " * (depth - 1)) \
                if offsets else "    " * depth
            if not name and t is not None and t.kind in ("struct", "union") and not t.name \
                    and mtype == inner:
                yield f"{blank}{t.kind} {{"
                yield from walk(inner, bits, depth + 1)
                yield f"{blank}}};"
                continue
            decl = gdb_spelling(b.declaration(mtype, name))
            if bsize:
                decl += f" : {bsize}"
            yield f"{lead}{decl};"

    out += list(walk(ct.btf_id, 0, 1))
    out += ["}", f"SIZE: {size}"]
    return out
