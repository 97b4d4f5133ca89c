"""struct / union: a type's layout, or its contents at an address, like crash.

    struct NAME                      the declaration (gdb ptype) and SIZE
    struct -o NAME                   the same with member offsets
    struct -o NAME ADDR              the same with each member's address
    struct -o NAME.member            only that member's offset
    struct NAME ADDR [COUNT]         the contents at ADDR (a hex address or a symbol)
    struct NAME.m1,m2.sub ADDR       only those members, `  m1 = value,` each
    -x / -d                          integers in hex / decimal (default)

Types come from BTF (the vmlinux's, or the kernel's own in memory); values print as
crash's gdb prints them (crashtui.commands.values; the types: crashtui.debuginfo.ctype).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.values import Printer, declaration_lines
from crashtui.debuginfo.ctype import CType, CTypeError, Field, Types, find_member
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_COUNT = 4096
MAX_STRUCT = 1 << 20


def types_of(session: Session) -> Types:
    """The session's C types, or a CommandError saying why there are none."""
    try:
        return session.types
    except CrashtuiError as exc:
        raise CommandError(f"no type information: {exc.message}") from None


def parse_address(session: Session, text: str, cmd: str) -> int:
    """A hex address, or a symbol (optionally +OFFSET)."""
    name, plus, off = text.partition("+")
    addr = session.kernel.symbol_or_none(name)
    if addr is not None:
        try:
            return addr + (int(off, 0) if plus else 0)
        except ValueError:
            raise CommandError(f"{cmd}: invalid offset: {off}") from None
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CommandError(f"{cmd}: invalid address or symbol: {text}")
    return int(t, 16)


def _struct_cmd(session: Session, args: list[str], tag: str) -> list[str]:
    offsets = False
    hex_ints = False
    rest: list[str] = []
    for a in args:
        if a == "-o":
            offsets = True
        elif a == "-x":
            hex_ints = True
        elif a == "-d":
            hex_ints = False
        elif a.startswith("-") and len(a) > 1:
            raise CommandError(f"{tag}: unsupported option {a}")
        else:
            rest.append(a)
    if not rest or len(rest) > 3:
        raise CommandError(f"{tag}: usage: {tag} [-o] [-x|-d] NAME[.member,...] [ADDR [COUNT]]")
    name, dot, members = rest[0].partition(".")
    types = types_of(session)
    try:
        ct = types.struct_named(f"{tag} {name}" if tag == "union" else name)
        fields = [find_member(types, ct, m) for m in members.split(",")] if dot else []
    except CTypeError as exc:
        raise CommandError(exc.message) from None
    if len(rest) == 1:
        if dot and offsets and len(fields) > 1:  # crash refuses, then shows the whole layout
            return [f"{tag}: -o option not valid with multiple member format",
                    *declaration_lines(types, ct, True)]
        if dot and offsets:
            return _member_offsets(ct, tag, name, fields)
        if dot:
            raise CommandError(f"{tag}: a member list needs an address: {tag} {rest[0]} ADDR")
        return declaration_lines(types, ct, offsets)
    addr = parse_address(session, rest[1], tag)
    if offsets:
        if dot or len(rest) == 3:
            raise CommandError(f"{tag}: -o with an address takes no members or count")
        return declaration_lines(types, ct, True, addr)
    count = 1
    if len(rest) == 3:
        try:
            count = int(rest[2], 0)
        except ValueError:
            raise CommandError(f"{tag}: invalid count: {rest[2]}") from None
        if not 0 < count <= MAX_COUNT:
            raise CommandError(f"{tag}: count must be 1..{MAX_COUNT}")
    size = ct.size or 0
    if not 0 < size <= MAX_STRUCT:
        raise CommandError(f"{tag}: {ct.name} has no usable size")
    printer = Printer(session, types, hex_ints)
    out: list[str] = []
    for i in range(count):
        at = addr + i * size
        if i:
            out.append("")  # crash separates the entries of a count with a blank line
        try:
            data = session.kernel.read(at, size)
        except CrashtuiError:
            out.append(f"{tag}: seek error: kernel virtual address: {at:x}  "
                       f'type: "gdb_readmem_callback"')
            break
        if fields:
            for _bits, f in fields:
                out += f"  {f.name} = {printer.field_value(f, data, at, 1)},".split("\n")
        else:
            head = ct.name if ct.name.startswith(("struct ", "union ")) else f"{tag} {name}"
            out += f"{head} {printer.value(ct, data, at, 0)}".split("\n")
    return out


def _member_offsets(ct: CType, tag: str, name: str, fields: list[tuple[int, Field]]) -> list[str]:
    """crash's `struct -o NAME.member`: only that member's offset, no SIZE line."""
    width = len(str(ct.size or 0)) + 4
    out = [f"{tag} {name} {{"]
    for bits, f in fields:
        member = f.name.rsplit(".", 1)[-1]
        out.append(f"{'[' + str(bits // 8) + ']':>{width}} {_declaration(f.type, member)};")
    return out + ["}"]


def _declaration(ct: CType, member: str) -> str:
    """`struct list_head *next`, `char comm[16]`, `void (*fn)(int)` from a type and a name."""
    name = ct.name
    if "(*)" in name:
        return name.replace("(*)", f"(*{member})", 1)
    if ct.kind == "array" and " [" in name:
        return name.replace(" [", f" {member}[", 1)
    if name.endswith("*"):
        return f"{name}{member}"
    return f"{name} {member}"


@command("struct", "a structure's layout, or its contents at an address (like crash)",
         "struct [-o] [-x|-d] NAME[.member,...] [ADDRESS|SYMBOL [COUNT]]")
def cmd_struct(session: Session, args: list[str]) -> list[str]:
    return _struct_cmd(session, args, "struct")


@command("union", "a union's layout, or its contents at an address (like crash)",
         "union [-o] [-x|-d] NAME[.member,...] [ADDRESS|SYMBOL [COUNT]]")
def cmd_union(session: Session, args: list[str]) -> list[str]:
    return _struct_cmd(session, args, "union")
