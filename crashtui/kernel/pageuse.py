"""What the kernel was using a physical page for, read from its struct page.

Only VMCOREINFO is needed (the layout makedumpfile itself filters by), so it works with or
without type information. It serves to explain a page missing from a dump: makedumpfile
decides which pages to drop from these same fields, and a version that does not know a
kernel's layout drops pages the kernel was using (7.1 replaced page->compound_head by
compound_info, a mask where struct page's size is a power of two: makedumpfile 1.7.8 then
takes slab tail pages for free ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_COMPOUND_BYTES = 1 << 24  # struct pages of the largest compound page (order 18, 64 B each)


def page_use(kernel: Kernel, pfn: int) -> str | None:
    """'slab', 'free' (buddy) or None (something else, or unreadable) for page `pfn`."""
    vi = kernel.vmcoreinfo
    vmemmap = vmemmap_base(kernel)
    size = vi.sizes.get("page")
    o_flags = vi.offsets.get("page.flags")
    o_mapcount = vi.offsets.get("page._mapcount")
    o_compound = vi.offsets.get("page.compound_info", vi.offsets.get("page.compound_head"))
    if vmemmap is None or size is None or o_flags is None or o_compound is None:
        return None
    page = vmemmap + pfn * size
    try:
        head = _compound_head(kernel, page, kernel.read_u64(page + o_compound))
        flags = kernel.read_u64(head + o_flags)
        mapcount = kernel.read_u32(head + o_mapcount) if o_mapcount is not None else None
    except CrashtuiError:
        return None
    for kind, name, flag in (("slab", "PAGE_SLAB_MAPCOUNT_VALUE", "PG_slab"),
                             ("free", "PAGE_BUDDY_MAPCOUNT_VALUE", "PG_buddy")):
        value = vi.numbers.get(name)
        if value is not None and mapcount is not None:
            value &= 0xFFFFFFFF
            # 6.12+: one page type per page, its number in the top byte of page_type
            # (_mapcount); before, the whole word held the value
            if mapcount >> 24 == value >> 24 if not value & 0xFFFFFF else mapcount == value:
                return kind
        bit = vi.numbers.get(flag)
        if bit is not None and 0 <= bit < 64 and flags >> bit & 1:
            return kind
    return None


def vmemmap_base(kernel: Kernel) -> int | None:
    """The struct page array's base: VMCOREINFO's SYMBOL(vmemmap) (6.x+), else x86-64's
    vmemmap_base variable (KASLR moves it)."""
    base = kernel.vmcoreinfo.symbols.get("vmemmap")
    if base is not None:
        return base
    var = kernel.symbol_or_none("vmemmap_base")
    try:
        return kernel.read_u64(var) if var is not None else None
    except CrashtuiError:
        return None


def _compound_head(kernel: Kernel, page: int, info: int) -> int:
    """The head page of `page` (include/linux/page-flags.h _compound_head()): bit 0 marks a
    tail; the rest is the head's address (before 7.1, and with odd-sized struct pages) or a
    mask that turns the tail's address into the head's (7.1+). Told apart by which of the
    two gives a head at or below the tail, within one compound page."""
    if not info & 1:
        return page
    pointer = info - 1
    if pointer <= page and page - pointer < MAX_COMPOUND_BYTES:
        return pointer
    masked = page & info
    if masked <= page and page - masked < MAX_COMPOUND_BYTES:
        return masked
    return page


def explain_excluded(kernel: Kernel, paddr: int) -> str:
    """A note for an excluded page the kernel was using ('' when it was not, or unknown)."""
    if page_use(kernel, paddr // kernel.vmcoreinfo.page_size) != "slab":
        return ""
    return " (an in-use slab page: the dump tool misjudged this kernel's struct page)"
