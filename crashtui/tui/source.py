"""The source pane: the frame's source (pygments), its line marked and centred; else `dis -l`."""

from __future__ import annotations

import re

from rich.text import Text
from textual.binding import Binding

from crashtui.analysis.source import display_path, lexer_name
from crashtui.tui.lines import TextLines
from crashtui.tui.text import content, lit, safe

_INSN = re.compile(r"^\s*(?:=>\s*)?0x(?P<addr>[0-9a-f]+)\s*<")
_SRCLINE = re.compile(r"^\S.*: \d+\s*$")
_COMPACT = re.compile(r"^\s*(?:=>\s*)?0x[0-9a-f]+\s*<[^>+]*(?:\+(?P<off>\d+))?>:\s*(?P<insn>.*)$")
COMPACT_BELOW = 70  # pane width under which disassembly is shown compactly


def highlight_source(text: str, path: str, mark: int | None) -> list[Text]:
    """Numbered, pygments-highlighted lines (ANSI colours: fine on 16-colour terminals)."""
    code = "\n".join(safe(line) for line in text.replace("\r\n", "\n").split("\n"))
    from rich.syntax import Syntax  # pygments: imported when a file is first shown

    syntax = Syntax("", lexer_name(path), theme="ansi_dark", background_color="default")
    body = syntax.highlight(code)
    lines = body.split("\n", allow_blank=True)
    width = len(str(len(lines)))
    out: list[Text] = []
    for n, line in enumerate(lines, 1):
        gutter = Text(f"{'▶' if n == mark else ' '}{n:>{width}} ",
                      "bold reverse" if n == mark else "dim", end="")
        row = gutter + line
        row.no_wrap = True
        row.end = ""
        out.append(row)
    if out and not out[-1].plain.strip()[width + 1:]:
        out.pop()
    return out


def disassembly_lines(lines: list[str], target: int | None,
                      compact: bool = False) -> tuple[list[Text], int | None]:
    """`dis -l` output styled, and the index of the instruction at target (or just before).

    compact (narrow panes): `+17  call …` instead of the address and symbol, and source-line
    lines as tree-relative paths."""
    out: list[Text] = []
    mark: int | None = None
    best = -1
    for raw in lines:
        m = _INSN.match(raw)
        if m:
            addr = int(m.group("addr"), 16)
            if target is not None and best < addr <= target:
                best, mark = addr, len(out)
            shown = raw
            if compact:
                cm = _COMPACT.match(raw)
                if cm:
                    shown = f"{'+' + (cm.group('off') or '0'):>5}  {cm.group('insn').strip()}"
            out.append(lit(shown))
        elif _SRCLINE.match(raw):
            shown = raw
            if compact:
                file, _, line = raw.rpartition(": ")
                shown = f"{display_path(file)}: {line.strip()}"
            out.append(lit(shown, "cyan italic"))
        else:
            out.append(lit(raw, "dim"))
    for i, t in enumerate(out):
        out[i] = (Text("▶ ", "bold reverse", end="") if i == mark else Text("  ", end="")) + t
    return out, mark


def hint_lines(file: str | None, line: int | None, module: str | None = None,
               debug_hint: str | None = None) -> list[Text]:
    """Where no source was found: say so and how to get it (narrow-friendly).

    With a file:line, the source tree is missing; without one, the line tables are: a
    module's .ko, or (debug_hint, DebugSources.hint()) the kernel's debug vmlinux."""
    if file:
        return [
            lit(f"No source for {display_path(file)}:{line}.", "bold yellow"),
            Text("Point crashtui at the source with", "yellow"),
            Text("  --source DIR  (kernel tree or", "yellow"),
            Text("   linux-source-*.tar.xz) or", "yellow"),
            Text("  CRASHTUI_SOURCE=DIR", "yellow"),
            Text(""),
        ]
    if module:
        return [
            lit(f"No source lines for module {module}:", "bold yellow"),
            Text("load its .ko with --modules DIR", "yellow"),
            Text("or `l` in the Modules tab.", "yellow"),
            Text(""),
        ]
    if debug_hint:  # "no source lines: apt-get install P, --fetch (a, b), or give ..."
        _, _, ways = debug_hint.partition(": ")
        out = [Text("No source lines: the dump alone", "bold yellow"),
               Text("has none. Get them with", "yellow")]
        out += [lit(f"  {w.strip()}", "yellow")
                for w in re.split(r",(?![^()]*\))", ways or debug_hint) if w.strip()]
        return [*out, Text("")]
    return [lit("No source line known here.", "bold yellow"), Text("")]


