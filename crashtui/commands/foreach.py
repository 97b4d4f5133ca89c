"""foreach [PID | TASK | NAME | 'REGEX' | kernel | user | gleader | active | STATE ...]
ps|task|files|vm|sig|net|set: one command over many tasks, as crash prints it (task.c
cmd_foreach(); foreach bt is commands/bt.py's, with the same selectors)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

FOREACH_COMMANDS = ("ps", "task", "files", "vm", "sig", "net", "set")
FOREACH_STATES = ("RU", "IN", "UN", "ST", "ZO", "TR", "SW", "DE", "WA", "PA", "ID", "NE")
KEYWORDS = ("kernel", "user", "gleader", "active")
_REGEX_CHARS = set(".*+?[](){}|^$")


def selected_tasks(session: Session, selectors: list[str]) -> list[Task]:
    """Tasks in crash's order kept by the selectors: PIDs, task addresses, names (a name with
    regex characters is crash's quoted 'REGEX', searched), kernel/user/gleader/active and a
    state; PIDs, addresses and names add up, the keywords and state then filter."""
    states = {s for s in selectors if s in FOREACH_STATES}
    words = {s for s in selectors if s in KEYWORDS}
    names = [s for s in selectors if s not in states and s not in words]
    rows = {r.task.address: r for r in session.ps.rows}
    pids: set[int] = set()
    addrs: set[int] = set()
    comms: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    comm_set = {t.comm for t in session.tasks.tasks}
    for n in names:
        text = n.lower().removeprefix("0x")
        if n.isdigit():
            pids.add(int(n))
        elif len(text) > 8 and all(c in "0123456789abcdef" for c in text):
            addrs.add(int(text, 16))
        elif n.removeprefix("\\") in comm_set or not _REGEX_CHARS & set(n):
            comms.add(n.removeprefix("\\"))
        else:
            try:
                patterns.append(re.compile(n))
            except re.error as exc:
                raise CommandError(f"foreach: invalid regular expression: {n}: {exc}") from None
    out = []
    for t in session.tasks.tasks:
        if names and not (t.pid in pids or t.address in addrs or t.comm in comms or
                          any(p.search(t.comm) for p in patterns)):
            continue
        if states and t.state_code not in states:
            continue
        row = rows.get(t.address)
        kthread = row.kernel_thread if row is not None else t.is_kthread
        if "kernel" in words and not kthread:
            continue
        if ("user" in words or "gleader" in words) and kthread:
            continue
        if "gleader" in words and t.pid != t.tgid:
            continue
        if "active" in words and not (row is not None and row.active):
            continue
        out.append(t)
    return out


def unknown_selectors(session: Session, selectors: list[str]) -> list[str]:
    """crash's `foreach: unknown argument: "X"` for each PID, task, name or regex that no
    task has (crash goes on with the others)."""
    tasks = session.tasks.tasks
    out = []
    for n in selectors:
        if n in FOREACH_STATES or n in KEYWORDS:
            continue
        text = n.lower().removeprefix("0x")
        if n.isdigit():
            found = any(t.pid == int(n) for t in tasks)
        elif len(text) > 8 and all(c in "0123456789abcdef" for c in text):
            found = any(t.address == int(text, 16) for t in tasks)
        elif n.removeprefix("\\") in {t.comm for t in tasks} or not _REGEX_CHARS & set(n):
            found = any(t.comm == n.removeprefix("\\") for t in tasks)
        else:
            try:
                pattern = re.compile(n)
            except re.error:
                continue  # selected_tasks() says so
            found = any(pattern.search(t.comm) for t in tasks)
        if not found:
            out.append(f'foreach: unknown argument: "{n}"')
    return out


def foreach_lines(session: Session, states: set[str], names: list[str], cmd: str,
                  flags: list[str]) -> list[str]:
    """crash's `foreach ... CMD`: ps's one table; task/files/vm/sig/net one block per task;
    nothing when no task is selected."""
    allowed = {"task": ("-x", "-d"), "sig": ("-g",), "net": ("-s",)}.get(cmd, ())
    bad = [f for f in flags if f not in allowed]
    if bad:
        raise CommandError(f"foreach: {cmd} option {bad[0]} is not supported")
    tasks = selected_tasks(session, sorted(states) + names)
    return unknown_selectors(session, names) + (_lines(session, tasks, cmd, flags) if tasks
                                                  else [])


def _lines(session: Session, tasks: list[Task], cmd: str, flags: list[str]) -> list[str]:
    from crashtui.commands.files import files_lines
    from crashtui.commands.ps import PS_HEADER, ps_line
    from crashtui.commands.task import task_lines
    from crashtui.commands.vm import vm_lines

    if cmd == "ps":
        by_addr = {r.task.address: r for r in session.ps.rows}
        rows = [by_addr[t.address] for t in tasks if t.address in by_addr]
        return [PS_HEADER] + [ps_line(r, session.ps.page_size) for r in rows]
    if cmd == "sig":
        from crashtui.commands.sig import sig_task_lines

        out: list[str] = []
        groups: set[int] = set()
        for t in tasks:
            if "-g" in flags:  # one block per thread group
                if t.tgid in groups:
                    continue
                groups.add(t.tgid)
            out += sig_task_lines(session, t, "-g" in flags)
        return out
    if cmd == "net":
        return _net_lines(session, tasks, "-s" in flags)
    if cmd == "set":  # each task's context as `set PID` shows it (the context is not changed)
        from crashtui.commands.kmemaddr import context_lines
        from crashtui.commands.sched import task_header

        same_pid: dict[int, list[int]] = {}
        for t in session.tasks.tasks:
            same_pid.setdefault(t.pid, []).append(t.address)
        out = []
        for i, t in enumerate(tasks):
            lines = context_lines(session, t)
            peers = same_pid.get(t.pid, [])
            if len(peers) > 1:  # task.c show_context() prints "(1 of %d)" for any of them
                lines = [line.replace("  [THREAD_INFO:", f"  (1 of {len(peers)})  [THREAD_INFO:",
                                      1) if line.startswith("   TASK:") else line
                         for line in lines]
            out += ([""] if i else []) + [task_header(t)] + lines
        return out
    out = []
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


def _net_lines(session: Session, tasks: list[Task], sockets: bool) -> list[str]:
    """crash's `foreach net [-s]`: each task's sockets (net -s), a blank line between;
    without -s crash warns and shows the sockets all the same."""
    from crashtui.commands.net import socket_lines

    out = [] if sockets else ["WARNING: net command requires -s or -S option", ""]
    for i, t in enumerate(tasks):
        out += ([""] if i else []) + socket_lines(session, t)
    return out
