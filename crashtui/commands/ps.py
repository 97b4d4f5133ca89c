"""ps: every task with its state and memory use, as crash prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.ps import PsRow, PsTable

PS_HEADER = "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM"


def ps_line(row: PsRow, page_size: int) -> str:
    """The line crash prints (`>` marks a running task; kernel threads in brackets)."""
    t = row.task
    pct = f"{row.memory.percent:.1f}"
    if len(pct) == 3:
        pct = " " + pct
    state = t.state_code
    pad = " " if len(state) > 3 else "  "
    comm = f"[{t.comm}]" if row.kernel_thread else t.comm
    return (f"{'>' if row.active else ' '} {t.pid:7d} {row.ppid:7d} {t.cpu:>3}  "
            f"{t.address:016x} {state:>3}{pad}{pct} "
            f"{row.memory.total_vm * page_size // 1024:8d} "
            f"{row.memory.rss * page_size // 1024:8d}  {comm}")


def ps_dict(table: PsTable) -> list[dict[str, Any]]:
    """The rows as plain JSON values (pid, ppid, cpu, task, state, comm, vsz_kb, rss_kb,
    mem_percent, active, kernel_thread), in crash's order."""
    ps = table.page_size
    return [{"pid": r.task.pid, "ppid": r.ppid, "cpu": r.task.cpu,
             "task": f"{r.task.address:016x}", "state": r.task.state_code,
             "comm": r.task.comm, "vsz_kb": r.memory.total_vm * ps // 1024,
             "rss_kb": r.memory.rss * ps // 1024,
             "mem_percent": float(f"{r.memory.percent:.1f}"), "active": r.active,
             "kernel_thread": r.kernel_thread}
            for r in table.rows]


def ps_rows(session: Session) -> list[dict[str, Any]]:
    """The tasks of session.ps as plain JSON values."""
    return ps_dict(session.ps)


def _matches(row: PsRow, wanted: list[str]) -> bool:
    """A row named by PID, task address (hex) or command name."""
    for w in wanted:
        if w.isdigit() and int(w) == row.task.pid:
            return True
        try:
            if int(w, 16) == row.task.address and len(w) > 8:
                return True
        except ValueError:
            pass
        if w == row.task.comm:
            return True
    return False


@command("ps", "process status: every task, the running ones marked with >",
         "ps [-k | -u] [-m] [PID | TASK | COMMAND ...]")
def cmd_ps(session: Session, args: list[str]) -> list[str]:
    table = session.ps
    kernel_only = user_only = last_run = False
    wanted: list[str] = []
    for a in args:
        if a == "-k":
            kernel_only = True
        elif a == "-u":
            user_only = True
        elif a == "-m":
            last_run = True
        elif a.startswith("-"):
            raise CommandError(f"ps: unsupported option {a} (try: ps, ps -k, ps -u, ps -m, "
                               "ps PID)")
        else:
            wanted.append(a)
    rows = [r for r in table.rows
            if (not kernel_only or r.kernel_thread) and (not user_only or not r.kernel_thread)
            and (not wanted or _matches(r, wanted))]
    if wanted and not rows:
        raise CommandError(f"ps: no task matches {' '.join(wanted)}")
    if last_run:  # crash's ps -m: how long ago each task last ran, most recent first
        from crashtui.commands.sched import ps_m_lines

        return ps_m_lines(session, [r.task for r in rows])
    lines = [PS_HEADER] + [ps_line(r, table.page_size) for r in rows]
    return lines + [f"ps: {e}" for e in table.errors]
