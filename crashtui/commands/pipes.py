"""Output pipes on a command line, as crash passes them to the shell: `| grep [-i] [-v] [-w]
[-c] [-e] PAT`, `| head [-n N | -N]`, `| tail [-n N | -N]`, any number, applied in order;
then `> FILE` or `>> FILE` at the end writes (appends) the output there instead."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

from crashtui.commands.registry import CommandError

Filter = Callable[[list[str]], list[str]]
PIPE_COMMANDS = ("grep", "head", "tail")


def split_pipes(line: str) -> tuple[str, list[list[str]]]:
    """The command and the argv of each pipe stage. A `|` outside quotes starts a stage only
    when a pipe command follows it, so `p a|b` (C's or) stays one command."""
    pieces: list[str] = []
    quote = ""
    start = 0
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "|":
            pieces.append(line[start:i])
            start = i + 1
    pieces.append(line[start:])
    command = pieces[0]
    stages: list[list[str]] = []
    for piece in pieces[1:]:
        word = piece.split(None, 1)[0] if piece.strip() else ""
        if stages or word in PIPE_COMMANDS:
            try:
                argv = shlex.split(piece)
            except ValueError as exc:
                raise CommandError(f"cannot parse pipe: {exc}") from None
            if not argv or argv[0] not in PIPE_COMMANDS:
                raise CommandError(f"{argv[0] if argv else '|'}: unsupported pipe command "
                                   f"(grep, head, tail)")
            stages.append(argv)
        else:  # not a pipe: part of the command (an expression)
            command += "|" + piece
    return command, stages


def split_redirect(line: str) -> tuple[str, str | None, bool]:
    """(the line before it, FILE, append) of a trailing `> FILE` / `>> FILE` outside quotes;
    (line, None, False) without one."""
    quote = ""
    at = -1
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == ">" and (i == 0 or line[i - 1] != ">") and line[i - 1: i] != "-":
            at = i  # `->` is C's member access, not a redirection
    if at < 0:
        return line, None, False
    append = line[at + 1: at + 2] == ">"
    try:
        target = shlex.split(line[at + (2 if append else 1):])
    except ValueError as exc:
        raise CommandError(f"cannot parse redirection: {exc}") from None
    if len(target) != 1:
        raise CommandError("redirection: one file name after > (try: bt -a > bt.txt)")
    return line[:at], target[0], append


def write_output(lines: list[str], path: str, append: bool) -> None:
    """The output to a file, as the shell's `>` / `>>` would (a bad path: CommandError)."""
    try:
        with open(Path(path).expanduser(), "a" if append else "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _count(cmd: str, text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise CommandError(f"{cmd}: invalid number of lines: {text}") from None
    if n < 0:
        raise CommandError(f"{cmd}: invalid number of lines: {text}")
    return n


def _head_tail(argv: list[str]) -> Filter:
    cmd, args = argv[0], argv[1:]
    n = 10
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-n" and i + 1 < len(args):
            n = _count(cmd, args[i + 1])
            i += 2
            continue
        if a.startswith("-n"):
            n = _count(cmd, a[2:])
        elif a.startswith("-") and a[1:].isdigit():
            n = _count(cmd, a[1:])
        else:
            raise CommandError(f"{cmd}: unsupported argument {a} (try: {cmd} [-n N])")
        i += 1
    if cmd == "head":
        return lambda lines: lines[:n]
    return lambda lines: lines[len(lines) - n:] if n else []


def _grep(argv: list[str]) -> Filter:
    flags: set[str] = set()
    patterns: list[str] = []
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            patterns.append(args[i + 1])
            i += 2
            continue
        if a == "--":
            patterns += args[i + 1: i + 2]
            break
        if a.startswith("-") and len(a) > 1 and not patterns:
            bad = set(a[1:]) - set("ivwcFE")
            if bad:
                raise CommandError(f"grep: unsupported option -{sorted(bad)[0]} "
                                   "(try: grep [-i] [-v] [-w] [-c] [-F] PATTERN)")
            flags |= set(a[1:])
        elif not patterns:
            patterns.append(a)
        else:
            raise CommandError(f"grep: one pattern only (extra: {a})")
        i += 1
    if not patterns:
        raise CommandError("grep: no pattern (try: grep [-i] [-v] PATTERN)")
    regexes = []
    for p in patterns:
        text = re.escape(p) if "F" in flags else p
        if "w" in flags:
            text = rf"\b(?:{text})\b"
        try:
            regexes.append(re.compile(text, re.IGNORECASE if "i" in flags else 0))
        except re.error:  # not a regular expression: the text itself
            regexes.append(re.compile(re.escape(p), re.IGNORECASE if "i" in flags else 0))
    invert, count = "v" in flags, "c" in flags

    def grep(lines: list[str]) -> list[str]:
        kept = [s for s in lines if any(r.search(s) for r in regexes) != invert]
        return [str(len(kept))] if count else kept

    return grep


def pipe_filter(argv: list[str]) -> Filter:
    """One stage's filter (raises CommandError on a bad stage, before the command runs)."""
    return _grep(argv) if argv[0] == "grep" else _head_tail(argv)


def apply_pipes(lines: list[str], filters: list[Filter]) -> list[str]:
    for f in filters:
        lines = f(lines)
    return lines
