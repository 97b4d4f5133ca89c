"""Tasks: the task list, threads, per-CPU idle and running tasks (include/linux/sched.h)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError
from crashtui.kernel.lists import ListWalkError, walk_list

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

PF_KTHREAD = 0x00200000

# task_struct.__state / exit_state bits (include/linux/sched.h, 5.14+).
TASK_RUNNING = 0x0000
TASK_INTERRUPTIBLE = 0x0001
TASK_UNINTERRUPTIBLE = 0x0002
TASK_STOPPED = 0x0004
TASK_TRACED = 0x0008
EXIT_DEAD = 0x0010
EXIT_ZOMBIE = 0x0020
TASK_PARKED = 0x0040
TASK_DEAD = 0x0080
TASK_WAKEKILL = 0x0100
TASK_WAKING = 0x0200
TASK_NOLOAD = 0x0400
TASK_NEW = 0x0800


@dataclass(frozen=True)
class Task:
    """One task (thread) as read from its task_struct."""

    address: int
    pid: int
    tgid: int
    ppid: int
    comm: str
    state: int
    exit_state: int
    cpu: int
    flags: int
    mm: int
    stack: int
    idle: bool = False

    @property
    def is_kthread(self) -> bool:
        return bool(self.flags & PF_KTHREAD) or self.mm == 0

    @property
    def state_code(self) -> str:
        """The two-letter state crash's `ps` prints (RU, IN, UN, ID, ZO, ...)."""
        return state_code(self.state, self.exit_state)

    @property
    def state_name(self) -> str:
        """The TASK_* name crash's `set`/startup banner prints."""
        return state_name(self.state, self.exit_state)


def state_code(state: int, exit_state: int) -> str:
    """crash's `ps` ST column for a __state/exit_state pair."""
    if exit_state & EXIT_ZOMBIE:
        return "ZO"
    if exit_state & EXIT_DEAD:
        return "DE"
    s = state & 0xFFF
    if s == TASK_RUNNING:
        return "RU"
    if s & TASK_NOLOAD and s & TASK_UNINTERRUPTIBLE:
        return "ID"
    if s & TASK_INTERRUPTIBLE:
        return "IN"
    if s & TASK_UNINTERRUPTIBLE:
        return "UN"
    if s & TASK_STOPPED:
        return "ST"
    if s & TASK_TRACED:
        return "TR"
    if s & TASK_PARKED:
        return "PA"
    if s & TASK_DEAD:
        return "DE"
    if s & TASK_WAKING:
        return "WA"
    if s & TASK_NEW:
        return "NE"
    return "??"


_STATE_NAMES = {"RU": "TASK_RUNNING", "IN": "TASK_INTERRUPTIBLE", "UN": "TASK_UNINTERRUPTIBLE",
                "ID": "TASK_IDLE", "ZO": "EXIT_ZOMBIE", "DE": "EXIT_DEAD", "ST": "TASK_STOPPED",
                "TR": "TASK_TRACED", "PA": "TASK_PARKED", "WA": "TASK_WAKING", "NE": "TASK_NEW"}


def state_name(state: int, exit_state: int) -> str:
    return _STATE_NAMES.get(state_code(state, exit_state), f"{state:#x}")


class TaskReader:
    """Reads task_structs using BTF offsets resolved once."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        off = kernel.offsetof
        self.o_tasks = off("task_struct", "tasks")
        self.o_pid = off("task_struct", "pid")
        self.o_tgid = off("task_struct", "tgid")
        self.o_comm = off("task_struct", "comm")
        self.o_parent = off("task_struct", "real_parent")
        self.o_flags = off("task_struct", "flags")
        self.o_mm = off("task_struct", "mm")
        self.o_stack = off("task_struct", "stack")
        self.o_exit_state = off("task_struct", "exit_state")
        self.o_signal = off("task_struct", "signal")
        # The thread list (signal->thread_head, task->thread_node: 3.14+) is optional: a
        # kernel that keeps threads elsewhere still shows its group leaders.
        self.thread_list_error = ""
        try:
            self.o_thread_node: int | None = off("task_struct", "thread_node")
            self.o_thread_head = off("signal_struct", "thread_head")
        except CrashtuiError as exc:
            self.o_thread_node, self.o_thread_head = None, 0
            self.thread_list_error = (f"unknown kernel layout: {exc.message}; "
                                      "only thread-group leaders are listed")
        try:
            self.o_state = off("task_struct", "__state")
        except (CrashtuiError, KeyError, ValueError):
            self.o_state = off("task_struct", "state")
        try:
            self.o_cpu = off("task_struct", "thread_info.cpu")
        except (CrashtuiError, KeyError, ValueError):
            self.o_cpu = off("task_struct", "cpu")

    def read(self, addr: int, idle: bool = False) -> Task:
        """Decode one task_struct (raises KernelReadError if unreadable)."""
        k = self.k
        raw = k.read(addr, max(self.o_comm + 16, self.o_signal + 8, self.o_cpu + 4,
                               self.o_stack + 8, self.o_mm + 8))

        def u(off: int, size: int = 8) -> int:
            return int.from_bytes(raw[off:off + size], "little")

        parent = u(self.o_parent)
        ppid = 0
        if parent and parent != addr:
            try:
                ppid = k.read_s32(parent + self.o_pid)
            except CrashtuiError:
                ppid = -1
        comm = raw[self.o_comm:self.o_comm + 16].split(b"\0", 1)[0].decode("utf-8", "replace")
        return Task(address=addr, pid=int.from_bytes(raw[self.o_pid:self.o_pid + 4], "little",
                                                      signed=True),
                    tgid=u(self.o_tgid, 4), ppid=ppid, comm=comm, state=u(self.o_state, 4),
                    exit_state=u(self.o_exit_state, 4), cpu=u(self.o_cpu, 4),
                    flags=u(self.o_flags, 4), mm=u(self.o_mm), stack=u(self.o_stack), idle=idle)

    def threads_of(self, leader: int, errors: list[str] | None = None) -> list[int]:
        """Addresses of every thread in the leader's thread group (signal->thread_head).

        A damaged thread list yields the threads still reachable; why it broke goes to
        `errors` (ListWalkError when no list is given).
        """
        if self.o_thread_node is None:
            return [leader]
        signal = self.k.read_u64(leader + self.o_signal)
        if not signal:
            return [leader]
        o_node = self.o_thread_node
        # The leader is on its own thread list: walked from there when the signal_struct's
        # page is missing from the dump (makedumpfile may drop slab pages it misjudges).
        walk = walk_list(self.k, signal + self.o_thread_head, member=leader + o_node)
        if walk.error:
            if errors is None:
                raise ListWalkError(walk.error)
            errors.append(f"threads of task {leader:#x}: {walk.error}")
        return [node - o_node for node in walk.nodes] or [leader]


@dataclass
class TaskList:
    """Every task crash's `ps` shows, and where the walk stopped early (if it did)."""

    tasks: list[Task]
    errors: list[str]
    unknown_layout: bool = False  # task_struct lacks a member the walk needs: no tasks read