def hint_subtitle(file: str | None, module: str | None, debug_hint: str | None) -> str:
    """The source pane's subtitle when it shows disassembly: what would bring the source."""
    if file:
        return "no source: --source DIR or CRASHTUI_SOURCE"
    if module:
        return "no .ko: --modules DIR"
    return "no source lines: no debug vmlinux" if debug_hint else "no source line"


class SourceView(TextLines):
    """Shows one frame's source or disassembly; the frame's line is marked and centred."""

    BINDINGS = [
        Binding("full_stop", "centre", "Centre", show=False),
        Binding("escape", "back", "Frames", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mark_line: int | None = None
        self.kind = "empty"  # "source" | "disassembly" | "message" | "loading"
        self.file: str | None = None
        self._dis: tuple[list[Text], list[str], int | None] = ([], [], None)
        self._compact = False

    def show_message(self, title: str, lines: list[Text], subtitle: str = "") -> None:
        self.kind = "message"
        self.border_title = content(title)
        self.border_subtitle = content(subtitle)
        self.mark_line = None
        self.set_lines(lines)

    def show_loading(self, title: str, message: str | list[str]) -> None:
        lines = [message] if isinstance(message, str) else message
        self.show_message(title, [lit(m, "italic") for m in lines], "")
        self.kind = "loading"

    def show_progress(self, message: str) -> None:
        self.border_subtitle = content(message)

    def show_source(self, file: str, lines: list[Text], line: int, origin: str) -> None:
        """Source lines (already highlighted) with `line` marked and centred."""
        self.kind = "source"
        self.file = file
        self.border_title = content(f"{file}:{line}")
        self.border_subtitle = content(origin)
        self.mark_line = line
        self.set_lines(lines, marks={line - 1})
        self._centre_now(line - 1)

    def show_disassembly(self, title: str, head: list[Text], dis: list[str],
                         target: int | None, subtitle: str) -> None:
        """`dis -l` lines under a few head lines, the target instruction marked and centred."""
        self.kind = "disassembly"
        self.border_title = content(title)
        self.border_subtitle = content(subtitle)
        self._dis = (head, dis, target)
        self._render_disassembly()

    def _render_disassembly(self) -> None:
        head, dis, target = self._dis
        self._compact = self.size.width < COMPACT_BELOW
        texts, mark = disassembly_lines(dis, target, self._compact)
        self.mark_line = None if mark is None else mark + len(head)
        self.set_lines([*head, *texts], marks={self.mark_line} if self.mark_line is not None
                       else set())
        if self.mark_line is not None:
            self._centre_now(self.mark_line)

    def on_resize(self) -> None:
        if self.kind == "disassembly" and (self.size.width < COMPACT_BELOW) != self._compact:
            self._render_disassembly()
        elif self.kind in ("source", "disassembly"):
            self.call_after_refresh(self._keep_cursor_in_view)

    def _keep_cursor_in_view(self) -> None:
        """After a resize: the cursor's line (the marked one unless moved) back in the middle
        if the new height left it out of view."""
        top, height = int(self.scroll_offset.y), self.scrollable_content_region.height
        if height > 0 and not top <= self.cursor < top + height:
            self.centre(self.cursor)

    def _centre_now(self, index: int) -> None:
        """Centre at once when laid out (deterministic), else after the first layout."""
        if self.scrollable_content_region.height > 0:
            self.centre(index)
        else:
            self.call_after_refresh(self.centre, index)

    def action_centre(self) -> None:
        if self.mark_line is not None:
            self.centre(self.mark_line - 1 if self.kind == "source" else self.mark_line)

    def action_back(self) -> None:
        self.app.set_focus(self.app.query_one("#frames"))

    def marked_text(self) -> str:
        """The plain text of the marked line (for tests)."""
        if self.mark_line is None:
            return ""
        return self.line_text(self.mark_line - 1 if self.kind == "source" else self.mark_line)
