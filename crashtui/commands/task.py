"""task [PID|TASK]: a task's task_struct and thread_info contents, as crash prints them; and
the task selection that task, files and vm share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.context import context_address, set_context_address
from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task


def current_task(session: Session) -> Task:
    """crash's current context: the task `set` chose, else (as on opening a dump) the panic
    task, else the first task."""
    chosen = context_address(session)
    if chosen is not None:
        for t in session.tasks.tasks:
            if t.address == chosen:
                return t
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


def context_lines(session: Session, t: Task) -> list[str]:
    """crash's context block (`set`): PID, COMMAND, TASK, CPU, STATE."""
    panic = session.summary.panic_task
    running = [bt.task for bt in session.backtraces if bt.active] if t.state_code == "RU" else []
    state = t.state_name
    if panic is not None and panic.address == t.address:
        state += " (PANIC)"
    elif t.address in running:
        state += " (ACTIVE)"
    return [f"    PID: {t.pid}", f'COMMAND: "{t.comm}"',
            f"   TASK: {t.address:x}  [THREAD_INFO: {t.address:x}]",
            f"    CPU: {t.cpu}", f"  STATE: {state}"]


@command("set", "show or set the current context: the task bt, task, vm, files use by default",
         "set [PID | TASK | -p | -c CPU]")
def cmd_set(session: Session, args: list[str]) -> list[str]:
    if len(args) == 2 and args[0] == "-c":
        try:
            cpu = int(args[1])
        except ValueError:
            raise CommandError(f"set: invalid cpu: {args[1]}") from None
        found = [bt for bt in session.backtraces if bt.cpu == cpu and bt.task]
        if not found:
            raise CommandError(f"set: invalid cpu: {cpu}")
        set_context_address(session, found[0].task)
    elif args == ["-p"]:
        set_context_address(session, None)
    elif len(args) == 1 and not args[0].startswith("-"):
        set_context_address(session, select_tasks(session, args, "set")[0].address)
    elif args:
        raise CommandError(f"set: unsupported argument {args[0]} "
                           "(try: set [PID | TASK | -p | -c CPU])")
    return context_lines(session, current_task(session))
