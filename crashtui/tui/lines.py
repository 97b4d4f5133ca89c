"""TextLines: a virtual-scrolling list of Text lines with a cursor, marked lines and search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from crashtui.tui.search import ask


class TextLines(ScrollView, can_focus=True):
    """Only the visible lines are rendered, so a 100 000-line log scrolls as fast as 10."""

    COMPONENT_CLASSES = {"text-lines--cursor", "text-lines--mark", "text-lines--match"}
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "goto(0)", "Top", show=False),
        Binding("end,G", "goto(-1)", "Bottom", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
        Binding("y", "copy_line", "Copy line", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class CursorMoved(Message):
        """The cursor moved to another line."""

        def __init__(self, lines: TextLines, index: int) -> None:
            super().__init__()
            self.lines = lines
            self.index = index

    def __init__(self, *, id: str | None = None, classes: str | None = None,
                 show_cursor: bool = True) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Text] = []
        self.marks: set[int] = set()
        self.search_term = ""
        self.show_cursor = show_cursor

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def line_text(self, index: int) -> str:
        return self._lines[index].plain if 0 <= index < len(self._lines) else ""

    def set_lines(self, lines: Iterable[Text], cursor: int = 0,
                  marks: Iterable[int] = ()) -> None:
        """Replace the content."""
        self._lines = list(lines)
        self.marks = set(marks)
        width = max((cell_len(t.plain) for t in self._lines), default=0)
        self.virtual_size = Size(width + 1, len(self._lines))
        self.set_reactive(TextLines.cursor, self._clamp(cursor))
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def _clamp(self, index: int) -> int:
        return max(0, min(index, len(self._lines) - 1)) if self._lines else 0

    def validate_cursor(self, value: int) -> int:
        return self._clamp(value)

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        self.scroll_to_region(Region(int(self.scroll_x), new, 1, 1), animate=False)
        self.post_message(self.CursorMoved(self, new))

    def centre(self, index: int) -> None:
        """Put the cursor on a line and scroll it to the middle of the view."""
        self.set_reactive(TextLines.cursor, self._clamp(index))
        height = self.scrollable_content_region.height or self.size.height or 1
        self.scroll_to(0, max(0, index - height // 2), animate=False, force=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 1)

    def action_goto(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self._lines) - 1

    def action_copy_line(self) -> None:
        """The cursor's line to the terminal's clipboard (OSC 52); text selected with the
        mouse instead, when there is some."""
        selected = self.screen.get_selected_text()
        if selected:
            self.app.copy_to_clipboard(selected)
            self.notify("copied the selection (OSC 52)", timeout=2)
        elif self._lines:
            self.app.copy_to_clipboard(self.line_text(self.cursor))
            self.notify("copied the line (OSC 52)", timeout=2)

    def action_search(self) -> None:
        ask(self, f"find in {self.border_title or 'this pane'}",
            lambda term: self.find(term) is not None)

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def find(self, term: str, forward: bool = True, start: int | None = None) -> int | None:
        """Move the cursor to the next line containing term (case-insensitive); wraps."""
        self.search_term = term
        self.refresh()
        if not term or not self._lines:
            return None
        n = len(self._lines)
        low = term.lower()
        first = self.cursor if start is None else start
        step = 1 if forward else -1
        for k in range(1, n + 1):
            i = (first + step * k) % n
            if low in self._lines[i].plain.lower():
                self.centre(i)
                return i
        return None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        text = self._lines[index].copy()
        text.no_wrap = True
        text.end = ""
        cursor_here = self.show_cursor and index == self.cursor and self.has_focus
        if index in self.marks or cursor_here:
            pad = max(self.virtual_size.width, width) - text.cell_len
            if pad > 0:
                text.append(" " * pad)
        if self.search_term:
            text.highlight_words([self.search_term], self.get_component_rich_style(
                "text-lines--match"), case_sensitive=False)
        if index in self.marks:
            text.stylize(self.get_component_rich_style("text-lines--mark"))
        if cursor_here:
            text.stylize(self.get_component_rich_style("text-lines--cursor"))
        selection = self.text_selection
        span = selection.get_span(index) if selection is not None else None
        if span is not None:  # the mouse selection (Textual's; Ctrl+C or y copies it)
            start, end = span
            text.stylize(self.screen.get_component_rich_style("screen--selection"), start,
                         len(text) if end == -1 else end)
        text.stylize_before(base)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text under a mouse selection (line index and column: apply_offsets')."""
        return selection.extract("\n".join(t.plain for t in self._lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def visible_lines(self) -> Sequence[str]:
        """The plain text of the lines currently in view (for tests)."""
        top = self.scroll_offset.y
        return [t.plain for t in self._lines[top: top + self.size.height]]
