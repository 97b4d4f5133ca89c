"""What an arm64 synchronous exception says about itself: the ESR the oops printed, decoded
(arch/arm64/include/asm/esr.h, arch/arm64/mm/fault.c's fault_info[]), and the load or store
at the PC decoded with capstone, its base/index registers and values from the saved pt_regs.

arm64's pt_regs has no ESR (the kernel passes it to die() as an argument): the oops's own
`ESR = 0x...` / `Internal error: Oops: <esr>` line is where it survives.
"""

from __future__ import annotations

from dataclasses import dataclass

from crashtui.analysis.x86origin import PAGE_SIZE, BadRegister, Origin

# ESR_ELx_EC values (esr.h) the kernel can take at EL1, and what crash/the oops call them.
EXCEPTION_CLASSES = {
    0x00: "unknown reason", 0x0D: "branch target exception", 0x15: "SVC (AArch64)",
    0x18: "system register trap", 0x1C: "pointer authentication failure",
    0x20: "instruction abort (lower EL)", 0x21: "instruction abort (current EL)",
    0x22: "PC alignment fault", 0x24: "data abort (lower EL)", 0x25: "data abort (current EL)",
    0x26: "SP alignment fault", 0x2C: "floating-point exception", 0x2F: "SError interrupt",
    0x30: "breakpoint (lower EL)", 0x31: "breakpoint (current EL)",
    0x32: "software step (lower EL)", 0x33: "software step (current EL)",
    0x34: "watchpoint (lower EL)", 0x35: "watchpoint (current EL)", 0x3C: "BRK instruction",
}
_ABORTS = frozenset((0x20, 0x21, 0x24, 0x25))


def fault_status(fsc: int) -> str:
    """The name of an abort's fault status code (fault.c's fault_info[])."""
    level = fsc & 3
    if fsc in (0x29, 0x2B):  # FEAT_LPA2's level -1
        return "level -1 " + ("address size fault" if fsc == 0x29 else "translation fault")
    if fsc <= 0x03:
        return f"level {level} address size fault"
    if fsc <= 0x07:
        return f"level {level} translation fault"
    if 0x08 <= fsc <= 0x0B:
        return f"level {level} access flag fault"
    if 0x0C <= fsc <= 0x0F:
        return f"level {level} permission fault"
    return {0x10: "synchronous external abort", 0x11: "synchronous tag check fault",
            0x21: "alignment fault", 0x30: "TLB conflict abort",
            0x31: "unsupported atomic hardware update fault"}.get(fsc, f"fault status {fsc:#x}")


@dataclass(frozen=True)
class Arm64Fault:
    """An arm64 exception syndrome (ESR_ELx), decoded; the same questions PageFault answers."""

    error_code: int  # the ESR
    address: int | None  # FAR: the faulting address, as the oops line names it

    @property
    def exception_class(self) -> int:
        """ESR_ELx_EC."""
        return (self.error_code >> 26) & 0x3F

    @property
    def is_abort(self) -> bool:
        """A data or instruction abort (the memory faults)."""
        return self.exception_class in _ABORTS

    @property
    def access(self) -> str:
        """"instruction fetch", "write", "cache maintenance" or "read"."""
        ec, iss = self.exception_class, self.error_code & 0x1FFFFFF
        if ec in (0x20, 0x21):
            return "instruction fetch"
        if iss & (1 << 8):  # ESR_ELx_CM
            return "cache maintenance"
        return "write" if iss & (1 << 6) else "read"  # ESR_ELx_WNR

    @property
    def mode(self) -> str:
        """"kernel" for an exception taken from EL1, "user" from EL0."""
        return "user" if self.exception_class in (0x20, 0x24, 0x30, 0x32, 0x34) else "kernel"

    @property
    def cause(self) -> str:
        """Why the access faulted (the abort's FSC), or the exception class."""
        if self.is_abort:
            return fault_status(self.error_code & 0x3F)
        return EXCEPTION_CLASSES.get(self.exception_class,
                                     f"exception class {self.exception_class:#x}")

    def text(self) -> str:
        """`read access in kernel mode, level 2 translation fault (ESR 0x96000006: data abort
        (current EL))`."""
        ec = EXCEPTION_CLASSES.get(self.exception_class, f"EC {self.exception_class:#x}")
        if not self.is_abort:
            return f"{ec} (ESR {self.error_code:#x})"
        return (f"{self.access} access in {self.mode} mode, {self.cause} "
                f"(ESR {self.error_code:#x}: {ec})")


