"""Sleeping locks and who holds them: the lock a blocked task waits on, found from the waiter
the lock's slow path keeps on the task's own stack, and the owner the lock records.

A task waiting in `__mutex_lock`, `rwsem_down_*_slowpath`, `__down_common` or
`__wait_for_common` has a waiter on its kernel stack (struct mutex_waiter, rwsem_waiter,
semaphore_waiter, swait_queue) whose `task` is the task itself and whose list node is linked
into the lock's `wait_list`. The node of that ring that is on no task's stack is the lock's
own list head; container_of gives the lock. Offsets come from BTF, per kernel version.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError
from crashtui.kernel.lists import list_for_each

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

THREAD_SIZE = 16384  # x86_64 kernel stacks (KASAN doubles it: then the scan sees half)
MAX_WAITERS = 10_000
# Owner fields keep flag bits in their low bits (MUTEX_FLAGS, RWSEM_OWNER_FLAGS_MASK).
OWNER_FLAGS = 0x7
RWSEM_READER_OWNED = 0x1


@dataclass(frozen=True)
class LockKind:
    """Where a kind of sleeping lock keeps its waiters and its owner."""

    name: str  # "mutex", "rwsem", "semaphore", "completion"
    lock_struct: str
    wait_list: str  # the lock's list head member
    waiter_struct: str
    waiter_list: str
    waiter_task: str
    owner: str | None  # the lock's owner member, if it records one


KINDS = {
    "mutex": LockKind("mutex", "mutex", "wait_list", "mutex_waiter", "list", "task", "owner"),
    "rwsem": LockKind("rwsem", "rw_semaphore", "wait_list", "rwsem_waiter", "list", "task",
                      "owner"),
    "semaphore": LockKind("semaphore", "semaphore", "wait_list", "semaphore_waiter", "list",
                          "task", None),
    "completion": LockKind("completion", "completion", "wait.task_list", "swait_queue",
                           "task_list", "task", None),
}


@dataclass(frozen=True)
class LockWait:
    """A task waiting on a lock: the lock, its recorded owner, and everyone queued on it."""

    kind: str
    lock: int
    waiter: int  # the waiter struct on the task's stack
    owner: int | None = None  # task_struct address (flag bits masked), None if not recorded
    reader_owned: bool = False  # an rwsem held by readers: owner is only the last reader
    waiters: tuple[int, ...] = ()  # the tasks queued on the lock, in queue order


class StackRanges:
    """The kernel stacks of all tasks: is an address on one of them?"""

    def __init__(self, stacks: list[int]) -> None:
        self.starts = sorted({s for s in stacks if s})

    def contains(self, addr: int) -> bool:
        i = bisect.bisect_right(self.starts, addr) - 1
        return i >= 0 and addr < self.starts[i] + THREAD_SIZE


def read_stack(kernel: Kernel, stack: int) -> np.ndarray:
    """A task's kernel stack as 64-bit words (unreadable pages as zeros)."""
    try:
        return np.frombuffer(kernel.read(stack, THREAD_SIZE), dtype="<u8")
    except CrashtuiError:
        pass
    words = np.zeros(THREAD_SIZE // 8, dtype="<u8")
    for off in range(0, THREAD_SIZE, 4096):
        try:
            words[off // 8:(off + 4096) // 8] = np.frombuffer(kernel.read(stack + off, 4096),
                                                              dtype="<u8")
        except CrashtuiError:
            continue
    return words


def find_wait(kernel: Kernel, task: int, stack: int, kind_name: str,
              stacks: StackRanges) -> LockWait | None:
    """The lock of kind `kind_name` that `task` waits on, from the waiter on its stack."""
    kind = KINDS[kind_name]
    try:
        o_task = kernel.offsetof(kind.waiter_struct, kind.waiter_task)
        o_list = kernel.offsetof(kind.waiter_struct, kind.waiter_list)
        o_head = kernel.offsetof(kind.lock_struct, kind.wait_list)
    except CrashtuiError:
        return None
    words = read_stack(kernel, stack)
    for i in np.flatnonzero(words == np.uint64(task)).tolist()[::-1]:  # deepest frame last
        waiter = stack + 8 * i - o_task
        found = _lock_of(kernel, kind, waiter + o_list, stacks)
        if found is None:
            continue
        head, queued = found
        tasks = []
        for node in queued:
            try:
                tasks.append(kernel.read_u64(node - o_list + o_task))
            except CrashtuiError:
                continue
        lock = head - o_head
        owner, readers = _owner(kernel, kind, lock)
        return LockWait(kind.name, lock, waiter, owner, readers, tuple(tasks))
    return None


def _lock_of(kernel: Kernel, kind: LockKind, node: int,
             stacks: StackRanges) -> tuple[int, list[int]] | None:
    """(the list head off every stack, the waiter nodes in queue order) of the ring `node`
    is on; None if `node` is not a well-linked list node or the ring has no single head."""
    try:
        nxt, prev = kernel.read_u64(node), kernel.read_u64(node + 8)
        if kernel.read_u64(nxt + 8) != node or kernel.read_u64(prev) != node:
            return None
        ring = [node, *list_for_each(kernel, node, MAX_WAITERS)]
    except CrashtuiError:
        return None
    heads = [i for i, n in enumerate(ring) if not stacks.contains(n)]
    if len(heads) != 1:
        return None
    h = heads[0]
    return ring[h], ring[h + 1:] + ring[:h]


def _owner(kernel: Kernel, kind: LockKind, lock: int) -> tuple[int | None, bool]:
    if kind.owner is None:
        return None, False
    try:
        raw = kernel.member(lock, kind.lock_struct, kind.owner)
    except CrashtuiError:
        return None, False
    owner = raw & ~OWNER_FLAGS & 0xFFFFFFFFFFFFFFFF
    readers = kind.name == "rwsem" and bool(raw & RWSEM_READER_OWNED)
    return (owner or None), readers


def lock_kind_of(functions: list[str]) -> str | None:
    """Which kind of lock a blocked task's wait frames say it waits on."""
    for fn in functions:
        name = fn.split(".", 1)[0]
        if "mutex_lock" in name:
            return "mutex"
        if name.startswith(("rwsem_down", "down_read", "down_write", "__down_read",
                            "__down_write")):
            return "rwsem"
        if name in ("__down", "down", "__down_common", "__down_interruptible", "down_killable",
                    "__down_killable", "down_interruptible", "down_timeout", "__down_timeout"):
            return "semaphore"
        if name.startswith(("wait_for_completion", "__wait_for_common", "wait_for_common")):
            return "completion"
    return None
