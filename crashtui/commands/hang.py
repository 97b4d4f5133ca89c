"""hang: the blocked tasks, who waits on whom, lock cycles, and each distinct stack once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.hang import BlockedTask, HangReport
    from crashtui.analysis.session import Session


def _pid(hang: HangReport, session: Session, task: int) -> str:
    b = hang.by_task(task)
    if b is not None:
        return f"PID {b.task.pid} ({b.task.comm})"
    t = next((x for x in session.tasks.tasks if x.address == task), None)
    return f"PID {t.pid} ({t.comm})" if t is not None else f"task {task:x}"


def _lock(b: BlockedTask) -> str:
    w = b.wait
    if w is None:
        return ""
    return f"{w.kind} {b.lock_symbol or f'{w.lock:x}'} ({w.lock:x})"


def hang_lines(session: Session, backtraces: bool = True) -> list[str]:
    """Every blocked task (longest first) with its lock and the lock's owner, the lock cycles,
    then the tasks grouped by identical stacks with one backtrace per group."""
    from crashtui.commands.bt import format_backtrace
    from crashtui.commands.sched import nanoseconds

    hang = session.hang
    if not hang.blocked:
        return ["no task is in uninterruptible sleep (D state)"] + \
            [f"hang: {e}" for e in hang.errors]
    out = [f"BLOCKED TASKS: {len(hang.blocked)} (D state, longest since it last ran first)"]
    for b in hang.blocked:
        since = nanoseconds(b.since) if b.since is not None else "?"
        line = (f"  [{since}] PID: {b.task.pid:<7} TASK: {b.task.address:x}  "
                f'COMMAND: "{b.task.comm}"')
        if b.culprit is not None:
            line += f"  IN: {b.culprit.symbol}"
        if b.wait is not None:
            line += f"  WAITS FOR: {_lock(b)}"
            if b.wait.owner is not None:
                line += (" READ-HELD, LAST READER: " if b.wait.reader_owned else " OWNER: ") + \
                    _pid(hang, session, b.wait.owner)
        elif b.waits_in:
            line += f"  WAITS IN: {b.waits_in}"
        out.append(line)
    for i, cycle in enumerate(hang.cycles, 1):
        out.append(f"DEADLOCK {i}: a cycle of {len(cycle)} task(s)")
        for e in cycle:
            waiter = hang.by_task(e.waiter)
            lock = _lock(waiter) if waiter is not None else f"{e.kind} {e.lock:x}"
            out.append(f"  {_pid(hang, session, e.waiter)} waits for {lock}, held by "
                       f"{_pid(hang, session, e.owner)}")
    if backtraces:
        for g in hang.groups:
            pids = ", ".join(str(b.task.pid) for b in g.tasks)
            out += ["", f"STACK shared by {len(g.tasks)} task(s): PID {pids}"]
            first = g.tasks[0].backtrace
            if first is not None:
                out += format_backtrace(first)
    return out + [f"hang: {e}" for e in hang.errors]


@command("hang", "blocked (D-state) tasks: how long, on which lock, its owner, lock cycles, "
         "stacks grouped", "hang [-n]")
def cmd_hang(session: Session, args: list[str]) -> list[str]:
    if args and args != ["-n"]:
        raise CommandError(f"hang: unsupported argument {args[0]} (try: hang, hang -n: no "
                           "backtraces)")
    return hang_lines(session, backtraces=not args)
