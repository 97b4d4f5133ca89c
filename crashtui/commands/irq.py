"""irq -s: per-CPU interrupt counts as crash prints them (kernel.c cmd_irq() and
generic_show_interrupts(); the data is crashtui.kernel.irq's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.irq import Irq


def irq_line(irq: Irq, cpus: list[int]) -> str:
    counts = "".join(f"{irq.counts.get(c, 0):10d} " for c in cpus)
    chip = ""
    if irq.chip is not None:
        chip = f"{irq.chip:>8s}" + (f"-{irq.flow:<8s}" if irq.flow is not None else "")
    return f"{irq.irq:3d}: {counts}{chip} {','.join(irq.actions)}"


@command("irq", "interrupts: -s the count of each IRQ on each CPU", "irq -s [-c CPU[,CPU...]]")
def cmd_irq(session: Session, args: list[str]) -> list[str]:
    from crashtui.kernel.irq import interrupts

    chosen: set[int] | None = None
    rest = list(args)
    if "-c" in rest:
        i = rest.index("-c")
        if i + 1 >= len(rest):
            raise CommandError("irq: -c needs a CPU list")
        try:
            chosen = {int(c) for c in rest[i + 1].split(",")}
        except ValueError:
            raise CommandError(f"irq: invalid CPU list: {rest[i + 1]}") from None
        del rest[i:i + 2]
    if rest != ["-s"]:
        raise CommandError("irq: only -s (with -c CPU,...) is supported")
    try:
        table = interrupts(session.kernel)
    except CrashtuiError as exc:
        raise CommandError(f"irq: {exc}") from None
    cpus = [c for c in table.cpus if chosen is None or c in chosen]
    out = ["     " + "".join(f"{f'CPU{c}':>10s} " for c in cpus)]
    out += [irq_line(i, cpus) for i in table.irqs if i.irq < table.nr_irqs]
    return out + [f"irq: {e}" for e in table.errors]