_LOADS = ("ld", "prfm")
_BOTH = ("cas", "swp", "ldadd", "ldclr", "ldeor", "ldset", "ldsmax", "ldsmin", "ldumax",
         "ldumin", "stadd", "stclr", "steor", "stset", "stsmax", "stsmin", "stumax", "stumin")


def _xreg(name: str) -> str:
    """The 64-bit register a capstone register name is part of (w1 -> x1, fp -> x29)."""
    if name in ("fp", "w29"):
        return "x29"
    if name in ("lr", "w30"):
        return "x30"
    if name in ("wsp", "sp"):
        return "sp"
    if name.startswith("w") and name[1:].isdigit():
        return "x" + name[1:]
    return name


def describe_value(v: int) -> str:
    """What a pointer's value says by itself on arm64 (NULL, poison, ...), or ""."""
    if v == 0:
        return " (NULL)"
    if v < PAGE_SIZE:
        return " (a small offset from NULL)"
    if (v >> 48) == 0xDEAD:  # POISON_POINTER_DELTA (CONFIG_ILLEGAL_POINTER_VALUE)
        return " (a list poison value: use after list_del)"
    if v & 0xFFFFFFFFFFFF0000 == 0x6B6B6B6B6B6B0000:
        return " (slab poison 0x6b: use after free)"
    return ""


def decode_origin(code: bytes, pc: int, registers: dict[str, int],
                  fault_address: int | None) -> Origin | None:
    """Which register of the A64 load/store at `pc` made the faulting address, from
    capstone's detail and the saved registers (None if the word does not decode)."""
    import capstone
    from capstone import arm64

    from crashtui.debuginfo.disasm_arm64 import disassemble

    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    md.detail = True
    ci = next(md.disasm(code[:4], pc, 1), None)
    if ci is None:
        return None
    insn = disassemble(bytes(ci.bytes), pc, 1)
    # dis's text with its tab a space: it goes into tables and one-line summaries
    text = (insn[0].text + insn[0].note).replace("\t", " ") if insn else \
        f"{ci.mnemonic} {ci.op_str}"
    mem = [op for op in ci.operands if op.type == arm64.ARM64_OP_MEM]
    if not mem:
        return Origin(pc, text, explanation="the instruction has no memory operand")
    op = mem[0]
    mn = ci.mnemonic
    access = ("read/write" if mn.startswith(_BOTH) else
              "read" if mn.startswith(_LOADS) else "write" if mn.startswith("st") else None)
    base = _xreg(ci.reg_name(op.mem.base)) if op.mem.base else None
    index = _xreg(ci.reg_name(op.mem.index)) if op.mem.index else None
    operand = "[" + ci.op_str.split("[", 1)[1] if "[" in ci.op_str else None
    bval = registers.get(base) if base else None
    ival = registers.get(index) if index else None
    ea: int | None = None
    if (base is None or bval is not None) and (index is None or ival is not None):
        # a post-index immediate (`[x1], #8`) is its own operand: disp is 0 then
        shift = op.shift.value if index and op.shift.type == arm64.ARM64_SFT_LSL else 0
        ea = ((bval or 0) + ((ival or 0) << shift) + op.mem.disp) & 0xFFFFFFFFFFFFFFFF
    cands = [(r, v) for r, v in ((base, bval), (index, ival)) if r is not None and v is not None]
    chosen = next(((r, v) for r, v in cands
                   if v < PAGE_SIZE or describe_value(v) or
                   (fault_address is not None and abs(v - fault_address) < PAGE_SIZE)),
                  cands[0] if cands else None)
    reg = BadRegister(chosen[0], chosen[1]) if chosen else None
    explanation = ""
    if reg is not None:
        explanation = (f"{reg.name.upper()} = {reg.value:#x}{describe_value(reg.value)} formed "
                       f"the address" + (f" {ea:#x}" if ea is not None else "")
                       + (f" ({operand})" if operand else ""))
    return Origin(pc, text, operand, ea, reg, False, access, explanation)
