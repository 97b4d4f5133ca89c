"""CPU registers: NT_PRSTATUS notes and saved `struct pt_regs` (arch/x86/include/asm/ptrace.h)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.dumpfile import ElfNote
    from crashtui.kernel.program import Kernel

NT_PRSTATUS = 1

# struct elf_prstatus (include/linux/elfcore.h) on x86-64: pr_pid at 32, pr_reg at 112 holding
# struct user_regs_struct (arch/x86/include/asm/user_64.h) in this order.
PRSTATUS_PID_OFFSET = 32
PRSTATUS_REG_OFFSET = 112
USER_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
             "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss", "fs_base",
             "gs_base", "ds", "es", "fs", "gs")
_USER_REGS = struct.Struct(f"<{len(USER_REGS)}Q")

# struct pt_regs (arch/x86/include/asm/ptrace.h, x86-64): member names as the kernel spells
# them, mapped to the names crash prints; offsets are those of every kernel since 2.6.25.
PT_REGS_MEMBERS = (("r15", "r15"), ("r14", "r14"), ("r13", "r13"), ("r12", "r12"),
                   ("bp", "rbp"), ("bx", "rbx"), ("r11", "r11"), ("r10", "r10"), ("r9", "r9"),
                   ("r8", "r8"), ("ax", "rax"), ("cx", "rcx"), ("dx", "rdx"), ("si", "rsi"),
                   ("di", "rdi"), ("orig_ax", "orig_rax"), ("ip", "rip"), ("cs", "cs"),
                   ("flags", "rflags"), ("sp", "rsp"), ("ss", "ss"))
PT_REGS_SIZE = 8 * len(PT_REGS_MEMBERS)
# The hardware iret frame is the last five words of pt_regs (ip, cs, flags, sp, ss).
IRET_FRAME_OFFSET = 8 * 16
IRET_FRAME_SIZE = 8 * 5
IRET_REGS = ("rip", "cs", "rflags", "rsp", "ss")


@dataclass(frozen=True)
class CpuRegisters:
    """One CPU's registers from its NT_PRSTATUS note."""

    cpu: int
    pid: int  # pr_pid: the task running on that CPU (0 = idle)
    registers: dict[str, int]

    @property
    def user_mode(self) -> bool:
        return user_mode(self.registers)


def user_mode(registers: dict[str, int]) -> bool:
    """True when the saved CS has RPL 3 (the CPU was running user code)."""
    return bool(registers.get("cs", 0) & 3)


def parse_prstatus(desc: bytes) -> tuple[int, dict[str, int]]:
    """(pr_pid, registers) from an x86-64 NT_PRSTATUS descriptor (336 bytes)."""
    end = PRSTATUS_REG_OFFSET + _USER_REGS.size
    if len(desc) < end:
        raise CrashtuiError(f"NT_PRSTATUS note too short ({len(desc)} bytes, need {end})")
    pid = int(struct.unpack_from("<i", desc, PRSTATUS_PID_OFFSET)[0])
    values = _USER_REGS.unpack_from(desc, PRSTATUS_REG_OFFSET)
    return pid, {name: int(v) for name, v in zip(USER_REGS, values, strict=True)}


def prstatus_registers(notes: list[ElfNote]) -> list[CpuRegisters]:
    """Every CPU's NT_PRSTATUS registers; the notes' order is the CPU order (kdump, vmcore)."""
    out: list[CpuRegisters] = []
    for note in notes:
        if note.type != NT_PRSTATUS or note.name not in ("CORE", "LINUX"):
            continue
        try:
            pid, regs = parse_prstatus(note.desc)
        except CrashtuiError:
            continue
        out.append(CpuRegisters(len(out), pid, regs))
    return out


class PtRegsReader:
    """Reads saved `struct pt_regs` from kernel memory (offsets from BTF when available)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        offsets: list[tuple[str, int]] = []
        try:
            for member, name in PT_REGS_MEMBERS:
                offsets.append((name, kernel.offsetof("pt_regs", member)))
            self.size = kernel.sizeof("struct pt_regs")
        except CrashtuiError:
            offsets = [(name, 8 * i) for i, (_, name) in enumerate(PT_REGS_MEMBERS)]
            self.size = PT_REGS_SIZE
        self.offsets = dict(offsets)
        self.iret_offset = self.offsets["rip"]

    def read(self, addr: int) -> dict[str, int]:
        """All registers of the pt_regs at `addr` (KernelReadError if unreadable)."""
        raw = self.kernel.read(addr, self.size)
        return {name: int.from_bytes(raw[off:off + 8], "little")
                for name, off in self.offsets.items()}

    def read_iret(self, iret_addr: int) -> dict[str, int]:
        """The five hardware-saved registers of an iret frame at `iret_addr`."""
        raw = self.kernel.read(iret_addr, IRET_FRAME_SIZE)
        vals = struct.unpack("<5Q", raw)
        return {name: int(v) for name, v in zip(IRET_REGS, vals, strict=True)}

    def offset_of(self, name: str) -> int:
        """Offset of a register (crash's name, e.g. "rbp") inside struct pt_regs."""
        try:
            return self.offsets[name]
        except KeyError:
            raise KernelReadError(f"pt_regs has no register {name}") from None
