"""task [PID|TASK]: a task's task_struct and thread_info contents, as crash prints them; and
the task selection that task, files and vm share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task


def current_task(session: Session) -> Task:
    """crash's current context on opening a dump: the panic task (else CPU 0's)."""
    task = session.summary.panic_task
    if task is not None:
        return task
    tasks = session.tasks.tasks
    if not tasks:
        raise CommandError("no tasks could be read from this dump")
    return tasks[0]


def select_tasks(session: Session, args: list[str], cmd: str) -> list[Task]:
    """Tasks named by PID or task address (hex), in argument order; none: the current one."""
    if not args:
        return [current_task(session)]
    tasks = session.tasks.tasks
    out: list[Task] = []
    for a in args:
        found: list[Task] = []
        if a.isdigit():
            found = [t for t in tasks if t.pid == int(a)]
        if not found:
            text = a.lower().removeprefix("0x")
            if text and all(c in "0123456789abcdef" for c in text) and len(text) > 8:
                found = [t for t in tasks if t.address == int(text, 16)]
        if not found:
            raise CommandError(f"{cmd}: invalid task or pid value: {a}")
        out += found
    return out


def task_lines(session: Session, t: Task, hex_ints: bool = False) -> list[str]:
    """crash's `task` for one task: its header, task_struct and thread_info."""
    from crashtui.commands.sched import task_header
    from crashtui.commands.struct import cmd_struct

    radix = ["-x"] if hex_ints else []
    out = [task_header(t)] + cmd_struct(session, ["task_struct", f"{t.address:x}"] + radix)
    if session.kernel.btf.has_member("task_struct", "thread_info"):
        out += [""] + cmd_struct(session, ["thread_info", f"{t.address:x}"] + radix)
    return out


@command("task", "a task's task_struct and thread_info (default: the panic task)",
         "task [-x] [PID | TASK ...]")
def cmd_task(session: Session, args: list[str]) -> list[str]:
    hex_ints = "-x" in args
    rest = [a for a in args if a not in ("-x", "-d")]
    bad = [a for a in rest if a.startswith("-")]
    if bad:
        raise CommandError(f"task: unsupported option {bad[0]} (try: task [-x] [PID | TASK])")
    out: list[str] = []
    for t in select_tasks(session, rest, "task"):
        if out:
            out.append("")
        out += task_lines(session, t, hex_ints)
    return out
