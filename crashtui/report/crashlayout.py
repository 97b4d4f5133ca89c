"""crash's `bt` text layout for backtraces and saved registers (used by the report)."""

from __future__ import annotations

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame
from crashtui.report.backend import Missing, provider

_REG_ROWS = (("rip", "rsp", "rflags"), ("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"),
             ("rbp", "r8", "r9"), ("r10", "r11", "r12"), ("r13", "r14", "r15"))


def header_line(bt: Backtrace) -> str:
    """`PID: 1        TASK: ffff8af3c1204180  CPU: 3    COMMAND: "init"`."""
    return f'PID: {bt.pid:<8} TASK: {bt.task:x}  CPU: {bt.cpu:<4} COMMAND: "{bt.command}"'


def register_lines(exc: ExceptionFrame, indent: str = "    ") -> list[str]:
    """The pt_regs block as crash prints it under a frame."""
    regs = exc.registers
    out = []
    for row in _REG_ROWS:
        cells = []
        for name in row:
            width = 8 if name == "rflags" else 16
            cells.append(f"{name.upper():>3}: {regs.get(name, 0):0{width}x}")
        out.append(indent + "  ".join(cells))
    out.append(f"{indent}ORIG_RAX: {regs.get('orig_rax', 0):016x}  CS: {regs.get('cs', 0):04x}"
               f"  SS: {regs.get('ss', 0):04x}")
    return out


def backtrace_lines(bt: Backtrace) -> list[str]:
    """The backend's crash-layout formatter, or this module's own when it is not there yet."""
    try:
        fmt = provider("format_backtrace")
    except Missing:
        return fallback_lines(bt)
    return list(fmt(bt))


def fallback_lines(bt: Backtrace) -> list[str]:
    """`bt` for one task in crash's layout (frames, stack markers, exception frames)."""
    out = [header_line(bt)]
    for fr in bt.frames:
        if fr.stack_name:
            out.append(fr.stack_name if fr.stack_name.startswith("---")
                       else f"--- <{fr.stack_name}> ---")
        name = fr.function or f"{fr.pc:x}"
        mod = f" [{fr.module}]" if fr.module else ""
        out.append(f"{'#' + str(fr.index):>3} [{fr.sp:x}] {name} at {fr.pc:x}{mod}")
        if fr.exception is not None:
            exc = fr.exception
            if not exc.user_mode:
                out.append(f"    [exception RIP: {_exception_symbol(bt, exc)}]")
            out += register_lines(exc)
    if bt.error:
        out.append(f"bt: {bt.error}")
    return out


def _exception_symbol(bt: Backtrace, exc: ExceptionFrame) -> str:
    for fr in bt.frames:
        if fr.pc == exc.rip and fr.function:
            return f"{fr.function}+{fr.offset}" if fr.offset else fr.function
    return f"{exc.rip:x}"
