"""Tasks found through the PID namespace's IDR and the run queues, not the task list.

On a damaged dump the task list can break where a page is missing (makedumpfile 1.7.2
drops in-use slab pages of 6.12 kernels); crash then also walks the pid IDR. Every
`struct pid` of init_pid_ns.idr (an XArray, lib/xarray.c) names its task through
pid->tasks[PIDTYPE_PID], which heads the task's pid_links[PIDTYPE_PID] (kernel/pid.c); and
each CPU's rq->curr is a task. Every walk here is bounded: a visited set, a node budget and
shifts that must shrink towards the leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_NODES = 1 << 16  # xa_nodes visited at most (a pid_max of 4M fills 65536 leaves)
XA_CHUNK_SHIFT = 6  # include/linux/xarray.h (CONFIG_BASE_SMALL=0)
_INTERNAL_MAX = 4096  # internal entries below this are siblings/retry markers, not nodes


@dataclass
class PidWalk:
    """Tasks named by pids: (pid number, task address) pairs, and why a walk stopped."""

    tasks: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def xarray_entries(kernel: Kernel, xa_head: int, errors: list[str],
                   what: str = "xarray") -> list[tuple[int, int]]:
    """(index, entry) of every pointer entry of the XArray whose xa_head is at `xa_head`."""
    o_shift = kernel.offsetof("xa_node", "shift")
    o_slots = kernel.offsetof("xa_node", "slots")
    chunk = kernel.btf.member_type("xa_node", "slots").resolved().length or 1 << XA_CHUNK_SHIFT
    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    stack = [(kernel.read_u64(xa_head), 0, 64)]  # (entry, first index, parent's shift)
    while stack:
        entry, base, parent_shift = stack.pop()
        if not entry or entry & 1:  # empty, or a value entry (not a pointer)
            continue
        if entry & 3 != 2:
            out.append((base, entry))
            continue
        if entry < _INTERNAL_MAX:  # sibling or retry entry
            continue
        node = entry - 2
        if node in seen:
            errors.append(f"{what}: node {node:#x} is reached twice")
            continue
        if len(seen) >= MAX_NODES:
            errors.append(f"{what}: more than {MAX_NODES} nodes; the rest not read")
            break
        seen.add(node)
        try:
            shift = kernel.read(node + o_shift, 1)[0]
            slots = kernel.read(node + o_slots, 8 * chunk)
        except CrashtuiError as exc:
            errors.append(f"{what}: node {node:#x}: {exc.message}")
            continue
        if shift >= parent_shift or shift % XA_CHUNK_SHIFT or shift > 60:
            errors.append(f"{what}: node {node:#x} has shift {shift} under shift "
                          f"{parent_shift}")
            continue
        for i in range(chunk - 1, -1, -1):
            slot = int.from_bytes(slots[8 * i:8 * i + 8], "little")
            if slot:
                stack.append((slot, base + (i << shift), shift))
    out.sort()
    return out


def pid_tasks(kernel: Kernel) -> PidWalk:
    """The task of every pid in init_pid_ns's IDR (the pid number each struct pid gives)."""
    walk = PidWalk()
    try:
        if not kernel.has_symbol("init_pid_ns"):
            return walk
        off = kernel.offsetof
        head = (kernel.symbol("init_pid_ns") + off("pid_namespace", "idr")
                + off("idr", "idr_rt") + off("xarray", "xa_head"))
        o_first = off("pid", "tasks")  # tasks[PIDTYPE_PID].first
        o_nr = off("pid", "numbers") + off("upid", "nr")
        o_link = off("task_struct", "pid_links")  # pid_links[PIDTYPE_PID]
        entries = xarray_entries(kernel, head, walk.errors, "pid IDR")
    except CrashtuiError as exc:
        walk.errors.append(f"pid IDR: {exc.message}")
        return walk
    unreadable: list[str] = []
    for _index, pid in entries:
        try:
            first = kernel.read_u64(pid + o_first)
            nr = kernel.read_s32(pid + o_nr)
        except CrashtuiError as exc:
            unreadable.append(f"struct pid {pid:#x}: {exc.message}")
            continue
        if first:  # no task: a pid kept alive by a reference after its task exited
            walk.tasks.append((nr, first - o_link))
    if unreadable:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        walk.errors.append(f"pid IDR: {unreadable[0]}{more}")
    return walk


def running_tasks(kernel: Kernel) -> list[int]:
    """Each possible CPU's rq->curr (the CPUs whose run queue is readable)."""
    out: list[int] = []
    try:
        runqueues = kernel.symbol("runqueues")
        o_curr = kernel.offsetof("rq", "curr")
    except CrashtuiError:
        return out
    for cpu in range(kernel.nr_cpu_ids):
        try:
            task = kernel.read_u64(kernel.per_cpu(runqueues, cpu) + o_curr)
        except CrashtuiError:
            continue
        if task:
            out.append(task)
    return out
