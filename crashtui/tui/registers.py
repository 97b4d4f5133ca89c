"""The Registers tab: the register set of the selected exception frame or CPU, as crash prints it."""

from __future__ import annotations

from rich.text import Text

from crashtui.analysis.backtrace import Backtrace
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
    """Registers of the selected CPU or exception frame."""

    def show(self, bt: Backtrace | None, ref: FrameRef | None) -> None:
        if bt is None:
            self.set_lines([lit("no backtrace selected", "italic")])
            return
        found = registers_for(bt, ref)
        head = Text.assemble(("PID: ", "bold"), f"{bt.pid:<8} ", ("CPU: ", "bold"),
                             f"{bt.cpu:<4} ", ("COMMAND: ", "bold"), lit(f'"{bt.command}"'))
        if found is None:
            self.set_lines([head, lit("no saved register set in this backtrace", "italic")])
            return
        title, regs = found
        self.set_lines([head, lit(title, "dim"), *format_registers(regs)])
