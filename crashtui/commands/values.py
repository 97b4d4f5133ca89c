"""C values printed the way crash's embedded gdb prints them (`struct`, `p`).

Types come from BTF (structs, unions, enums, typedefs, per-CPU variables) and, for the type
of a global variable, from DWARF (crashtui.debuginfo.dwarfvars) mapped onto the BTF types by
name. The printing follows gdb 10 with crash's settings: `print pretty on` (two spaces per
level, `{{` for arrays of structs), no `<repeats N times>` folding, at most 256 elements or
characters of an array or string before `...`, a char array's one trailing NUL dropped,
chars as `115 's'`, octal escapes (`\\000`, a digit right after one escaped too), pointers
into the kernel image followed by `<symbol+offset>`, char pointers by their string, and gdb's
spellings of the C integer types (`unsigned long`, not BTF's `long unsigned int`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.commands import CommandError
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.debuginfo.btf import Btf
    from crashtui.debuginfo.dwarfvars import DwarfType

PRINT_MAX = 256  # gdb's `print elements` as crash leaves it
_GDB_NAMES = (("long long unsigned int", "unsigned long long"), ("long long int", "long long"),
              ("long unsigned int", "unsigned long"), ("long int", "long"),
              ("short unsigned int", "unsigned short"), ("short int", "short"))
_GDB_RE = re.compile(r"\b(" + "|".join(re.escape(a) for a, _ in _GDB_NAMES) + r")\b")
_CHAR_NAMES = frozenset(("char", "signed char", "unsigned char"))
_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
            27: "\\033"}


def gdb_spelling(decl: str) -> str:
    """BTF/DWARF integer type names as gdb prints them (`unsigned long`, `short`)."""
    return _GDB_RE.sub(lambda m: dict(_GDB_NAMES)[m.group(1)], decl)


@dataclass(frozen=True)
class CType:
    """One C type as the printer needs it (typedefs and qualifiers resolved, name kept)."""

    kind: str  # int | enum | float | ptr | array | struct | union | func | void
    name: str  # the declared C spelling, gdb style: "unsigned long", "atomic_t", "char [16]"
    size: int | None
    signed: bool = False
    char: bool = False  # a one-byte integer printed as `65 'A'`
    boolean: bool = False
    target: CType | None = None  # pointee / element
    length: int | None = None  # array elements (None: unknown)
    btf_id: int | None = None  # struct/union/enum: the resolved BTF id


@dataclass(frozen=True)
class Field:
    """A direct member of a struct/union (anonymous members have name "")."""

    name: str
    bit_offset: int
    bit_size: int  # 0 unless a bitfield
    type: CType


class Types:
    """BTF type ids → CType, members of structs, enumerators; DWARF types mapped onto BTF."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._cache: dict[int, CType] = {}

    # -- BTF ----------------------------------------------------------------------------------

    def from_btf(self, tid: int) -> CType:
        """The CType of a BTF type id."""
        hit = self._cache.get(tid)
        if hit is None:
            hit = self._from_btf(tid, 0)
            self._cache[tid] = hit
        return hit

    def _from_btf(self, tid: int, depth: int) -> CType:
        b = self.btf
        name = gdb_spelling(b.type_name(tid)) if tid else "void"
        rid = b.resolve_id(tid)
        if rid == 0:
            return CType("void", name, None)
        t = b.type(rid)
        kind = t.kind
        if kind == "int":
            base = gdb_spelling(t.name or "int")
            return CType("int", name, t.size, t.signed, char=base in _CHAR_NAMES or
                         (t.size == 1 and base != "_Bool"), boolean=base == "_Bool")
        if kind in ("enum", "enum64"):
            return CType("enum", name, t.size, t.signed, btf_id=rid)
        if kind == "float":
            return CType("float", name, t.size)
        if kind in ("struct", "union"):
            return CType(kind, name, t.size, btf_id=rid)
        if kind == "fwd":
            return CType("struct", name, None)
        if kind == "ptr":
            target = self._from_btf(t.target_id or 0, depth + 1) if depth < 8 else \
                CType("void", "void", None)
            return CType("ptr", name, 8, target=target)
        if kind == "array":
            elem = self._from_btf(t.target_id or 0, depth + 1)
            return CType("array", name, t.size, target=elem, length=t.length)
        if kind == "func_proto":
            return CType("func", name, None)
        return CType("void", name, None)

    def fields(self, ct: CType) -> list[Field]:
        """The direct members of a struct/union CType (anonymous ones included)."""
        if ct.btf_id is None:
            return []
        from crashtui.debuginfo.btf import KIND_STRUCT, KIND_UNION

        if self.btf.kind_of(ct.btf_id) not in (KIND_STRUCT, KIND_UNION):
            return []
        return [Field(n, off, bsize, self.from_btf(mtype))
                for n, off, bsize, mtype in self.btf._raw_members(ct.btf_id)]

    def enumerators(self, ct: CType) -> dict[str, int]:
        """name → value of an enum CType, in declaration order."""
        if ct.btf_id is None:
            return {}
        return self.btf._enum_values(ct.btf_id)

    def named(self, spelling: str) -> CType:
        """The CType of `struct foo`, `union foo`, a typedef, or a base type name."""
        try:
            return self.from_btf(self.btf._parse_type(spelling))
        except CrashtuiError:
            pass
        raise CommandError(f"invalid data structure reference: {spelling}")

    def struct_named(self, name: str) -> CType:
        """`task_struct` / `struct task_struct` / `union foo` / a typedef to one."""
        from crashtui.debuginfo.btf import KIND_STRUCT, KIND_UNION

        try:
            tid = self.btf._struct_id(name)
        except CrashtuiError:
            raise CommandError(f"invalid data structure reference: {name}") from None
        ct = self.from_btf(tid)
        if self.btf.kind_of(tid) not in (KIND_STRUCT, KIND_UNION):
            raise CommandError(f"invalid data structure reference: {name}")
        return ct

    # -- DWARF -------------------------------------------------------------------------------

    def from_dwarf(self, d: DwarfType, count_hint: int | None = None) -> CType:
        """A DWARF type as a CType, its structs/unions/enums/typedefs taken from BTF by name
        (`count_hint`: elements of an array declared without a bound, `x[]`)."""
        tag = d.tag
        if tag == "base":
            name = gdb_spelling(d.name or "int")
            enc = d.encoding or 0
            return CType("float" if enc == 4 else "int", name, d.size,
                         signed=enc in (5, 6, 0xD), char=enc in (6, 8) and d.size == 1,
                         boolean=enc == 2)
        if tag in ("struct", "union", "enum"):
            if d.name:
                try:
                    return self.from_btf(self.btf._parse_type(f"{tag} {d.name}"))
                except CrashtuiError:
                    pass
            return CType("enum" if tag == "enum" else tag, f"{tag} {d.name or '{...}'}", d.size)
        if tag == "typedef":
            if d.name:
                try:
                    return self.from_btf(self.btf._parse_type(d.name))
                except CrashtuiError:
                    pass
            inner = self.from_dwarf(d.target) if d.target else CType("void", "void", None)
            return _renamed(inner, d.name or inner.name)
        if tag in ("const", "volatile", "restrict", "atomic"):
            inner = self.from_dwarf(d.target, count_hint) if d.target else \
                CType("void", "void", None)
            word = "" if tag == "atomic" else tag
            return _renamed(inner, f"{word} {inner.name}".strip() if inner.kind != "ptr"
                            else f"{inner.name} {word}".strip())
        if tag == "pointer":
            target = self.from_dwarf(d.target) if d.target else CType("void", "void", None)
            name = f"{target.name} *" if not target.name.endswith("*") else f"{target.name}*"
            return CType("ptr", name, 8, target=target)
        if tag == "array" and d.target is not None:
            elem = self.from_dwarf(d.target)
            dims = list(d.dims)
            if dims and dims[0] is None and count_hint is not None:
                dims[0] = count_hint
            ct = elem
            for n in reversed(dims):
                size = None if n is None or ct.size is None else n * ct.size
                ct = CType("array", f"{elem.name} [{n if n is not None else ''}]", size,
                           target=ct, length=n)
            return ct
        if tag == "func":
            return CType("func", "void (void)", None)
        return CType("void", "void", None)


