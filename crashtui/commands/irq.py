"""irq [-u] [IRQ ...], irq -a, irq -b and irq -s: the IRQ descriptor table, affinities,
softirq vectors and per-CPU interrupt counts as crash prints them (kernel.c cmd_irq(),
generic_dump_irq(), generic_get_irq_affinity(), generic_show_interrupts(); the data is
crashtui.kernel.irq's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.irq import Irq, IrqDescRow


def irq_line(irq: Irq, cpus: list[int]) -> str:
    counts = "".join(f"{irq.counts.get(c, 0):10d} " for c in cpus)
    chip = ""
    if irq.chip is not None:
        chip = f"{irq.chip:>8s}" + (f"-{irq.flow:<8s}" if irq.flow is not None else "")
    return f"{irq.irq:3d}: {counts}{chip} {','.join(irq.actions)}"


def _center(text: str, width: int) -> str:
    """crash's mkstring(CENTER|LJUST): an odd leftover space goes right."""
    extra = max(width - len(text), 0)
    return " " * (extra // 2) + text + " " * (extra - extra // 2)


IRQ_HEADER = " IRQ   IRQ_DESC/_DATA      IRQACTION      NAME"
UNUSED = _center("(unused)", 16)


def irq_table_lines(rows: list[IrqDescRow], only_used: bool) -> list[str]:
    """crash's `irq` table: each IRQ's descriptor and every handler on its chain."""
    out = [IRQ_HEADER]
    for r in rows:
        if only_used and not r.desc:
            continue
        head = f" {_center(str(r.irq), 3)}  "
        if not r.desc:
            out.append(f"{head}{UNUSED}  {UNUSED}  ")
            continue
        desc = f"{r.desc:x}"
        if not r.actions:
            out.append(f"{head}{_center(desc, 16)}  {UNUSED}  ")
            continue
        for i, (action, name) in enumerate(r.actions):
            quoted = f'"{name}"' if name is not None else ""
            if i == 0:
                out.append(f"{head}{_center(desc, 16)}  {_center(f'{action:x}', 16)}  "
                           f"{quoted}")
            else:
                out.append(f"{' ' * len(head)}{' ' * 16}  {_center(f'{action:x}', 16)}  "
                           f"{quoted}")
    return out


def cpu_ranges(cpus: list[int]) -> str:
    """0-3,5: a CPU list as ranges."""
    parts: list[str] = []
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def irq_affinity_lines(rows: list[IrqDescRow]) -> list[str]:
    """crash's `irq -a`: IRQs with a handler, their names and affinity CPU lists."""
    out = ["IRQ NAME                 AFFINITY"]
    for r in rows:
        if not r.actions:
            continue
        names = ",".join(n for _a, n in r.actions if n is not None)
        out.append(f"{r.irq:3d} {names:<20s} "
                   f"{cpu_ranges(r.affinity) if r.affinity is not None else ''}")
    return out


def softirq_lines(session: Session) -> list[str]:
    """crash's `irq -b`: softirq_vec[]'s handlers."""
    from crashtui.kernel.irq import softirq_actions

    out = ["SOFTIRQ_VEC " + _center("ACTION", 16)]
    for vec, action in softirq_actions(session.kernel):
        if not action:
            continue
        found = session.kernel.symbolize(action)
        name = f"  <{found[0].name}>" if found is not None and not found[1] else ""
        out.append(f"{_center(f'[{vec}]', 11)} {action:16x}{name}")
    return out


def idt_lines(session: Session) -> list[str]:
    """crash's `irq -d` (x86-64): each IDT vector's handler as symbol+offset."""
    from crashtui.kernel.irq import idt_handlers

    out = []
    for vec, addr in idt_handlers(session.kernel):
        found = session.kernel.symbolize(addr)
        if found is None:
            name = f"{addr:x}"
        else:
            name = found[0].name + (f"+{found[1]}" if found[1] else "")
        out.append(f"{f'[{vec}]':>5} {name}")
    return out


def _irq_other(session: Session, args: list[str]) -> list[str]:
    """irq, irq -u, irq IRQ..., irq -a, irq -b."""
    from crashtui.kernel.irq import irq_desc_table

    flags = [a for a in args if a.startswith("-")]
    numbers = [a for a in args if not a.startswith("-")]
    if len(flags) > 1 or any(f not in ("-a", "-b", "-d", "-u") for f in flags) or \
            (flags and flags[0] != "-u" and numbers):
        raise CommandError("irq: usage: irq [-u] [IRQ ...] | -a | -b | -d | "
                           "-s [-c CPU[,CPU...]]")
    if flags == ["-b"]:
        return softirq_lines(session)
    if flags == ["-d"]:
        return idt_lines(session)
    wanted = None
    if numbers:
        try:
            wanted = [int(n, 0) for n in numbers]
        except ValueError:
            raise CommandError(f"irq: invalid IRQ value: {numbers[0]}") from None
    table = irq_desc_table(session.kernel)
    bad: list[str] = []
    rows = table.rows
    if wanted is not None:
        by_irq = {r.irq: r for r in table.rows}
        rows = [by_irq[n] for n in wanted if n in by_irq]
        bad = [f"irq: invalid IRQ value: {n}" for n in wanted if n not in by_irq]
    if flags == ["-a"]:
        out = irq_affinity_lines(rows)
    else:
        out = irq_table_lines(rows, flags == ["-u"])
    return out + bad + [f"irq: {e}" for e in table.errors]


@command("irq", "interrupts: the IRQ descriptor table, -a affinity, -b softirqs, -d the IDT, "
         "-s counts per CPU", "irq [-u] [IRQ ...] | -a | -b | -d | -s [-c CPU[,CPU...]]")
def cmd_irq(session: Session, args: list[str]) -> list[str]:
    from crashtui.kernel.irq import interrupts

    if "-s" not in args:
        try:
            return _irq_other(session, args)
        except CommandError:
            raise
        except CrashtuiError as exc:
            raise CommandError(f"irq: {exc}") from None

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
