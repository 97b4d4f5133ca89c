"""The scheduler's view: each CPU's run queue (current task, RT and CFS queues, clock) and
when each task last ran (sched_info.last_arrival), as crash's `runq` and `ps -m` read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import list_for_each

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.tasks import Task

MAX_QUEUED = 100_000  # tasks on one queue before the walk is called broken
MAX_GROUP_DEPTH = 16  # nested task-group run queues


@dataclass(frozen=True)
class QueuedTask:
    """A task waiting on a run queue: `prio` is task_struct.prio (CFS) or the RT queue index."""

    task: int
    prio: int


@dataclass
class RunQueue:
    """One CPU's struct rq."""

    cpu: int
    address: int
    clock: int  # rq->clock, ns
    current: int  # rq->curr
    rt_array: int  # &rq->rt.active
    rt: list[QueuedTask] = field(default_factory=list)
    cfs_root: int = 0  # &rq->cfs.tasks_timeline
    cfs: list[QueuedTask] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def rq_address(kernel: Kernel, cpu: int) -> int:
    """Address of CPU `cpu`'s struct rq. Since 6.15 per-CPU symbols are absolute addresses
    (no longer offsets from 0), so symbol + __per_cpu_offset[cpu] wraps past 2^64 as the
    kernel's own arithmetic does."""
    return kernel.per_cpu(kernel.symbol("runqueues"), cpu) & 0xFFFFFFFFFFFFFFFF


def rq_clock(kernel: Kernel, cpu: int) -> int:
    """rq->clock of a CPU (ns since boot, the clock `ps -m` measures against)."""
    return kernel.read_u64(rq_address(kernel, cpu) + kernel.offsetof("rq", "clock"))


def last_arrival(kernel: Kernel, task: int) -> int:
    """When a task last started running (task_struct.sched_info.last_arrival, ns)."""
    return kernel.read_u64(task + kernel.offsetof("task_struct", "sched_info.last_arrival"))


def run_queues(kernel: Kernel) -> list[RunQueue]:
    """Every possible CPU's run queue (a queue that cannot be read carries its error)."""
    return [run_queue(kernel, cpu) for cpu in range(kernel.nr_cpu_ids)]


def run_queue(kernel: Kernel, cpu: int) -> RunQueue:
    """One CPU's run queue: current task, queued RT tasks by priority, CFS tasks in vruntime
    order (task-group queues flattened, as crash's `runq` shows them)."""
    addr = rq_address(kernel, cpu)
    k = kernel
    rq = RunQueue(cpu, addr, k.read_u64(addr + k.offsetof("rq", "clock")),
                  k.read_u64(addr + k.offsetof("rq", "curr")),
                  addr + k.offsetof("rq", "rt") + k.offsetof("rt_rq", "active"))
    cfs = addr + k.offsetof("rq", "cfs")
    rq.cfs_root = cfs + k.offsetof("cfs_rq", "tasks_timeline")
    try:
        rq.rt = _rt_tasks(k, rq.rt_array, 0)
    except CrashtuiError as exc:
        rq.errors.append(f"CPU {cpu} RT queue: {exc.message}")
    try:
        rq.cfs = _cfs_tasks(k, cfs, 0)
    except CrashtuiError as exc:
        rq.errors.append(f"CPU {cpu} CFS queue: {exc.message}")
    return rq


def _optional_offset(kernel: Kernel, struct: str, member: str) -> int | None:
    try:
        return kernel.offsetof(struct, member)
    except CrashtuiError:
        return None


