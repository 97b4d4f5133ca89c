"""The struct page array (mm_types.h), read as crash's `kmem -p` reads it: section by
section of SPARSEMEM (mem_section[] roots, SECTION_SIZE_BITS from VMCOREINFO), each present
section's pages with their flags, mapping, index and _refcount; flag names from the
kernel's own pageflag_names[] and enum pageflags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.mm import read_zero_filled
from crashtui.kernel.program import Kernel

MAX_SECTIONS = 1 << 20


@dataclass(frozen=True)
class PageRows:
    """The pages of one memory section, as parallel arrays."""

    first_pfn: int
    mem_map: int  # struct page of first_pfn
    flags: np.ndarray
    mapping: np.ndarray
    index: np.ndarray
    count: np.ndarray


def page_flag_enum(kernel: Kernel) -> list[tuple[str, int]]:
    """enum pageflags' enumerators in declaration order, without __NR_PAGEFLAGS (crash's
    `kmem -g` table: the flags, then their aliases)."""
    try:
        items = kernel.btf.enum("pageflags")
    except CrashtuiError as exc:
        raise KernelReadError(f"no enum pageflags: {exc}") from None
    return [(n, v) for n, v in items.items() if n != "__NR_PAGEFLAGS" and 0 <= v < 64]


def present_sections(kernel: Kernel) -> Iterator[tuple[int, int, int]]:
    """(section number, first pfn, mem_map of that pfn) of each section with a mem_map."""
    info = kernel.vmcoreinfo
    k = kernel
    page_size = k.sizeof("struct page")
    section_bits = info.number("SECTION_SIZE_BITS", 27)
    per_section = 1 << (section_bits - 12)
    ms_size = info.sizes.get("mem_section") or k.sizeof("struct mem_section")
    if not 8 <= ms_size <= 256:
        raise KernelReadError(f"implausible struct mem_section size {ms_size}")
    if "mem_section" in info.symbols:
        roots_addr = info.symbols["mem_section"]
    else:
        roots_addr = k.read_u64(k.symbol("mem_section"))
    per_root = 4096 // ms_size
    nroots = info.lengths.get("mem_section", 0)
    if not nroots:
        max_bits = info.number("MAX_PHYSMEM_BITS", 52 if info.pgtable_l5 else 46)
        nroots = max(1, (1 << max(0, max_bits - section_bits)) // per_root)
    nroots = min(nroots, k.dump.info.max_pfn // (per_section * per_root) + 1, MAX_SECTIONS)
    try:
        last_bit = k.btf.enumerator("SECTION_MAP_LAST_BIT")
    except CrashtuiError:
        last_bit = 5
    try:
        has_map = 1 << k.btf.enumerator("SECTION_HAS_MEM_MAP_BIT")
    except CrashtuiError:
        has_map = 2
    roots = np.frombuffer(k.read(roots_addr, 8 * nroots), "<u8").tolist()
    seen: set[int] = set()
    for r, root in enumerate(roots):
        if not root or root in seen:
            continue
        seen.add(root)
        secs = np.frombuffer(k.read(root, ms_size * per_root), "<u8")
        for i in range(per_root):
            coded = int(secs[i * ms_size // 8])
            if not coded & has_map:
                continue
            nr = r * per_root + i
            pfn = nr * per_section
            if pfn > k.dump.info.max_pfn:
                return
            mem_map = ((coded & ~((1 << last_bit) - 1)) + pfn * page_size) & (2**64 - 1)
            yield nr, pfn, mem_map


def section_pages(kernel: Kernel) -> Iterator[PageRows]:
    """Each present section's pages (unreadable parts read as zeros)."""
    k = kernel
    btf = k.btf
    size = k.sizeof("struct page")
    per_section = 1 << (k.vmcoreinfo.number("SECTION_SIZE_BITS", 27) - 12)
    index = "index" if btf.has_member("page", "index") else "__folio_index"
    o_flags, o_map = btf.offsetof("page", "flags"), btf.offsetof("page", "mapping")
    o_index = btf.offsetof("page", index)
    o_count = btf.offsetof("page", "_refcount") if btf.has_member("page", "_refcount") \
        else btf.offsetof("page", "_count")
    for _nr, pfn, mem_map in present_sections(k):
        count = per_section  # crash lists whole sections
        total = count * size
        buf = read_zero_filled(k, mem_map, total)  # by large page, as kmem -i's scan
        rows = np.frombuffer(buf, dtype=np.uint8).reshape(count, size)

        yield PageRows(pfn, mem_map, _column(rows, o_flags, 8, "<u8"),
                       _column(rows, o_map, 8, "<u8"), _column(rows, o_index, 8, "<u8"),
                       _column(rows, o_count, 4, "<i4"))


def _column(rows: np.ndarray, off: int, width: int, kind: str) -> np.ndarray:
    """One field of every row of a (pages x sizeof(struct page)) byte array."""
    return rows[:, off:off + width].copy().view(kind).ravel()
