"""The register block of an arm64 exception frame, as crash's arm64_print_exception_frame()."""

from __future__ import annotations

from crashtui.analysis.backtrace import ExceptionFrame


def _named(ef: ExceptionFrame, which: str) -> str:
    """crash's `[name+offset]` (decimal) after PC or LR, or its unknown-address text."""
    if which == "pc":
        name = ef.rip_symbol if ef.function is not None else None
    else:
        name = ef.lr_symbol
    return f"[{name}]" if name else "[unknown or invalid address]"


def format_arm64_registers(ef: ExceptionFrame) -> list[str]:
    """PC/LR/SP (kernel mode: with symbols), X29..X0 three a line, then (user mode)
    ORIG_X0, SYSCALLNO and PSTATE."""
    r = ef.registers

    def g(name: str) -> int:
        return r.get(name, 0)

    out = []
    if ef.user_mode:
        out.append(f"     PC: {g('pc'):016x}   LR: {g('x30'):016x}   SP: {g('sp'):016x}")
    else:
        out += [f"     PC: {g('pc'):016x}  {_named(ef, 'pc')}",
                f"     LR: {g('x30'):016x}  {_named(ef, 'lr')}",
                f"     SP: {g('sp'):016x}  PSTATE: {g('pstate'):08x}"]
    for top in range(29, -1, -3):
        out.append("    " + "  ".join(f"{'' if i >= 10 else ' '}X{i}: {g(f'x{i}'):016x}"
                                      for i in range(top, max(top - 3, -1), -1)))
    if ef.user_mode:
        out.append(f"    ORIG_X0: {g('orig_x0'):016x}  SYSCALLNO: {g('syscallno'):x}  "
                   f"PSTATE: {g('pstate'):08x}")
    return out
