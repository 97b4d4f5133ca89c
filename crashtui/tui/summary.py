"""The one-line summary bar and the full `sys` view."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _time_only(date: str) -> str:
    """`Thu Nov 26 10:23:31 UTC 2026` → `10:23:31 UTC`."""
    parts = date.split()
    return " ".join(parts[3:5]) if len(parts) == 6 else date


def _short_date(date: str) -> str:
    """`Thu Nov 26 10:23:31 UTC 2026` → `Nov 26 10:23:31 UTC`."""
    parts = date.split()
    return " ".join(parts[1:-1]) if len(parts) == 6 else date


def summary_text(summary: Any, width: int = 0) -> Text:
    """release · PANIC · CPU · COMMAND (PID) · time as one literal line fitting `width`."""
    f = summary.fields
    panic_full = _unquote(f.get("PANIC", "").split(" (check log")[0]) or "(none found)"
    panic_short = panic_full.removeprefix("Kernel panic - not syncing: ")
    date = f.get("DATE", "")
    variants = [(panic_full, date, True), (panic_short, date, True),
                (panic_short, _short_date(date), True), (panic_short, _time_only(date), True),
                (panic_short, _time_only(date), False)]
    text = Text()
    for panic, when, label in variants:
        text = _line(summary, panic, when, label)
        if not width or text.cell_len <= width:
            return text
    # still too long: shorten the panic message itself, keep CPU, COMMAND and the time
    over = text.cell_len - width
    short = panic_short[: max(8, len(panic_short) - over - 1)] + "…"
    return _line(summary, short, _time_only(date), False)


def _line(summary: Any, panic: str, when: str, label: bool = True) -> Text:
    f = summary.fields
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    if label:
        text.append(" crashtui ", "reverse bold")
    text.append(" ")
    text.append_text(lit(f.get("RELEASE", "?"), "bold"))
    text.append("  PANIC ", "bold red")
    text.append_text(lit(panic))
    if summary.panic_cpu is not None:
        text.append("  CPU ", "bold")
        text.append(str(summary.panic_cpu))
    if "COMMAND" in f:
        text.append("  ")
        text.append_text(lit(_unquote(f["COMMAND"]), "bold"))
        text.append(f" ({f.get('PID', '?')})")
    if when:
        text.append("  ")
        text.append_text(lit(when, "dim"))
    return text


class SummaryBar(Static):
    """Release, PANIC, CPU, COMMAND and time: always visible at the top."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.summary: Any = None

    def on_mount(self) -> None:
        self.update(Text(" crashtui  loading summary…", no_wrap=True))

    def show(self, summary: Any) -> None:
        self.summary = summary
        self.update(summary_text(summary, self.size.width))

    def on_resize(self) -> None:
        if self.summary is not None:
            self.update(summary_text(self.summary, self.size.width))

    def show_error(self, message: str) -> None:
        self.update(Text.assemble((" crashtui ", "reverse bold"), "  ", lit(message)))


class SummaryView(TextLines):
    """crash's start-up banner (`sys` plus the panic task), and what could not be read."""

    def show(self, summary: Any, debug_info: str = "") -> None:
        """The banner, what could not be read, then which debug info is used (its parts one
        to a line: the vmlinux or the dump's own tables; how to get source lines)."""
        lines = [lit(line) for line in summary.banner_lines()]
        for err in summary.errors:
            lines.append(lit(f"  (could not read {err})", "italic"))
        if debug_info:
            lines.append(Text(""))
            for i, part in enumerate(debug_info.split("; ")):
                lines.append(lit(("  " if i else "") + part, "dim" if i else ""))
        self.set_lines(lines)
