"""Interrupt descriptors (kernel/irq/irqdesc.c): per IRQ its chip, flow name, handlers'
names and per-CPU counts, found as crash's get_irq_desc_addr() finds them.

Where the descriptors are is read from the symbols the kernel has: the static irq_desc[]
(!CONFIG_SPARSE_IRQ), irq_desc_tree (a radix tree, i.e. an XArray, up to 6.4) or
sparse_irqs (a maple tree, 6.5+, each entry's irq from irq_desc.irq_data.irq).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_IRQS = 1 << 16
MAX_ACTIONS = 256  # handlers sharing one line


class IrqLayoutError(KernelReadError):
    """Neither irq_desc[], irq_desc_tree nor sparse_irqs is in this kernel."""


@dataclass(frozen=True)
class Irq:
    """One IRQ with at least one handler (irq_desc.action set)."""

    irq: int
    desc: int
    chip: str | None  # irq_chip.name (None: no chip, or unreadable)
    flow: str | None  # irq_desc.name: "edge", "fasteoi", ...
    actions: list[str]  # irqaction.name of each handler, in chain order
    counts: dict[int, int]  # CPU -> kstat_irqs count


@dataclass
class IrqTable:
    nr_irqs: int
    cpus: list[int]  # the CPUs counted (present)
    irqs: list[Irq]
    errors: list[str] = field(default_factory=list)


def irq_descs(kernel: Kernel, errors: list[str]) -> dict[int, int]:
    """irq number -> irq_desc address of every allocated descriptor."""
    nr = nr_irqs(kernel)
    static = kernel.symbol_or_none("irq_desc")
    if static is not None:
        size = kernel.sizeof("struct irq_desc")
        return {i: static + i * size for i in range(nr)}
    tree = kernel.symbol_or_none("irq_desc_tree")
    if tree is not None:
        from crashtui.kernel.pid import xarray_entries

        head = tree + kernel.offsetof("xarray", "xa_head")
        return {i: d for i, d in xarray_entries(kernel, head, errors, "irq_desc_tree")
                if i < nr}
    tree = kernel.symbol_or_none("sparse_irqs")
    if tree is not None:
        from crashtui.kernel.vm import maple_entries

        o_irq = kernel.offsetof("irq_desc", "irq_data.irq")
        out = {}
        for d in maple_entries(kernel, tree, limit=MAX_IRQS):
            try:
                out[kernel.read_u32(d + o_irq)] = d
            except CrashtuiError as exc:
                errors.append(f"irq_desc {d:x}: {exc}")
        return out
    raise IrqLayoutError("no irq_desc, irq_desc_tree or sparse_irqs symbol")


def nr_irqs(kernel: Kernel) -> int:
    """The static irq_desc[]'s length, else the nr_irqs variable (crash's machdep->nr_irqs)."""
    sym = kernel.symbols.lookup("irq_desc")
    if sym is not None and sym.size:
        return min(sym.size // kernel.sizeof("struct irq_desc"), MAX_IRQS)
    # 7.2 renamed the variable total_nr_irqs (commit b99dc723b12e)
    var = kernel.symbol_or_none("nr_irqs") or kernel.symbol_or_none("total_nr_irqs")
    if var is None:
        raise IrqLayoutError("neither nr_irqs nor total_nr_irqs is a symbol")
    return min(kernel.read_u32(var), MAX_IRQS)


def _string(kernel: Kernel, addr: int) -> str | None:
    if not addr:
        return None
    try:
        return kernel.read_cstr(addr, 64)
    except CrashtuiError:
        return None


def interrupts(kernel: Kernel) -> IrqTable:
    """Every IRQ below nr_irqs with a handler, and its counts on each present CPU (crash
    counts CPUs 0 .. kt->cpus - 1, also one a panic's stop IPI took offline, as arm64's)."""
    errors: list[str] = []
    descs = irq_descs(kernel, errors)
    mask = next((m for m in ("__cpu_present_mask", "__cpu_online_mask")
                 if kernel.has_symbol(m)), None)
    cpus = kernel.cpumask(mask) if mask is not None else list(range(kernel.nr_cpu_ids))
    off = kernel.offsetof
    o_action = off("irq_desc", "action")
    o_kstat = off("irq_desc", "kstat_irqs")
    o_chip = off("irq_desc", "irq_data.chip")
    o_flow = off("irq_desc", "name")
    o_chip_name = off("irq_chip", "name")
    o_act_name, o_act_next = off("irqaction", "name"), off("irqaction", "next")
    out = []
    for irq in sorted(descs):
        desc = descs[irq]
        try:
            action = kernel.read_u64(desc + o_action)
            if not action:
                continue
            kstat = kernel.read_u64(desc + o_kstat)
            counts = {c: kernel.read_u32(kernel.per_cpu(kstat, c)) for c in cpus} \
                if kstat else dict.fromkeys(cpus, 0)
            chip = kernel.read_u64(desc + o_chip)
            chip_name = _string(kernel, kernel.read_u64(chip + o_chip_name)) if chip else None
            flow = _string(kernel, kernel.read_u64(desc + o_flow))
            names: list[str] = []
            seen: set[int] = set()
            while action and action not in seen and len(seen) < MAX_ACTIONS:
                seen.add(action)
                name = _string(kernel, kernel.read_u64(action + o_act_name))
                if name is not None:
                    names.append(name)
                action = kernel.read_u64(action + o_act_next)
            out.append(Irq(irq, desc, chip_name, flow, names, counts))
        except CrashtuiError as exc:
            errors.append(f"irq {irq}: irq_desc {desc:x}: {exc}")
    return IrqTable(nr_irqs(kernel), cpus, out, errors)


@dataclass(frozen=True)
class IrqDescRow:
    """One IRQ number below nr_irqs: its descriptor (0: none allocated), handlers and
    affinity, as crash's `irq` and `irq -a` show them."""

    irq: int
    desc: int
    actions: list[tuple[int, str | None]]  # (irqaction address, irqaction.name)
    affinity: list[int] | None  # irq_common_data.affinity CPUs (None: unreadable)


