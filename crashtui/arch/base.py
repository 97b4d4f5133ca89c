"""The Arch interface every architecture module fills (see crashtui.arch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from crashtui.dumpfile import ElfNote
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.regs import CpuRegisters


@dataclass(frozen=True)
class DirectMap:
    """The kernel's linear map of RAM: [virt, virt + size) maps [phys, phys + size)
    (x86-64: page_offset_base and physical 0; arm64: PAGE_OFFSET and PHYS_OFFSET)."""

    virt: int
    phys: int
    size: int

    def contains(self, vaddr: int) -> bool:
        return self.virt <= vaddr < self.virt + self.size

    def to_phys(self, vaddr: int) -> int:
        return vaddr - self.virt + self.phys

    def to_virt(self, paddr: int) -> int | None:
        """The linear-map address of a physical address (None: outside the map)."""
        if not self.phys <= paddr < self.phys + self.size:
            return None
        return paddr - self.phys + self.virt


class Translator(Protocol):
    """Kernel virtual -> physical address translation (a page-table walker)."""

    def translate(self, vaddr: int) -> int: ...

    def walk(self, vaddr: int) -> int: ...


@dataclass(frozen=True)
class Arch:
    """What differs between architectures; subclasses fill the methods."""

    name: str  # crash's machine name: "x86_64", "arm64"
    elf_machine: int  # e_machine of its vmlinux and modules
    uts_machines: tuple[str, ...]  # utsname.machine values
    register_names: tuple[str, ...]  # NT_PRSTATUS pr_reg, in order
    pc: str  # the program counter's register name
    sp: str
    unwinder: str  # "orc" or "frame pointer"
    # Symbols at or above this address are in the kernel image and move with KASLR (below:
    # x86-64's per-CPU offsets, linked at 0).
    image_start: int
    # The lowest kernel address: below it is user space.
    kernel_start: int
    # thread_info.flags' TIF_SIGPENDING bit (arch/*/include/asm/thread_info.h)
    tif_sigpending: int = 2

    def kaslr_offset(self, kernel: Kernel) -> int:
        raise NotImplementedError

    def page_table(self, kernel: Kernel) -> Translator:
        raise NotImplementedError

    def prstatus_registers(self, notes: list[ElfNote]) -> list[CpuRegisters]:
        raise NotImplementedError

    def user_mode(self, registers: dict[str, int]) -> bool:
        raise NotImplementedError

    def is_user_address(self, addr: int) -> bool:
        return addr < self.kernel_start
