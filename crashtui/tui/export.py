"""The export dialog (`e`): where to write the Markdown report."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input


class ExportScreen(ModalScreen[str | None]):
    """Asks where to write the Markdown report."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    TITLE = "Export report to (Enter: write, Esc: cancel)"

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default
        self.confirmed = ""  # an existing file the user chose to overwrite (Enter twice)

    def compose(self) -> ComposeResult:
        box = Input(value=self.default, id="export-path")
        box.border_title = self.TITLE
        yield box

    def on_input_changed(self, event: Input.Changed) -> None:
        event.input.border_title = self.TITLE

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """A path that exists is written only on a second Enter: the dialog says so first."""
        path = event.value.strip()
        if not path:
            self.dismiss(None)
            return
        target = Path(path).expanduser()
        if target.is_dir():
            event.input.border_title = f"{path} is a directory: type a file name"
            return
        if target.exists() and self.confirmed != path:
            self.confirmed = path
            event.input.border_title = "That file exists: Enter again overwrites it, Esc cancels"
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
