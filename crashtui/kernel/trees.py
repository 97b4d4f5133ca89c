"""Kernel trees walked the way crash's `tree` walks them (tools.c, maple_tree.c): red-black
trees (lib/rbtree.c), radix trees/XArrays (lib/xarray.c) and maple trees (lib/maple_tree.c).

Every walk is bounded (a node budget and a depth limit) and cycle-safe (a visited set); a
walk that stops early says why in `error`, with the entries found so far kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_TREE_NODES = 1 << 20
MAX_RB_DEPTH = 128  # a red-black tree of 2^64 nodes is at most 128 deep
ULONG_MAX = (1 << 64) - 1
XA_TAG_MASK = 3
XA_TAG_INTERNAL = 2
# include/linux/maple_tree.h: enum maple_type, the type is bits 3..6 of an encoded node
MAPLE_DENSE, MAPLE_LEAF_64, MAPLE_RANGE_64, MAPLE_ARANGE_64 = range(4)
MAPLE_NODE_MASK = 0xFF
MAPLE_MAX_DEPTH = 32


@dataclass(frozen=True)
class TreeEntry:
    """One entry: its address (rb: the node less the -o offset), crash's position text
    (`root/l/r`, `root/1/26`) and, for radix/xarray/maple trees, its index."""

    address: int
    position: str
    index: int = 0


@dataclass
class TreeWalk:
    entries: list[TreeEntry] = field(default_factory=list)
    error: str | None = None
    items: list[str | TreeEntry] = field(default_factory=list)  # maple -v: lines and entries


def rbtree_walk(kernel: Kernel, node: int, node_offset: int = 0, linear: bool = False,
                limit: int = MAX_TREE_NODES) -> TreeWalk:
    """crash's rbtree_iteration() from rb_node `node`: pre-order (root, left, right), or
    in-order with `linear` (-l); rb_left/rb_right from struct rb_node."""
    o_right = kernel.offsetof("rb_node", "rb_right")
    o_left = kernel.offsetof("rb_node", "rb_left")
    out = TreeWalk()
    seen: set[int] = set()

    def children(n: int) -> tuple[int, int]:
        raw = kernel.read(n, max(o_left, o_right) + 8)
        return (int.from_bytes(raw[o_left:o_left + 8], "little"),
                int.from_bytes(raw[o_right:o_right + 8], "little"))

    # an explicit stack: (node, position, children visited?)
    stack: list[tuple[int, str, bool]] = [(node, "root", False)] if node else []
    while stack:
        n, pos, expanded = stack.pop()
        if expanded:  # linear order: the node itself after its left subtree
            out.entries.append(TreeEntry(n - node_offset, pos))
            continue
        if n in seen:
            out.error = f"duplicate tree entry: {n:x}"
            return out
        if len(seen) >= limit or pos.count("/") > MAX_RB_DEPTH:
            out.error = f"tree larger than {limit} nodes or deeper than {MAX_RB_DEPTH}"
            return out
        seen.add(n)
        try:
            left, right = children(n)
        except CrashtuiError as exc:
            out.error = f"rb_node {n:x}: {exc.message}"
            return out
        if right:
            stack.append((right, pos + "/r", False))
        if linear:
            stack.append((n, pos, True))
            if left:
                stack.append((left, pos + "/l", False))
        else:
            if left:
                stack.append((left, pos + "/l", False))
            out.entries.append(TreeEntry(n - node_offset, pos))
    return out


def rb_root_node(kernel: Kernel, root: int) -> int:
    """rb_root.rb_node of the rb_root at `root`."""
    return kernel.read_u64(root + kernel.offsetof("rb_root", "rb_node"))


def xarray_walk(kernel: Kernel, head: int, is_root: bool = True,
                limit: int = MAX_TREE_NODES) -> TreeWalk:
    """crash's do_xarray_traverse(): every non-NULL slot of the leaf level with its index
    (the XArray's xa_head at `head + offsetof(xarray, xa_head)` when `is_root`, else an
    xa_node pointer, -N); the height from the top node's shift, the chunk from xa_node.slots."""
    out = TreeWalk()
    nslots = kernel.btf.member_type("xa_node", "slots").resolved().length or 64
    chunk_shift = nslots.bit_length() - 1
    o_shift, o_slots = kernel.offsetof("xa_node", "shift"), kernel.offsetof("xa_node", "slots")
    if is_root:
        entry = kernel.read_u64(head + kernel.offsetof("xarray", "xa_head"))
        internal = entry & XA_TAG_MASK == XA_TAG_INTERNAL
        node = entry & ~XA_TAG_MASK
    else:
        internal, node = True, head & ~XA_TAG_MASK if head & XA_TAG_MASK == XA_TAG_INTERNAL \
            else head
    if not internal:
        out.entries.append(TreeEntry(node, "direct", 0))
        return out
    height = kernel.read(node + o_shift, 1)[0] // chunk_shift + 1
    seen: set[int] = set()
    mask = nslots - 1

    def walk(n: int, h: int, path: str, index: int) -> bool:
        if n in seen:
            out.error = f"duplicate tree node: {n:x}"
            return False
        if len(seen) >= limit:
            out.error = f"tree larger than {limit} nodes"
            return False
        seen.add(n)
        try:
            raw = kernel.read(n + o_slots, 8 * nslots)
        except CrashtuiError as exc:
            out.error = f"xa_node {n:x}: {exc.message}"
            return False
        shift = (h - 1) * chunk_shift
        for off in range(nslots):
            slot = int.from_bytes(raw[8 * off:8 * off + 8], "little")
            if not slot:
                continue
            if slot & XA_TAG_MASK == XA_TAG_INTERNAL:
                slot &= ~XA_TAG_INTERNAL
            if h == 1:
                idx = index | off
                out.entries.append(TreeEntry(slot, f"{path}/{idx & mask}", idx))
            elif not walk(slot, h - 1, f"{path}/{off}", index | (off << shift)):
                return False
        return True

    if height > 64 // chunk_shift + 1:
        out.error = f"xa_node {node:x}: implausible height {height}"
        return out
    walk(node, height, "root", 0)
    return out


