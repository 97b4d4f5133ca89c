"""list: walk a linked list in memory and show each entry (and its members), like crash's
`list` with -o, -s, -S, -l, -h, -O, -H, -r, -e, -x and -d."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.debuginfo.ctype import CTypeError, find_member
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

USAGE = ("list [[-o] OFFSET | STRUCT.MEMBER] [-e END] [-[s|S] STRUCT[.MEMBER[,MEMBER]] "
         "[-l OFFSET]] [-x|-d] [-r] [-h [-O HEAD_OFFSET] | -H] START")


def member_offset(session: Session, text: str, cmd: str = "list") -> int:
    """A number (decimal or 0x hex) or struct.member's offset."""
    from crashtui.commands.struct import types_of

    if "." in text:
        name, _dot, member = text.partition(".")
        types = types_of(session)
        try:
            bits, _f = find_member(types, types.struct_named(name), member)
        except CTypeError as exc:
            raise CommandError(f"{cmd}: {exc.message}") from None
        return bits // 8
    try:
        return int(text, 0)
    except ValueError:
        raise CommandError(f"{cmd}: invalid offset: {text}") from None


_member_offset = member_offset


def fast_member_lines(session: Session, spec: str, addr: int, radix: list[str]) -> list[str]:
    """crash's -S (tools.c dump_struct_members_fast(), print_value()): 1-, 2-, 4- and 8-byte
    members read straight from memory, `  name = value` unsigned (pointers in hex, a text
    symbol's name after it), char arrays and char pointers as strings; other members (and a
    STRUCT without members) as -s prints them."""
    from crashtui.commands.struct import cmd_struct, types_of

    name, dot, members = spec.partition(".")
    if not dot:
        return cmd_struct(session, [*radix, spec, f"{addr:x}"])
    types = types_of(session)
    k = session.kernel
    out: list[str] = []
    for m in members.split(","):
        try:
            bits, f = find_member(types, types.struct_named(name), m)
        except CTypeError as exc:
            raise CommandError(f"Can't get offset of '{name}.{m}': {exc.message}") from None
        ct = f.type
        width = ct.size or 0
        at = addr + bits // 8
        is_ptr = ct.kind == "ptr"
        is_str = (ct.kind in ("ptr", "array") and ct.target is not None and ct.target.char
                  and ct.target.size == 1)
        if f.bit_size or not (0 < width <= 8 or is_str):
            out += cmd_struct(session, [*radix, f"{name}.{m}", f"{addr:x}"])
            continue
        line = ""
        value = 0
        if width <= 8:
            try:
                value = k.read_int(at, width)
            except CrashtuiError:
                out.append(f"cannot access member: {m} at {at:x}")
                continue
            hexa = is_ptr or radix == ["-x"]
            line = f"  {m} = " + (f"0x{value:x}" if hexa else f"{value}")
        if is_str:
            try:
                text = (k.read_cstr(value, 1500) if is_ptr else
                        k.read(at, width).split(b"\0", 1)[0].decode("utf-8", "replace"))
            except CrashtuiError:
                text = ""
            line += f'  "{text}"' if is_ptr else f'  {m} = "{text}"'
        elif value and (text_name := _text_symbol(session, value)):
            line += f" <{text_name}>"
        out.append(line)
    return out


def _text_symbol(session: Session, value: int) -> str | None:
    """The function containing `value` (crash's value_search() + is_symbol_text(): the name
    alone, whatever the offset), in the kernel image or a module's core text."""
    from crashtui.commands.rd import value_symbol

    named = value_symbol(session, value)
    if named is None:
        return None
    hit = session.kernel.symbolize(value)
    lo, hi = session.kernel.symbol_or_none("_text"), session.kernel.symbol_or_none("_end")
    if lo is not None and hi is not None and lo <= value < hi:
        return hit[0].name if hit is not None and hit[0].kind == "func" else None
    try:
        mod = session.modules.module_at(value)
    except CrashtuiError:
        return None
    region = mod.region_of(value) if mod is not None else None
    if region is None or region.init or not region.in_text(value):
        return None  # module data, or init code the module freed once loaded
    return named.split("+", 1)[0]