def _renamed(ct: CType, name: str) -> CType:
    return CType(ct.kind, name, ct.size, ct.signed, ct.char, ct.boolean, ct.target, ct.length,
                 ct.btf_id)


def pointer_to(ct: CType) -> CType:
    """`T *` for a CType."""
    name = f"{ct.name} *" if not ct.name.endswith("*") else f"{ct.name}*"
    if ct.kind == "array":
        name = re.sub(r" ?\[", " (*)[", ct.name, count=1)
    return CType("ptr", name, 8, target=ct)


# -- printing ----------------------------------------------------------------------------------

@dataclass
class Printer:
    """Formats values read from the dump; `hex_ints` is gdb's /x (crash's -x)."""

    session: Session
    types: Types
    hex_ints: bool = False
    errors: list[str] = field(default_factory=list)

    def symbol_of(self, addr: int) -> str | None:
        """`name+off` for an address in the kernel image (what gdb's msymbols cover)."""
        k = self.session.kernel
        lo, hi = k.symbol_or_none("_text"), k.symbol_or_none("_end")
        if lo is None or hi is None or not lo <= addr < hi:
            return None
        hit = k.symbolize(addr)
        if hit is None:
            return None
        sym, off = hit
        return f"{sym.name}+{off}" if off else sym.name

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
        if self.hex_ints:
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
        target = ct.target
        if target is not None and target.kind == "int" and target.char and target.size == 1 \
                and v:
            return f"{text} {self._c_string_at(v)}"
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
                return f"{addr:#x} {self._c_string_at(addr)}"
            return f"{addr:#x}"
        if elem.kind == "int" and elem.char and elem.size == 1 and not self.hex_ints:
            raw = data[:n]
            shown = raw[:PRINT_MAX]
            if len(raw) <= PRINT_MAX and raw.endswith(b"\0"):
                shown = raw[:-1]
            text = string_literal(bytes(shown))
            return text + ("..." if len(raw) > PRINT_MAX else "")
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


