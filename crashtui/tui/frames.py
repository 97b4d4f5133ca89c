"""The frames pane: one row per frame; exception frames stand out, with their registers."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from crashtui.analysis.backtrace import REGISTER_ORDER, Backtrace
from crashtui.analysis.culprit import Culprit, locate
from crashtui.commands.bt import format_backtrace, format_exception, format_frame
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frameref import FrameRef
from crashtui.tui.messages import FrameSelected
from crashtui.tui.search import SearchableOptions
from crashtui.tui.text import append_module_where, content, lit


@dataclass
class FrameRow:
    """What one row of the frames pane shows (computed in a worker)."""

    kind: str  # "frame" | "exception" | "marker" | "error"
    ref: FrameRef | None = None
    symbol: str = ""
    where: str = ""  # "sysrq.c:155"
    module: str | None = None
    registers: dict[str, int] = field(default_factory=dict)
    user_mode: bool = False
    label: str = ""


def short_location(loc: object) -> str:
    file = getattr(loc, "file", None)
    line = getattr(loc, "line", None)
    return f"{posixpath.basename(file)}:{line}" if file else ""


def build_rows(backend: SessionFacade, bt: Backtrace, lines: bool = True) -> list[FrameRow]:
    """The rows of a backtrace, with exception RIPs symbolized and located (slow: a worker);
    lines=False leaves out file:line (the first screen's rows: the DWARF line tables are
    read after it is drawn)."""
    rows: list[FrameRow] = []
    for fr in bt.frames:
        if fr.stack_name:
            rows.append(FrameRow("marker", label=fr.stack_name))
        ref = FrameRef(bt, fr)
        loc: object = backend.frame_source(fr) if lines else None
        if loc is None and fr.module and lines:  # a .ko loaded after the backtrace was built
            try:
                loc = backend.location(ref)
            except Exception:  # noqa: BLE001 - a location is decoration
                loc = None
        rows.append(FrameRow("frame", ref, fr.symbol, short_location(loc) if loc else "",
                             fr.module))
        exc = fr.exception
        if exc is not None:
            xref = FrameRef(bt, fr, exc)
            sym = "" if exc.user_mode else (backend.symbolize(exc.rip) or f"{exc.rip:#x}")
            where = ""
            if not exc.user_mode and lines:
                try:
                    xloc = backend.location(xref)
                except Exception:  # noqa: BLE001 - a location is decoration
                    xloc = None
                where = short_location(xloc) if xloc else ""
            rows.append(FrameRow("exception", xref, sym, where, None, dict(exc.registers),
                                 exc.user_mode, exc.kind))
    if bt.error:
        rows.append(FrameRow("error", label=bt.error))
    return rows


def culprit_index(rows: list[FrameRow], bt: Backtrace | None = None,
                  culprit: Culprit | None = None) -> int:
    """The row to land on: the triage's culprit when `bt` is its task's backtrace, else the
    same rule in this backtrace (crashtui.analysis.culprit.locate: the first kernel-mode
    exception RIP or the first frame outside the machinery)."""
    want: tuple[int, bool] | None = None
    if culprit is not None and bt is not None and culprit.task == bt.task and \
            culprit.frame is not None:
        want = (culprit.frame, culprit.exception)
    elif bt is not None:
        at = locate(bt, skip_waits=not bt.active)
        if at is not None:
            want = (at.frame.index, at.exception)
    if want is not None:
        for i, row in enumerate(rows):
            ref = row.ref
            if ref is None or ref.frame is None or ref.frame.inline or ref.frame.index != want[0]:
                continue
            if (row.kind == "exception") == want[1]:
                return i
    return next((i for i, r in enumerate(rows) if r.ref is not None), 0)


def register_lines(regs: dict[str, int], per_line: int) -> list[Text]:
    """Registers in crash's order, `per_line` to a line."""
    names = [n for n in REGISTER_ORDER if n in regs] + [n for n in regs if n not in REGISTER_ORDER]
    lines: list[Text] = []
    for i in range(0, len(names), per_line):
        t = Text("     ", end="")
        for n in names[i: i + per_line]:
            width = 4 if n in ("cs", "ss") else 16
            value = f"{regs[n]:0{width}x}" if n not in ("rflags",) else f"{regs[n]:08x}"
            t.append(f"{n.upper():>3} ", "bold")
            t.append(value + "  ")
        lines.append(t)
    return lines


