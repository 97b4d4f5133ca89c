"""x86-64 disassembly with capstone, printed the way crash (its gdb) does in `dis` / `dis -l`.

Capstone's AT&T output differs from GNU's (binutils opcodes, which gdb and hence crash use):
it always writes a size suffix (`movq`, `callq`), decimal immediates, `, ` between operands
and drops `0x0` displacements and `,1` scales. `gnu_style` rewrites each instruction into the
GNU form: suffix only when no register operand fixes the size (and never on the 64-bit
default of call/jmp/ret/push/pop), hex immediates at the operand's width, `disp(base,index,
scale)` with an encoded zero displacement kept, segment overrides inside the operand
(`nopw %cs:0x0(%rax,%rax,1)`, as gdb 10 prints it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import capstone
from capstone import x86

# What a symbolizer may return for an address: "name+off" text, (name, offset), or None.
Symbolizer = Callable[[int], "str | tuple[str, int] | None"]

_SIZE_SUFFIX = frozenset("bwlq")
# 64-bit default operand size: GNU prints these without a suffix (binutils >= 2.35).
_DEFAULT64 = frozenset(("call", "jmp", "ret", "push", "pop", "leave", "enter", "lcall",
                        "ljmp", "lret", "pushf", "popf"))
_SHIFTS = frozenset(("shl", "shr", "sal", "sar", "rol", "ror", "rcl", "rcr"))
_PREFIX_WORDS = frozenset(("lock", "rep", "repe", "repz", "repne", "repnz", "notrack", "bnd",
                           "xacquire", "xrelease", "data16"))
_STRING_OPS = frozenset(("stos", "lods", "scas", "movs", "cmps", "ins", "outs"))
_SEGMENT_PREFIX = {0x2E: "cs", 0x3E: "ds", 0x26: "es", 0x36: "ss", 0x64: "fs", 0x65: "gs"}
_FTRACE_NOP = bytes.fromhex("0f1f440000")  # the 5-byte nop ftrace patches __fentry__ calls to
_ENDBR64 = bytes.fromhex("f30f1efa")
_MEM_RE = re.compile(r"^(\*?)(%\w+:)?(-?0x[0-9a-f]+|-?\d+)?(?:\(([^)]*)\))?$")


@dataclass(frozen=True, slots=True)
class Insn:
    """One decoded instruction, mnemonic and operands in GNU (gdb/crash) AT&T syntax."""

    address: int
    size: int
    mnemonic: str
    op_str: str
    bytes: bytes
    kind: str = "other"  # 'call' | 'jump' | 'ret' | 'other' | 'data' (an undecodable byte)
    target: int | None = None  # direct call/jump destination
    rip_target: int | None = None  # address of a %rip-relative memory operand
    tab: bool = False  # binutils' A64 layout: a tab after the mnemonic, not padding to 6
    note: str = ""  # binutils' trailing comment (A64: `\t// #1`), after any annotation

    @property
    def text(self) -> str:
        """`mnemonic operands` laid out like objdump/gdb (mnemonic padded to 6)."""
        if not self.op_str:
            return self.mnemonic
        return f"{self.mnemonic}\t{self.op_str}" if self.tab else \
            f"{self.mnemonic:<6} {self.op_str}"


class LineLookup(Protocol):
    """What the `dis -l` formatter needs: the source line of an address."""

    def __call__(self, addr: int) -> Any: ...


@lru_cache(maxsize=2)
def _engine(syntax: str) -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT if syntax == "att" else capstone.CS_OPT_SYNTAX_INTEL
    md.detail = True
    md.skipdata = True  # keep going past undecodable bytes (.byte), as gdb does
    return md


def disassemble(code: bytes, address: int, count: int = 0) -> list[Insn]:
    """Decode `code` placed at `address` (at most `count` instructions when count > 0)."""
    att = _engine("att")
    intel = _engine("intel")
    out: list[Insn] = []
    for ci in att.disasm(code, address, count):
        if ci.id == 0:  # skipdata: an undecodable byte, which gdb shows as "(bad)"
            out.append(Insn(ci.address, ci.size, "(bad)", "", bytes(ci.bytes), "data"))
            continue
        intel_mn = next(intel.disasm(bytes(ci.bytes), ci.address, 1)).mnemonic
        out.append(gnu_style(ci, intel_mn))
    return out


def _kind(ci: Any) -> str:
    groups = set(ci.groups)
    if x86.X86_GRP_CALL in groups:
        return "call"
    if x86.X86_GRP_RET in groups or x86.X86_GRP_IRET in groups:
        return "ret"
    if x86.X86_GRP_JUMP in groups:
        return "jump"
    return "other"


def _split_operands(op_str: str) -> list[str]:
    """Split capstone's `a, b(c, d), e` at top-level commas."""
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in op_str:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _hex_signed(v: int) -> str:
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


