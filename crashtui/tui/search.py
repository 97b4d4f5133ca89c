"""`/` outside the Log tab: a one-line search prompt, and finding a term in a list's rows."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, OptionList


class SearchScreen(ModalScreen[str | None]):
    """Asks for a search term (Enter: find, Esc: cancel)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        box = Input(id="search-term")
        box.border_title = f"{self.title_text} (Enter: find, Esc: cancel)"
        yield box

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def ask(widget: Widget, title: str, found: Callable[[str], bool]) -> None:
    """Prompt for a term; `found(term)` moves to it; a toast says when nothing matched."""

    def done(term: str | None) -> None:
        if term and not found(term):
            widget.notify(f"not found: {term}", severity="warning", markup=False)

    widget.app.push_screen(SearchScreen(title), done)


def next_match(texts: list[str], term: str, current: int | None, forward: bool = True) -> int | None:
    """The index of the next text (after `current`, wrapping) containing term, any case."""
    if not term or not texts:
        return None
    low, n = term.lower(), len(texts)
    first = -1 if current is None else current
    step = 1 if forward else -1
    if current is None and not forward:
        first = 0
    for k in range(1, n + 1):
        i = (first + step * k) % n
        if low in texts[i].lower():
            return i
    return None


class SearchableOptions(OptionList):
    """An OptionList with j/k, `/` (find a row by its text) and n/N (the next/previous)."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
    ]
    search_title = "find"
    search_term = ""

    def on_resize(self) -> None:
        """The highlighted row stays on screen when the pane shrinks (OptionList keeps its
        scroll offset: a frame selected at 120x40 was out of view at 80x24)."""
        self.call_after_refresh(self._highlight_in_view)

    def _highlight_in_view(self) -> None:
        if self.highlighted is not None:
            self.scroll_to_highlight()

    def action_search(self) -> None:
        ask(self, self.search_title, self.find)

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def find(self, term: str, forward: bool = True) -> bool:
        """Highlight the next enabled row whose text contains term."""
        self.search_term = term
        texts = ["" if o.disabled else getattr(o.prompt, "plain", str(o.prompt))
                 for o in self.options]
        i = next_match(texts, term, self.highlighted, forward)
        if i is None:
            return False
        self.highlighted = i
        return True
