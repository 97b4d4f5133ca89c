"""The Log tab: the whole kernel log, virtual-scrolled, `/` search, the oops block highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input

from crashtui.analysis.logfacts import report_span
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit


def oops_block(lines: list[str]) -> tuple[int, int] | None:
    """[start, end) of the oops/panic report: the one the triage and the report read
    (crashtui.analysis.logfacts.report_span)."""
    return report_span(lines)


class LogLines(TextLines):
    """The log lines; `/` searches, `n`/`N` repeat, `p` jumps to the panic."""

    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
        Binding("p", "panic", "Panic"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.oops: tuple[int, int] | None = None

    def show(self, lines: list[str]) -> None:
        self.oops = oops_block(lines)
        lo, hi = self.oops or (0, 0)
        texts = [lit(line, "bold" if lo <= i < hi else "") for i, line in enumerate(lines)]
        self.set_lines(texts, cursor=len(texts) - 1, marks=range(lo, hi))
        self.action_panic()

    def action_search(self) -> None:
        box = self.parent.query_one("#log-search", Input) if self.parent else None
        if box is not None:
            box.display = True
            box.focus()

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def action_panic(self) -> None:
        """Move to the first line of the oops / panic report."""
        if self.oops is not None:
            self.centre(self.oops[0])
        else:
            self.centre(self.line_count - 1)


class LogView(Vertical):
    """The log with a search box that appears on `/`."""

    def compose(self) -> ComposeResult:
        yield LogLines(id="log-lines")
        yield Input(placeholder="search the log (Enter: find, Esc: close)", id="log-search")

    def on_mount(self) -> None:
        self.query_one("#log-search", Input).display = False
        self.query_one(LogLines).set_lines([Text("loading the log…", "italic")])

    def show(self, lines: list[str]) -> None:
        self.query_one(LogLines).show(lines)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        view = self.query_one(LogLines)
        if view.find(event.value) is None:
            self.notify(f"not found: {event.value}", severity="warning", markup=False)
        event.input.display = False
        view.focus()

    def key_escape(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.display:
            box.display = False
            self.query_one(LogLines).focus()
