"""foreach [STATE | PID | TASK | COMMAND ...] ps|task|files|vm: one command over many tasks, as
crash prints it (foreach bt is commands/bt.py's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

FOREACH_COMMANDS = ("ps", "task", "files", "vm")


def _selected(session: Session, states: set[str], names: list[str]) -> list[Task]:
    """Tasks in crash's order, kept by state, PID, task address or command name."""
    out = []
    for t in session.tasks.tasks:
        if states and t.state_code not in states:
            continue
        if names and not any(n == t.comm or (n.isdigit() and int(n) == t.pid) or
                             n.lower().removeprefix("0x") == f"{t.address:x}" for n in names):
            continue
        out.append(t)
    return out


def foreach_lines(session: Session, states: set[str], names: list[str], cmd: str,
                  flags: list[str]) -> list[str]:
    """crash's `foreach ... CMD`: ps's one table; task/files/vm one block per task."""
    from crashtui.commands.files import files_lines
    from crashtui.commands.ps import PS_HEADER, ps_line
    from crashtui.commands.task import task_lines
    from crashtui.commands.vm import vm_lines

    bad = [f for f in flags if f not in (("-x", "-d") if cmd == "task" else ())]
    if bad:
        raise CommandError(f"foreach: {cmd} option {bad[0]} is not supported")
    tasks = _selected(session, states, names)
    if cmd == "ps":
        by_addr = {r.task.address: r for r in session.ps.rows}
        rows = [by_addr[t.address] for t in tasks if t.address in by_addr]
        return [PS_HEADER] + [ps_line(r, session.ps.page_size) for r in rows]
    out: list[str] = []
    for t in tasks:
        if out:
            out.append("")
        if cmd == "task":
            out += task_lines(session, t, "-x" in flags)
        elif cmd == "files":
            out += files_lines(session, t)
        else:
            out += vm_lines(session, t)
    return out