def gnu_style(ci: Any, intel_mnemonic: str) -> Insn:
    """Rewrite one capstone (AT&T, detail on) instruction into GNU objdump/gdb syntax."""
    kind = _kind(ci)
    raw = bytes(ci.bytes)
    if raw == b"\x66\x90":
        return Insn(ci.address, ci.size, "xchg", "%ax,%ax", raw)  # GNU's name for 66 90
    words = ci.mnemonic.split()
    mn = words[-1] if words else ci.mnemonic
    prefixes = words[:-1]
    base = intel_mnemonic.split()[-1] if intel_mnemonic else mn
    string_op = mn[:-1] in _STRING_OPS and mn[-1] in _SIZE_SUFFIX
    if string_op or mn in ("pushfq", "popfq"):
        base = mn[:-1]
    texts = _split_operands(ci.op_str)
    if ci.opcode[0] in (0xD0, 0xD1) and texts and texts[0] in ("$1", "$0x1"):
        texts = texts[1:]  # shift/rotate by one: GNU writes no count operand
    if base in ("in", "out"):
        texts = ["(%dx)" if t == "%dx" else t for t in texts]  # the I/O port in %dx
    if string_op:  # implicit segments of the string operands
        texts = ["%es:(%rdi)" if t == "(%rdi)" else "%ds:(%rsi)" if t == "(%rsi)" else t
                 for t in texts]
    detail = list(ci.operands)
    imm_ops = [o for o in detail if o.type == x86.X86_OP_IMM]
    mem_ops = [o for o in detail if o.type == x86.X86_OP_MEM]
    has_reg = False
    target: int | None = None
    rip_target: int | None = None
    mod = (ci.modrm >> 6) & 3
    ops: list[str] = []
    for t in texts:
        if t.startswith("$"):
            op = imm_ops.pop(0) if imm_ops else None
            if op is not None:
                bits = 8 * (op.size or 8)
                t = f"$0x{op.imm & ((1 << bits) - 1):x}"
            ops.append(t)
        elif t == "(%dx)":
            ops.append(t)
        elif t.startswith("%") and ":" not in t:
            has_reg = True
            ops.append(t)
        elif t.startswith("*%"):
            has_reg = True
            ops.append(t)
        elif kind in ("call", "jump") and re.fullmatch(r"0x[0-9a-f]+", t):
            target = int(t, 16)
            ops.append(t)
        elif t.startswith(("%es:(%rdi)", "%ds:(%rsi)")) and string_op:
            ops.append(t)
        else:
            mop = mem_ops.pop(0) if mem_ops else None
            ops.append(_gnu_memory(t, mop, mod, ci))
            if mop is not None and mop.mem.base == x86.X86_REG_RIP:
                rip_target = (ci.address + ci.size + mop.mem.disp) & 0xFFFFFFFFFFFFFFFF
    # Size suffix (binutils i386-dis.c): dropped on the 64-bit defaults, and where a register
    # operand already gives the size (not a shift count in %cl).
    if mn != base and len(mn) == len(base) + 1 and mn[-1] in _SIZE_SUFFIX and \
            mn.startswith(base):
        size_from_reg = has_reg and not (base in _SHIFTS and texts and texts[0] == "%cl"
                                         and len(texts) == 2 and not texts[1].startswith("%"))
        if base in _DEFAULT64 or size_from_reg or base == "movabs" or \
                base in ("pushf", "popf"):
            mn = base
    pre = [p for p in prefixes if p in _PREFIX_WORDS] + ["data16"] * _extra_data16(raw)
    if not any(o.type == x86.X86_OP_MEM for o in detail):
        # a segment override on an instruction without memory operand (e.g. `cs call`
        # padding before retpoline thunks) is printed as a prefix word
        seg = next((_SEGMENT_PREFIX[b] for b in raw[:ci.size - 1] if b in _SEGMENT_PREFIX
                    and raw.index(b) < len(raw) - 1 and _is_prefix_run(raw, b)), None)
        if seg:
            pre.append(seg)
    mnemonic = " ".join(pre + [mn])
    return Insn(ci.address, ci.size, mnemonic, ",".join(ops), bytes(ci.bytes), kind, target,
                rip_target)


