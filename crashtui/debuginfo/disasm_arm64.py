"""AArch64 disassembly with capstone (its ARM64 mode), as the same Insn records disasm.py
makes for x86-64, so that `dis` formats both alike (`bl 0x... <sym>`)."""

from __future__ import annotations

from functools import lru_cache

import capstone
from capstone import arm64

from crashtui.debuginfo.disasm import Insn

_CALLS = frozenset(("bl", "blr", "blraa", "blraaz", "blrab", "blrabz"))
_RETS = frozenset(("ret", "retaa", "retab", "eret"))


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
        op_str = ci.op_str.replace("#0x", "0x") if target is not None else ci.op_str
        out.append(Insn(ci.address, ci.size, mn, op_str, raw, kind, target))
    return out