def string_literal(raw: bytes) -> str:
    """gdb's string literal: printable ASCII as is, octal escapes otherwise (and for a digit
    right after one), \\n and friends named, `"` and `\\` escaped."""
    out = ['"']
    after_octal = False
    for c in raw:
        if c in (0x22, 0x5C):
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

def declaration_lines(types: Types, ct: CType, offsets: bool) -> list[str]:
    """crash's `struct NAME` (gdb ptype) and `struct -o NAME` layouts, SIZE line included."""
    b = types.btf
    assert ct.btf_id is not None
    tag = "union" if ct.kind == "union" else "struct"
    size = ct.size or 0
    width = len(str(size)) + 4
    tag_name = b.string(b._raw(ct.btf_id)[2])
    out = [f"{tag} {tag_name} {{"]

    def walk(tid: int, base_bits: int, depth: int) -> Iterator[str]:
        for name, off, bsize, mtype in b._raw_members(tid):
            bits = base_bits + off
            inner = b.resolve_id(mtype)
            t = b.type(inner) if inner else None
            lead = (f"{'[' + str(bits // 8) + ']':>{width}} " + "    " * (depth - 1)) \
                if offsets else "    " * depth
            blank = (" " * (width + 1) + "    " * (depth - 1)) if offsets else "    " * depth
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


# -- expressions: SYMBOL(.member | ->member | [index])* ---------------------------------------------

_TOKEN = re.compile(r"\s*(->|\.|\[|\]|&|\*|[A-Za-z_][A-Za-z0-9_]*|0x[0-9a-fA-F]+|\d+)")