def _address(session: Session, text: str) -> int:
    addr = session.kernel.symbol_or_none(text)
    if addr is not None:
        return addr
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CommandError(f"list: invalid start: {text}")
    return int(t, 16)


def list_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `list` (tools.c cmd_list(), do_list())."""
    from crashtui.commands.struct import cmd_struct
    from crashtui.kernel.listwalk import walk_entries

    offset: int | None = None
    head_offset: int | None = None
    struct_offset = 0
    structs: list[str] = []
    radix: list[str] = []
    start: int | None = None
    end = 0
    head = head_pointer = reverse = fast = False
    i = 0
    while i < len(args):
        a = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if a in ("-o", "-s", "-S", "-e", "-O", "-l") and value is None:
            raise CommandError(f"list: {a} needs a value ({USAGE})")
        if a == "-o":
            offset = _member_offset(session, value or "")
            i += 2
            continue
        if a == "-O":
            head_offset = _member_offset(session, value or "")
            i += 2
            continue
        if a == "-l":
            struct_offset = _member_offset(session, value or "")
            i += 2
            continue
        if a in ("-s", "-S"):
            # -s a,b: two structs; -s a.x,y: members x and y of one
            fast = a == "-S"
            structs += [value or ""] if "." in (value or "") else (value or "").split(",")
            i += 2
            continue
        if a == "-e":
            end = _address(session, value or "")
            i += 2
            continue
        if a in ("-h", "-H"):
            head, head_pointer = True, head_pointer or a == "-H"
            i += 1
            continue
        if a == "-r":
            reverse = True
            i += 1
            continue
        if a in ("-x", "-d"):
            if radix and radix != [a]:
                raise CommandError("list: -d and -x are mutually exclusive")
            radix = [a]
            i += 1
            continue
        if a.startswith("-"):
            raise CommandError(f"list: unsupported option {a} ({USAGE})")
        if "." in a and offset is None and session.kernel.symbol_or_none(a) is None:
            offset = _member_offset(session, a)
        elif start is None:
            start = _address(session, a)
        else:
            raise CommandError(f"list: list start already entered ({USAGE})")
        i += 1
    if start is None:
        raise CommandError(f"list: no start address ({USAGE})")
    if offset is not None and struct_offset:
        raise CommandError("list: -l and -o are mutually exclusive")
    if reverse and not head:
        raise CommandError("list: -r is for lists of list_head (with -h or -H)")
    if head_offset is not None and not head:
        raise CommandError("list: -O is only used with -h")
    off = offset or 0
    member, list_head = off, 0
    out: list[str] = []
    if head:
        member, list_head = (8 if reverse else 0), off  # list_head.prev with -r
        pointer_at = None
        if head_pointer:
            end = end or start
            pointer_at = start + member
        elif head_offset is not None:
            # -O: the list's head is at another offset of the first structure
            end = end or start + head_offset
            pointer_at = start + head_offset
        else:
            start += off
        if pointer_at is not None:
            try:
                start = session.kernel.read_u64(pointer_at)
            except CrashtuiError as exc:
                raise CommandError(f"list: cannot read list head {pointer_at:x}: "
                                   f"{exc.message}") from None
            if start == end:
                return ["(empty)"]
    walk = walk_entries(session.kernel, start, member, list_head, end, head)
    for addr in walk.entries:
        out.append(f"{addr:x}")
        for s in structs:
            at = addr - struct_offset
            out += (fast_member_lines(session, s, at, radix) if fast else
                    cmd_struct(session, [*radix, s, f"{at:x}"]))
    if walk.error:
        out += ["", f"list: {walk.error}"]
    return out


@command("list", "walk a linked list: each entry's address, and its members with -s", USAGE)
def cmd_list(session: Session, args: list[str]) -> list[str]:
    return list_lines(session, args)