def registers_per_line(width: int) -> int:
    """How many registers an exception row puts on one line at a pane width."""
    return max(1, (width - 5) // 22)


def row_layout(width: int) -> tuple[bool, int]:
    """What of an exception row changes with the pane width: all registers (else four),
    and how many to a line."""
    return width >= 60, registers_per_line(width)


def row_prompt(row: FrameRow, width: int) -> Text:
    """The Text of one row at a pane width."""
    if row.kind == "marker":
        return lit(row.label, "dim italic")
    if row.kind == "error":
        return Text.assemble(("‼ ", "bold red"), lit(row.label, "red"))
    if row.kind == "frame":
        assert row.ref is not None and row.ref.frame is not None
        fr = row.ref.frame
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(f"#{fr.index:<2} ", "dim")
        text.append_text(lit(row.symbol, "bold" if fr.reliable else "italic"))
        if not fr.reliable:
            text.append(" ?", "yellow")
        append_module_where(text, row.module, row.where)
        return text
    head = Text(end="")
    head.append("⚡ ", "bold yellow")
    if row.user_mode:
        head.append("user-mode registers", "bold yellow")
        if row.label:
            head.append(f" ({row.label})", "yellow")
    else:
        pc = "PC" if "pc" in row.registers and "rip" not in row.registers else "RIP"
        head.append(f"exception {pc} ", "bold yellow")
        head.append_text(lit(row.symbol, "bold reverse"))
        if row.where:
            head.append("  ")
            head.append_text(lit(row.where, "cyan"))
    regs = row.registers
    per_line = registers_per_line(width)
    if width >= 60:
        body = register_lines(regs, per_line)
    else:
        keep = {k: v for k, v in regs.items() if k in ("rip", "rsp", "rax", "rdi")}
        body = register_lines(keep, per_line) + [Text("     (all: Registers tab)", "dim")]
    return Text("\n", end="").join([head, *body])


class FramesView(SearchableOptions):
    """The frames of the selected CPU or task; moving onto one shows its source."""

    search_title = "find a frame (function, file, module)"
    BINDINGS = [
        Binding("enter", "select", "Source", show=True),
        Binding("r", "registers", "Registers", show=False),
        Binding("y", "copy_frame", "Copy", show=False),
        Binding("Y", "copy_backtrace", "Copy bt", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.backtrace: Backtrace | None = None
        self.rows: list[FrameRow] = []
        self._width = 0
        self.culprit: Culprit | None = None  # the triage's: where its task's backtrace lands

    def show(self, bt: Backtrace, rows: list[FrameRow], select: int | None = None) -> None:
        """Show a backtrace, landing on `select` (default: the culprit frame)."""
        self.backtrace = bt
        self.rows = rows
        # the PID first: a narrow pane cuts the title's end (`PID 12…` read as PID 12)
        self.border_title = content(f"Backtrace: PID {bt.pid} · {bt.command} · CPU {bt.cpu}"
                                    if bt.active or bt.panic else
                                    f"Backtrace: PID {bt.pid} · {bt.command}")
        self._fill(culprit_index(rows, bt, self.culprit) if select is None else select)

    def update_rows(self, rows: list[FrameRow]) -> None:
        """The same backtrace's rows with more filled in (file:line): redrawn in place, the
        highlighted row kept (no new FrameSelected)."""
        if self.backtrace is None:
            return
        if [r.kind for r in rows] != [r.kind for r in self.rows]:
            self.show(self.backtrace, rows, self.highlighted)
            return
        self.rows = rows
        for i, r in enumerate(rows):
            self.replace_option_prompt_at_index(i, row_prompt(r, self._width))

    def show_message(self, message: str) -> None:
        self.backtrace = None
        self.rows = []
        self.clear_options()
        self.add_option(Option(lit(message, "italic"), disabled=True))

    def _fill(self, highlight: int | None) -> None:
        self._width = self.scrollable_content_region.width or 80
        self.clear_options()
        self.add_options(Option(row_prompt(r, self._width), id=f"row-{i}",
                                disabled=r.ref is None) for i, r in enumerate(self.rows))
        if highlight is not None and self.rows:
            self.highlighted = highlight

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        # the rows may be filled before the first layout (width 0: drawn for 80 columns)
        if self.rows and width and row_layout(width) != row_layout(self._width):
            self._fill(self.highlighted)

    @property
    def current(self) -> FrameRef | None:
        if self.highlighted is None or self.highlighted >= len(self.rows):
            return None
        return self.rows[self.highlighted].ref

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index < len(self.rows):
            ref = self.rows[event.option_index].ref
            if ref is not None:
                self.post_message(FrameSelected(ref))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.app.set_focus(self.app.query_one("#source"))

    def copy(self, lines: list[str], what: str) -> None:
        """To the terminal's clipboard with OSC 52 (over SSH and tmux too; tmux needs
        `set -g set-clipboard on`)."""
        self.app.copy_to_clipboard("\n".join(lines) + "\n")
        self.notify(f"copied {what} (OSC 52)", timeout=2)

    def action_copy_frame(self) -> None:
        """The selected frame as crash's `bt -l` prints it (an exception: its registers)."""
        ref = self.current
        if ref is None:
            return
        if ref.exception is not None:
            self.copy(format_exception(ref.exception, with_lines=True), "the exception frame")
            return
        if ref.frame is None:
            return
        arch = self.backtrace.arch if self.backtrace is not None else "x86_64"
        lines = [format_frame(ref.frame, arch)]
        src = ref.frame.source
        if src is not None:
            lines.append(f"    {src.file}: {src.line}")
        self.copy(lines, f"frame #{ref.frame.index}")

    def action_copy_backtrace(self) -> None:
        """The whole backtrace as crash's `bt -l` prints it."""
        if self.backtrace is not None:
            self.copy(format_backtrace(self.backtrace, with_lines=True),
                      f"the backtrace of PID {self.backtrace.pid}")

    def action_registers(self) -> None:
        self.app.select_tab("registers")  # type: ignore[attr-defined]
