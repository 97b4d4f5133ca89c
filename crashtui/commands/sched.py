"""runq (-m, -t, -T) and ps -m: the run queues and how long ago each task ran, as crash prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.sched import LastRun
    from crashtui.kernel.tasks import Task


def nanoseconds(value: int) -> str:
    """crash's `days hh:mm:ss.mmm`."""
    ms = value // 1_000_000
    secs, ms = divmod(ms, 1000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    days, hours = divmod(hours, 24)
    return f"{days} {hours:02d}:{mins:02d}:{secs:02d}.{ms:03d}"


def task_header(t: Task) -> str:
    """crash's `PID: 1        TASK: ffff...  CPU: 3    COMMAND: "init"`."""
    return f'PID: {t.pid:<7}  TASK: {t.address:x}  CPU: {t.cpu:<3}  COMMAND: "{t.comm}"'


def ps_m_line(r: LastRun) -> str:
    """`[0 00:00:10.407] [UN]  PID: 121 ...` (crash's ps -m)."""
    return f"[{nanoseconds(r.since)}] [{r.task.state_code}]  {task_header(r.task)}"


def ps_m_lines(session: Session, tasks: list[Task] | None = None) -> list[str]:
    """crash's `ps -m`: every task, most recently run first."""
    from crashtui.kernel.sched import last_runs

    runs, errors = last_runs(session.kernel, session.tasks.tasks if tasks is None else tasks)
    return [ps_m_line(r) for r in runs] + [f"ps: {e}" for e in errors]


def runq_lines(session: Session) -> list[str]:
    """crash's `runq`: each CPU's current task, then its RT and CFS queues."""
    from crashtui.kernel.sched import run_queues

    out: list[str] = []
    by_addr = {t.address: t for t in session.tasks.tasks}
    for rq in run_queues(session.kernel):
        if out:
            out.append("")
        out.append(f"CPU {rq.cpu} RUNQUEUE: {rq.address:x}")
        cur = by_addr.get(rq.current)
        out.append(f'  CURRENT: PID: {cur.pid:<5}  TASK: {cur.address:x}  COMMAND: "{cur.comm}"'
                   if cur is not None else f"  CURRENT: {rq.current:x}")
        out.append(f"  RT PRIO_ARRAY: {rq.rt_array:x}")
        out += [_queued_line(by_addr, q.task, q.prio) for q in rq.rt] or \
            ["     [no tasks queued]"]
        out.append(f"  CFS RB_ROOT: {rq.cfs_root:x}")
        out += [_queued_line(by_addr, q.task, q.prio) for q in rq.cfs] or \
            ["     [no tasks queued]"]
        out += [f"runq: {e}" for e in rq.errors]
    return out


def _queued_line(by_addr: dict[int, Task], task: int, prio: int) -> str:
    t = by_addr.get(task)
    pid, comm = (t.pid, t.comm) if t is not None else (-1, "?")
    return f'     [{prio:3d}] PID: {pid:<5}  TASK: {task:x}  COMMAND: "{comm}"'


def runq_m_lines(session: Session) -> list[str]:
    """crash's `runq -m`: how long each CPU's current task has been running."""
    from crashtui.kernel.sched import last_arrival, run_queues

    rqs = run_queues(session.kernel)
    by_addr = {t.address: t for t in session.tasks.tasks}
    width = len(str(len(rqs) - 1)) if rqs else 1
    max_days = len(nanoseconds(rqs[0].clock).split(" ")[0]) if rqs else 1
    out = []
    for rq in rqs:
        t = by_addr.get(rq.current)
        indent = " " * (width - len(str(rq.cpu)) + 1)
        if t is None:
            out.append(f"{indent}CPU {rq.cpu}: [unknown]")
            continue
        since = nanoseconds(max(0, rq.clock - last_arrival(session.kernel, t.address)))
        pad = " " * (max_days - len(since.split(" ")[0]))
        out.append(f'{indent}CPU {rq.cpu}: [{pad}{since}]  PID: {t.pid:<5}  '
                   f'TASK: {t.address:x}  COMMAND: "{t.comm}"')
    return out


def runq_t_lines(session: Session) -> list[str]:
    """crash's `runq -t`: each CPU's rq->clock, under it when its current task last started
    running (sched_info.last_arrival, zero-padded to the clock's width)."""
    from crashtui.kernel.sched import last_arrival, run_queues

    by_addr = {t.address: t for t in session.tasks.tasks}
    out = []
    for rq in run_queues(session.kernel):
        clock = str(rq.clock)
        out.append(f"{' ' if rq.cpu < 10 else ''}CPU {rq.cpu}: {clock}")
        t = by_addr.get(rq.current)
        if t is not None:
            out.append(f"{' ' * 8}{last_arrival(session.kernel, t.address):0{len(clock)}d}  "
                       f'PID: {t.pid:<5}  TASK: {t.address:x}  COMMAND: "{t.comm}"')
    return out


def runq_lag_lines(session: Session) -> list[str]:
    """crash's `runq -T`: how far each CPU's rq->clock lags the most recent one, in seconds,
    most recent first."""
    from crashtui.kernel.sched import run_queues

    rqs = sorted(run_queues(session.kernel), key=lambda rq: -rq.clock)
    newest = rqs[0].clock if rqs else 0
    return [f"  CPU {rq.cpu}: {(newest - rq.clock) / 1e9:.2f} secs" for rq in rqs]


@command("runq", "each CPU's run queue: current task, queued RT and CFS tasks",
         "runq [-m|-t|-T]")
def cmd_runq(session: Session, args: list[str]) -> list[str]:
    if args == ["-m"]:
        return runq_m_lines(session)
    if args == ["-t"]:
        return runq_t_lines(session)
    if args == ["-T"]:
        return runq_lag_lines(session)
    if args:
        raise CommandError(f"runq: unsupported argument {args[0]} "
                           "(try: runq, runq -m, runq -t, runq -T)")
    return runq_lines(session)
