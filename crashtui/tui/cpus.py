"""The CPU selector: one row per CPU, the panic CPU first and marked."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from crashtui.analysis.backtrace import Backtrace
from crashtui.tui.messages import ShowBacktrace
from crashtui.tui.search import SearchableOptions
from crashtui.tui.text import lit


def cpu_prompt(bt: Backtrace, colour: bool = True) -> Text:
    """`▶ 3 init !` / `  0 swapper/0`; without colour (NO_COLOR) the marks take the row's own
    foreground: a red made grey would sit grey on the grey of the highlighted row."""
    mark = "bold red" if colour else "bold"
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append("▶" if bt.panic else " ", mark)
    text.append(f"{bt.cpu:>2} ", "bold")
    text.append_text(lit(bt.command))
    if bt.panic:
        text.append(" !", mark)
    return text


class CpuList(SearchableOptions):
    """Moving through the CPUs shows each CPU's backtrace; the panic CPU comes first."""

    search_title = "find a CPU (number or command)"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.backtraces: list[Backtrace] = []

    def show(self, backtraces: list[Backtrace], announce: bool = True) -> None:
        """Fill the list, panic CPU first; announce=False keeps the CPU highlighted (else the
        first) without showing its backtrace again (the app shows it, or already did)."""
        was = self.backtraces[self.highlighted].cpu if (
            not announce and self.highlighted is not None
            and self.highlighted < len(self.backtraces)) else None
        self.backtraces = sorted(backtraces, key=lambda b: (not b.panic, b.cpu))
        self.clear_options()
        colour = not self.app.no_color
        self.add_options(Option(cpu_prompt(bt, colour), id=f"cpu-{bt.cpu}")
                         for bt in self.backtraces)
        if not self.backtraces:
            return
        if announce:
            self.highlighted = 0
            return
        at = next((i for i, bt in enumerate(self.backtraces) if bt.cpu == was), 0)
        with self.prevent(OptionList.OptionHighlighted):
            self.highlighted = at

    def select_cpu(self, cpu: int) -> bool:
        """Highlight a CPU (shows its backtrace)."""
        for i, bt in enumerate(self.backtraces):
            if bt.cpu == cpu:
                if self.highlighted == i:
                    self.post_message(ShowBacktrace(bt))
                self.highlighted = i
                return True
        return False

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index < len(self.backtraces):
            self.post_message(ShowBacktrace(self.backtraces[event.option_index]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.highlighted is not None and self.highlighted < len(self.backtraces):
            self.post_message(ShowBacktrace(self.backtraces[self.highlighted]))
            self.app.set_focus(self.app.query_one("#frames"))
