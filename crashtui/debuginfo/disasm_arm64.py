"""AArch64 disassembly with capstone (its ARM64 mode), as the same Insn records disasm.py
makes for x86-64, so that `dis` formats both alike (`bl 0x... <sym>`).

Operands are rewritten to binutils' aarch64-dis.c layout, which gdb and so crash print:
a tab after the mnemonic; addressing-mode offsets (`[sp, #-16]!`, `[x0], #8`), shift amounts
and bit positions in decimal; arithmetic, logical and move immediates in hex (`#0x1`); a
pc-relative address (adr, adrp, branches) without the `#`; a condition by its first name
in binutils' aarch64_conds (`b.cc`, not `b.lo`) with the others as a comment, and a move's
immediate repeated in decimal as a comment.
"""

from __future__ import annotations

import re
from functools import lru_cache

import capstone
from capstone import arm64

from crashtui.debuginfo.disasm import Insn

_CALLS = frozenset(("bl", "blr", "blraa", "blraaz", "blrab", "blrabz"))
_RETS = frozenset(("ret", "retaa", "retab", "eret"))
# immediates binutils prints in hex (print_immediate_offset_address aside)
_HEX_IMM = frozenset(("add", "adds", "sub", "subs", "cmp", "cmn", "mov", "movz", "movk",
                      "movn", "and", "ands", "orr", "eor", "tst", "ccmp", "ccmn", "brk",
                      "hlt", "svc", "hvc", "smc", "udf", "msr"))
_MEM = re.compile(r"\[[^\]]*\]!?(?:, #-?(?:0x)?[0-9a-f]+)?")
_IMM = re.compile(r"#(-?)(0x)?([0-9a-f]+)")
_MOV_IMM = re.compile(r"([wx]\d+|[wx]zr|w?sp), #(-?)0x([0-9a-f]+)")
_SHIFT = re.compile(r"((?:lsl|lsr|asr|ror|msl|[us]xt[bhwx]) #)(0x)?([0-9a-f]+)")


# binutils' aarch64_conds (opcodes/aarch64-opc.c): each condition's names, the first printed
_CONDS = (("eq", "none"), ("ne", "any"), ("cs", "hs", "nlast"), ("cc", "lo", "ul", "last"),
          ("mi", "first"), ("pl", "nfrst"), ("vs",), ("vc",), ("hi", "pmore"), ("ls", "plast"),
          ("ge", "tcont"), ("lt", "tstop"), ("gt",), ("le",), ("al",), ("nv",))
_COND_NAMES = {name: names for names in _CONDS for name in names}
# a move's immediate is padded to this width before its comment (as gdb prints it)
_MOV_IMM_WIDTH = 23


def _number(m: re.Match[str]) -> int:
    """The value of an _IMM or _SHIFT match: digits in group 3, hex when group 2 is `0x`."""
    return int(m.group(3), 16 if m.group(2) else 10)


def _decimal(m: re.Match[str]) -> str:
    return f"#{m.group(1)}{_number(m)}"


def _hexadecimal(m: re.Match[str]) -> str:
    return f"#{m.group(1)}0x{_number(m):x}"


def _shift_decimal(m: re.Match[str]) -> str:
    return f"{m.group(1)}{_number(m)}"


def gnu_condition(mnemonic: str, op_str: str) -> tuple[str, str, str]:
    """(mnemonic, operands, note): `b.lo` as binutils' `b.cc  // b.lo, b.ul, b.last`, a
    conditional select's last operand `ls` with `\t// ls = plast`."""
    if mnemonic.startswith("b.") and mnemonic[2:] in _COND_NAMES:
        names = _COND_NAMES[mnemonic[2:]]
        others = ", ".join(f"b.{n}" for n in names[1:])
        return f"b.{names[0]}", op_str, f"  // {others}" if others else ""
    head, sep, last = op_str.rpartition(", ")
    if sep and last in _COND_NAMES:
        names = _COND_NAMES[last]
        note = f"\t// {names[0]} = {', '.join(names[1:])}" if len(names) > 1 else ""
        return mnemonic, f"{head}, {names[0]}", note
    return mnemonic, op_str, ""


def gnu_operands(mnemonic: str, op_str: str) -> str:
    """capstone's A64 operand text in binutils' layout (see the module docstring)."""
    if mnemonic in ("adr", "adrp"):
        return op_str.replace("#0x", "0x")
    text = _MEM.sub(lambda m: _IMM.sub(_decimal, m.group(0)), op_str)
    if mnemonic in _HEX_IMM:
        head, sep, shift = text.partition(", lsl #")
        text = _IMM.sub(_hexadecimal, head) + sep + shift
    else:
        text = _IMM.sub(_decimal, text)
    return _SHIFT.sub(_shift_decimal, text)


@lru_cache(maxsize=1)
def _engine() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    md.detail = True
    md.skipdata = True  # a literal pool word: `.inst` / (bad)
    return md


def disassemble(code: bytes, address: int, count: int = 0) -> list[Insn]:
    """Decode little-endian A64 `code` placed at `address` (at most `count` when > 0)."""
    out: list[Insn] = []
    for ci in _engine().disasm(code, address, count):
        raw = bytes(ci.bytes)
        if ci.id == 0:
            out.append(Insn(ci.address, ci.size, ".inst", f"0x{int.from_bytes(raw, 'little'):08x}",
                            raw, "data"))
            continue
        mn = ci.mnemonic
        kind = ("call" if mn in _CALLS else "ret" if mn in _RETS else
                "jump" if mn.startswith(("b", "cb", "tb")) and not mn.startswith("bic")
                and not mn.startswith(("bfi", "bfxil", "bfm", "bif", "bit", "bsl", "brk", "bti"))
                else "other")
        target = None
        ops = ci.operands
        if kind in ("call", "jump") and ops and ops[-1].type == arm64.ARM64_OP_IMM:
            target = ops[-1].imm & ((1 << 64) - 1)
        if target is not None:  # the target without `#`, a tested bit (tbz) in decimal
            head, sep, last = ci.op_str.rpartition(", ")
            op_str = gnu_operands(mn, head) + sep + last.replace("#0x", "0x")
        else:
            op_str = gnu_operands(mn, ci.op_str)
        mn, op_str, note = gnu_condition(mn, op_str)
        imm = _MOV_IMM.fullmatch(op_str) if mn == "mov" else None
        if imm is not None:  # the register's bits in hex, the signed value in the comment
            bits = 32 if imm.group(1)[0] == "w" else 64
            value = int(imm.group(3), 16) * (-1 if imm.group(2) else 1)
            op_str = f"{imm.group(1)}, " + f"#0x{value % (1 << bits):x}".ljust(_MOV_IMM_WIDTH)
            note = f"\t// #{value}"
        if mn in ("adr", "adrp") and ops and ops[-1].type == arm64.ARM64_OP_IMM:
            target = ops[-1].imm & ((1 << 64) - 1)  # gdb names the address it forms
        out.append(Insn(ci.address, ci.size, mn, op_str, raw, kind, target, tab=True,
                        note=note))
    return out
