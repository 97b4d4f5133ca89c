"""Typed values of C expressions in a dump (what gdb computes for crash's `p`).

A Value is either an object in kernel memory (an lvalue: address and type) or a computed
integer or pointer (an rvalue). Globals take their type from the vmlinux's DWARF
(crashtui.debuginfo.dwarfvars), per-CPU variables from BTF VARs, casts and sizeof from BTF
names; arithmetic follows C's usual conversions on x86-64 (LP64), pointer arithmetic is
scaled by the pointee's size, and errors are gdb's one-line messages (ExprError).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.debuginfo.ctype import CType, Field, Types, pointer_to
from crashtui.errors import CrashtuiError
from crashtui.kernel.cexpr import (
    Binary,
    Cast,
    ExprError,
    Ident,
    Index,
    Member,
    Node,
    Num,
    SizeOf,
    TypeName,
    Unary,
)

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_ARRAY = 1 << 16  # elements of a gdb `@` array
MAX_DEPTH = 64  # nested anonymous members searched

INT = CType("int", "int", 4, True)
UINT = CType("int", "unsigned int", 4, False)
LONG = CType("int", "long", 8, True)
ULONG = CType("int", "unsigned long", 8, False)
CHAR = CType("int", "char", 1, True, char=True)
_INTS = {(4, True): INT, (4, False): UINT, (8, True): LONG, (8, False): ULONG}


@dataclass(frozen=True)
class Value:
    """An object in memory (address set) or a computed value (raw set), with its type."""

    type: CType
    address: int | None = None
    raw: int | None = None
    bits: tuple[int, int] | None = None  # (bit offset from address, bit size) of a bitfield


class Evaluator:
    """Evaluates expression trees against one kernel (cpu: the CPU of per-CPU variables)."""

    def __init__(self, kernel: Kernel, types: Types, cpu: int | None = None,
                 history: dict[int, Value] | None = None) -> None:
        self.k = kernel
        self.types = types
        self.cpu = cpu
        self.history = history if history is not None else {}

    def history_value(self, name: str) -> Value:
        """gdb's value history: `$` the last value, `$N` the Nth, `$$` / `$$N` counted back."""
        last = max(self.history, default=0)
        if name == "$":
            n = last
        elif name.startswith("$$"):
            n = last - (int(name[2:]) if name[2:].isdigit() else 1)
        elif name[1:].isdigit():
            n = int(name[1:])
        else:
            raise ExprError(f"History variable {name} is not supported")
        if n not in self.history:
            raise ExprError("History is empty." if not self.history
                            else f"History has not yet reached ${n}.")
        return self.history[n]

    # -- names --------------------------------------------------------------------------------

    def is_type(self, name: str) -> bool:
        """Whether `name` is a typedef or base type name in BTF (for `(name *)x` casts)."""
        from crashtui.debuginfo.btf import KIND_FLOAT, KIND_INT, KIND_TYPEDEF

        try:
            return self.types.btf.find(name, (KIND_TYPEDEF, KIND_INT, KIND_FLOAT)) is not None
        except CrashtuiError:
            return False

    def ctype(self, tn: TypeName) -> CType:
        """The CType of a written type name."""
        try:
            base = self.types.from_btf(self.types.btf._parse_type(tn.base)) \
                if tn.base != "void" else CType("void", "void", None)
        except CrashtuiError:
            words = tn.base.split()
            if words[0] in ("struct", "union", "enum"):
                raise ExprError(f"No {words[0]} type named {words[1]}.") from None
            raise ExprError(f'No symbol "{tn.base}" in current context.') from None
        for _ in range(tn.stars):
            base = pointer_to(base)
        return base

    def percpu_type(self, name: str) -> CType | None:
        """The type of a per-CPU variable (a BTF VAR; without those, as 5.10's BTF, a symbol
        inside .data..percpu typed from DWARF), or None."""
        btf = self.types.btf
        try:
            for tid in btf.ids_by_name(name):
                t = btf.type(tid)
                if t.kind == "var" and t.target_id is not None:
                    return self.types.from_btf(t.target_id)
        except CrashtuiError:
            return None
        k = self.k
        addr = k.symbol_or_none(name)
        # x86-64 links .data..percpu at 0 (__per_cpu_start is not always in the table)
        start, end = k.symbol_or_none("__per_cpu_start") or 0, k.symbol_or_none("__per_cpu_end")
        if addr is None or end is None or not start <= addr < end:
            return None
        return self.variable_type(name)

    def variable_type(self, name: str) -> CType | None:
        """The declared type of a global variable (DWARF), or None if unknown."""
        return variable_type(self.k, self.types, name)

    # -- evaluation ---------------------------------------------------------------------------

    def eval(self, node: Node) -> Value:
        if isinstance(node, Num):
            return Value(_literal_type(node), raw=node.value)
        if isinstance(node, Ident):
            return self.ident(node.name)
        if isinstance(node, Member):
            return self.member(self.eval(node.base), node.name, node.arrow)
        if isinstance(node, Index):
            return self.index(self.eval(node.base), self.eval(node.index))
        if isinstance(node, Unary):
            return self.unary(node.op, node.operand)
        if isinstance(node, Cast):
            return self.cast(self.ctype(node.type), self.eval(node.operand))
        if isinstance(node, SizeOf):
            ct = self.ctype(node.of) if isinstance(node.of, TypeName) else \
                self.eval(node.of).type
            if ct.size is None:
                raise ExprError("Attempt to use a type name as an expression"
                                if ct.kind == "void" else f"size of {ct.name} unknown")
            return Value(ULONG, raw=ct.size)
        if isinstance(node, Binary):
            if node.op == "@":
                return self.artificial_array(self.eval(node.left), self.eval(node.right))
            if node.op == ",":
                self.eval(node.left)
                return self.eval(node.right)
            return self.binary(node.op, self.eval(node.left), self.eval(node.right))
        raise ExprError("unsupported expression")

    def type_of(self, node: Node) -> CType:
        """The type of an expression without reading the dump (for completion)."""
        if isinstance(node, Ident):
            ct = self.percpu_type(node.name) or self.variable_type(node.name)
            if ct is None:
                raise ExprError(f'No symbol "{node.name}" in current context.')
            return ct
        if isinstance(node, Member):
            base = self.type_of(node.base)
            if base.kind == "ptr" and base.target is not None:
                base = base.target
            if base.kind not in ("struct", "union"):
                raise ExprError("Attempt to extract a component of a value that is not a "
                                "structure.")
            found = find_field(self.types, base, node.name, 0, 0)
            if found is None:
                raise ExprError(f"There is no member named {node.name}.")
            return found[1].type
        if isinstance(node, Index):
            base = self.type_of(node.base)
            if base.kind not in ("array", "ptr") or base.target is None:
                raise ExprError(f"cannot subscript something of type `{base.name}'")
            return base.target
        if isinstance(node, Unary) and node.op == "*":
            base = self.type_of(node.operand)
            if base.kind not in ("array", "ptr") or base.target is None:
                raise ExprError("Attempt to take contents of a non-pointer value.")
            return base.target
        if isinstance(node, Unary) and node.op == "&":
            return pointer_to(self.type_of(node.operand))
        if isinstance(node, Cast):
            return self.ctype(node.type)
        return self.eval(node).type

    def ident(self, name: str) -> Value:
        if name.startswith("$"):
            return self.history_value(name)
        k = self.k
        addr = k.symbol_or_none(name)
        if addr is None:
            hit = enumerator(self.types, name)
            if hit is not None:
                return Value(hit[0], raw=hit[1])
            raise ExprError(f'No symbol "{name}" in current context.')
        pct = self.percpu_type(name)
        if pct is not None:
            if self.cpu is None:
                raise ExprError(f"{name} is a per-CPU variable: give the CPU ({name}:N)")
            try:
                return Value(pct, address=k.per_cpu(addr, self.cpu))
            except CrashtuiError as exc:
                raise ExprError(exc.message) from None
        ct = self.variable_type(name)
        if ct is None:
            fn = self.function_type(name)
            if fn is not None:
                return Value(fn, address=addr)
            if k.vmlinux is None:
                raise ExprError("no type information for this variable without the debug "
                                "vmlinux (BTF only describes per-CPU variables); try "
                                f"`rd {name}` or give the vmlinux")
            raise ExprError(f"'{name}' has unknown type; cast it to its declared type")
        return Value(ct, address=addr)

    def function_type(self, name: str) -> CType | None:
        """A kernel function's type from BTF (`int (struct rq *)`), or None."""
        from crashtui.debuginfo.ctype import gdb_spelling

        btf = self.types.btf
        try:
            for tid in btf.ids_by_name(name):
                t = btf.type(tid)
                if t.kind == "func" and t.target_id is not None:
                    return CType("func", gdb_spelling(btf.declaration(t.target_id, "")).strip(),
                                 None)
        except CrashtuiError:
            return None
        return None

    def read_int(self, v: Value) -> int:
        """The integer (or pointer) value of a scalar."""
        if v.raw is not None:
            return v.raw
        ct = v.type
        if ct.kind == "array" and v.address is not None:
            return v.address
        if ct.kind == "func" and v.address is not None:
            return v.address
        if ct.kind not in ("int", "enum", "ptr") or v.address is None:
            raise ExprError(f"Invalid cast: {ct.name} is not a scalar")
        size = ct.size or 8
        try:
            if v.bits is not None:
                start, nbits = v.bits
                raw = self.k.read(v.address + start // 8, (start % 8 + nbits + 7) // 8)
                word = int.from_bytes(raw, "little") >> (start % 8) & ((1 << nbits) - 1)
                if ct.signed and word >> (nbits - 1):
                    word -= 1 << nbits
                return word
            data = self.k.read(v.address, size)
        except CrashtuiError:
            raise ExprError(f"Cannot access memory at address {v.address:#x}") from None
        return int.from_bytes(data, "little", signed=ct.signed and ct.kind != "ptr")

    def member(self, v: Value, name: str, arrow: bool) -> Value:
        ct = v.type
        if ct.kind == "ptr" and ct.target is not None:
            v = self.deref(v)
            ct = v.type
        if ct.kind not in ("struct", "union"):
            raise ExprError("The -> operator must be applied to a pointer value"
                            if arrow else "Attempt to extract a component of a value that "
                            "is not a structure.")
        if ct.btf_id is None:
            raise ExprError(f"There is no member named {name}.")
        found = find_field(self.types, ct, name, 0, 0)
        if found is None:
            raise ExprError(f"There is no member named {name}.")
        bits, f = found
        if v.address is None:
            raise ExprError("Attempt to take a member of a value not in memory")
        if f.bit_size:
            return Value(f.type, address=v.address, bits=(bits, f.bit_size))
        return Value(f.type, address=v.address + bits // 8)

    def deref(self, v: Value) -> Value:
        ct = v.type
        if ct.kind == "array" and ct.target is not None and v.address is not None:
            return Value(ct.target, address=v.address)
        if ct.kind != "ptr" or ct.target is None:
            if ct.kind == "int":  # gdb: `*` on an integer reads an int there
                return Value(INT, address=self.read_int(v))
            raise ExprError("Attempt to take contents of a non-pointer value.")
        if ct.target.kind == "void":
            raise ExprError("Attempt to take contents of a non-pointer value.")
        return Value(ct.target, address=self.read_int(v))

    def index(self, v: Value, i: Value) -> Value:
        ct = v.type
        n = self.read_int(i)
        if ct.kind not in ("array", "ptr") or ct.target is None:
            raise ExprError(f"cannot subscript something of type `{ct.name}'")
        elem = ct.target
        if not elem.size:
            raise ExprError(f"cannot subscript requested type `{elem.name}'")
        base = v.address if ct.kind == "array" else self.read_int(v)
        if base is None:
            raise ExprError("cannot subscript a value not in memory")
        return Value(elem, address=(base + n * elem.size) & (1 << 64) - 1)

    def unary(self, op: str, node: Node) -> Value:
        if op == "&":
            v = self.eval(node)
            if v.address is None or v.bits is not None:
                raise ExprError("Attempt to take address of value not located in memory.")
            return Value(pointer_to(v.type), raw=v.address)
        v = self.eval(node)
        if op == "*":
            return self.deref(v)
        ct = self.promote(v.type)
        x = self.read_int(v)
        if op == "!":
            return Value(INT, raw=int(not x))
        if v.type.kind not in ("int", "enum"):
            raise ExprError("Argument to arithmetic operation not a number or boolean.")
        if op == "-":
            x = -x
        elif op == "~":
            x = ~x
        return Value(ct, raw=wrap(ct, x))

    def cast(self, ct: CType, v: Value) -> Value:
        if ct.kind in ("struct", "union"):
            if v.type.kind == ct.kind and v.address is not None:
                return Value(ct, address=v.address)
            raise ExprError("Invalid cast.")
        if ct.kind == "void":
            return Value(ct, raw=0)
        if ct.kind == "array":
            raise ExprError("Invalid cast.")
        return Value(ct, raw=wrap(ct, self.read_int(v)))

    def artificial_array(self, v: Value, n: Value) -> Value:
        count = self.read_int(n)
        if v.address is None:
            raise ExprError("Only values in memory can be extended with '@'.")
        if not 0 < count <= MAX_ARRAY:
            raise ExprError(f"Invalid number {count} of repetitions.")
        elem = v.type
        size = None if elem.size is None else elem.size * count
        return Value(CType("array", f"{elem.name} [{count}]", size, target=elem, length=count),
                     address=v.address)

    @staticmethod
    def promote(ct: CType) -> CType:
        if ct.kind == "ptr":
            return ct
        size = ct.size or 4
        if size < 4 or ct.kind == "enum":
            return INT if ct.kind != "enum" or ct.signed or size < 4 else UINT
        return _INTS.get((size, ct.signed), ULONG)

    def binary(self, op: str, a: Value, b: Value) -> Value:
        ta, tb = _decay(a.type), _decay(b.type)
        x, y = self.read_int(a), self.read_int(b)
        if op in ("==", "!=", "<", ">", "<=", ">=", "&&", "||"):
            truth = {"==": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y,
                 ">=": x >= y, "&&": bool(x) and bool(y), "||": bool(x) or bool(y)}[op]
            return Value(INT, raw=int(truth))
        if ta.kind == "ptr" or tb.kind == "ptr":
            return self.pointer_arith(op, ta, x, tb, y)
        for t in (ta, tb):
            if t.kind not in ("int", "enum"):
                raise ExprError("Argument to arithmetic operation not a number or boolean.")
        ct = self.usual(ta, tb)
        if op in ("<<", ">>"):
            ct = self.promote(ta)
        if ct.signed is False:
            x, y = wrap(ct, x), wrap(ct, y)
        if op in ("/", "%") and y == 0:
            raise ExprError("Division by zero")
        return Value(ct, raw=wrap(ct, _int_op(op, x, y)))

    def pointer_arith(self, op: str, ta: CType, x: int, tb: CType, y: int) -> Value:
        if op == "-" and ta.kind == "ptr" and tb.kind == "ptr":
            size = (ta.target.size if ta.target is not None else None) or 1
            return Value(LONG, raw=wrap(LONG, x - y) // size)
        if op == "+" and tb.kind == "ptr":
            ta, x, tb, y = tb, y, ta, x
        if op not in ("+", "-") or ta.kind != "ptr":
            raise ExprError("Argument to arithmetic operation not a number or boolean.")
        size = (ta.target.size if ta.target is not None else None) or 1
        if ta.target is not None and ta.target.kind == "void":
            size = 1
        step = wrap(LONG, y) * size
        return Value(ta, raw=(x + step if op == "+" else x - step) & (1 << 64) - 1)

    def usual(self, a: CType, b: CType) -> CType:
        """C's usual arithmetic conversions (LP64)."""
        pa, pb = self.promote(a), self.promote(b)
        if (pa.size or 4) != (pb.size or 4):
            return pa if (pa.size or 4) > (pb.size or 4) else pb
        return pa if not pa.signed else pb


_ENUMERATORS: weakref.WeakKeyDictionary[Types, dict[str, tuple[int, int]]] = \
    weakref.WeakKeyDictionary()


def enumerator(types: Types, name: str) -> tuple[CType, int] | None:
    """(its enum type, value) of an enumerator (gdb prints `PIDTYPE_TGID` by its type)."""
    table = _ENUMERATORS.get(types)
    if table is None:
        from crashtui.debuginfo.btf import KIND_ENUM, KIND_ENUM64

        table = {}
        btf = types.btf
        try:
            for kind in (KIND_ENUM, KIND_ENUM64):
                for tid in btf._kind_ids(kind)[0].tolist():
                    for k, v in btf._enum_values(int(tid)).items():
                        table.setdefault(k, (int(tid), v))
        except CrashtuiError:
            pass
        _ENUMERATORS[types] = table
    hit = table.get(name)
    return None if hit is None else (types.from_btf(hit[0]), hit[1])


def _int_op(op: str, x: int, y: int) -> int:
    """C's integer operators (division truncates toward zero)."""
    if op in ("/", "%"):
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        return q if op == "/" else x - q * y
    if op in ("<<", ">>"):
        return x << (y & 127) if op == "<<" else x >> (y & 127)
    ops = {"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y, "^": x ^ y}
    return ops[op]


def _decay(ct: CType) -> CType:
    """Arrays and functions used as values become pointers."""
    if ct.kind == "array" and ct.target is not None:
        return pointer_to(ct.target)
    if ct.kind == "func":
        return pointer_to(ct)
    return ct


def _literal_type(n: Num) -> CType:
    """gdb's type of an integer literal (int, then unsigned int for hex, long, unsigned long)."""
    v = n.value
    if not n.long and not n.unsigned and v < 1 << 31:
        return INT
    if not n.long and (n.unsigned or n.hex) and v < 1 << 32:
        return UINT
    if not n.unsigned and v < 1 << 63:
        return LONG
    return ULONG


def wrap(ct: CType, v: int) -> int:
    """v as an integer of ct's size and signedness (pointers: unsigned 64-bit)."""
    bits = 8 * (ct.size or 8)
    v &= (1 << bits) - 1
    if ct.kind != "ptr" and ct.signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def find_field(types: Types, ct: CType, name: str, base: int,
               depth: int) -> tuple[int, Field] | None:
    """(bit offset, member) of `name` in ct, anonymous structs and unions searched too."""
    if depth > MAX_DEPTH:
        return None
    for f in types.fields(ct):
        if f.name == name:
            return base + f.bit_offset, f
        if not f.name and f.type.kind in ("struct", "union"):
            hit = find_field(types, f.type, name, base + f.bit_offset, depth + 1)
            if hit is not None:
                return hit
    return None


def member_names(types: Types, ct: CType, depth: int = 0) -> list[str]:
    """The member names reachable with `.` from ct (anonymous members' members included)."""
    out: list[str] = []
    if depth > MAX_DEPTH:
        return out
    for f in types.fields(ct):
        if f.name:
            out.append(f.name)
        elif f.type.kind in ("struct", "union"):
            out += member_names(types, f.type, depth + 1)
    return out


def variable_type(k: Kernel, types: Types, name: str) -> CType | None:
    """The declared type of a global variable (the vmlinux's DWARF), or None if unknown."""
    vm = k.vmlinux
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
    try:
        sym = k.symbols.lookup(name)
    except CrashtuiError:
        sym = None
    ct = types.from_dwarf(d)
    if sym is not None and sym.size and ct.kind == "array" and ct.length is None and \
            ct.target is not None and ct.target.size:
        ct = types.from_dwarf(d, sym.size // ct.target.size)
    return ct
