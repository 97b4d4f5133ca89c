"""sys, log, help: commands that print facts the session already holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import COMMANDS, CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session


@command("sys", "system data: the summary crash shows on opening a dump", "sys")
def cmd_sys(session: Session, args: list[str]) -> list[str]:
    if args:
        raise CommandError(f"sys: unsupported argument {args[0]}")
    return session.summary.sys_lines()


@command("log", "the kernel message buffer, like dmesg (-c caller id, -t no timestamp)",
         "log [-ct]")
def cmd_log(session: Session, args: list[str]) -> list[str]:
    flags = set()
    for arg in args:
        if not arg.startswith("-") or len(arg) < 2 or set(arg[1:]) - {"c", "t"}:
            raise CommandError(f"log: unsupported argument {arg}")
        flags |= set(arg[1:])
    return session.log.lines(caller="c" in flags, timestamp="t" not in flags)


@command("help", "list the commands, or describe one", "help [COMMAND]")
def cmd_help(session: Session, args: list[str]) -> list[str]:
    if args:
        cmd = COMMANDS.get(args[0])
        if cmd is None:
            raise CommandError(f"help: no command {args[0]}")
        return [f"{cmd.name}: {cmd.summary}", f"usage: {cmd.usage}"]
    return [f"{c.name:<10} {c.summary}" for c in sorted(COMMANDS.values(), key=lambda c: c.name)]
