"""The declared type of a global variable from DWARF (BTF only describes per-CPU variables).

A vmlinux's .debug_info is ~160 MiB; nothing here scans it DIE by DIE. The variable's name is
found in .debug_str, the 4-byte offset of that string is searched for in .debug_info (one
memchr-speed pass), and only the units holding a hit have their top-level DIEs walked until a
DW_TAG_variable of that name turns up (a definition, or any declaration: `jiffies` only has
declarations, its definition is the linker's). Its DW_AT_type chain becomes a DwarfType.
"""

from __future__ import annotations

import bisect
import re
import struct
import weakref
from dataclasses import dataclass
from typing import Any

from crashtui.errors import CrashtuiError

TAG_ARRAY, TAG_ENUM, TAG_POINTER, TAG_STRUCT = 0x01, 0x04, 0x0F, 0x13
TAG_SUBROUTINE, TAG_TYPEDEF, TAG_UNION, TAG_SUBRANGE = 0x15, 0x16, 0x17, 0x21
TAG_BASE, TAG_CONST, TAG_VARIABLE, TAG_VOLATILE = 0x24, 0x26, 0x34, 0x35
TAG_RESTRICT, TAG_ATOMIC = 0x37, 0x47
AT_NAME, AT_BYTE_SIZE, AT_UPPER_BOUND, AT_COUNT = 0x03, 0x0B, 0x2F, 0x37
AT_DECLARATION, AT_ENCODING, AT_TYPE = 0x3C, 0x3E, 0x49
_TAGS = {TAG_ARRAY: "array", TAG_ENUM: "enum", TAG_POINTER: "pointer", TAG_STRUCT: "struct",
         TAG_SUBROUTINE: "func", TAG_TYPEDEF: "typedef", TAG_UNION: "union", TAG_BASE: "base",
         TAG_CONST: "const", TAG_VOLATILE: "volatile", TAG_RESTRICT: "restrict",
         TAG_ATOMIC: "atomic"}
_WANT = frozenset((AT_NAME, AT_TYPE, AT_BYTE_SIZE, AT_ENCODING, AT_DECLARATION))
_SUB_WANT = frozenset((AT_UPPER_BOUND, AT_COUNT, AT_TYPE))
MAX_HITS = 64  # string references examined before giving up
MAX_DEPTH = 24


@dataclass(frozen=True)
class DwarfType:
    """A DWARF type, as deep as printing needs (struct/union/enum/typedef by name only)."""

    tag: str  # "base" | "pointer" | "array" | "struct" | "union" | "enum" | "typedef" |
    # "const" | "volatile" | "restrict" | "atomic" | "func" | "void"
    name: str | None = None
    size: int | None = None
    encoding: int | None = None  # DW_ATE_* of a base type
    target: DwarfType | None = None  # pointee, element, aliased or qualified type
    dims: tuple[int | None, ...] = ()  # array dimensions (None: unknown bound, `x[]`)


_CACHE: weakref.WeakKeyDictionary[Any, dict[str, DwarfType | None]] = weakref.WeakKeyDictionary()


def variable_type(lines: Any, name: str) -> DwarfType | None:
    """The type of the global variable `name` in a DwarfLines' DWARF, or None."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return None
    cache = _CACHE.setdefault(lines, {})
    if name in cache:
        return cache[name]
    try:
        found = _lookup(lines, name)
    except (CrashtuiError, IndexError, struct.error, KeyError, TypeError):
        found = None
    cache[name] = found
    return found


def _find_all(buf: Any, needle: bytes, limit: int) -> list[int]:
    out: list[int] = []
    for m in re.finditer(re.escape(needle), buf):
        out.append(m.start())
        if len(out) >= limit:
            break
    return out


def _lookup(lines: Any, name: str) -> DwarfType | None:
    s = lines.sections
    reader = lines.reader
    if s.str is None or s.info is None:
        return None
    raw = name.encode()
    offsets = [o + 1 for o in _find_all(s.str, b"\0" + raw + b"\0", 4)]
    if not offsets:  # only as the tail of a longer string (linker tail merging)
        offsets = _find_all(s.str, raw + b"\0", 16)
    hits: list[int] = []
    for off in offsets:
        hits += _find_all(s.info, struct.pack("<I", off), MAX_HITS)
        if hits:
            break
    hits += _find_all(s.info, raw + b"\0", 8)  # DW_FORM_string names
    unit_offsets = reader.all_unit_offsets()
    seen: set[int] = set()
    for pos in hits[:MAX_HITS]:
        i = bisect.bisect_right(unit_offsets, pos) - 1
        if i < 0 or unit_offsets[i] in seen:
            continue
        seen.add(unit_offsets[i])
        u = reader.unit_at(unit_offsets[i])
        top = reader.read_die(u, u.die_offset, frozenset())
        if top is None or not top[1]:
            continue
        for _off, tag, _kids, attrs, _after in reader.children(u, top[3], _WANT):
            if tag != TAG_VARIABLE or AT_NAME not in attrs or AT_TYPE not in attrs:
                continue
            if reader.attr_str(u, attrs[AT_NAME]) != name:
                continue
            ref = reader.attr_ref(u, attrs[AT_TYPE])
            if ref is not None:
                return _type_at(reader, ref, 0)
    return None


def _type_at(reader: Any, offset: int, depth: int) -> DwarfType:
    if depth > MAX_DEPTH:
        return DwarfType("void")
    u = reader.unit_containing(offset)
    d = reader.read_die(u, offset, _WANT)
    if d is None:
        return DwarfType("void")
    tag, has_children, attrs, after = d
    name = reader.attr_str(u, attrs[AT_NAME]) if AT_NAME in attrs else None
    size = attrs[AT_BYTE_SIZE][1] if AT_BYTE_SIZE in attrs else None
    kind = _TAGS.get(tag, "void")

    def target() -> DwarfType:
        if AT_TYPE not in attrs:
            return DwarfType("void", "void")
        ref = reader.attr_ref(u, attrs[AT_TYPE])
        return _type_at(reader, ref, depth + 1) if ref is not None else DwarfType("void")

    if kind == "base":
        return DwarfType("base", name, size, attrs[AT_ENCODING][1] if AT_ENCODING in attrs else None)
    if kind in ("struct", "union", "enum"):
        return DwarfType(kind, name, size)
    if kind == "func":
        return DwarfType("func", name)
    if kind == "array":
        dims: list[int | None] = []
        if has_children:
            for _o, ctag, _k, cattrs, _a in reader.children(u, after, _SUB_WANT):
                if ctag != TAG_SUBRANGE:
                    continue
                if AT_COUNT in cattrs:
                    dims.append(int(cattrs[AT_COUNT][1]))
                elif AT_UPPER_BOUND in cattrs:
                    ub = cattrs[AT_UPPER_BOUND][1]
                    dims.append(int(ub) + 1 if isinstance(ub, int) and ub < 1 << 32 else None)
                else:
                    dims.append(None)
        return DwarfType("array", None, size, target=target(), dims=tuple(dims) or (None,))
    if kind == "void":
        return DwarfType("void", "void")
    return DwarfType(kind, name, size, target=target())
