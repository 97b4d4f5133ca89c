"""The help screen (`?`): every key, in one place."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen

from crashtui.tui.lines import TextLines

KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k", "move in the focused pane (frames, CPUs, tasks, lines)"),
    ("Enter", "frame → its source; CPU or task → its backtrace"),
    ("Tab  Shift+Tab", "next / previous pane"),
    ("c  t  f  o", "focus CPUs, task filter, frames, source"),
    ("p", "panic: the panic CPU's culprit frame (in the Log tab: the oops)"),
    ("1 … 8", "tabs: Triage Registers Memory Log Tasks Modules Summary Command"),
    ("s", "full summary (crash's sys)"),
    ("/  n  N", "search the log or filter tasks; next / previous match"),
    (":", "command line: sys, bt, log, ps, kmem -i, mod, dis -l, help"),
    ("Tab", "command line: complete commands, symbols, structs, modules"),
    ("l", "Modules tab: load the selected module's .ko"),
    ("s  r", "Tasks tab: sort by the next column, reverse"),
    (".", "source pane: centre the marked line again"),
    ("e", "export a Markdown report"),
    ("z", "zoom the focused pane (again: back)"),
    ("Ctrl+P", "command palette: jump to a CPU, task or symbol; export"),
    ("?", "this help"),
    ("q", "quit"),
)


def help_lines() -> list[Text]:
    """The key table as Text lines."""
    lines = [Text("crashtui keys", "bold"), Text("")]
    for key, what in KEYS:
        lines.append(Text.assemble((f"  {key:<16}", "bold"), what))
    lines += [Text(""), Text("Source is looked up with --source DIR or CRASHTUI_SOURCE=DIR "
                             "(a kernel tree or a linux-source tarball).", "dim"),
              Text("Esc or ? closes this help.", "dim")]
    return lines


class HelpScreen(ModalScreen[None]):
    """A modal list of the keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield TextLines(id="help-text", show_cursor=False)

    def on_mount(self) -> None:
        view = self.query_one(TextLines)
        view.border_title = "Help"
        view.set_lines(help_lines())
        view.focus()
