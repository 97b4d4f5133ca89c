"""`help` lists every registered command with a one-line description, and Tab completes each
command's options (declared at registration, or named by its usage line); the app's `:` line
completes them too (Pilot at 80x24 on 6.1-sysrq)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from crashtui.commands import COMMANDS, CommandError, command_names, run_command
from crashtui.commands.complete import complete
from crashtui.commands.registry import usage_options

MAX_HELP_LINE = 132  # `help`: one terminal line each on a wide terminal


def test_every_command_has_a_one_line_description() -> None:
    names = command_names()
    assert len(names) >= 35
    missing = [n for n in names if not COMMANDS[n].summary.strip()]
    assert not missing, f"commands without a description: {missing}"
    multi = [n for n in names if "\n" in COMMANDS[n].summary or "\n" in COMMANDS[n].usage]
    assert not multi, f"descriptions on more than one line: {multi}"
    long = [n for n in names if len(f"{n:<10} {COMMANDS[n].summary}") > MAX_HELP_LINE]
    assert not long, f"descriptions longer than a line: {long}"


def test_help_lists_every_command_once() -> None:
    out = run_command(None, "help")  # type: ignore[arg-type]  # help reads no dump
    assert [line.split()[0] for line in out] == command_names()
    for line, name in zip(out, command_names(), strict=True):
        assert line == f"{name:<10} {COMMANDS[name].summary}"
    assert run_command(None, "help kmem")[1] == f"usage: {COMMANDS['kmem'].usage}"  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="no command"):
        run_command(None, "help nosuchcommand")  # type: ignore[arg-type]


def test_every_option_of_a_usage_line_completes() -> None:
    """A test that walks the registry: each command's options are the ones its usage line
    names (or declares), and `CMD -` completes to exactly those."""
    for name in command_names():
        cmd = COMMANDS[name]
        named = set(usage_options(cmd.usage))
        assert named <= set(cmd.options), f"{name}: usage names {named - set(cmd.options)}"
        if re.search(r"(?<![\w-])-[A-Za-z]", cmd.usage):
            assert cmd.options, f"{name}: options in its usage, none declared"
        got = complete(None, f"{name} -")
        want = sorted(cmd.options)
        if len(want) == 1:
            assert got == [f"{name} {want[0]} "], name
        else:
            assert got == [f"{name} {o}" for o in want], name


@pytest.mark.parametrize(("line", "expected"), [
    ("kmem -", ["kmem -F", "kmem -f", "kmem -g", "kmem -i", "kmem -p", "kmem -s", "kmem -z"]),
    ("kmem -F", ["kmem -F "]),
    ("irq -", ["irq -a", "irq -b", "irq -c", "irq -d", "irq -s", "irq -u"]),
    ("sig -", ["sig -g "]),
    ("rd -3", ["rd -32 "]),
    ("log -", ["log -c", "log -t"]),  # [-ct]
    ("list -", ["list -H", "list -O", "list -S", "list -d", "list -e", "list -h", "list -l",
                "list -o", "list -r", "list -s", "list -x"]),  # -[s|S]
    ("timer -", ["timer -C", "timer -r"]),  # not -CPU's letters
    ("irq -s -c 1 -", ["irq -s -c 1 -a", "irq -s -c 1 -b", "irq -s -c 1 -c", "irq -s -c 1 -d",
                       "irq -s -c 1 -s", "irq -s -c 1 -u"]),
    ("nosuch -", []),
    ("sys -", []),
])
def test_option_completion(line: str, expected: list[str]) -> None:
    assert complete(None, line) == expected


@pytest.mark.needs_vmlinux
def test_command_line_tab_completes_options() -> None:
    from conftest import dump_of, vmlinux_of
    from test_tui import drive, press

    from crashtui.analysis.session import Session
    from crashtui.tui.app import CrashtuiApp
    from crashtui.tui.command import CommandInput
    from crashtui.tui.facade import SessionFacade

    session = Session.open(dump_of("6.1-sysrq"), vmlinux_of("6.1-sysrq"))
    app = CrashtuiApp(SessionFacade(session, cache_root=Path(tempfile.mkdtemp()),
                                    auto_source=False))

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "colon")
        box = app.query_one(CommandInput)
        box.value = "sig -"
        box.cursor_position = len(box.value)
        await press(app, pilot, "tab")
        assert box.value == "sig -g "
        box.value = "kmem -"
        box.cursor_position = len(box.value)
        await press(app, pilot, "tab")
        assert box.value == "kmem -"  # several: listed in a toast
        assert any(str(n.message).split() == ["-F", "-f", "-g", "-i", "-p", "-s", "-z"]
                   for n in app._notifications)

    try:
        drive(app, steps, size=(80, 24))
    finally:
        session.close()
