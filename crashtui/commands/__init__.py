"""The crash-style command layer shared by `crashtui -c` and the app's command line."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from crashtui.commands.pipes import (
    apply_pipes,
    pipe_filter,
    split_pipes,
    split_redirect,
    write_output,
)
from crashtui.commands.registry import COMMANDS, Command, CommandError, CommandFn, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

__all__ = ["COMMANDS", "Command", "CommandError", "CommandFn", "command", "command_names",
           "run_command"]


def _load_all() -> None:
    from crashtui.commands import (  # noqa: F401
        basic,
        bt,
        dev,
        dis,
        files,
        framevars,
        hang,
        irq,
        kmem,
        listcmd,
        mod,
        mount,
        net,
        p,
        ps,
        rd,
        sched,
        search,
        sig,
        struct,
        swap,
        sym,
        task,
        timer,
        tree,
        triage,
        vm,
        vtop,
        waitq,
        whatis,
    )


# The module of the commands `crashtui -c sys -c bt` runs, so that they need not import all
# thirty command modules; any other command (or an alias) loads them all.
_HOME = {"sys": "basic", "log": "basic", "bt": "bt"}


def _load_for(name: str) -> None:
    """Register command `name`: import its own module if known, else every command module."""
    home = _HOME.get(name)
    if home == "basic":
        from crashtui.commands import basic  # noqa: F401
    elif home == "bt":
        from crashtui.commands import bt  # noqa: F401
    if home is not None and name in COMMANDS:
        return
    _load_all()


def run_command(session: Session, line: str) -> list[str]:
    """Run one command line and return its output lines; raises CommandError/CrashtuiError.
    `| grep`, `| head` and `| tail` stages filter the output, `> FILE` writes it there
    (crashtui.commands.pipes)."""
    line, target, append = split_redirect(line)
    line, stages = split_pipes(line)
    filters = [pipe_filter(argv) for argv in stages]
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot parse command line: {exc}") from None
    if not argv:
        return []
    if argv[0] in ("p", "px", "pd") or argv[0].startswith("p/"):  # C's quotes ('a') kept
        argv = [argv[0], *line.split()[1:]]
        if argv[0] in ("px", "pd"):  # crash's aliases
            argv[:1] = ["p", "-" + argv[0][1]]
    if argv[0].startswith("p/"):  # gdb's p/x: the format as p's first argument
        head, _slash, fmt = argv[0].partition("/")
        argv[:1] = [head, "/" + fmt]
    if argv[0] not in COMMANDS:
        _load_for(argv[0])
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        raise CommandError(f"{argv[0]}: command not found (try `help`)")
    out = apply_pipes(cmd.fn(session, argv[1:]), filters)
    if target is None:
        return out
    write_output(out, target, append)
    return []


def command_names() -> list[str]:
    _load_all()
    return sorted(COMMANDS)
