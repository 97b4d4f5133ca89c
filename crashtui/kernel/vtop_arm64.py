"""An arm64 address's page-table walk, level by level (crash's arm64 `vtop`).

4 KiB granule (arch/arm64/include/asm/pgtable-hwdef.h): 3 to 5 levels of 512 descriptors;
bit 0 valid, bit 1 table (or page, at the last level) versus block (1 GiB at the PUD level,
2 MiB at the PMD). The kernel's tables hang from swapper_pg_dir (TTBR1), a task's from its
mm->pgd (TTBR0). crash prints each entry by its kernel virtual address: the PGD's in the
table's own mapping, the lower ones through the linear map (PTOV).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from crashtui.arch.arm64 import ARM64, Arm64PageTable
from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.pagewalk import PageWalk, TableEntry

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

# crash's arm64_translate_pte() names, in its order (defs.h PTE_*)
PTE_FLAGS = (("VALID", 1 << 0), ("USER", 1 << 6), ("RDONLY", 1 << 7), ("SHARED", 3 << 8),
             ("AF", 1 << 10), ("NG", 1 << 11), ("PXN", 1 << 53), ("UXN", 1 << 54),
             ("DIRTY", 1 << 55), ("SPECIAL", 1 << 56))
LEVEL_NAMES = {3: ("PGD", "PMD", "PTE"), 4: ("PGD", "PUD", "PMD", "PTE"),
               5: ("PGD", "P4D", "PUD", "PMD", "PTE")}


def pte_flag_names(pte: int) -> list[str]:
    """The flags crash names for an arm64 descriptor."""
    return [name for name, bits in PTE_FLAGS if pte & bits]


def walk_address(kernel: Kernel, pgd_virt: int, vaddr: int) -> PageWalk:
    """Walk the tables at `pgd_virt` (swapper_pg_dir or a task's mm->pgd) for `vaddr`."""
    layout = ARM64.layout(kernel)
    tables = cast(Arm64PageTable, kernel.pagetable)
    dm = tables.direct_map
    levels = layout.levels
    names = LEVEL_NAMES.get(levels)
    if names is None:
        raise KernelReadError(f"{levels}-level arm64 page tables are not supported", vaddr)
    try:
        table = kernel.translate(pgd_virt)
    except CrashtuiError as exc:
        raise KernelReadError(f"page directory {pgd_virt:#x}: {exc.message}", vaddr) from exc
    walk = PageWalk(vaddr, pgd_virt, 0)
    table_virt = pgd_virt
    try:
        for d in tables.descriptors(vaddr, table):
            walk.entries.append(TableEntry(names[d.level], table_virt + 8 * d.index, d.value))
            if not d.valid:
                break
            out = tables.descriptor_address(d.value)
            if d.leaf:
                size = 1 << d.shift
                walk.page, walk.page_size, walk.leaf = out & ~(size - 1), size, d.value
                walk.phys = walk.page + (vaddr & (size - 1))
                break
            virt = dm.to_virt(out) if dm is not None else None
            table_virt = virt if virt is not None else out
    except KernelReadError as exc:  # a table the dump lacks
        raise KernelReadError(exc.message, vaddr) from exc
    return walk
