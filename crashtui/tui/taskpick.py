"""The task selector: every task from `ps`, filtered as you type; Enter shows its backtrace."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from crashtui.kernel.ps import PsRow
from crashtui.tui.messages import ShowTask
from crashtui.tui.search import SearchableOptions
from crashtui.tui.text import content, lit


def task_prompt(row: PsRow) -> Text:
    """`> 125 init` (kernel threads in brackets, like crash's ps)."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    t = row.task
    text.append(">" if row.active else " ", "bold")
    text.append(f"{t.pid:>5} ", "bold" if row.active else "")
    name = f"[{t.comm}]" if row.kernel_thread else t.comm
    text.append_text(lit(name, "dim" if row.kernel_thread else ""))
    return text


class TaskOptions(SearchableOptions):
    """The filtered tasks (`/` goes to the filter)."""

    BINDINGS = [Binding("slash", "search", "Search", show=False),
                Binding("y", "copy_task", "Copy address", show=False)]

    def action_search(self) -> None:
        self.app.set_focus(self.app.query_one("#task-filter"))

    def action_copy_task(self) -> None:
        """The highlighted task's address to the clipboard (OSC 52)."""
        picker, i = self.parent, self.highlighted
        if isinstance(picker, TaskPicker) and i is not None and i < len(picker.shown):
            address = f"{picker.shown[i].task.address:016x}"
            self.app.copy_to_clipboard(address)
            self.notify(f"copied {address} (OSC 52)", timeout=2)


class TaskPicker(Vertical):
    """A filter input above the list of tasks."""

    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[PsRow] = []
        self.shown: list[PsRow] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter: pid or name", id="task-filter", compact=True)
        yield TaskOptions(id="task-options")

    def show(self, rows: list[PsRow]) -> None:
        self.rows = rows
        self.border_title = content(f"Tasks ({len(rows)})")
        self._apply(self.query_one("#task-filter", Input).value)

    def _apply(self, term: str) -> None:
        term = term.strip().lower()
        self.shown = [r for r in self.rows
                      if not term or term in r.task.comm.lower()
                      or str(r.task.pid).startswith(term)]
        options = self.query_one(TaskOptions)
        options.clear_options()
        options.add_options(Option(task_prompt(r), id=f"task-{i}")
                            for i, r in enumerate(self.shown))
        if self.rows:
            self.border_title = content(f"Tasks ({len(self.shown)}/{len(self.rows)})"
                                        if term else f"Tasks ({len(self.rows)})")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._apply(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(TaskOptions)
        if self.shown:
            options.highlighted = 0
            self.app.set_focus(options)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self.shown):
            row = self.shown[event.option_index]
            self.post_message(ShowTask(row.task.address, row.task.pid, row.task.comm))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()

    def action_clear(self) -> None:
        self.query_one("#task-filter", Input).value = ""
        self.app.set_focus(self.query_one(TaskOptions))
