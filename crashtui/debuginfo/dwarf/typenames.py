"""C spellings of DWARF types as gdb and drgn print them (`int (*)(void *)`, `char [16]`,
`const struct sched_param`), read from one type DIE and the DIEs it refers to."""

from __future__ import annotations

from typing import Any

from crashtui.debuginfo.ctype import gdb_spelling

_NAME, _TYPE, _COUNT, _UPPER, _PROTOTYPED = 0x03, 0x49, 0x37, 0x2F, 0x27
_WANT = frozenset((_NAME, _TYPE, _COUNT, _UPPER, _PROTOTYPED))
_ARRAY, _ENUM, _POINTER, _STRUCT, _SUBROUTINE, _TYPEDEF = 0x01, 0x04, 0x0F, 0x13, 0x15, 0x16
_UNION, _SUBRANGE, _BASE, _CONST, _VOLATILE, _RESTRICT = 0x17, 0x21, 0x24, 0x26, 0x35, 0x37
_ATOMIC, _CLASS, _REFERENCE, _PARAM, _VARARGS = 0x47, 0x02, 0x10, 0x05, 0x18
_QUALIFIERS = {_CONST: "const", _VOLATILE: "volatile", _RESTRICT: "restrict",
               _ATOMIC: "_Atomic"}
_KEYWORDS = {_STRUCT: "struct", _UNION: "union", _ENUM: "enum", _CLASS: "class"}
MAX_DEPTH = 16
MAX_PARAMS = 32


def type_name(reader: Any, offset: int | None) -> str:
    """The C spelling of the type whose DIE is at `offset` (None: `void`)."""
    return declaration(reader, offset, "")


def declaration(reader: Any, offset: int | None, inner: str, depth: int = 0) -> str:
    """A C declarator: `inner` (a name, `*`, `(*)`, `[4]`, ...) declared with that type."""
    if offset is None or depth > MAX_DEPTH:
        return _join("void", inner)
    u = reader.unit_containing(offset)
    d = reader.read_die(u, offset, _WANT)
    if d is None:
        return _join("void", inner)
    tag, has_children, attrs, after = d
    name = reader.attr_str(u, attrs[_NAME]) if _NAME in attrs else None
    target = reader.attr_ref(u, attrs[_TYPE]) if _TYPE in attrs else None
    if tag == _BASE:
        return _join(gdb_spelling(name or "int"), inner)
    if tag == _TYPEDEF:
        return _join(name or "?", inner)
    if tag in _KEYWORDS:
        return _join(f"{_KEYWORDS[tag]} {name or '{...}'}", inner)
    if tag in (_POINTER, _REFERENCE):
        star = "&" if tag == _REFERENCE else "*"
        wrap = target is not None and _tag(reader, target) in (_ARRAY, _SUBROUTINE)
        return declaration(reader, target, f"({star}{inner})" if wrap else f"{star}{inner}",
                           depth + 1)
    if tag in _QUALIFIERS:
        word = _QUALIFIERS[tag]
        if target is not None and _tag(reader, target) == _POINTER:
            return declaration(reader, target, f"{word} {inner}".strip(), depth + 1)
        spelled = declaration(reader, target, inner, depth + 1)
        # a qualified array is an array of qualified elements (C11 6.7.3): said once
        return spelled if spelled.startswith(f"{word} ") else f"{word} {spelled}"
    if tag == _ARRAY:
        dims = ""
        if has_children:
            for _o, ctag, _k, cattrs, _a in reader.children(u, after, _WANT):
                if ctag != _SUBRANGE:
                    continue
                n = None
                if _COUNT in cattrs:
                    n = cattrs[_COUNT][1]
                elif _UPPER in cattrs and isinstance(cattrs[_UPPER][1], int) and \
                        cattrs[_UPPER][1] < 1 << 32:
                    n = cattrs[_UPPER][1] + 1
                dims += f"[{n}]" if isinstance(n, int) else "[]"
        return declaration(reader, target, f"{inner}{dims or '[]'}", depth + 1)
    if tag == _SUBROUTINE:
        params: list[str] = []
        if has_children:
            for _o, ctag, _k, cattrs, _a in reader.children(u, after, _WANT):
                if len(params) >= MAX_PARAMS:
                    break
                if ctag == _PARAM:
                    ref = reader.attr_ref(u, cattrs[_TYPE]) if _TYPE in cattrs else None
                    params.append(type_name(reader, ref) if depth < MAX_DEPTH else "?")
                elif ctag == _VARARGS:
                    params.append("...")
        if not params and _PROTOTYPED in attrs:
            params = ["void"]
        return declaration(reader, target, f"{inner}({', '.join(params)})", depth + 1)
    return _join(name or "void", inner)


def _tag(reader: Any, offset: int) -> int | None:
    d = reader.read_die(reader.unit_containing(offset), offset, frozenset())
    return d[0] if d is not None else None


def _join(base: str, inner: str) -> str:
    if not inner:
        return base
    return f"{base} {inner}"
