"""DWARF expressions (DWARF 5 §2.5, §2.6): where a variable is, evaluated over callbacks.

Data only: the caller supplies how to read a register, memory, the frame base and the CFA;
nothing here knows about dumps. The result is a list of pieces (§2.6.1.2), each in memory,
in a register, a computed value or literal bytes; anything that cannot be known (a register
the frame does not have, DW_OP_entry_value, an implicit pointer) raises ExprUnknown with the
reason, which callers show as the variable's state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from crashtui.debuginfo.linetable import read_sleb, read_uleb

MASK = (1 << 64) - 1
MAX_OPS = 10_000  # operations evaluated per expression (DW_OP_skip/bra can loop)
MAX_STACK = 256

# x86-64 DWARF register numbers (System V psABI, table 3.36).
X86_64_REGS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
               "r11", "r12", "r13", "r14", "r15", "rip")


def register_name(regno: int) -> str:
    """The x86-64 name of a DWARF register number (`reg17` for one outside the GPRs)."""
    return X86_64_REGS[regno] if 0 <= regno < len(X86_64_REGS) else f"reg{regno}"


class ExprUnknown(Exception):
    """The expression's value cannot be known here (reason in the message)."""


@dataclass(frozen=True)
class Piece:
    """One piece of a location: kind "memory" (value = address), "register" (value =
    DWARF register number), "value" (value = the computed integer), "bytes" (data) or
    "optimized" (an empty piece); size in bytes (None: the whole object)."""

    kind: str
    value: int = 0
    size: int | None = None
    data: bytes = b""
    bit_offset: int = 0


@dataclass
class ExprContext:
    """Callbacks an evaluation needs; each may raise ExprUnknown."""

    read_register: Callable[[int], int]
    read_memory: Callable[[int, int], bytes]
    frame_base: Callable[[], int] | None = None
    cfa: Callable[[], int] | None = None
    addrx: Callable[[int], int] | None = None  # DW_OP_addrx / constx: .debug_addr entry
    relocate: Callable[[int], int] | None = None  # DW_OP_addr: DWARF address -> runtime
    # DW_OP_entry_value: the value its block (e.g. DW_OP_reg5) had when the function was
    # entered, from the caller's call site (raises ExprUnknown when it cannot be known)
    entry_value: Callable[[bytes], int] | None = None


def _signed(v: int) -> int:
    v &= MASK
    return v - (1 << 64) if v >> 63 else v


_FIXED = {0x08: ("<B", 1), 0x09: ("<b", 1), 0x0A: ("<H", 2), 0x0B: ("<h", 2),
          0x0C: ("<I", 4), 0x0D: ("<i", 4), 0x0E: ("<Q", 8), 0x0F: ("<q", 8)}


