"""Blocked tasks and who waits on whom: the D-state tasks with how long since each ran, grouped
by identical stacks, the lock each waits on and its owner, and the cycles of that graph.

The answer to `foreach UN bt`, `ps -m`, `struct mutex.owner` followed by hand: every task in
uninterruptible sleep (and any task queued on a sleeping lock) with its backtrace, the first
frame outside the scheduler's waits, the lock from crashtui.kernel.locks, and the wait-for
graph task -> lock -> owner; a cycle in it is a deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.analysis.culprit import Culprit, culprit_at, frames_of, locate
from crashtui.analysis.machinery import base_name, is_wait
from crashtui.errors import CrashtuiError
from crashtui.kernel.locks import LockWait, StackRanges, find_wait, lock_kind_of

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

BLOCKED_STATES = ("UN",)
MAX_BLOCKED = 2000  # tasks analysed one by one (the rest are counted)


@dataclass
class BlockedTask:
    """One blocked task: where it waits, since when, on what."""

    task: Task
    backtrace: Backtrace | None
    since: int | None  # ns since it last ran (its CPU's rq clock - sched_info.last_arrival)
    culprit: Culprit | None  # its first frame outside the waits
    wait: LockWait | None = None
    waits_in: str | None = None  # the wait function it sleeps in ("__mutex_lock", ...)
    lock_symbol: str | None = None  # the lock's symbol ("crashlab_lock_a"), if static

    @property
    def stack_key(self) -> tuple[str, ...]:
        """The function names of its backtrace (tasks with equal keys share a stack)."""
        if self.backtrace is None:
            return ()
        return tuple(base_name(f.function or "?") for f in frames_of(self.backtrace))


@dataclass
class StackGroup:
    """Blocked tasks with identical stacks (corelens' `bt -s D`)."""

    functions: tuple[str, ...]
    tasks: list[BlockedTask]


@dataclass(frozen=True)
class WaitEdge:
    """`waiter` sleeps on `lock`, which `owner` holds."""

    waiter: int
    lock: int
    kind: str
    owner: int


@dataclass
class HangReport:
    """Every blocked task, the groups, the wait-for edges and the deadlock cycles."""

    blocked: list[BlockedTask] = field(default_factory=list)
    groups: list[StackGroup] = field(default_factory=list)
    edges: list[WaitEdge] = field(default_factory=list)
    cycles: list[list[WaitEdge]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def by_task(self, task: int) -> BlockedTask | None:
        return next((b for b in self.blocked if b.task.address == task), None)


def blocked_tasks(session: Session) -> list[Task]:
    """The tasks in uninterruptible sleep (crash's UN; TASK_IDLE kworkers are ID, not here)."""
    return [t for t in session.tasks.tasks if t.state_code in BLOCKED_STATES]


def analyse(session: Session) -> HangReport:
    """The blocked tasks of the dump, their locks and owners, and the deadlock cycles."""
    from crashtui.kernel.sched import last_runs

    rep = HangReport()
    tasks = blocked_tasks(session)
    if len(tasks) > MAX_BLOCKED:
        rep.errors.append(f"{len(tasks)} blocked tasks: only the first {MAX_BLOCKED} analysed")
        tasks = tasks[:MAX_BLOCKED]
    runs, errs = last_runs(session.kernel, tasks)
    rep.errors += errs
    since = {r.task.address: r.since for r in runs}
    stacks = StackRanges([t.stack for t in session.tasks.tasks])
    for t in sorted(tasks, key=lambda t: -since.get(t.address, 0)):
        rep.blocked.append(_blocked(session, t, since.get(t.address), stacks, rep.errors))
    groups: dict[tuple[str, ...], StackGroup] = {}
    for b in rep.blocked:
        groups.setdefault(b.stack_key, StackGroup(b.stack_key, [])).tasks.append(b)
    rep.groups = sorted(groups.values(), key=lambda g: -len(g.tasks))
    rep.edges = [WaitEdge(b.task.address, b.wait.lock, b.wait.kind, b.wait.owner)
                 for b in rep.blocked if b.wait is not None and b.wait.owner is not None
                 and not b.wait.reader_owned]
    rep.cycles = find_cycles(rep.edges)
    return rep


def _blocked(session: Session, t: Task, since: int | None, stacks: StackRanges,
             errors: list[str]) -> BlockedTask:
    try:
        bt = session.backtrace_of(t.address)
    except CrashtuiError as exc:
        errors.append(f"PID {t.pid}: no backtrace: {exc.message}")
        return BlockedTask(t, None, since, None)
    at = locate(bt, skip_waits=True)
    culprit = culprit_at(session, bt, at, f"blocked task {t.pid}'s first frame outside the "
                         "scheduler's waits") if at is not None else None
    waits = [f.function for f in frames_of(bt) if f.function and is_wait(f.function)]
    b = BlockedTask(t, bt, since, culprit, waits_in=_outermost_wait(waits))
    kind = lock_kind_of(waits)
    if kind is not None:
        try:
            b.wait = find_wait(session.kernel, t.address, t.stack, kind, stacks)
        except CrashtuiError as exc:
            errors.append(f"PID {t.pid}: {kind}: {exc.message}")
        if b.wait is not None:
            named = session.symbolize(b.wait.lock)
            if named is not None and named[1] < 4096:
                fn, off, mod = named
                b.lock_symbol = fn + (f"+{off:#x}" if off else "") + (f" [{mod}]" if mod else "")
    return b


def _outermost_wait(waits: list[str]) -> str | None:
    """The outermost wait function (the one the culprit called: mutex_lock, down_read, ...)."""
    return waits[-1] if waits else None


def find_cycles(edges: list[WaitEdge]) -> list[list[WaitEdge]]:
    """Each cycle of the wait-for graph once, starting at its lowest task address."""
    out_edge = {e.waiter: e for e in edges}
    cycles: list[list[WaitEdge]] = []
    seen: set[int] = set()
    for start in sorted(out_edge):
        if start in seen:
            continue
        path: list[int] = []
        on_path: dict[int, int] = {}
        node: int | None = start
        while node is not None and node in out_edge and node not in seen:
            on_path[node] = len(path)
            path.append(node)
            seen.add(node)
            node = out_edge[node].owner
            if node in on_path:
                loop = path[on_path[node]:]
                first = loop.index(min(loop))
                loop = loop[first:] + loop[:first]
                cycles.append([out_edge[n] for n in loop])
                break
    return cycles
