"""What the faulting instruction says about the bad address: the x86 instruction at RIP decoded
with capstone, its memory operand's registers and values from the saved pt_regs.

When the address is a constant in the instruction itself (`mov 0x1,%esi`: `int *p = (int *)1`
folded into an absolute address), no register held it: `Origin.absolute` says so and no
register is named (%esi is where the load was going, not where the pointer was).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAGE_SIZE = 4096


@dataclass(frozen=True)
class BadRegister:
    """A register and the value in it that formed the faulting address."""

    name: str
    value: int



@dataclass(frozen=True)
class PageFault:
    """The x86 page-fault error code, decoded (arch/x86/include/asm/trap_pf.h)."""

    error_code: int
    address: int | None  # the faulting address (CR2 / the oops line)

    @property
    def access(self) -> str:
        """"instruction fetch", "write" or "read"."""
        if self.error_code & 0x10:
            return "instruction fetch"
        return "write" if self.error_code & 0x2 else "read"

    @property
    def mode(self) -> str:
        """"user" or "kernel": the privilege level of the access."""
        return "user" if self.error_code & 0x4 else "kernel"

    @property
    def cause(self) -> str:
        """Why the access faulted."""
        if self.error_code & 0x8:
            return "reserved bit set in a page table entry"
        if self.error_code & 0x20:
            return "protection-key violation"
        if self.error_code & 0x40:
            return "shadow-stack access"
        return "protection violation" if self.error_code & 0x1 else "not-present page"

    def text(self) -> str:
        """`read access in kernel mode, not-present page (error code 0x0000)`."""
        return (f"{self.access} access in {self.mode} mode, {self.cause} "
                f"(error code {self.error_code:#06x})")


@dataclass(frozen=True)
class Origin:
    """What the faulting instruction says about the bad address."""

    address: int  # of the instruction
    instruction: str  # GNU syntax, as crash's dis prints it: "mov    0x1,%esi"
    operand: str | None = None  # the memory operand, e.g. "0x8(%rax)"
    effective_address: int | None = None  # the operand's address from the saved registers
    register: BadRegister | None = None
    absolute: bool = False  # the address is a constant in the instruction (no register)
    access: str | None = None  # "read" | "write" | "read/write" per the instruction
    explanation: str = ""



_REG64 = {}
for _r in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp"):
    _REG64.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}"})
for _r in ("a", "b", "c", "d"):
    _REG64.update({f"{_r}l": f"r{_r}x", f"{_r}h": f"r{_r}x"})
_REG64.update({"sil": "rsi", "dil": "rdi", "bpl": "rbp", "spl": "rsp", "rip": "rip",
               "eip": "rip"})
for _n in range(8, 16):
    _REG64.update({f"r{_n}": f"r{_n}", f"r{_n}d": f"r{_n}", f"r{_n}w": f"r{_n}",
                   f"r{_n}b": f"r{_n}"})


def decode_origin(code: bytes, rip: int, registers: dict[str, int],
                  fault_address: int | None) -> Origin | None:
    """Which operand of the instruction at `rip` made the faulting address, from capstone's
    detail and the saved registers (None if the bytes do not decode)."""
    import capstone
    from capstone import x86

    from crashtui.debuginfo.disasm import disassemble

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    ci = next(md.disasm(code, rip, 1), None)
    if ci is None:
        return None
    gnu = disassemble(bytes(ci.bytes), rip, 1)
    text = gnu[0].text if gnu else f"{ci.mnemonic} {ci.op_str}"
    mem = [op for op in ci.operands if op.type == x86.X86_OP_MEM]
    if not mem:
        return Origin(rip, text, explanation="the instruction has no memory operand")
    op = mem[0]
    access = {1: "read", 2: "write", 3: "read/write"}.get(getattr(op, "access", 0) or 0)
    base = ci.reg_name(op.mem.base) if op.mem.base else None
    index = ci.reg_name(op.mem.index) if op.mem.index else None
    seg = ci.reg_name(op.mem.segment) if op.mem.segment else None
    disp, scale = op.mem.disp, op.mem.scale
    operand = _operand_text(text)

    def value(reg: str) -> int | None:
        if reg in ("rip", "eip"):
            return rip + ci.size
        return registers.get(_REG64.get(reg, reg))

    bval = value(base) if base else None
    ival = value(index) if index else None
    ea: int | None = None
    if (base is None or bval is not None) and (index is None or ival is not None):
        ea = ((bval or 0) + (ival or 0) * scale + disp) & 0xFFFFFFFFFFFFFFFF
    if seg in ("gs", "fs"):
        return Origin(rip, text, operand, None, None, False, access,
                      f"the address is {operand} relative to the %{seg} base (per-CPU data)")
    if base is None and index is None:
        return Origin(rip, text, operand, ea, None, True, access,
                      f"address {disp & 0xFFFFFFFFFFFFFFFF:#x} is encoded in the instruction "
                      "itself (absolute): no register held it")
    if base in ("rip", "eip"):
        return Origin(rip, text, operand, ea, None, False, access,
                      f"a %rip-relative address ({ea:#x}): a fixed address in the image")
    chosen = _pick_register(base, bval, index, ival, fault_address)
    reg = BadRegister(_REG64.get(chosen[0], chosen[0]), chosen[1]) if chosen else None
    explanation = ""
    if reg is not None:
        what = _describe_value(reg.value)
        explanation = (f"{reg.name.upper()} = {reg.value:#x}{what} formed the address"
                       + (f" {ea:#x}" if ea is not None else "") + f" ({operand})")
    return Origin(rip, text, operand, ea, reg, False, access, explanation)


def _operand_text(text: str) -> str | None:
    """The memory operand of a GNU-syntax instruction text."""
    m = re.search(r"(%\w+:)?-?(0x[0-9a-f]+)?\([^)]*\)|(?<![$\w%])(%\w+:)?-?0x[0-9a-f]+(?=,|$)",
                  text.split(None, 1)[1] if " " in text else "")
    return m.group(0) if m else None


def _pick_register(base: str | None, bval: int | None, index: str | None, ival: int | None,
                   fault: int | None) -> tuple[str, int] | None:
    """The register whose value made the address bad: the one that looks like a bad pointer
    (NULL-ish, non-canonical, near the fault address), else the base."""
    cands = [(r, v) for r, v in ((base, bval), (index, ival)) if r is not None and v is not None]
    if not cands:
        return None

    def bad(v: int) -> bool:
        return v < PAGE_SIZE or not _canonical(v) or (fault is not None and abs(v - fault) < PAGE_SIZE)

    for r, v in cands:
        if bad(v):
            return r, v
    return cands[0]


def _canonical(v: int) -> bool:
    top = v >> 47
    return top == 0 or top == 0x1FFFF


def _describe_value(v: int) -> str:
    if v == 0:
        return " (NULL)"
    if v < PAGE_SIZE:
        return " (a small offset from NULL)"
    if not _canonical(v):
        if (v >> 32) in (0xDEAD0000, 0xDEAD):
            return " (a list poison value: use after list_del)"
        if v & 0xFFFFFFFFFFFF0000 in (0x6B6B6B6B6B6B0000,):
            return " (slab poison 0x6b: use after free)"
        return " (not a canonical address)"
    return ""