def _is_prefix_run(raw: bytes, b: int) -> bool:
    """True if byte b occurs among the legacy prefixes at the start of raw."""
    for x in raw:
        if x == b:
            return True
        if x not in (0x66, 0x67, 0xF0, 0xF2, 0xF3, *_SEGMENT_PREFIX):
            return False
    return False


def _extra_data16(raw: bytes) -> int:
    """Operand-size prefixes beyond the first (GNU prints them as `data16`)."""
    n = 0
    for b in raw:
        if b == 0x66:
            n += 1
        elif b in (0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65, 0xF0, 0xF2, 0xF3):
            continue
        else:
            break
    return max(0, n - 1)


def _gnu_memory(t: str, mop: Any, mod: int, ci: Any) -> str:
    """`%seg:disp(base, index, scale)` → GNU `%seg:disp(base,index,scale)`."""
    m = _MEM_RE.match(t.replace(" ", ""))
    if m is None:
        return t.replace(", ", ",")
    star, seg, disp, inner = m.group(1), m.group(2) or "", m.group(3), m.group(4)
    if disp is not None and not disp.startswith(("0x", "-0x")):
        disp = _hex_signed(int(disp))
    if inner is None:  # absolute address
        return f"{star}{seg}{disp or '0x0'}"
    regs = inner.split(",")
    if len(regs) >= 2 and regs[1]:
        while len(regs) < 3:
            regs.append("1")
    if disp is None and mop is not None and (
            mod in (1, 2) or regs[0] in ("%rip", "%eip", "") or (mod == 0 and not regs[0])):
        disp = "0x0"  # an encoded zero displacement is printed (disp8/disp32, %rip, no base)
    return f"{star}{seg}{disp or ''}({','.join(regs)})"


def _sym_text(sym: str | tuple[str, int] | None) -> str | None:
    if sym is None:
        return None
    if isinstance(sym, str):
        return sym
    name, off = sym
    return f"{name}+{off}" if off else name


def format_insn(insn: Insn, symbolize: Symbolizer | None = None, *,
                ftrace_nop: bool = False) -> str:
    """`0xADDR <func+off>:\\tmnemonic operands` with gdb's annotations: `<sym+off>` after a
    direct call/jump target, `# 0xADDR <sym+off>` after a %rip-relative operand, and
    crash's ` [FTRACE NOP]` when ftrace_nop is set."""
    here = _sym_text(symbolize(insn.address)) if symbolize else None
    head = f"0x{insn.address:x} <{here}>:" if here else f"0x{insn.address:x}:"
    text = insn.text
    if insn.target is not None and symbolize is not None:
        sym = _sym_text(symbolize(insn.target))
        if sym:
            text += f" <{sym}>"
    if insn.rip_target is not None:
        sym = _sym_text(symbolize(insn.rip_target)) if symbolize else None
        text += f"        # 0x{insn.rip_target:x}" + (f" <{sym}>" if sym else "")
    if ftrace_nop:
        text += " [FTRACE NOP]"
    return f"{head}\t{text}{insn.note}"


def _offset_of(symbolize: Symbolizer | None, addr: int) -> int | None:
    if symbolize is None:
        return None
    sym = symbolize(addr)
    if sym is None:
        return None
    if isinstance(sym, tuple):
        return sym[1]
    name, plus, off = sym.rpartition("+")
    if plus and off.isdigit():
        return int(off)
    return 0


def is_ftrace_nop(insns: Sequence[Insn], i: int, symbolize: Symbolizer | None) -> bool:
    """True for the nop ftrace leaves at a function's entry (after endbr64 with IBT)."""
    insn = insns[i]
    if insn.bytes != _FTRACE_NOP:
        return False
    off = _offset_of(symbolize, insn.address)
    if off == 0:
        return True
    return off == 4 and i > 0 and insns[i - 1].bytes == _ENDBR64


def format_listing(insns: Iterable[Insn], symbolize: Symbolizer | None = None,
                   source_line: LineLookup | None = None, *, ftrace: bool = True) -> list[str]:
    """crash `dis` / `dis -l` output lines: with source_line (addr → object printed as
    `file: line`, or None), a source line is printed whenever it changes."""
    out: list[str] = []
    seq = list(insns)
    last: str | None = None
    for i, insn in enumerate(seq):
        if source_line is not None:
            sl = source_line(insn.address)
            if sl is not None:
                where = str(sl)
                if where != last:
                    out.append(where)
                    last = where
        out.append(format_insn(insn, symbolize,
                               ftrace_nop=ftrace and is_ftrace_nop(seq, i, symbolize)))
    return out


__all__ = ["Insn", "disassemble", "format_insn", "format_listing", "gnu_style",
           "is_ftrace_nop"]
