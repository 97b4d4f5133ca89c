"""x86-64 virtual → physical translation: 4/5-level page tables (arch/x86/include/asm/pgtable_types.h)."""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable

from crashtui.arch.base import DirectMap
from crashtui.errors import CrashtuiError, KernelReadError

START_KERNEL_MAP = 0xFFFFFFFF80000000  # __START_KERNEL_map: kernel text/data mapping
MODULES_VADDR = 0xFFFFFFFFC0000000  # end of the kernel image mapping (KERNEL_IMAGE_SIZE 1 GiB)

_PRESENT = 1 << 0
_PSE = 1 << 7  # a 1 GiB (PUD) or 2 MiB (PMD) leaf
_ADDR_MASK = 0x000FFFFFFFFFF000

ReadPhys = Callable[[int, int], bytes]


class PageTableWalker:
    """Translate kernel virtual addresses by walking the page tables in the dump."""

    def __init__(self, read_phys: ReadPhys, pgd_phys: int, *, five_level: bool = False,
                 phys_base: int = 0, sme_mask: int = 0, cache_pages: int = 65536) -> None:
        self._read_phys = read_phys
        self.pgd_phys = pgd_phys
        self.five_level = five_level
        self.phys_base = phys_base
        self._mask = _ADDR_MASK & ~sme_mask
        self.direct_map: DirectMap | None = None  # from page_offset_base
        self._cache: OrderedDict[int, int] = OrderedDict()
        self._cache_pages = cache_pages

    def set_direct_map(self, page_offset_base: int, size: int) -> None:
        """Enable the fast path for the linear mapping of all physical memory."""
        self.direct_map = DirectMap(page_offset_base, 0, size)

    def _entry(self, table_phys: int, index: int) -> int:
        try:
            raw = self._read_phys(table_phys + index * 8, 8)
        except CrashtuiError as exc:
            raise KernelReadError(f"page table page {table_phys:#x} unreadable: {exc.message}") from exc
        return int(struct.unpack("<Q", raw)[0])

    def translate(self, vaddr: int) -> int:
        """Return the physical address of `vaddr`, or raise KernelReadError if it is not mapped."""
        vaddr &= 0xFFFFFFFFFFFFFFFF
        if START_KERNEL_MAP <= vaddr < MODULES_VADDR:
            return vaddr - START_KERNEL_MAP + self.phys_base
        if self.direct_map is not None and self.direct_map.contains(vaddr):
            return self.direct_map.to_phys(vaddr)
        page = vaddr & ~0xFFF
        hit = self._cache.get(page)
        if hit is not None:
            self._cache.move_to_end(page)
            return hit | (vaddr & 0xFFF)
        paddr = self._walk(vaddr)
        self._cache[page] = paddr & ~0xFFF
        if len(self._cache) > self._cache_pages:
            self._cache.popitem(last=False)
        return paddr

    def translate_run(self, vaddr: int) -> tuple[int, int]:
        """(paddr, bytes from vaddr to the end of the page or large page that maps it): one
        walk for a whole 2 MiB / 1 GiB leaf, for bulk reads such as the vmemmap scan."""
        vaddr &= 0xFFFFFFFFFFFFFFFF
        if START_KERNEL_MAP <= vaddr < MODULES_VADDR or self.direct_map is not None and \
                self.direct_map.contains(vaddr):
            return self.translate(vaddr), 0x1000 - (vaddr & 0xFFF)
        table = self.pgd_phys
        shifts = (48, 39, 30, 21, 12) if self.five_level else (39, 30, 21, 12)
        for level, shift in enumerate(shifts):
            entry = self._entry(table, (vaddr >> shift) & 0x1FF)
            if not entry & _PRESENT:
                raise KernelReadError(f"address {vaddr:#x} is not mapped", vaddr)
            if level != len(shifts) - 1 and shift in (30, 21) and entry & _PSE:
                mask = (1 << shift) - 1
                return (entry & self._mask & ~mask) | (vaddr & mask), (mask + 1) - (vaddr & mask)
            table = entry & self._mask
        return table | (vaddr & 0xFFF), 0x1000 - (vaddr & 0xFFF)

    def walk(self, vaddr: int) -> int:
        """Translate by the page tables alone (no cache, no direct-map shortcut)."""
        return self._walk(vaddr & 0xFFFFFFFFFFFFFFFF)

    def _walk(self, vaddr: int) -> int:
        table = self.pgd_phys
        shifts = (48, 39, 30, 21, 12) if self.five_level else (39, 30, 21, 12)
        for level, shift in enumerate(shifts):
            entry = self._entry(table, (vaddr >> shift) & 0x1FF)
            if not entry & _PRESENT:
                raise KernelReadError(f"address {vaddr:#x} is not mapped", vaddr)
            leaf_size_shift = shift
            is_last = level == len(shifts) - 1
            if not is_last and shift in (30, 21) and entry & _PSE:
                mask = (1 << leaf_size_shift) - 1
                return (entry & self._mask & ~mask) | (vaddr & mask)
            table = entry & self._mask
        return table | (vaddr & 0xFFF)
