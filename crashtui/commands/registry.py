"""The command registry: each command module registers its commands here with @command.

Kept apart from the package's __init__ (which loads every command module) so that command
modules depend on the registry only, and nothing imports back up into the package.
"""

from __future__ import annotations

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
