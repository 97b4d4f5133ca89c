"""whatis: the declaration of a variable or function, or the layout of a struct/union, as
crash (gdb's ptype/whatis) prints it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.debuginfo.ctype import gdb_spelling
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.debuginfo.btf import Btf
    from crashtui.debuginfo.dwarfvars import DwarfType

MAX_DEPTH = 24
_FUNC, _FUNC_PROTO = 12, 13  # BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO


def dwarf_declaration(t: DwarfType, inner: str, depth: int = 0) -> str:
    """C declaration of `inner` with DWARF type `t`, spelled as gdb spells it."""
    if depth > MAX_DEPTH:
        return f"? {inner}".strip()
    if t.tag == "pointer":
        target = t.target
        wrap = target is not None and target.tag in ("array", "func")
        star = f"(*{inner})" if wrap else f"*{inner}"
        return dwarf_declaration(target, star, depth + 1) if target is not None \
            else f"void {star}"
    if t.tag == "array":
        dims = "".join(f"[{d}]" if d is not None else "[]" for d in t.dims)
        return dwarf_declaration(t.target, f"{inner}{dims}", depth + 1) if t.target \
            else f"? {inner}{dims}"
    if t.tag in ("const", "volatile", "restrict", "atomic"):
        word = "_Atomic" if t.tag == "atomic" else t.tag
        if t.target is not None and t.target.tag == "array" and t.target.target is not None:
            # a qualified array is an array of qualified elements (C11 6.7.3)
            element = replace(t, target=t.target.target)
            return dwarf_declaration(replace(t.target, target=element), inner, depth + 1)
        if t.target is not None and t.target.tag == "pointer":
            return dwarf_declaration(t.target, f"{word} {inner}".strip(), depth + 1)
        base = dwarf_declaration(t.target, "", depth + 1) if t.target else "void"
        if not base.startswith(f"{word} "):
            base = f"{word} {base}"
        return f"{base} {inner}" if inner else base
    if t.tag == "func":
        return f"void {inner}(void)"
    if t.tag in ("struct", "union", "enum"):
        base = f"{t.tag} {t.name or '{...}'}"
    else:
        base = gdb_spelling(t.name or "void")
    return f"{base} {inner}" if inner else base


def function_declaration(btf: Btf, name: str) -> str | None:
    """`void panic(const char *, ...)` from a BTF FUNC (parameter names left out, as gdb)."""
    for tid in btf.ids_by_name(name):
        if btf.kind_of(tid) != _FUNC:
            continue
        proto = btf._raw(tid)[5]
        owner, pos, _n, kind, vlen, ret = btf._raw(proto)
        if kind != _FUNC_PROTO:
            return None
        words = owner._words
        params = []
        n = vlen & 0xFFFF
        for i in range(n):
            ptype = words[pos + 4 + 2 * i]
            params.append("..." if ptype == 0 and i == n - 1 else
                          gdb_spelling(btf.declaration(ptype, "").strip()))
        args = ", ".join(params) if params else "void"
        return gdb_spelling(btf.declaration(ret, "").strip()) + \
            ("" if btf.declaration(ret, "").strip().endswith("*") else " ") + f"{name}({args})"
    return None


def whatis_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `whatis NAME` / `whatis struct NAME`."""
    from crashtui.commands.struct import cmd_struct, cmd_union

    if len(args) == 2 and args[0] in ("struct", "union"):
        return (cmd_struct if args[0] == "struct" else cmd_union)(session, [args[1]])
    if len(args) != 1:
        raise CommandError("whatis: usage: whatis SYMBOL | STRUCT | struct NAME | union NAME")
    name = args[0]
    k = session.kernel
    decl = function_declaration(k.btf, name)
    if decl is not None:
        return [decl + ";"]
    vm = k.vmlinux
    if vm is not None and k.has_symbol(name):
        from crashtui.debuginfo.dwarfvars import variable_type

        try:
            t = variable_type(vm.lines, name) if vm.lines is not None else None
        except CrashtuiError:
            t = None
        if t is not None:
            return [dwarf_declaration(_sized(session, t, name), name) + ";"]
    for tid in k.btf.ids_by_name(name):  # a per-CPU variable: BTF's only VARs
        t_ref = k.btf.type(tid)
        if t_ref.kind == "var" and t_ref.target_id is not None:
            return [gdb_spelling(k.btf.declaration(t_ref.target_id, name).strip()) + ";"]
    for tag in ("struct", "union"):
        try:
            return (cmd_struct if tag == "struct" else cmd_union)(session, [name])
        except CrashtuiError:
            continue
    if k.has_symbol(name):
        raise CommandError(f"whatis: {name}: a variable's type needs the debug vmlinux "
                           "(its DWARF)")
    raise CommandError(f"whatis: invalid argument: {name}")


def _sized(session: Session, t: DwarfType, name: str) -> DwarfType:
    """An array declared `x[]` (an extern declaration's DWARF) gets its length from the
    symbol's size, as gdb finds it from the definition: `const char linux_banner[204]`."""
    if t.tag in ("const", "volatile") and t.target is not None and t.target.tag == "array" \
            and t.target.target is not None:
        t = replace(t.target, target=replace(t, target=t.target.target))
    if t.tag != "array" or len(t.dims) != 1 or t.dims[0] is not None or t.target is None:
        return t
    sym = session.kernel.symbols.lookup(name)
    element = t.target
    while element.tag in ("const", "volatile") and element.target is not None:
        element = element.target
    try:
        size = session.kernel.btf.sizeof(dwarf_declaration(element, ""))
    except CrashtuiError:
        return t
    if sym is None or not sym.size or not size or sym.size % size:
        return t
    return replace(t, dims=(sym.size // size,))


@command("whatis", "the declaration of a variable or function, or a struct/union layout",
         "whatis SYMBOL | STRUCT | struct NAME | union NAME")
def cmd_whatis(session: Session, args: list[str]) -> list[str]:
    return whatis_lines(session, args)