@dataclass
class IrqDescTable:
    nr_irqs: int
    rows: list[IrqDescRow]
    errors: list[str] = field(default_factory=list)


def _affinity(kernel: Kernel, desc: int) -> list[int] | None:
    """irq_desc.irq_common_data.affinity (4.3+) or irq_data.affinity: a cpumask_var_t,
    an array or (CONFIG_CPUMASK_OFFSTACK) a pointer, as BTF says."""
    btf = kernel.btf
    for path in ("irq_common_data.affinity", "irq_data.affinity"):
        head, _, tail = path.partition(".")
        outer = "irq_common_data" if head == "irq_common_data" else "irq_data"
        if not btf.has_member("irq_desc", head) or not btf.has_member(outer, tail):
            continue
        at = desc + kernel.offsetof("irq_desc", path)
        if btf.member_type(outer, tail).resolved().kind == "ptr":
            at = kernel.read_u64(at)
        n = kernel.nr_cpu_ids
        bits = int.from_bytes(kernel.read(at, ((n + 63) // 64) * 8), "little")
        return [c for c in range(n) if bits >> c & 1]
    return None


def irq_desc_table(kernel: Kernel, wanted: list[int] | None = None) -> IrqDescTable:
    """Every IRQ number below nr_irqs (or those wanted) with its descriptor and handlers."""
    errors: list[str] = []
    descs = irq_descs(kernel, errors)
    nr = nr_irqs(kernel)
    o_action = kernel.offsetof("irq_desc", "action")
    o_act_name, o_act_next = (kernel.offsetof("irqaction", "name"),
                              kernel.offsetof("irqaction", "next"))
    rows = []
    for irq in (wanted if wanted is not None else range(nr)):
        desc = descs.get(irq, 0)
        actions: list[tuple[int, str | None]] = []
        affinity = None
        if desc:
            try:
                action = kernel.read_u64(desc + o_action)
                seen: set[int] = set()
                while action and action not in seen and len(seen) < MAX_ACTIONS:
                    seen.add(action)
                    actions.append((action, _string(kernel,
                                                    kernel.read_u64(action + o_act_name))))
                    action = kernel.read_u64(action + o_act_next)
                affinity = _affinity(kernel, desc)
            except CrashtuiError as exc:
                errors.append(f"irq {irq}: irq_desc {desc:x}: {exc}")
        rows.append(IrqDescRow(irq, desc, actions, affinity))
    return IrqDescTable(nr, rows, errors)


def softirq_actions(kernel: Kernel) -> list[tuple[int, int]]:
    """(vector, handler) of softirq_vec[NR_SOFTIRQS] (struct softirq_action.action)."""
    base = kernel.symbol("softirq_vec")
    size = kernel.sizeof("struct softirq_action")
    sym = kernel.symbols.lookup("softirq_vec")
    count = sym.size // size if sym is not None and sym.size else 10
    try:
        count = kernel.btf.enumerator("NR_SOFTIRQS")
    except CrashtuiError:
        pass
    o_action = kernel.offsetof("softirq_action", "action")
    return [(i, kernel.read_u64(base + i * size + o_action)) for i in range(min(count, 64))]


def idt_handlers(kernel: Kernel) -> list[tuple[int, int]]:
    """(vector, handler address) of x86-64's idt_table[] (struct gate_struct: offset_low,
    offset_middle, offset_high; IDT_ENTRIES 256)."""
    base = kernel.symbol("idt_table")
    size = kernel.sizeof("struct gate_struct")
    off = {m: kernel.offsetof("gate_struct", m)
           for m in ("offset_low", "offset_middle", "offset_high")}
    sym = kernel.symbols.lookup("idt_table")
    count = min(sym.size // size if sym is not None and sym.size else 256, 256)
    raw = kernel.read(base, count * size)
    out = []
    for i in range(count):
        e = raw[i * size:(i + 1) * size]

        def field_(name: str, width: int, e: bytes = e) -> int:
            return int.from_bytes(e[off[name]:off[name] + width], "little")
        out.append((i, field_("offset_low", 2) | field_("offset_middle", 2) << 16 |
                    field_("offset_high", 4) << 32))
    return out
