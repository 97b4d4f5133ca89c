"""Sleeping locks and who holds them: the lock a blocked task waits on, found from the waiter
the lock's slow path keeps on the task's own stack, and the owner the lock records.

A task waiting in `__mutex_lock`, `rwsem_down_*_slowpath`, `__down_common` or
`__wait_for_common` has a waiter on its kernel stack (struct mutex_waiter, rwsem_waiter,
semaphore_waiter, swait_queue) whose `task` is the task itself and whose list node is linked
into the lock's `wait_list`. The node of that ring that is on no task's stack is the lock's
own list head; container_of gives the lock. Offsets come from BTF, per kernel version.

7.x's mutex, rw_semaphore and semaphore have no `wait_list` head: the lock keeps
`first_waiter` (a pointer to a waiter) and the waiters' list nodes form a ring of their own,
every node on a stack. There the lock is the object whose `first_waiter` points into the
task's ring: task_struct.blocked_on names it for a mutex; otherwise it is a pointer the
waiting frames keep on the task's stack. Which layout a kernel has is read from its members.
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
    # 7.x: the lock points at its first waiter (no list head); the task may name the lock
    first_waiter: str | None = None
    blocked_on: str | None = None  # task_struct member holding the lock's address


KINDS = {
    "mutex": LockKind("mutex", "mutex", "wait_list", "mutex_waiter", "list", "task", "owner",
                      "first_waiter", "blocked_on"),
    "rwsem": LockKind("rwsem", "rw_semaphore", "wait_list", "rwsem_waiter", "list", "task",
                      "owner", "first_waiter"),
    "semaphore": LockKind("semaphore", "semaphore", "wait_list", "semaphore_waiter", "list",
                          "task", None, "first_waiter"),
    "completion": LockKind("completion", "completion", "wait.task_list", "swait_queue",
                           "task_list", "task", None),
}
KERNEL_SPACE = 0xFFFF800000000000  # x86_64 and arm64 (48-bit) kernel addresses start here


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
    except CrashtuiError:
        return None
    o_head = _optional_offset(kernel, kind.lock_struct, kind.wait_list)
    o_first = None if o_head is not None or kind.first_waiter is None else \
        _optional_offset(kernel, kind.lock_struct, kind.first_waiter)
    if o_head is None and o_first is None:
        return None
    words = read_stack(kernel, stack)
    for i in np.flatnonzero(words == np.uint64(task)).tolist()[::-1]:  # deepest frame last
        waiter = stack + 8 * i - o_task
        if o_head is not None:
            found = _lock_of(kernel, kind, waiter + o_list, stacks)
            if found is None:
                continue
            head, queued = found
            lock = head - o_head
        elif o_first is not None:
            found7 = _lock_by_first_waiter(kernel, kind, task, waiter, o_list, o_first,
                                           words, stack, i, stacks)
            if found7 is None:
                continue
            lock, queued = found7
        tasks = []
        for node in queued:
            try:
                tasks.append(kernel.read_u64(node - o_list + o_task))
            except CrashtuiError:
                continue
        owner, readers = _owner(kernel, kind, lock)
        return LockWait(kind.name, lock, waiter, owner, readers, tuple(tasks))
    return None


def _optional_offset(kernel: Kernel, struct: str, member: str) -> int | None:
    try:
        return kernel.offsetof(struct, member)
    except CrashtuiError:
        return None


def _ring(kernel: Kernel, node: int) -> list[int] | None:
    """The nodes of the list ring `node` is on, from `node`; None if it is not well linked."""
    try:
        nxt, prev = kernel.read_u64(node), kernel.read_u64(node + 8)
        if kernel.read_u64(nxt + 8) != node or kernel.read_u64(prev) != node:
            return None
        return [node, *list_for_each(kernel, node, MAX_WAITERS)]
    except CrashtuiError:
        return None


def _lock_by_first_waiter(kernel: Kernel, kind: LockKind, task: int, waiter: int, o_list: int,
                          o_first: int, words: np.ndarray, stack: int, index: int,
                          stacks: StackRanges) -> tuple[int, list[int]] | None:
    """7.x: (the lock whose `first_waiter` is a waiter of the ring `waiter` is on, the ring's
    nodes from that first waiter), or None. Candidates: task_struct.<blocked_on>, then the
    kernel pointers on the task's stack nearest the waiter; a lock on a stack is not taken
    (those words are the stack's own frame pointers and locals)."""
    ring = _ring(kernel, waiter + o_list)
    if ring is None or not all(stacks.contains(n) for n in ring):
        return None
    waiters = [n - o_list for n in ring]
    members = set(waiters)
    candidates: list[int] = []
    if kind.blocked_on is not None:
        o_on = _optional_offset(kernel, "task_struct", kind.blocked_on)
        if o_on is not None:
            try:
                candidates.append(kernel.read_u64(task + o_on))
            except CrashtuiError:
                pass
    near = np.argsort(np.abs(np.arange(len(words)) - index), kind="stable")
    seen: set[int] = set()
    for w in words[near].tolist():
        if w >= KERNEL_SPACE and w not in seen and not stacks.contains(w):
            seen.add(w)
            candidates.append(w)
    for lock in candidates:
        if not lock:
            continue
        try:
            first = kernel.read_u64(lock + o_first)
        except CrashtuiError:
            continue
        if first in members:
            at = waiters.index(first)
            return lock, ring[at:] + ring[:at]
    return None


def _lock_of(kernel: Kernel, kind: LockKind, node: int,
             stacks: StackRanges) -> tuple[int, list[int]] | None:
    """(the list head off every stack, the waiter nodes in queue order) of the ring `node`
    is on; None if `node` is not a well-linked list node or the ring has no single head."""
    ring = _ring(kernel, node)
    if ring is None:
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
