"""crash's `bt` text layout for backtraces and saved registers, from the command layer."""

from __future__ import annotations

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame
from crashtui.report.backend import Missing, provider

_REG_ROWS = (("rip", "rsp", "rflags"), ("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"),
             ("rbp", "r8", "r9"), ("r10", "r11", "r12"), ("r13", "r14", "r15"))


def backtrace_lines(bt: Backtrace) -> list[str]:
    """`bt` of one task exactly as crash lays it out (raises Missing without the bt command)."""
    return list(provider("format_backtrace")(bt))


def register_lines(exc: ExceptionFrame) -> list[str]:
    """The pt_regs block as crash prints it under a frame."""
    try:
        return list(provider("format_registers")(exc))
    except Missing:
        pass
    regs = exc.registers
    out = []
    for row in _REG_ROWS:
        cells = [f"{n.upper():>3}: {regs.get(n, 0):0{8 if n == 'rflags' else 16}x}" for n in row]
        out.append("    " + "  ".join(cells))
    out.append(f"    ORIG_RAX: {regs.get('orig_rax', 0):016x}  CS: {regs.get('cs', 0):04x}"
               f"  SS: {regs.get('ss', 0):04x}")
    return out
