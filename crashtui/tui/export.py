"""The export dialog (`e`): where to write the Markdown report."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input


class ExportScreen(ModalScreen[str | None]):
    """Asks where to write the Markdown report."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        box = Input(value=self.default, id="export-path")
        box.border_title = "Export report to (Enter: write, Esc: cancel)"
        yield box

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