@dataclass(frozen=True)
class Place:
    """A typed object in kernel memory."""

    address: int
    type: CType


def member_path(types: Types, start: Place, path: str,
                deref: Callable[[int], int]) -> Place:
    """Follow `.a.b[2]->c` from `start` (deref reads a pointer at an address)."""
    toks = _tokens(path)
    place = start
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok in (".", "->"):
            if i + 1 >= len(toks):
                raise CommandError(f"invalid expression: {path}")
            if tok == "->":
                place = _deref(place, deref, path)
            place = _member(types, place, toks[i + 1], path)
            i += 2
        elif tok == "[":
            if i + 2 >= len(toks) or toks[i + 2] != "]":
                raise CommandError(f"invalid expression: {path}")
            place = _index(place, int(toks[i + 1], 0), deref, path)
            i += 3
        else:
            raise CommandError(f"invalid expression: {path}")
    return place


def _tokens(text: str) -> list[str]:
    toks: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CommandError(f"invalid expression: {text}")
        toks.append(m.group(1))
        pos = m.end()
    return toks


def _deref(place: Place, deref: Callable[[int], int], path: str) -> Place:
    if place.type.kind != "ptr" or place.type.target is None:
        raise CommandError(f"{path}: not a pointer")
    return Place(deref(place.address), place.type.target)


def _member(types: Types, place: Place, name: str, path: str) -> Place:
    ct = place.type
    if ct.kind == "ptr" and ct.target is not None and ct.target.kind in ("struct", "union"):
        raise CommandError(f"{path}: {name} is a member of a pointed-to struct: use ->")
    if ct.kind not in ("struct", "union"):
        raise CommandError(f"{path}: not a struct or union before .{name}")
    found = _find_field(types, ct, name, 0)
    if found is None:
        raise CommandError(f"There is no member named {name}.")
    bits, f = found
    if f.bit_size:
        raise CommandError(f"{path}: {name} is a bitfield")
    return Place(place.address + bits // 8, f.type)


def _find_field(types: Types, ct: CType, name: str, base: int) -> tuple[int, Field] | None:
    for f in types.fields(ct):
        if f.name == name:
            return base + f.bit_offset, f
        if not f.name and f.type.kind in ("struct", "union"):
            hit = _find_field(types, f.type, name, base + f.bit_offset)
            if hit is not None:
                return hit
    return None


def _index(place: Place, i: int, deref: Callable[[int], int], path: str) -> Place:
    ct = place.type
    if ct.kind == "array" and ct.target is not None and ct.target.size:
        return Place(place.address + i * ct.target.size, ct.target)
    if ct.kind == "ptr" and ct.target is not None and ct.target.size:
        return Place(deref(place.address) + i * ct.target.size, ct.target)
    raise CommandError(f"{path}: cannot subscript")


def find_member(types: Types, ct: CType, path: str) -> tuple[int, Field]:
    """(bit offset, Field) of a member path like `se.on_rq` or `pids[1]` inside ct."""
    toks = _tokens(path)
    bits = 0
    cur: CType = ct
    f: Field | None = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok == ".":
            i += 1
            continue
        if tok == "[":
            if f is None or cur.kind != "array" or cur.target is None or i + 2 >= len(toks):
                raise CommandError(f"invalid member: {path}")
            n = int(toks[i + 1], 0)
            bits += n * (cur.target.size or 0) * 8
            cur = cur.target
            f = Field(f.name, bits, 0, cur)
            i += 3
            continue
        if not re.fullmatch(r"[A-Za-z_]\w*", tok):
            raise CommandError(f"invalid member: {path}")
        hit = _find_field(types, cur, tok, 0)
        if hit is None:
            raise CommandError(f"invalid data structure member reference: {path}")
        off, f = hit
        bits += off
        cur = f.type
        i += 1
    if f is None:
        raise CommandError(f"invalid member: {path}")
    return bits, Field(path, bits, f.bit_size, f.type)
