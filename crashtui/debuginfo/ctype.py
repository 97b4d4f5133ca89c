"""C types from BTF and DWARF as one model (what `struct` and `p` print), and member paths.

A CType is a C type with typedefs and qualifiers resolved but its declared name kept, spelled
the way gdb prints it (`unsigned long`, not BTF's `long unsigned int`). Types come from BTF
(structs, unions, enums, typedefs, per-CPU variables) and, for the type of a global variable,
from DWARF (crashtui.debuginfo.dwarfvars) mapped onto the BTF types by name. A member path
(`.a.b[2]->c`) is followed from a typed place in memory to another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.debuginfo.btf import Btf
    from crashtui.debuginfo.dwarfvars import DwarfType


class CTypeError(CrashtuiError):
    """A type, member or member path that does not exist or does not apply."""


_GDB_NAMES = (("long long unsigned int", "unsigned long long"), ("long long int", "long long"),
              ("long unsigned int", "unsigned long"), ("long int", "long"),
              ("short unsigned int", "unsigned short"), ("short int", "short"))
_GDB_RE = re.compile(r"\b(" + "|".join(re.escape(a) for a, _ in _GDB_NAMES) + r")\b")
_CHAR_NAMES = frozenset(("char", "signed char", "unsigned char"))


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

    def struct_named(self, name: str) -> CType:
        """`task_struct` / `struct task_struct` / `union foo` / a typedef to one."""
        from crashtui.debuginfo.btf import KIND_STRUCT, KIND_UNION

        try:
            tid = self.btf._struct_id(name)
        except CrashtuiError:
            raise CTypeError(f"invalid data structure reference: {name}") from None
        ct = self.from_btf(tid)
        if self.btf.kind_of(tid) not in (KIND_STRUCT, KIND_UNION):
            raise CTypeError(f"invalid data structure reference: {name}")
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
                raise CTypeError(f"invalid expression: {path}")
            if tok == "->":
                place = _deref(place, deref, path)
            place = _member(types, place, toks[i + 1], path)
            i += 2
        elif tok == "[":
            if i + 2 >= len(toks) or toks[i + 2] != "]":
                raise CTypeError(f"invalid expression: {path}")
            place = _index(place, int(toks[i + 1], 0), deref, path)
            i += 3
        else:
            raise CTypeError(f"invalid expression: {path}")
    return place


def _tokens(text: str) -> list[str]:
    toks: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CTypeError(f"invalid expression: {text}")
        toks.append(m.group(1))
        pos = m.end()
    return toks


def _deref(place: Place, deref: Callable[[int], int], path: str) -> Place:
    if place.type.kind != "ptr" or place.type.target is None:
        raise CTypeError(f"{path}: not a pointer")
    return Place(deref(place.address), place.type.target)


def _member(types: Types, place: Place, name: str, path: str) -> Place:
    ct = place.type
    if ct.kind == "ptr" and ct.target is not None and ct.target.kind in ("struct", "union"):
        raise CTypeError(f"{path}: {name} is a member of a pointed-to struct: use ->")
    if ct.kind not in ("struct", "union"):
        raise CTypeError(f"{path}: not a struct or union before .{name}")
    found = _find_field(types, ct, name, 0)
    if found is None:
        raise CTypeError(f"There is no member named {name}.")
    bits, f = found
    if f.bit_size:
        raise CTypeError(f"{path}: {name} is a bitfield")
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
    raise CTypeError(f"{path}: cannot subscript")


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
                raise CTypeError(f"invalid member: {path}")
            n = int(toks[i + 1], 0)
            bits += n * (cur.target.size or 0) * 8
            cur = cur.target
            f = Field(f.name, bits, 0, cur)
            i += 3
            continue
        if not re.fullmatch(r"[A-Za-z_]\w*", tok):
            raise CTypeError(f"invalid member: {path}")
        hit = _find_field(types, cur, tok, 0)
        if hit is None:
            raise CTypeError(f"invalid data structure member reference: {path}")
        off, f = hit
        bits += off
        cur = f.type
        i += 1
    if f is None:
        raise CTypeError(f"invalid member: {path}")
    return bits, Field(path, bits, f.bit_size, f.type)