def _ptr(v: int) -> str:
    """glibc's %p."""
    return f"0x{v:x}" if v else "(nil)"


def _mt_entry_text(entry: int) -> str:
    """crash's dump_mt_entry() value: a value entry, the zero entry, a reserved one or a
    pointer."""
    if entry & 1:
        return f"value {entry >> 1} (0x{entry >> 1:x}) [0x{entry:x}]"
    if entry == 0x406:  # XA_ZERO_ENTRY = xa_mk_internal(257)
        return "zero (257)"
    if entry < 4096 and entry & 3 == XA_TAG_INTERNAL:
        return f"UNKNOWN ENTRY (0x{entry:x})"
    return f"0x{entry:x}"


def maple_walk(kernel: Kernel, tree: int, is_root: bool = True,
               limit: int = MAX_TREE_NODES, verbose: bool = False) -> TreeWalk:
    """crash's do_maple_tree_traverse(): each non-NULL leaf entry in index order, numbered
    from 1 (crash's -p index), its position the node path and slot (`root/0/3`); the node
    type is read from the encoded pointer, the slot/pivot counts from maple_range_64 and
    maple_arange_64's arrays. `verbose` (-v) also keeps crash's node and entry dump in
    `items`, each entry's TreeEntry after its line."""
    off = kernel.offsetof
    btf = kernel.btf
    r64_piv, r64_slot = off("maple_range_64", "pivot"), off("maple_range_64", "slot")
    a64_piv, a64_slot = off("maple_arange_64", "pivot"), off("maple_arange_64", "slot")
    dense_slot = off("maple_node", "slot")
    r64_n = btf.member_type("maple_range_64", "slot").resolved().length or 16
    a64_n = btf.member_type("maple_arange_64", "slot").resolved().length or 10
    dense_n = btf.member_type("maple_node", "slot").resolved().length or 31
    mt_max = {MAPLE_DENSE: dense_n, MAPLE_LEAF_64: ULONG_MAX, MAPLE_RANGE_64: ULONG_MAX,
              MAPLE_ARANGE_64: ULONG_MAX}
    node_size = kernel.sizeof("struct maple_node")
    out = TreeWalk()
    seen: set[int] = set()
    counter = [0]
    pending = [""]  # a node line crash leaves open (dense nodes print no contents)

    def emit(text: str) -> None:
        out.items.append(pending[0] + text)
        pending[0] = ""

    def span(lo: int, hi: int, depth: int) -> str:
        pad = " " * min(2 * depth, 32)
        return f"{pad}{lo}: " if lo == hi else f"{pad}{lo}-{hi}: "

    def entry(value: int, lo: int, hi: int, depth: int, path: str, slot: int,
              prefix: str = "") -> None:
        if verbose:
            emit(prefix + span(lo, hi, depth) + _mt_entry_text(value))
        if value:
            counter[0] += 1
            e = TreeEntry(value, f"{path}/{slot}", counter[0])
            out.entries.append(e)
            if verbose:
                out.items.append(e)

    def node(enode: int, lo: int, hi: int, depth: int, path: str) -> bool:
        addr = enode & ~MAPLE_NODE_MASK
        kind = (enode >> 3) & 0xF
        if addr in seen or depth > MAPLE_MAX_DEPTH or len(seen) >= limit:
            out.error = f"maple node {addr:x}: reached twice, too deep or too many nodes"
            return False
        seen.add(addr)
        try:
            raw = kernel.read(addr, node_size)
        except CrashtuiError as exc:
            out.error = f"maple node {addr:x}: {exc.message}"
            return False

        def u64(o: int) -> int:
            return int.from_bytes(raw[o:o + 8], "little")

        head = (span(lo, hi, depth) + f"node 0x{addr:x} depth {depth} type {kind} parent "
                f"{_ptr(u64(off('maple_node', 'parent')))}")
        if kind == MAPLE_DENSE:
            if verbose:
                pending[0] = head  # crash prints no newline after a dense node's line
            for i in range(dense_n):
                entry(u64(dense_slot + 8 * i), lo + i, lo + i, depth, path, i,
                      "OUT OF RANGE: " if lo + i > hi else "")
            return True
        if kind in (MAPLE_LEAF_64, MAPLE_RANGE_64):
            piv, slots, n = r64_piv, r64_slot, r64_n
            gaps = ""
        elif kind == MAPLE_ARANGE_64:
            piv, slots, n = a64_piv, a64_slot, a64_n
            o_gap, o_meta = off("maple_arange_64", "gap"), off("maple_arange_64", "meta")
            end = raw[o_meta + off("maple_metadata", "end")]
            gap = raw[o_meta + off("maple_metadata", "gap")]
            gaps = "".join(f"{u64(o_gap + 8 * i)} " for i in range(n)) + \
                f"| {end:02X} {gap:02X}| "
        else:
            if verbose:
                emit(head + " UNKNOWN TYPE")
            out.error = f"maple node {addr:x}: unknown type {kind}"
            return False
        if verbose:
            pairs = "".join(f"{_ptr(u64(slots + 8 * i))} {u64(piv + 8 * i)} "
                            for i in range(n - 1))
            emit(f"{head} contents: {gaps}{pairs}{_ptr(u64(slots + 8 * (n - 1)))}")
        leaf = kind < MAPLE_RANGE_64
        first = lo
        for i in range(n):
            last = hi
            slot = u64(slots + 8 * i)
            if i < n - 1:
                last = u64(piv + 8 * i)
            elif not slot and (kind == MAPLE_ARANGE_64 or hi != mt_max[kind]):
                break
            if last == 0 and i > 0:
                break
            if leaf:
                entry(slot, first, last, depth + 1, path, i)
            elif slot and not node(slot, first, last, depth + 1, f"{path}/{i}"):
                return False
            if last == hi:
                break
            if last > hi:
                if verbose:
                    emit(f"node 0x{addr + off('maple_node', 'mr64'):x} last ({last}) > max "
                         f"({hi}) at pivot {i}!")
                break
            first = last + 1
        return True

    if not is_root:
        kind = (tree >> 3) & 0xF
        node(tree, 0, mt_max.get(kind, ULONG_MAX), 0, "direct")
        return out
    root = kernel.read_u64(tree + off("maple_tree", "ma_root"))
    if verbose:
        flags = kernel.read_u32(tree + off("maple_tree", "ma_flags"))
        emit(f"maple_tree({tree:x}) flags {flags:X}, height {(flags & 0x7C) >> 2} "
             f"root 0x{root:x}")
        emit("")
    if root & XA_TAG_MASK == XA_TAG_INTERNAL and root > 4096:
        node(root, 0, mt_max.get((root >> 3) & 0xF, ULONG_MAX), 0, "root")
    else:
        entry(root, 0, 0, 0, "", 0)
    if pending[0]:
        emit("")
    return out
