"""tree [-t rbtree|radix|xarray|maple] [-r OFFSET] [-o OFFSET] [-s STRUCT[.MEMBER,...]] [-p]
[-l] [-x|-d] [-N] START: the entries of a kernel tree, as crash's `tree` prints them
(tools.c cmd_tree(), maple_tree.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.trees import TreeWalk

USAGE = ("tree [-t [radix|xarray|rbtree|maple]] [-r offset] [-s struct[.member[,member]]] "
         "-[x|d] [-o offset] [-l] [-p] [-N] start")
TYPES = {"ra": "radix", "rb": "rbtree", "x": "xarray", "m": "maple"}
NAMES = {"radix": "radix trees", "xarray": "Xarrays", "maple": "maple trees",
         "rbtree": "rbtrees"}


def offset_arg(session: Session, text: str, cmd: str, opt: str) -> int:
    """A number of bytes or struct.member's offset (crash's -r/-o/-l/-O argument)."""
    from crashtui.commands.listcmd import member_offset

    if text and (text[0].isdigit() or text.startswith("-")):
        try:
            return int(text, 0)
        except ValueError:
            raise CommandError(f"{cmd}: invalid {opt} argument: {text}") from None
    if "." in text:
        return member_offset(session, text, cmd)
    raise CommandError(f"{cmd}: invalid {opt} argument: {text}")


def _start(session: Session, text: str) -> int:
    addr = session.kernel.symbol_or_none(text)
    if addr is not None:
        return addr
    t = text.lower().removeprefix("0x")
    if t and all(c in "0123456789abcdef" for c in t) and int(t, 16) >= 0xFFFF800000000000:
        return int(t, 16)
    raise CommandError(f"tree: invalid start argument: {text}")


def struct_lines(session: Session, specs: list[str], addr: int, radix: list[str],
                 fast: bool = False) -> list[str]:
    """Each -s STRUCT[.MEMBER,...] of one entry, as crash's dump_struct()/dump_struct_member()
    (-S: as dump_struct_members_fast())."""
    from crashtui.commands.listcmd import fast_member_lines
    from crashtui.commands.struct import cmd_struct

    out: list[str] = []
    for s in specs:
        out += (fast_member_lines(session, s, addr, radix) if fast else
                cmd_struct(session, [*radix, s, f"{addr:x}"]))
    return out


def tree_walk(session: Session, kind: str, start: int, node_pointer: bool, node_offset: int,
              linear: bool, verbose: bool = False) -> TreeWalk:
    from crashtui.kernel.trees import maple_walk, rb_root_node, rbtree_walk, xarray_walk

    k = session.kernel
    if kind == "rbtree":
        node = start if node_pointer else rb_root_node(k, start)
        return rbtree_walk(k, node, node_offset, linear)
    if kind in ("xarray", "radix"):
        return xarray_walk(k, start, not node_pointer)
    return maple_walk(k, start, not node_pointer, verbose=verbose)


def tree_lines(session: Session, args: list[str]) -> list[str]:
    kind: str | None = None
    root_offset: int | None = None
    node_offset: int | None = None
    specs: list[str] = []
    position = linear = node_pointer = verbose = fast = False
    radix: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1 and not a[1].isdigit():
            flags = a[1:]
            for j, f in enumerate(flags):
                if f in "trosS":
                    value = flags[j + 1:] or (args[i + 1] if i + 1 < len(args) else None)
                    if not flags[j + 1:]:
                        i += 1
                    if value is None:
                        raise CommandError(f"tree: -{f} needs a value ({USAGE})")
                    if f == "t":
                        if kind is not None:
                            raise CommandError("tree: multiple tree types may not be entered")
                        kind = next((v for p, v in TYPES.items() if value.startswith(p)), None)
                        if kind is None:
                            raise CommandError(f"tree: invalid tree type: {value}")
                        if kind == "radix" and session.kernel.btf.has_member(
                                "radix_tree_root", "xa_head"):
                            kind = "xarray"
                    elif f == "r":
                        if root_offset is not None:
                            raise CommandError(f"tree: root offset value {root_offset} "
                                               f"(0x{root_offset:x}) already entered")
                        root_offset = offset_arg(session, value, "tree", "-r")
                    elif f == "o":
                        if node_offset is not None:
                            raise CommandError(f"tree: node offset value {node_offset} "
                                               f"(0x{node_offset:x}) already entered")
                        node_offset = offset_arg(session, value, "tree", "-o")
                    else:
                        if specs and fast != (f == "S"):
                            raise CommandError("tree: -S and -s options are mutually exclusive")
                        fast = f == "S"
                        specs.append(value)
                    break
                if f == "p":
                    position = True
                elif f == "l":
                    linear = True
                elif f == "N":
                    node_pointer = True
                elif f in "xd":
                    if radix and radix != [f"-{f}"]:
                        raise CommandError("tree: -d and -x are mutually exclusive")
                    radix = [f"-{f}"]
                elif f == "v":
                    verbose = True
                else:
                    raise CommandError(f"tree: invalid option -{f} ({USAGE})")
        else:
            rest.append(a)
        i += 1
    kind = kind or "rbtree"
    if kind == "radix" and not session.kernel.btf.has_type("struct radix_tree_root"):
        # 4.20+: radix_tree_root is a #define of struct xarray (use -t xarray)
        raise CommandError("tree: radix trees do not exist or have changed their format")
    name = NAMES[kind]
    if kind != "rbtree" and linear:
        raise CommandError(f"tree: -l option is not applicable to {name}")
    if kind != "rbtree" and node_offset is not None:
        raise CommandError(f"tree: -o option is not applicable to {name}")
    if kind != "maple" and verbose:
        raise CommandError(f"tree: -v option is not applicable to {name}")
    if root_offset is not None and node_pointer:
        raise CommandError("tree: -r and -N options are mutually exclusive")
    if not rest:
        raise CommandError(f"tree: a starting address is required ({USAGE})")
    if len(rest) > 1:
        raise CommandError(f"tree: too many arguments entered ({USAGE})")
    start = _start(session, rest[0])
    if not node_pointer:
        start += root_offset or 0
    try:
        walk = tree_walk(session, kind, start, node_pointer, node_offset or 0, linear, verbose)
    except CrashtuiError as exc:
        raise CommandError(f"tree: {exc.message}") from None
    out: list[str] = []
    for e in walk.items if verbose else walk.entries:
        if isinstance(e, str):
            out.append(e)
            continue
        if not verbose:
            out.append(f"{e.address:x}")
        if position:
            out.append(f"  position: {e.position}" if kind == "rbtree" else
                       f"  index: {e.index}  position: {e.position}")
        if specs:
            out += struct_lines(session, specs, e.address, radix, fast)
    if walk.error:
        out += ["", f"tree: {walk.error}"]
    return out


@command("tree", "the entries of a red-black tree, radix tree/XArray or maple tree", USAGE)
def cmd_tree(session: Session, args: list[str]) -> list[str]:
    return tree_lines(session, args)
