"""The struct page array (mm_types.h), read as crash's `kmem -p` reads it: section by
section of SPARSEMEM (mem_section[] roots, SECTION_SIZE_BITS from VMCOREINFO), each present
section's pages with their flags, mapping, index and _refcount; flag names from the
kernel's own pageflag_names[] and enum pageflags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
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


@dataclass(frozen=True)
class MemSection:
    """One SPARSEMEM section whose mem_section.section_mem_map is set (mmzone.h)."""

    nr: int
    first_pfn: int
    mem_map: int  # struct page of first_pfn (section_mem_map decoded)
    has_mem_map: bool  # SECTION_HAS_MEM_MAP is set


def mem_sections(kernel: Kernel) -> Iterator[MemSection]:
    """Each section with a non-zero section_mem_map, by section number: the one walk of the
    mem_section roots behind `kmem -i`, `kmem -p` and every scan of the struct pages."""
    info = kernel.vmcoreinfo
    k = kernel
    page_size = k.sizeof("struct page")
    section_bits = info.number("SECTION_SIZE_BITS", 27)
    per_section = 1 << (section_bits - 12)
    ms_size = info.sizes.get("mem_section") or k.sizeof("struct mem_section")
    if not 8 <= ms_size <= 256 or ms_size % 8:
        raise KernelReadError(f"implausible struct mem_section size {ms_size}")
    if "mem_section" in info.symbols:
        roots_addr = info.symbols["mem_section"]  # VMCOREINFO exports the array itself
    else:
        roots_addr = k.read_u64(k.symbol("mem_section"))
    per_root = 4096 // ms_size
    nroots = info.lengths.get("mem_section", 0)
    if not nroots:
        max_bits = info.number("MAX_PHYSMEM_BITS", 52 if info.pgtable_l5 else 46)
        nroots = max(1, (1 << max(0, max_bits - section_bits)) // per_root)
    # No section lies past the dump's last page frame: that bounds the walk however the
    # roots were damaged (roots aliasing one page repeat its sections under new numbers).
    max_pfn = k.dump.info.max_pfn
    nroots = min(nroots, max_pfn // (per_section * per_root) + 1, MAX_SECTIONS)
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
        secs = np.frombuffer(k.read(root, ms_size * per_root), "<u8")[::ms_size // 8]
        for i, coded in enumerate(secs.tolist()):
            if not coded:
                continue
            nr = r * per_root + i
            pfn = nr * per_section
            # sparse_decode_mem_map(): the coded value is mem_map - section's first pfn
            mem_map = ((coded & ~((1 << last_bit) - 1)) + pfn * page_size) & (2**64 - 1)
            yield MemSection(nr, pfn, mem_map, bool(coded & has_map))


def present_sections(kernel: Kernel) -> Iterator[tuple[int, int, int]]:
    """(section number, first pfn, mem_map of that pfn) of each section with a mem_map."""
    for sec in mem_sections(kernel):
        if sec.has_mem_map:
            yield sec.nr, sec.first_pfn, sec.mem_map


def read_zero_filled(kernel: Kernel, vaddr: int, size: int) -> bytes | bytearray | memoryview:
    """`size` bytes of kernel memory at page-aligned `vaddr`, a page the dump lacks (or an
    unmapped one) read as zeros: one page-table walk and one dump read per large page."""
    run_of = getattr(kernel.pagetable, "translate_run", None)
    ps = kernel.dump.info.page_size
    if run_of is not None and not vaddr % ps and not size % ps:
        try:  # the usual case: one large page holds it all, read without a copy
            paddr, run = run_of(vaddr)
            if run >= size and not paddr % ps:
                return kernel.dump.read_pages(paddr // ps, size // ps)
        except CrashtuiError:
            pass
    buf = bytearray(size)
    pos = 0
    while pos < size:
        addr = vaddr + pos
        try:
            paddr, run = (run_of(addr) if run_of is not None
                          else (kernel.translate(addr), 0x1000 - (addr & 0xFFF)))
        except CrashtuiError:  # not mapped: this page stays zeros
            pos += 0x1000 - (addr & 0xFFF)
            continue
        n = min(run, size - pos)
        try:
            if not paddr % ps and not n % ps:
                buf[pos:pos + n] = kernel.dump.read_pages(paddr // ps, n // ps)
                pos += n
                continue
            buf[pos:pos + n] = kernel.dump.read_phys(paddr, n)
        except CrashtuiError:  # some pages excluded or missing: read the others one by one
            for at in range(0, n, 0x1000):
                try:
                    chunk = kernel.dump.read_phys(paddr + at, min(0x1000, n - at))
                except CrashtuiError:
                    continue
                buf[pos + at:pos + at + len(chunk)] = chunk
        pos += n
    return buf


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
