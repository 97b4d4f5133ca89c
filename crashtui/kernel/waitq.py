"""Wait queues (include/linux/wait.h): the tasks queued on a wait_queue_head, as crash's
`waitq` finds them (kernel.c dump_waitq()).

wait_queue_head.head (4.13+: entries are wait_queue_entry, linked by `entry`, the task in
`private`) or wait_queue_head.task_list (older: __wait_queue, `task_list` and `private`);
which one is read from the type's members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_WAITERS = 1 << 16


@dataclass
class WaitQueue:
    """The `private` pointer of each entry in queue order, and why the walk stopped."""

    head: int
    waiters: list[int] = field(default_factory=list)
    error: str | None = None


def _layout(kernel: Kernel) -> tuple[int, int, int]:
    """(offset of the list in the head, of the link in an entry, of the task in an entry)."""
    btf = kernel.btf
    off = kernel.offsetof
    if btf.has_type("struct wait_queue_entry") and btf.has_member("wait_queue_head", "head"):
        return (off("wait_queue_head", "head"), off("wait_queue_entry", "entry"),
                off("wait_queue_entry", "private"))
    if btf.has_type("struct __wait_queue"):
        return (off("__wait_queue_head", "task_list"), off("__wait_queue", "task_list"),
                off("__wait_queue", "private"))
    raise KernelReadError("cannot determine wait queue structures (no wait_queue_entry or "
                          "__wait_queue type)")


def wait_queue(kernel: Kernel, head: int) -> WaitQueue:
    """Walk the wait_queue_head at `head` (bounded, cycle-checked, stops at an unreadable
    link as crash's list walk does)."""
    o_list, o_link, o_task = _layout(kernel)
    out = WaitQueue(head)
    start = head + o_list
    seen = {start}
    try:
        node = kernel.read_u64(start)
    except CrashtuiError as exc:
        out.error = f"wait queue {head:x}: {exc.message}"
        return out
    while node != start:
        if node in seen or len(out.waiters) >= MAX_WAITERS:
            out.error = f"wait queue {head:x}: list loops at {node:x} or is too long"
            return out
        seen.add(node)
        try:
            out.waiters.append(kernel.read_u64(node - o_link + o_task))
            node = kernel.read_u64(node)
        except CrashtuiError as exc:
            out.error = f"wait queue entry {node - o_link:x}: {exc.message}"
            return out
    return out
