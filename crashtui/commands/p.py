"""p: print the value of a C expression like crash's `p` (its gdb's `print`).

    p jiffies                           jiffies = $1 = 4294894302
    p -x jiffies, p/x jiffies           in hex
    p *init_task.mm, p &init_task.comm[1], p init_task.tasks.next->next
    p ((struct task_struct *)0xffff...)->pid, p (unsigned long)x + 8, p sizeof(struct rq)
    p runqueues                         a per-CPU variable: its type and every CPU's address
    p runqueues:1, p cpu_number:a       CPU 1's copy / every CPU's: per_cpu(runqueues, 1) = ...
    p runqueues:                        the current context's CPU (crash's cpuspec: 1,3-5)
    px EXPR, pd EXPR                    crash's aliases of p -x, p -d

Expressions are parsed by crashtui.kernel.cexpr and evaluated by crashtui.kernel.cvalue
(globals typed from the vmlinux's DWARF, per-CPU variables and casts from BTF; without the
vmlinux only per-CPU variables have a type). As crash does, the value is labelled `NAME = `
when the expression's first word is a kernel symbol. Values print as gdb prints them
(crashtui.commands.values); `$N` counts per session like gdb's value history.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.struct import types_of
from crashtui.commands.values import Printer
from crashtui.debuginfo.ctype import CType, Types
from crashtui.errors import CrashtuiError
from crashtui.kernel.cexpr import ExprError, Node, parse
from crashtui.kernel.cvalue import Evaluator, Value
from crashtui.kernel.cvalue import variable_type as _variable_type

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_VALUE = 1 << 20
_HISTORY: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()


_VALUES: weakref.WeakKeyDictionary[Session, dict[int, Value]] = weakref.WeakKeyDictionary()
MAX_HISTORY = 1000  # values kept for `$N`


def _next_number(session: Session, value: Value | None = None) -> int:
    n = _HISTORY.get(session, 0) + 1
    _HISTORY[session] = n
    if value is not None:
        values = _VALUES.setdefault(session, {})
        values[n] = value
        values.pop(n - MAX_HISTORY, None)
    return n


def _history(session: Session) -> dict[int, Value]:
    return _VALUES.setdefault(session, {})


def variable_type(session: Session, types: Types, name: str) -> CType | None:
    """The declared type of a global variable (DWARF), or None if unknown."""
    return _variable_type(session.kernel, types, name)


@command("p", "print the value of a C expression: variables, members, casts, pointers",
         "p [-x|-d] EXPRESSION | p/x EXPR | p VAR:[CPU,N-M|a]  (C: . -> * & [] casts sizeof $N)")
def cmd_p(session: Session, args: list[str]) -> list[str]:
    hex_ints = format_x = False
    labelled = True
    rest: list[str] = []
    for i, a in enumerate(args):
        if a in ("-x", "/x") or (a == "-d" or a == "/d"):
            hex_ints = a.endswith("x")
            format_x = a == "/x"
            labelled = labelled and not a.startswith("/")
        elif a.startswith("-") and len(a) > 1 and not a[1:2].isdigit() and a[1:2] != "(":
            raise CommandError(f"p: unsupported option {a}")
        else:
            rest = list(args[i:])
            break
    if not rest:
        raise CommandError("p: usage: p [-x|-d] EXPRESSION")
    text = " ".join(rest).strip()
    types = types_of(session)
    k = session.kernel
    printer = Printer(session, types, hex_ints, format_x=format_x)
    percpu = _PERCPU.fullmatch(text)
    if percpu is not None:
        return _per_cpu_values(session, types, printer, percpu.group(1), percpu.group(2),
                               percpu.group(3))
    ev = Evaluator(k, types, history=_history(session))
    if re.fullmatch(r"[A-Za-z_]\w*", text):
        addr = k.symbol_or_none(text)
        pct = ev.percpu_type(text) if addr is not None else None
        if addr is not None and pct is not None:
            return _percpu_listing(session, text, addr, pct)
    node = _parse(ev, text)
    try:
        value = ev.eval(node)
        shown = render(ev, printer, value)
    except CrashtuiError as exc:
        raise _error(exc) from None
    first = rest[0]
    label = f"{first} = " if labelled and re.fullmatch(r"[A-Za-z_]\w*", first) and \
        k.symbol_or_none(first) is not None else ""
    return f"{label}${_next_number(session, value)} = {shown}".split("\n")


def _error(exc: CrashtuiError) -> CommandError:
    """gdb's message as p's one line (a missing vmlinux is said as is, not as p's)."""
    msg = exc.message
    return CommandError(msg if msg.startswith("no type information") else f"p: {msg}")


_PERCPU = re.compile(r"([A-Za-z_]\w*):(a|all|\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*|)((?:\.|->|\[).*)?",
                     re.S)


def _parse(ev: Evaluator, text: str) -> Node:
    try:
        return parse(text, ev.is_type)
    except ExprError as exc:
        raise _error(exc) from None


def render(ev: Evaluator, printer: Printer, value: Value) -> str:
    """A value as gdb prints it after `$N = ` (multi-line for structs)."""
    ct = value.type
    if ct.kind == "void":
        return "void"
    if value.raw is not None or value.bits is not None:
        size = ct.size or 8
        v = ev.read_int(value) & ((1 << (8 * size)) - 1)
        return printer.top(ct, v.to_bytes(size, "little"), 0)
    addr = value.address or 0
    if ct.kind == "func":  # crash breaks the line after `$N = ` for a function
        return "\n " + printer.value(ct, b"", addr, 0)
    size = ct.size or 0
    if not 0 < size <= MAX_VALUE:
        raise ExprError(f"cannot print {ct.name}: size unknown" if not size
                        else f"cannot print {ct.name}: {size} bytes is more than {MAX_VALUE}")
    try:
        data = session_read(ev, addr, size)
    except CrashtuiError:
        raise ExprError(f"Cannot access memory at address {addr:#x}") from None
    return printer.top(ct, data, addr)


def session_read(ev: Evaluator, addr: int, size: int) -> bytes:
    return ev.k.read(addr, size)


def _per_cpu_values(session: Session, types: Types, printer: Printer, name: str, spec: str,
                    path: str | None) -> list[str]:
    """crash's `p VAR:CPU` / `p VAR:a`: each CPU's copy, `per_cpu(VAR, N) = $M = value`."""
    k = session.kernel
    ev = Evaluator(k, types)
    if k.symbol_or_none(name) is None:
        raise CommandError(f'p: No symbol "{name}" in current context.')
    if ev.percpu_type(name) is None:
        raise CommandError(f"p: {name} is not a per-CPU variable")
    try:
        n = len(k.per_cpu_offsets)
    except CrashtuiError as exc:
        raise CommandError(f"p: per-CPU offsets unreadable: {exc.message}") from None
    if not spec:  # `VAR:`: the CPU of the current context's task
        from crashtui.commands.task import current_task

        spec = str(current_task(session).cpu)
    if path and spec not in ("a", "all") and not spec.isdigit():
        last = spec.replace("-", ",").split(",")[-1]  # crash reads the path as a CPU number
        raise CommandError(f'p: {last}{path}: "{path[0]}" is not a digit 0 - 9')
    cpus: list[int] = []
    for item in spec.split(",") if spec not in ("a", "all") else [f"0-{n - 1}"]:
        first, dash, last = item.partition("-")
        lo, hi = int(first), int(last if dash else first)
        if not 0 <= lo <= hi < n:
            raise CommandError(f"p: invalid cpu {hi if lo <= hi else item}")
        cpus += range(lo, hi + 1)
    node = _parse(ev, name + (path or ""))
    out: list[str] = []
    for c in cpus:
        if not 0 <= c < n:
            raise CommandError(f"p: invalid cpu {c}")
        try:
            value = Evaluator(k, types, c, _history(session)).eval(node)
            shown = render(ev, printer, value)
        except CrashtuiError as exc:
            raise _error(exc) from None
        label = f"per_cpu({name}, {c}) = " if not path else ""
        out += f"{label}${_next_number(session, value)} = {shown}".split("\n")
    return out


def _percpu_listing(session: Session, name: str, addr: int, ct: CType) -> list[str]:
    """crash's answer to `p PERCPU_VAR`: the type and each CPU's address."""
    from crashtui.debuginfo.ctype import gdb_spelling

    k = session.kernel
    decl = ct.name
    if ct.kind == "array":
        base = ct
        dims = ""
        while base.kind == "array" and base.target is not None:
            dims += f"[{base.length}]"
            base = base.target
        decl_line = f"{gdb_spelling(base.name)} {name}{dims};"
    else:
        decl_line = f"{decl} {name};"
    out = ["PER-CPU DATA TYPE:", f"  {decl_line}", "PER-CPU ADDRESSES:"]
    try:
        offsets = k.per_cpu_offsets
    except CrashtuiError as exc:
        raise CommandError(f"p: per-CPU offsets unreadable: {exc.message}") from None
    for cpu in range(k.nr_cpu_ids):
        if cpu < len(offsets):
            out.append(f"  [{cpu}]: {addr + offsets[cpu]:x}")
    return out
