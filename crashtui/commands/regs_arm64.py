"""The register block of an arm64 exception frame, as crash's arm64_print_exception_frame()."""

from __future__ import annotations

from crashtui.analysis.backtrace import ExceptionFrame


def format_arm64_registers(ef: ExceptionFrame) -> list[str]:
    """PC/LR/SP (kernel mode: with symbols), X29..X0 three a line, PSTATE."""
    r = ef.registers

    def g(name: str) -> int:
        return r.get(name, 0)

    out = []
    if ef.user_mode:
        out.append(f"     PC: {g('pc'):016x}   LR: {g('x30'):016x}   SP: {g('sp'):016x}")
    else:
        where = f"  [{ef.function}+{ef.offset}]" if ef.function else ""
        out += [f"     PC: {g('pc'):016x}{where}", f"     LR: {g('x30'):016x}",
                f"     SP: {g('sp'):016x}  PSTATE: {g('pstate'):08x}"]
    names = [f"x{i}" for i in range(29, -1, -1)]
    for i in range(0, len(names), 3):
        out.append("   " + "  ".join(f"{n.upper():>4}: {g(n):016x}" for n in names[i:i + 3]))
    if ef.user_mode:
        out.append(f"    PSTATE: {g('pstate'):08x}")
    return out
