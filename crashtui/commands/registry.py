"""The command registry: each command module registers its commands here with @command.

Kept apart from the package's __init__ (which loads every command module) so that command
modules depend on the registry only, and nothing imports back up into the package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
    summary: str  # one line: what `help` lists
    usage: str
    options: tuple[str, ...] = ()  # what Tab completes after `-`


COMMANDS: dict[str, Command] = {}


def usage_options(usage: str) -> tuple[str, ...]:
    """The options a usage line names: `-a`, `-16`, each letter of `[-ct]` and `-[x|d]` (not
    `-CPU` of a CPU range)."""
    found: list[str] = []
    for m in re.finditer(r"(?<![\w\]-])-(\[([A-Za-z|]+)\]|\d+\b|[A-Za-z]+\b)", usage):
        word = m.group(2) or m.group(1)
        if word.isdigit():
            found.append("-" + word)
        elif m.group(2) or len(word) == 1 or (word.islower() and len(word) <= 3):
            found += ["-" + c for c in word.replace("|", "")]
    return tuple(dict.fromkeys(found))


def command(name: str, summary: str, usage: str = "",
            options: Sequence[str] | None = None) -> Callable[[CommandFn], CommandFn]:
    """Register a crash-style command; its options for Tab completion are `options`, or
    else those its usage line names."""

    def register(fn: CommandFn) -> CommandFn:
        opts = tuple(options) if options is not None else usage_options(usage or name)
        COMMANDS[name] = Command(name, fn, summary, usage or name, opts)
        return fn

    return register
