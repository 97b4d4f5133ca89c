"""p: print a kernel variable (or a member, element or address of one) like crash's `p`.

    p jiffies                 jiffies = $1 = 4294894302
    p -x jiffies              jiffies = $2 = 0xfffee2de
    p init_uts_ns.name.release, p init_task.comm[0], p &init_task, p init_task.mm->pgd
    p runqueues               a per-CPU variable: its type and every CPU's address
    p runqueues:1             CPU 1's copy: per_cpu(runqueues, 1) = $3 = {...}

A variable's type is read from the vmlinux's DWARF (crashtui.debuginfo.dwarfvars); per-CPU
variables' from BTF (its only DATASEC is .data..percpu, so without the vmlinux only per-CPU
variables can be printed; other variables are refused with a pointer to `rd`). Values print as gdb prints them; `$N` counts per session like gdb's value
history.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.struct import types_of
from crashtui.commands.values import Printer
from crashtui.debuginfo.ctype import CType, CTypeError, Place, Types, member_path, pointer_to
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_VALUE = 1 << 20
_HISTORY: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()
_EXPR = re.compile(r"(&?)([A-Za-z_]\w*)(?::(\d+|a))?(.*)", re.S)


def _next_number(session: Session) -> int:
    n = _HISTORY.get(session, 0) + 1
    _HISTORY[session] = n
    return n


def _percpu_type(session: Session, types: Types, name: str) -> CType | None:
    """The type of a per-CPU variable (a BTF VAR), or None."""
    btf = types.btf
    for tid in btf.ids_by_name(name):
        t = btf.type(tid)
        if t.kind == "var" and t.target_id is not None:
            return types.from_btf(t.target_id)
    return None


def variable_type(session: Session, types: Types, name: str) -> CType | None:
    """The declared type of a global variable (DWARF), or None if unknown."""
    vm = session.kernel.vmlinux
    if vm is None:
        return None
    try:
        lines = vm.lines
    except CrashtuiError:
        return None
    if lines is None:
        return None
    from crashtui.debuginfo.dwarfvars import variable_type as dwarf_type

    d = dwarf_type(lines, name)
    if d is None:
        return None
    hint = None
    try:
        sym = session.kernel.symbols.lookup(name)
    except CrashtuiError:
        sym = None
    ct = types.from_dwarf(d)
    if sym is not None and sym.size and ct.kind == "array" and ct.length is None and \
            ct.target is not None and ct.target.size:
        hint = sym.size // ct.target.size
        ct = types.from_dwarf(d, hint)
    return ct


@command("p", "print a kernel variable, a member or element of one, or its address",
         "p [-x|-d] [&]SYMBOL[.member|->member|[index]...] | p VAR:CPU")
def cmd_p(session: Session, args: list[str]) -> list[str]:
    hex_ints = False
    rest: list[str] = []
    for a in args:
        if a == "-x":
            hex_ints = True
        elif a == "-d":
            hex_ints = False
        elif a.startswith("-") and len(a) > 1 and not a[1:].isdigit():
            raise CommandError(f"p: unsupported option {a}")
        else:
            rest.append(a)
    if not rest:
        raise CommandError("p: usage: p [-x|-d] EXPRESSION")
    text = " ".join(rest).strip()
    if re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", text):
        v = int(text, 0)
        return [f"${_next_number(session)} = {hex(v) if hex_ints else v}"]
    m = _EXPR.fullmatch(text)
    if m is None:
        raise CommandError(f"p: cannot parse expression: {text}")
    amp, name, cpu, path = m.group(1), m.group(2), m.group(3), m.group(4).strip()
    types = types_of(session)
    k = session.kernel
    addr = k.symbol_or_none(name)
    if addr is None:
        raise CommandError(f'p: No symbol "{name}" in current context.')
    printer = Printer(session, types, hex_ints)
    percpu = _percpu_type(session, types, name)
    if percpu is not None:
        if cpu is None and not path and not amp:
            return _percpu_listing(session, name, addr, percpu)
        if cpu is None or cpu == "a":
            raise CommandError(f"p: {name} is a per-CPU variable: give the CPU, p {name}:N")
        offsets = k.per_cpu_offsets
        c = int(cpu)
        if not 0 <= c < len(offsets):
            raise CommandError(f"p: invalid cpu {c}")
        place = Place(k.per_cpu(addr, c), percpu)
        label = f"per_cpu({name}, {c})"
    else:
        if cpu is not None:
            raise CommandError(f"p: {name} is not a per-CPU variable")
        ct = variable_type(session, types, name)
        if ct is None and k.vmlinux is None:
            # The kernel's BTF has one DATASEC, .data..percpu: no other variable has a type
            # without the vmlinux's DWARF (Debian's 6.1 and 6.12; 5.10's BTF has none at all).
            raise CommandError(f"no type information for this variable without the debug "
                               f"vmlinux (BTF only describes per-CPU variables); try "
                               f"`rd {name}` or give the vmlinux")
        if ct is None:
            raise CommandError(f"p: '{name}' has unknown type (no DWARF for it in the vmlinux); "
                               f"try rd {name}")
        place = Place(addr, ct)
        label = name
    if path:
        try:
            place = member_path(types, place, path, k.read_u64)
        except CTypeError as exc:
            raise CommandError(exc.message) from None
    ct = place.type
    if amp:
        ptr = pointer_to(ct)
        value = printer.top(ptr, place.address.to_bytes(8, "little"), 0)
    else:
        size = ct.size or 0
        if ct.kind == "func":
            value = printer.value(ct, b"", place.address, 0)
        elif not 0 < size <= MAX_VALUE:
            raise CommandError(f"p: cannot print {ct.name}: size unknown")
        else:
            try:
                data = k.read(place.address, size)
            except CrashtuiError:
                raise CommandError(f"p: Cannot access memory at address {place.address:#x}") \
                    from None
            value = printer.top(ct, data, place.address)
    n = _next_number(session)
    head = f"{label} = ${n} = " if not path and not amp else f"${n} = "
    return (head + value).split("\n")


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
