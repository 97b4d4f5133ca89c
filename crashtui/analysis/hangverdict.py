"""How the triage reads a hang: the blocked task the log names or a lock cycle, the
deadlock and system-hung kinds, who-waits-on-whom sentences, a signature for a cycle that is
the same whichever of its tasks the hung-task watchdog named."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from crashtui.analysis.culprit import locate
from crashtui.analysis.logfacts import first_event
from crashtui.analysis.machinery import GENERIC, base_name, is_machinery, is_wait
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Frame
    from crashtui.analysis.culprit import Culprit
    from crashtui.analysis.hang import BlockedTask, HangReport, WaitEdge
    from crashtui.analysis.logfacts import LogFacts
    from crashtui.analysis.session import Session
    from crashtui.analysis.triage import Triage

HUNG_TASK_TIMEOUT = 120  # s: the kernel's default hung_task_timeout_secs


def hang_verdict(session: Session, t: Triage, facts: LogFacts, culprit: Culprit | None,
          rest: list[Frame]) -> tuple[Culprit | None, list[Frame]]:
    """Hung task, deadlock and a system hung under SysRq/NMI: the blocked tasks, their
    locks and owners; the culprit is the blocked task the log names (or the first task of a
    lock cycle), at its first frame outside the waits."""
    if t.kind == "sysrq":
        if not _long_blocked(session):
            return culprit, rest
    try:
        hang = session.hang
    except CrashtuiError as exc:
        t.notes.append(f"blocked tasks: {exc.message}")
        return culprit, rest
    t.notes += hang.errors[:5]
    t.blocked = len(hang.blocked)
    named: BlockedTask | None = None
    m = first_event(facts, "hung-task")
    if m is not None:
        pid = int(m[0].group(2))
        named = next((b for b in hang.blocked if b.task.pid == pid), None)
    if hang.cycles:
        cycle = hang.cycles[0]
        first = named if named is not None and any(
            e.waiter == named.task.address for e in cycle) else hang.by_task(cycle[0].waiter)
        t.kind, t.title = "deadlock", "deadlock (lock cycle)"
        t.cycle = [_wait_text(session, hang, e) for e in _rotate(cycle, first)]
        named = first
    elif t.kind == "sysrq":
        t.kind, t.title = "system-hung", "system hung (tasks blocked)"
        named = hang.blocked[0] if hang.blocked else None
    elif named is None and hang.blocked:
        named = hang.blocked[0]
    for b in hang.blocked:
        if b.wait is not None:
            t.waits.append(_wait_text(session, hang, None, b))
    if named is None or named.culprit is None or named.backtrace is None:
        return culprit, rest
    t.hung_pid, t.hung_command = named.task.pid, named.task.comm
    t.hung_since = named.since
    at = locate(named.backtrace, skip_waits=True)
    return named.culprit, at.rest if at is not None else []


def _rotate(cycle: list[WaitEdge], first: BlockedTask | None) -> list[WaitEdge]:
    if first is None:
        return cycle
    i = next((i for i, e in enumerate(cycle) if e.waiter == first.task.address), 0)
    return cycle[i:] + cycle[:i]


def _long_blocked(session: Session) -> bool:
    """Tasks have been in D state longer than the hung-task timeout (120 s if unknown)."""
    from crashtui.analysis.hang import blocked_tasks
    from crashtui.kernel.sched import last_runs

    try:
        tasks = blocked_tasks(session)
        if not tasks:
            return False
        timeout = HUNG_TASK_TIMEOUT
        addr = session.kernel.symbol_or_none("sysctl_hung_task_timeout_secs")
        if addr is not None:
            timeout = session.kernel.read_u64(addr) or HUNG_TASK_TIMEOUT
        runs, _ = last_runs(session.kernel, tasks)
    except CrashtuiError:
        return False
    return any(r.since >= timeout * 1_000_000_000 for r in runs)


def _task_text(session: Session, task: int) -> str:
    t = next((x for x in session.tasks.tasks if x.address == task), None)
    return f"PID {t.pid} ({t.comm})" if t is not None else f"task {task:#x}"


def _wait_text(session: Session, hang: HangReport, edge: WaitEdge | None,
               b: BlockedTask | None = None) -> str:
    """`PID 130 (lockA) waits for mutex crashlab_lock_b [crashlab] held by PID 131 (lockB)`."""
    if b is None:
        assert edge is not None
        b = hang.by_task(edge.waiter)
    assert b is not None and b.wait is not None
    w = b.wait
    lock = b.lock_symbol or f"{w.lock:#x}"
    text = f"{_task_text(session, b.task.address)} waits for {w.kind} {lock}"
    if w.owner is not None:
        text += (" read-held (last reader " if w.reader_owned else " held by ") + \
            _task_text(session, w.owner) + (")" if w.reader_owned else "")
    elif w.kind in ("mutex", "rwsem"):
        text += " (no owner recorded)"
    if b.culprit is not None:
        text += f", in {b.culprit.symbol}"
    return text



def deadlock_signature(hang: HangReport) -> tuple[str, list[str]]:
    """The first cycle's signature: each task's culprit and its caller, sorted (the same
    whichever task of the cycle the log named), its module."""
    names: list[str] = []
    module = "vmlinux"
    for e in hang.cycles[0] if hang.cycles else []:
        b = hang.by_task(e.waiter)
        if b is None or b.culprit is None or b.backtrace is None:
            continue
        module = b.culprit.module or module
        at = locate(b.backtrace, skip_waits=True)
        callers = [base_name(f.function) for f in (at.rest if at else [])
                   if f.function and not is_machinery(f.function) and not is_wait(f.function)
                   and base_name(f.function) not in GENERIC]
        names.append("/".join([base_name(b.culprit.function or "?"), *callers[:1]]))
    names = sorted(set(names))
    key = "|".join(["deadlock", module, *names])
    return hashlib.sha1(key.encode()).hexdigest()[:16], names
