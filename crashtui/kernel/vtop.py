"""A kernel virtual address's page-table walk, level by level (crash's `vtop`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.pagetable import START_KERNEL_MAP
from crashtui.kernel.pagewalk import PageWalk, TableEntry

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

PRESENT, RW, USER, PWT, PCD, ACCESSED, DIRTY, PSE, GLOBAL = (1 << b for b in range(9))
PROTNONE = GLOBAL  # _PAGE_PROTNONE shares _PAGE_BIT_GLOBAL, meaningful when not present
NX = 1 << 63
ADDR_MASK = 0x000FFFFFFFFFF000
PTE_FLAGS = (("PRESENT", PRESENT), ("RW", RW), ("USER", USER), ("PWT", PWT), ("PCD", PCD),
             ("ACCESSED", ACCESSED), ("DIRTY", DIRTY))


def pte_flag_names(pte: int) -> list[str]:
    """crash's x86_64_translate_pte() names, in its order."""
    names = [n for n, bit in PTE_FLAGS if pte & bit]
    if pte & PSE and pte & PRESENT:
        names.append("PSE")
    if pte & PROTNONE and not pte & PRESENT:
        names.append("PROTNONE")
    elif pte & GLOBAL:
        names.append("GLOBAL")
    if pte & NX:
        names.append("NX")
    return names


def walk_kernel_address(kernel: Kernel, vaddr: int) -> PageWalk:
    """Walk the kernel page tables for `vaddr` (KernelReadError if a table is unreadable)."""
    if kernel.arch.name == "arm64":
        from crashtui.kernel.vtop_arm64 import walk_address

        pgd = kernel.vmcoreinfo.symbols.get("swapper_pg_dir") or kernel.symbol("swapper_pg_dir")
        return walk_address(kernel, pgd, vaddr)
    pgd_phys = kernel.pagetable.pgd_phys
    return _walk(kernel, pgd_phys, pgd_phys - kernel.phys_base + START_KERNEL_MAP, vaddr,
                 user=False)


def walk_user_address(kernel: Kernel, pgd: int, vaddr: int) -> PageWalk:
    """Walk a task's page tables (mm->pgd, a direct-map address) for a user address; the PGD
    entry is the walk's first entry, as crash's uvtop prints it."""
    if kernel.arch.name == "arm64":
        from crashtui.kernel.vtop_arm64 import walk_address

        return walk_address(kernel, pgd, vaddr)
    return _walk(kernel, kernel.translate(pgd), pgd, vaddr, user=True)


def _walk(kernel: Kernel, pgd_phys: int, pgd_virt: int, vaddr: int, user: bool) -> PageWalk:
    five = kernel.pagetable.five_level
    mask = ADDR_MASK & ~kernel.vmcoreinfo.numbers.get("sme_mask", 0)
    shifts = (48, 39, 30, 21, 12) if five else (39, 30, 21, 12)
    names = ("P4D", "PUD", "PMD", "PTE") if five else ("PUD", "PMD", "PTE")

    def entry(table: int, shift: int) -> tuple[int, int]:
        at = table + ((vaddr >> shift) & 0x1FF) * 8
        try:
            return at, int.from_bytes(kernel.dump.read_phys(at, 8), "little")
        except CrashtuiError as exc:
            raise KernelReadError(f"page table at {at:#x} unreadable: {exc.message}",
                                  vaddr) from exc

    at, top = entry(pgd_phys, shifts[0])
    walk = PageWalk(vaddr, pgd_virt, top)
    if user:
        walk.entries.append(TableEntry("PGD", at, top))
    value = top
    for name, shift in zip(names, shifts[1:], strict=True):
        if not value & PRESENT:
            return walk
        at, value = entry(value & mask, shift)
        walk.entries.append(TableEntry(name, at, value))
        if not value & PRESENT and not (user and name == "PTE" and value & PROTNONE):
            return walk
        if name in ("PUD", "PMD") and value & PSE:
            size = 1 << shift
            walk.page = value & mask & ~(size - 1)
            walk.page_size, walk.leaf = size, value
            walk.phys = walk.page + (vaddr & (size - 1))
            return walk
    walk.page, walk.leaf = value & mask, value
    walk.phys = walk.page + (vaddr & 0xFFF)
    return walk