def evaluate(expr: bytes, ctx: ExprContext, address_size: int = 8) -> list[Piece]:
    """Evaluate a location description; a single-location result is one piece of size None."""
    stack: list[int] = []
    pieces: list[Piece] = []
    pending: Piece | None = None  # a register/implicit location waiting for DW_OP_piece
    pos = 0
    n = len(expr)
    ops = 0

    def pop() -> int:
        if not stack:
            raise ExprUnknown("malformed DWARF expression (stack underflow)")
        return stack.pop()

    def push(v: int) -> None:
        if len(stack) >= MAX_STACK:
            raise ExprUnknown("malformed DWARF expression (stack overflow)")
        stack.append(v & MASK)

    def reg(r: int) -> int:
        return ctx.read_register(r) & MASK

    while pos < n:
        ops += 1
        if ops > MAX_OPS:
            raise ExprUnknown("DWARF expression does not terminate")
        op = expr[pos]
        pos += 1
        if 0x30 <= op <= 0x4F:  # DW_OP_lit0..31
            push(op - 0x30)
        elif 0x50 <= op <= 0x6F:  # DW_OP_reg0..31
            pending = Piece("register", op - 0x50)
        elif op == 0x90:  # DW_OP_regx
            r, pos = read_uleb(expr, pos)
            pending = Piece("register", r)
        elif 0x70 <= op <= 0x8F:  # DW_OP_breg0..31
            off, pos = read_sleb(expr, pos)
            push(reg(op - 0x70) + off)
        elif op == 0x92:  # DW_OP_bregx
            r, pos = read_uleb(expr, pos)
            off, pos = read_sleb(expr, pos)
            push(reg(r) + off)
        elif op == 0x91:  # DW_OP_fbreg
            off, pos = read_sleb(expr, pos)
            if ctx.frame_base is None:
                raise ExprUnknown("no frame base")
            push(ctx.frame_base() + off)
        elif op == 0x9C:  # DW_OP_call_frame_cfa
            if ctx.cfa is None:
                raise ExprUnknown("CFA not known")
            push(ctx.cfa())
        elif op == 0x03:  # DW_OP_addr
            (a,) = struct.unpack_from("<Q" if address_size == 8 else "<I", expr, pos)
            pos += address_size
            push(ctx.relocate(a) if ctx.relocate else a)
        elif op in (0xA1, 0xFB, 0xA2):  # DW_OP_addrx, DW_OP_GNU_addr_index, DW_OP_constx
            i, pos = read_uleb(expr, pos)
            if ctx.addrx is None:
                raise ExprUnknown("no .debug_addr")
            a = ctx.addrx(i)
            push(ctx.relocate(a) if ctx.relocate and op != 0xA2 else a)
        elif op in _FIXED:
            fmt, size = _FIXED[op]
            push(struct.unpack_from(fmt, expr, pos)[0])
            pos += size
        elif op == 0x10:  # DW_OP_constu
            v, pos = read_uleb(expr, pos)
            push(v)
        elif op == 0x11:  # DW_OP_consts
            v, pos = read_sleb(expr, pos)
            push(v)
        elif op == 0x12:  # dup
            v = pop()
            push(v)
            push(v)
        elif op == 0x13:  # drop
            pop()
        elif op == 0x14:  # over
            if len(stack) < 2:
                raise ExprUnknown("malformed DWARF expression (stack underflow)")
            push(stack[-2])
        elif op == 0x15:  # pick
            i = expr[pos]
            pos += 1
            if i >= len(stack):
                raise ExprUnknown("malformed DWARF expression (pick)")
            push(stack[-1 - i])
        elif op == 0x16:  # swap
            a, b = pop(), pop()
            push(a)
            push(b)
        elif op == 0x17:  # rot
            a, b, c = pop(), pop(), pop()
            push(a)
            push(c)
            push(b)
        elif op == 0x06:  # deref
            push(int.from_bytes(ctx.read_memory(pop(), address_size), "little"))
        elif op == 0x94:  # deref_size
            size = expr[pos]
            pos += 1
            push(int.from_bytes(ctx.read_memory(pop(), size), "little"))
        elif op == 0x19:  # abs
            push(abs(_signed(pop())))
        elif op == 0x1A:
            b, a = pop(), pop()
            push(a & b)
        elif op == 0x1B:  # div (signed)
            b, a = _signed(pop()), _signed(pop())
            if b == 0:
                raise ExprUnknown("division by zero in DWARF expression")
            q = abs(a) // abs(b)
            push(q if (a < 0) == (b < 0) else -q)
        elif op == 0x1C:
            b, a = pop(), pop()
            push(a - b)
        elif op == 0x1D:  # mod
            b, a = pop(), pop()
            if b == 0:
                raise ExprUnknown("division by zero in DWARF expression")
            push(a % b)
        elif op == 0x1E:
            b, a = pop(), pop()
            push(a * b)
        elif op == 0x1F:
            push(-_signed(pop()))
        elif op == 0x20:
            push(~pop())
        elif op == 0x21:
            b, a = pop(), pop()
            push(a | b)
        elif op == 0x22:
            b, a = pop(), pop()
            push(a + b)
        elif op == 0x23:  # plus_uconst
            v, pos = read_uleb(expr, pos)
            push(pop() + v)
        elif op == 0x24:
            b, a = pop(), pop()
            push(a << b if b < 64 else 0)
        elif op == 0x25:
            b, a = pop(), pop()
            push(a >> b if b < 64 else 0)
        elif op == 0x26:  # shra
            b, a = pop(), _signed(pop())
            push(a >> min(b, 63))
        elif op == 0x27:
            b, a = pop(), pop()
            push(a ^ b)
        elif 0x29 <= op <= 0x2E:  # eq ge gt le lt ne (signed)
            b, a = _signed(pop()), _signed(pop())
            push(int((a == b, a >= b, a > b, a <= b, a < b, a != b)[op - 0x29]))
        elif op == 0x2F:  # skip
            (off,) = struct.unpack_from("<h", expr, pos)
            pos += 2 + off
        elif op == 0x28:  # bra
            (off,) = struct.unpack_from("<h", expr, pos)
            pos += 2
            if pop():
                pos += off
        elif op == 0x96:  # nop
            pass
        elif op == 0x9F:  # stack_value
            pending = Piece("value", pop())
        elif op == 0x9E:  # implicit_value
            size, pos = read_uleb(expr, pos)
            pending = Piece("bytes", data=bytes(expr[pos:pos + size]))
            pos += size
        elif op in (0x93, 0x9D):  # piece, bit_piece
            size, pos = read_uleb(expr, pos)
            bit_off = 0
            if op == 0x9D:
                bit_off, pos = read_uleb(expr, pos)
                size_bytes = (size + 7) // 8
            else:
                size_bytes = size
            if pending is not None:
                p = pending
            elif stack:
                p = Piece("memory", pop())
            else:
                p = Piece("optimized")
            pieces.append(Piece(p.kind, p.value, size_bytes, p.data, bit_off))
            pending = None
            stack.clear()
        elif op in (0xA3, 0xF3):  # DW_OP_entry_value, DW_OP_GNU_entry_value
            size, pos = read_uleb(expr, pos)
            block = bytes(expr[pos:pos + size])
            pos += size
            if ctx.entry_value is None:
                raise ExprUnknown("entry value (DW_OP_entry_value)")
            push(ctx.entry_value(block))
        elif op in (0xA0, 0xF2):  # DW_OP_implicit_pointer, DW_OP_GNU_implicit_pointer
            raise ExprUnknown("implicit pointer (the pointed-to object was optimized out)")
        elif op in (0xFA,):  # DW_OP_GNU_parameter_ref
            raise ExprUnknown("parameter passed by the caller (DW_OP_GNU_parameter_ref)")
        else:
            raise ExprUnknown(f"unsupported DWARF operation {op:#x}")
    if pieces:
        if pending is not None or stack:
            p = pending or Piece("memory", stack[-1])
            pieces.append(p)
        return pieces
    if pending is not None:
        return [pending]
    if stack:
        return [Piece("memory", stack[-1])]
    return [Piece("optimized")]
