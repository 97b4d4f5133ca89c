"""Walking kernel linked lists (include/linux/list.h) safely: bounded, cycle-checked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_LIST_ENTRIES = 1_000_000
_PREV = 8  # offsetof(struct list_head, prev)


class ListWalkError(KernelReadError):
    """A list walk stopped at a bad pointer or a cycle."""


def list_for_each(kernel: Kernel, head: int, limit: int = MAX_LIST_ENTRIES) -> Iterator[int]:
    """Yield the address of each `struct list_head` node after `head` (not head itself).

    Stops with ListWalkError on an unreadable pointer, a cycle that does not return to head,
    or more than `limit` nodes.
    """
    seen: set[int] = set()
    try:
        node = kernel.read_u64(head)
    except CrashtuiError as exc:
        raise ListWalkError(f"list head {head:#x} unreadable: {exc.message}", head) from exc
    count = 0
    while node != head:
        if node in seen:
            raise ListWalkError(f"list at {head:#x} has a cycle at {node:#x}", node)
        if count >= limit:
            raise ListWalkError(f"list at {head:#x} longer than {limit} entries", node)
        seen.add(node)
        yield node
        count += 1
        try:
            node = kernel.read_u64(node)
        except CrashtuiError as exc:
            raise ListWalkError(f"list node {node:#x} unreadable: {exc.message}", node) from exc


@dataclass
class ListWalk:
    """The nodes of a list in order, and why the walk could not follow it all (if so)."""

    nodes: list[int]
    error: str | None = None
    recovered: int = 0  # nodes found walking back from the head after the forward walk broke


def walk_list(kernel: Kernel, head: int, limit: int = MAX_LIST_ENTRIES,
              member: int | None = None) -> ListWalk:
    """All nodes after `head`, checking each link both ways (next->prev == node).

    When a pointer is unreadable, does not point back, cycles or the list is too long, the
    walk goes on backwards from head->prev to recover the nodes after the break; the
    result says what broke. `member`, a node known to be on the list, is walked from both
    ways when the head itself cannot be read (its page missing from the dump): the head's
    address is enough to know where the list ends. Never raises; at most `limit` nodes.
    """
    seen: set[int] = set()
    nodes: list[int] = []
    if member is not None and member != head and not _readable(kernel, head):
        seen.add(member)
        before: list[int] = []
        error = _follow(kernel, head, member, _PREV, before, seen, limit - 1)
        if error is None:
            error = _follow(kernel, head, member, 0, nodes, seen, limit - 1 - len(before))
        return ListWalk(before[::-1] + [member] + nodes, error)
    error = _follow(kernel, head, head, 0, nodes, seen, limit)
    if error is None:
        return ListWalk(nodes)
    back: list[int] = []
    _follow(kernel, head, head, _PREV, back, seen, limit - len(nodes))
    return ListWalk(nodes + back[::-1], error, len(back))


def _readable(kernel: Kernel, addr: int) -> bool:
    try:
        kernel.read_u64(addr)
    except CrashtuiError:
        return False
    return True


def _follow(kernel: Kernel, head: int, start: int, link: int, out: list[int], seen: set[int],
            limit: int) -> str | None:
    """Follow `link` (0: next, 8: prev) from `start` into `out` until head; the error if any."""
    back = _PREV - link
    node = start
    while True:
        try:
            nxt = kernel.read_u64(node + link)
        except CrashtuiError as exc:
            return f"list node {node:#x} unreadable: {exc.message}"
        if nxt == head:
            return None
        if nxt in seen:
            return f"list at {head:#x} has a cycle at {nxt:#x}"
        if len(out) >= limit:
            return f"list at {head:#x} longer than {limit} entries"
        try:
            points_back = kernel.read_u64(nxt + back) == node
        except CrashtuiError as exc:
            return f"list node {nxt:#x} (after {node:#x}) unreadable: {exc.message}"
        if not points_back:
            return f"list corrupt at {node:#x}: its neighbour {nxt:#x} does not point back"
        seen.add(nxt)
        out.append(nxt)
        node = nxt