def _rt_tasks(k: Kernel, prio_array: int, depth: int) -> list[QueuedTask]:
    if depth > MAX_GROUP_DEPTH:
        raise KernelReadError(f"RT task groups nested deeper than {MAX_GROUP_DEPTH}")
    o_queue = k.offsetof("rt_prio_array", "queue")
    o_run_list = k.offsetof("sched_rt_entity", "run_list")
    o_rt = k.offsetof("task_struct", "rt")
    o_my_q = _optional_offset(k, "sched_rt_entity", "my_q")
    o_active = k.offsetof("rt_rq", "active")
    nqueues = 100  # MAX_RT_PRIO
    out: list[QueuedTask] = []
    for i in range(nqueues):
        head = prio_array + o_queue + 16 * i
        for node in list_for_each(k, head, MAX_QUEUED):
            se = node - o_run_list
            my_q = k.read_u64(se + o_my_q) if o_my_q is not None else 0
            if my_q:
                out += _rt_tasks(k, my_q + o_active, depth + 1)
                continue
            out.append(QueuedTask(se - o_rt, i))
    return out


def _cfs_tasks(k: Kernel, cfs_rq: int, depth: int) -> list[QueuedTask]:
    if depth > MAX_GROUP_DEPTH:
        raise KernelReadError(f"CFS task groups nested deeper than {MAX_GROUP_DEPTH}")
    o_my_q = _optional_offset(k, "sched_entity", "my_q")
    o_run_node = k.offsetof("sched_entity", "run_node")
    o_se = k.offsetof("task_struct", "se")
    o_prio = k.offsetof("task_struct", "prio")
    out: list[QueuedTask] = []
    if o_my_q is not None:
        curr = k.read_u64(cfs_rq + k.offsetof("cfs_rq", "curr"))
        if curr:
            curr_q = k.read_u64(curr + o_my_q)
            if curr_q:
                out += _cfs_tasks(k, curr_q, depth + 1)
    timeline = cfs_rq + k.offsetof("cfs_rq", "tasks_timeline")
    leftmost = k.read_u64(timeline + 8)  # rb_root_cached.rb_leftmost
    if not leftmost:
        return out
    for node in rb_inorder(k, k.read_u64(timeline)):
        se = node - o_run_node
        my_q = k.read_u64(se + o_my_q) if o_my_q is not None else 0
        if my_q:
            out += _cfs_tasks(k, my_q, depth + 1)
            continue
        task = se - o_se
        out.append(QueuedTask(task, k.read_s32(task + o_prio)))
    return out


def rb_inorder(k: Kernel, root: int, limit: int = MAX_QUEUED) -> list[int]:
    """The nodes of a red-black tree in order (struct rb_node: parent_color, right, left),
    bounded and cycle-checked."""
    out: list[int] = []
    seen: set[int] = set()
    stack: list[int] = []
    node = root
    while stack or node:
        while node:
            if node in seen or len(seen) >= limit:
                raise KernelReadError(f"rb tree at {root:#x}: a cycle or more than {limit} "
                                      "nodes", node)
            seen.add(node)
            stack.append(node)
            node = k.read_u64(node + 16)  # rb_left
        node = stack.pop()
        out.append(node)
        node = k.read_u64(node + 8)  # rb_right
    return out


@dataclass(frozen=True)
class LastRun:
    """When a task last started running, and how long before its CPU's rq clock that was."""

    task: Task
    last_arrival: int  # ns
    since: int  # ns: rq->clock of the task's CPU - last_arrival (0 if negative)


def last_runs(kernel: Kernel, tasks: list[Task]) -> tuple[list[LastRun], list[str]]:
    """Every task's last run, most recent first (crash's `ps -m` order), and the errors."""
    clocks: dict[int, int | None] = {}
    out: list[LastRun] = []
    errors: list[str] = []
    for t in tasks:
        if t.cpu not in clocks:
            try:
                clocks[t.cpu] = rq_clock(kernel, t.cpu)
            except CrashtuiError as exc:
                clocks[t.cpu] = None
                errors.append(f"CPU {t.cpu} rq clock: {exc.message}")
        clock = clocks[t.cpu]
        try:
            arrival = last_arrival(kernel, t.address)
        except CrashtuiError as exc:
            errors.append(f"task {t.address:#x} last_arrival: {exc.message}")
            continue
        out.append(LastRun(t, arrival, max(0, (clock or 0) - arrival) if clock else 0))
    out.sort(key=lambda r: -r.last_arrival)
    return out, errors