def read_tasks(kernel: Kernel) -> TaskList:
    """All tasks: each CPU's idle task, then every thread of every process, sorted like `ps`.

    A kernel whose task_struct lacks a member this needs gives no tasks and one error that
    names the member."""
    try:
        reader = TaskReader(kernel)
    except CrashtuiError as exc:
        return TaskList([], [f"unknown kernel layout: {exc.message}"], unknown_layout=True)
    errors: list[str] = [reader.thread_list_error] if reader.thread_list_error else []
    tasks: dict[int, Task] = {}
    init_task = kernel.symbol("init_task")
    for cpu, idle in enumerate(idle_tasks(kernel)):
        try:
            tasks[idle] = reader.read(idle, idle=True)
        except CrashtuiError as exc:
            errors.append(f"idle task of CPU {cpu}: {exc.message}")
    walk = walk_list(kernel, init_task + reader.o_tasks)
    leaders = [init_task] + [node - reader.o_tasks for node in walk.nodes]
    if walk.error:
        found = f" ({walk.recovered} found walking back from the end)" if walk.recovered else ""
        errors.append(f"task list: {walk.error}{found}")
    for leader in leaders:
        try:
            threads = reader.threads_of(leader, errors) if leader != init_task else [leader]
        except CrashtuiError as exc:
            errors.append(f"threads of task {leader:#x}: {exc.message}")
            threads = [leader]
        for t in threads:
            if t in tasks:
                continue
            try:
                tasks[t] = reader.read(t)
            except CrashtuiError as exc:
                errors.append(f"task {t:#x}: {exc.message}")
    _add_unlisted(kernel, reader, tasks, errors)
    ordered = sorted(tasks.values(), key=lambda t: (t.pid, not t.idle, t.cpu if t.idle else 0,
                                                     t.address))
    return TaskList(ordered, errors)


def _add_unlisted(kernel: Kernel, reader: TaskReader, tasks: dict[int, Task],
                  errors: list[str]) -> None:
    """Tasks the list walks missed, from the pid IDR and the run queues (kernel/pid.py);
    a pid's task counts only if its task_struct carries that pid."""
    from crashtui.kernel.pid import pid_tasks, running_tasks

    walk = pid_tasks(kernel)
    added = 0
    for nr, t in [*walk.tasks, *((None, t) for t in running_tasks(kernel))]:
        if t in tasks or any(f"{t:#x}" in e for e in errors):
            continue
        try:
            task = reader.read(t)
        except CrashtuiError:
            continue  # a stale or damaged pointer, not a task
        if nr is None or task.pid == nr:
            tasks[t] = task
            added += 1
    if errors and (added or walk.errors):  # the list was damaged: say what else was tried
        errors += walk.errors
        errors.append(f"{added} more task(s) found in the pid IDR and the run queues")


def runqueue(kernel: Kernel, cpu: int) -> int:
    """Address of CPU `cpu`'s struct rq."""
    return kernel.per_cpu(kernel.symbol("runqueues"), cpu)


def idle_tasks(kernel: Kernel) -> list[int]:
    """Each possible CPU's idle task (rq->idle; init_task for CPU 0)."""
    o_idle = kernel.offsetof("rq", "idle")
    out = []
    for cpu in range(kernel.nr_cpu_ids):
        try:
            out.append(kernel.read_u64(runqueue(kernel, cpu) + o_idle))
        except CrashtuiError:
            out.append(kernel.symbol("init_task") if cpu == 0 else 0)
    return [t for t in out if t]


def current_task(kernel: Kernel, cpu: int) -> int:
    """The task running on `cpu` at the time of the dump (rq->curr)."""
    return kernel.read_u64(runqueue(kernel, cpu) + kernel.offsetof("rq", "curr"))
