"""sig [PID | TASK ...]: a task's signal handlers and pending/blocked masks, as crash prints
them (task.c dump_signal_data(); the data is crashtui.kernel.signals')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.signals import SigAction, SignalState, SigQueueEntry
    from crashtui.kernel.tasks import Task

UVADDR_PRLEN = 10  # crash's width for user addresses on x86-64
SIG_HEADER = " SIG    SIGACTION        HANDLER       MASK       FLAGS           "
# the order crash tests them in (x86-64 values)
SA_FLAGS = (("SA_NOCLDSTOP", 0x1), ("SA_RESTORER", 0x04000000), ("SA_NOCLDWAIT", 0x2),
            ("SA_SIGINFO", 0x4), ("SA_ONSTACK", 0x08000000), ("SA_RESTART", 0x10000000),
            ("SA_NODEFER", 0x40000000), ("SA_RESETHAND", 0x80000000))
SPECIAL_HANDLERS = {(1 << 64) - 1: "SIG_ERR", 0: "SIG_DFL", 1: "SIG_IGN"}


def action_line(a: SigAction) -> str:
    handler = SPECIAL_HANDLERS.get(a.handler, f"{a.handler:x}")
    names = [n for n, bit in SA_FLAGS if a.flags & bit]
    text = f"({'|'.join(names)})" if names else ""
    return (f"{'' if a.signo >= 10 else ' '}[{a.signo}] {a.address:<{UVADDR_PRLEN}x} "
            f"{handler:>{UVADDR_PRLEN}} {a.mask:016x} {a.flags:x} {text}")


def queue_lines(queue: list[SigQueueEntry]) -> list[str]:
    if not queue:
        return ["  SIGQUEUE: (empty)"]
    return ["  SIGQUEUE:  SIG      SIGINFO     "] + \
        [f"             {q.signo:3d}  {q.info:x}" for q in queue]


def signal_lines(state: SignalState) -> list[str]:
    """Everything after the task header."""
    threads = f"NR_THREADS: {state.nr_threads}" if state.nr_threads is not None else ""
    out = [f"SIGNAL_STRUCT: {state.signal_struct:x}  {threads}"]
    if not state.signal_struct:
        return out
    out.append(SIG_HEADER)
    out += [action_line(a) for a in state.actions]
    out.append(f"SIGPENDING: {'yes' if state.sigpending else 'no'}")
    out.append(f"   BLOCKED: {state.blocked:016x}")
    if state.shared_pending is not None:
        out.append("PRIVATE_PENDING")
    out.append(f"    SIGNAL: {state.private_pending:016x}")
    out += queue_lines(state.private_queue)
    if state.shared_pending is not None:
        out += ["SHARED_PENDING", f"    SIGNAL: {state.shared_pending:016x}"]
        out += queue_lines(state.shared_queue)
    return out + [f"sig: {e}" for e in state.errors]


def group_lines(session: Session, t: Task) -> list[str]:
    """crash's `sig -g`: the thread group's handlers and shared pending set, then each
    thread's (same tgid, in task-list order) own pending and blocked sets, indented."""
    from crashtui.commands.sched import task_header
    from crashtui.kernel.signals import task_signals

    k = session.kernel
    state = task_signals(k, t.address)
    threads = f"NR_THREADS: {state.nr_threads}" if state.nr_threads is not None else ""
    out = [task_header(t), f"SIGNAL_STRUCT: {state.signal_struct:x}  {threads}"]
    if not state.signal_struct:
        return out + [""]
    out.append(SIG_HEADER)
    out += [action_line(a) for a in state.actions]
    if state.shared_pending is not None:
        out += ["SHARED_PENDING", f"    SIGNAL: {state.shared_pending:016x}"]
        out += queue_lines(state.shared_queue)
    out.append("")
    for th in session.tasks.tasks:
        if th.tgid != t.tgid:  # the idle tasks (tgid 0) are one group, as crash has them
            continue
        st = state if th.address == t.address else task_signals(k, th.address)
        body = [task_header(th), f"SIGPENDING: {'yes' if st.sigpending else 'no'}",
                f"   BLOCKED: {st.blocked:016x}", "PRIVATE_PENDING",
                f"    SIGNAL: {st.private_pending:016x}"] + queue_lines(st.private_queue)
        out += ["  " + line for line in body] + [""]
        out += [f"sig: {e}" for e in st.errors if e not in state.errors or st is state]
    return out


def sig_task_lines(session: Session, t: Task, group: bool) -> list[str]:
    """`sig` (or `sig -g`) of one task, ending with a blank line."""
    from crashtui.commands.sched import task_header
    from crashtui.kernel.signals import task_signals

    try:
        if group:
            return group_lines(session, t)
        return [task_header(t)] + signal_lines(task_signals(session.kernel, t.address)) + [""]
    except CrashtuiError as exc:
        return [task_header(t), f"sig: task {t.address:x}: {exc}", ""]


@command("sig", "a task's signal handlers, blocked and pending signals (default: the panic "
         "task); -g the whole thread group", "sig [-g] [PID | TASK ...]")
def cmd_sig(session: Session, args: list[str]) -> list[str]:
    from crashtui.commands.task import select_tasks

    group = "-g" in args
    args = [a for a in args if a != "-g"]
    bad = [a for a in args if a.startswith("-")]
    if bad:
        raise CommandError(f"sig: unsupported option {bad[0]} (try: sig [-g] [PID | TASK])")
    out: list[str] = []
    for t in select_tasks(session, args, "sig"):
        out += sig_task_lines(session, t, group)
    return out
