"""ps: every task with its state and memory use, as crash prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crashtui.commands import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.ps import PsRow


def ps_rows(session: Session) -> list[dict[str, Any]]:
    """The tasks as plain JSON values (pid, ppid, cpu, task, state, comm, vsz_kb, rss_kb,
    mem_percent, active, kernel_thread), in crash's order."""
    from crashtui.kernel.ps import ps_dict

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
         "ps [-k | -u] [PID | TASK | COMMAND ...]")
def cmd_ps(session: Session, args: list[str]) -> list[str]:
    table = session.ps
    kernel_only = user_only = False
    wanted: list[str] = []
    for a in args:
        if a == "-k":
            kernel_only = True
        elif a == "-u":
            user_only = True
        elif a.startswith("-"):
            raise CommandError(f"ps: unsupported option {a} (try: ps, ps -k, ps -u, ps PID)")
        else:
            wanted.append(a)
    rows = [r for r in table.rows
            if (not kernel_only or r.kernel_thread) and (not user_only or not r.kernel_thread)
            and (not wanted or _matches(r, wanted))]
    if wanted and not rows:
        raise CommandError(f"ps: no task matches {' '.join(wanted)}")
    from crashtui.kernel.ps import PS_HEADER

    lines = [PS_HEADER] + [r.line(table.page_size) for r in rows]
    return lines + [f"ps: {e}" for e in table.errors]
