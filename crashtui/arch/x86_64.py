"""x86-64: delegates to the code kernel/ has always had (pagetable.py, regs.py, unwind.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.arch.base import Arch, Translator
from crashtui.kernel.pagetable import START_KERNEL_MAP, PageTableWalker
from crashtui.kernel.regs import USER_REGS, prstatus_registers, user_mode

if TYPE_CHECKING:
    from crashtui.dumpfile import ElfNote
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.regs import CpuRegisters

EM_X86_64 = 62


@dataclass(frozen=True)
class X86_64Arch(Arch):
    """x86-64: 4/5-level page tables, ORC, struct user_regs_struct in NT_PRSTATUS."""

    def kaslr_offset(self, kernel: Kernel) -> int:
        return kernel._kaslr_offset()

    def page_table(self, kernel: Kernel) -> Translator:
        """The walker from init_top_pgt (its physical address by __START_KERNEL_map)."""
        from crashtui.errors import DumpFormatError

        vi = kernel.vmcoreinfo
        pgd = vi.symbols.get("init_top_pgt") or kernel.symbol_or_none("init_top_pgt")
        if pgd is None:
            raise DumpFormatError("VMCOREINFO names no init_top_pgt; cannot walk page tables",
                                  kernel.dump.path)
        return PageTableWalker(kernel.dump.read_phys, pgd - START_KERNEL_MAP + kernel.phys_base,
                               five_level=vi.pgtable_l5, phys_base=kernel.phys_base,
                               sme_mask=vi.numbers.get("sme_mask", 0))

    def prstatus_registers(self, notes: list[ElfNote]) -> list[CpuRegisters]:
        return prstatus_registers(notes)

    def user_mode(self, registers: dict[str, int]) -> bool:
        return user_mode(registers)


X86_64 = X86_64Arch(name="x86_64", elf_machine=EM_X86_64, uts_machines=("x86_64",),
                    register_names=USER_REGS, pc="rip", sp="rsp", unwinder="orc",
                    image_start=START_KERNEL_MAP, kernel_start=0xFFFF800000000000)
