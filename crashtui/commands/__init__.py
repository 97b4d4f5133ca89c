"""The crash-style command layer shared by `crashtui -c` and the app's command line."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

CommandFn = Callable[["Session", list[str]], list[str]]


class CommandError(CrashtuiError):
    """A command was misused (unknown name, bad argument)."""


@dataclass(frozen=True)
class Command:
    name: str
    fn: CommandFn
    summary: str
    usage: str


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, usage: str = "") -> Callable[[CommandFn], CommandFn]:
    """Register a crash-style command."""

    def register(fn: CommandFn) -> CommandFn:
        COMMANDS[name] = Command(name, fn, summary, usage or name)
        return fn

    return register


def _load_all() -> None:
    from crashtui.commands import (  # noqa: F401
        basic,
        bt,
        dis,
        files,
        hang,
        kmem,
        listcmd,
        mod,
        p,
        ps,
        rd,
        sched,
        struct,
        sym,
        task,
        triage,
        vm,
        vtop,
        whatis,
    )


def run_command(session: Session, line: str) -> list[str]:
    """Run one command line and return its output lines; raises CommandError/CrashtuiError."""
    _load_all()
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot parse command line: {exc}") from None
    if not argv:
        return []
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        raise CommandError(f"{argv[0]}: command not found (try `help`)")
    return cmd.fn(session, argv[1:])


def command_names() -> list[str]:
    _load_all()
    return sorted(COMMANDS)
