"""The Registers tab: the registers of the selected frame, each value annotated (what it points
at), and crash's register block for an exception frame or the CPU's NT_PRSTATUS."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from crashtui.analysis.backtrace import Backtrace
from crashtui.analysis.regnotes import FrameRegisters
from crashtui.tui.frameref import FrameRef
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit

CRASH_ROWS = (("rip", "rsp", "rflags"), ("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"),
              ("rbp", "r8", "r9"), ("r10", "r11", "r12"), ("r13", "r14", "r15"),
              ("orig_rax", "cs", "ss"))


def format_registers(regs: dict[str, int]) -> list[Text]:
    """crash's exception-frame register block."""
    out: list[Text] = []
    for row in CRASH_ROWS:
        t = Text("    ", end="")
        first = True
        for name in row:
            if name not in regs:
                continue
            if not first:
                t.append("  ")
            first = False
            width = 8 if name == "rflags" else 4 if name in ("cs", "ss") else 16
            label = name.upper() if row[0] == "orig_rax" else f"{name.upper():>3}"
            t.append(f"{label}: ", "bold")
            t.append(f"{regs[name]:0{width}x}")
        if not first:
            out.append(t)
    extra = [n for n in regs if all(n not in r for r in CRASH_ROWS)]
    for name in extra:
        out.append(Text.assemble("    ", (f"{name.upper()}: ", "bold"), f"{regs[name]:016x}"))
    return out


def registers_for(bt: Backtrace, ref: FrameRef | None) -> tuple[str, dict[str, int]] | None:
    """The register set to show: the selected exception frame's, else the CPU's."""
    if ref is not None and ref.exception is not None:
        exc = ref.exception
        where = "user-mode entry" if exc.user_mode else "exception frame"
        return f"{where} at {exc.address:016x}" + (f" ({exc.kind})" if exc.kind else ""), \
            exc.registers
    if bt.start is not None and bt.start.registers:
        return f"CPU {bt.cpu}: its registers when it stopped (NT_PRSTATUS)", bt.start.registers
    for fr in bt.frames:
        if fr.exception is not None:
            exc = fr.exception
            return (f"first exception frame (after #{fr.index} {fr.function or '?'})",
                    exc.registers)
    return None


class RegistersView(TextLines):
    """Registers of the selected frame: `y` copies the value under the cursor, `Y` them all."""

    BINDINGS = [
        Binding("Y", "copy_all", "Copy all", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None,
                 show_cursor: bool = True) -> None:
        super().__init__(id=id, classes=classes, show_cursor=show_cursor)
        self.values: dict[int, int] = {}  # line -> the register value it shows

    def _head(self, bt: Backtrace) -> Text:
        return Text.assemble(("PID: ", "bold"), f"{bt.pid:<8} ", ("CPU: ", "bold"),
                             f"{bt.cpu:<4} ", ("COMMAND: ", "bold"), lit(f'"{bt.command}"'))

    def show(self, bt: Backtrace | None, ref: FrameRef | None) -> None:
        """What is known without reading the dump: crash's block of the exception frame or
        CPU registers (the annotated list follows with show_frame)."""
        self.values = {}
        if bt is None:
            self.border_title = "Registers"
            self.set_lines([lit("no backtrace selected", "italic")])
            return
        found = registers_for(bt, ref)
        self.border_title = "Registers" if ref is None else f"Registers of {_which(ref)}"
        if found is None:
            self.set_lines([self._head(bt), lit("no saved register set in this backtrace",
                                                "italic")])
            return
        title, regs = found
        if ref is not None:
            title = f"{_which(ref)} · {title}"
        self.set_lines([self._head(bt), lit(title, "dim"), *format_registers(regs)])

    def show_frame(self, bt: Backtrace, ref: FrameRef | None, data: FrameRegisters) -> None:
        """The frame's known registers, one a line with what each value is, then the unknown
        ones by name (never another frame's values)."""
        lines: list[Text] = [self._head(bt)]
        found = registers_for(bt, ref) if ref is None or ref.exception is not None else None
        width = self._wrap_width()
        block = 0
        if found is not None:  # crash's block first: what a crash user knows
            title = found[0] if ref is None else \
                f"{data.title} · {found[0].removeprefix('exception ')}"
            lines += [lit(t, "dim") for t in wrap_words(title, width, " · ")]
            block = len(lines)
            lines += [*format_registers(found[1]), Text("")]
        self.border_title = f"Registers of {data.title}"
        lines.append(Text.assemble((data.title, "bold"), "  ", (data.origin, "dim")))
        self.values = {}
        first = len(lines)
        for note in data.known:
            self.values[len(lines)] = note.value
            digits = 16 if note.name not in ("cs", "ss") else 4
            lines.append(Text.assemble(
                (f"{note.name.upper():>6} ", "bold"), f"{note.value:0{digits}x}".ljust(16),
                ("  " + note.note if note.note else "", "cyan")))
        if data.unknown:  # wrapped: at 80 columns the list is wider than the tab
            lines += [lit(t, "italic") for t in wrap_words(
                "not known in this frame: " + " ".join(n.upper() for n in data.unknown),
                width, " ")]
        # the cursor on the first line in view: crash's block if shown, else the first register
        self.set_lines(lines, cursor=block if found is not None else first)

    def _wrap_width(self) -> int:
        """The columns a line may take before it is wrapped (80 columns before layout)."""
        width = self.scrollable_content_region.width
        return max(40, width - 1) if width else 78

    def action_copy_line(self) -> None:
        """The register value under the cursor (16 hex digits) to the clipboard (OSC 52);
        on another line, a selection or the line itself."""
        value = self.values.get(self.cursor)
        if value is None or self.screen.get_selected_text():
            super().action_copy_line()
            return
        self.app.copy_to_clipboard(f"{value:016x}")
        self.notify(f"copied {value:016x} (OSC 52)", timeout=2)

    def action_copy_all(self) -> None:
        """Every line of the tab to the clipboard (OSC 52)."""
        if self.line_count:
            self.app.copy_to_clipboard("\n".join(self.line_text(i).rstrip()
                                                 for i in range(self.line_count)) + "\n")
            self.notify("copied the registers (OSC 52)", timeout=2)


def wrap_words(text: str, width: int, sep: str) -> list[str]:
    """`text` cut at `sep` into lines of at most `width` columns (continuations indented)."""
    parts = text.split(sep)
    out = [parts[0]]
    for part in parts[1:]:
        if len(out[-1]) + len(sep) + len(part) <= width:
            out[-1] += sep + part
        else:
            out.append("    " + part)
    return out


def _which(ref: FrameRef) -> str:
    if ref.exception is not None:
        return f"exception {ref.exception.pc_name} {ref.exception.rip_symbol}"
    return f"#{ref.frame.index} {ref.frame.symbol}" if ref.frame is not None else "?"
