"""Walking kernel linked lists (include/linux/list.h) safely: bounded, cycle-checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_LIST_ENTRIES = 1_000_000


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
