"""kmem -g [FLAGS], kmem -p [ADDRESS], kmem -F and kmem -f ADDRESS: page flags, struct pages
and the buddy free lists page by page, as crash prints them (memory.c cmd_kmem(),
dump_mem_map_SPARSEMEM(), dump_free_pages_zones_v2(); the data is crashtui.kernel.pages' and
crashtui.kernel.zones')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemaddr import PAGE_HEADER
from crashtui.commands.kmemzone import ZONE_HDR, _zone_line, center
from crashtui.commands.registry import CommandError
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

AREA_HDR_F = "AREA    SIZE  FREE_AREA_STRUCT"
KERNEL_SPACE = 0xFFFF800000000000


def _hex(cmd: str, arg: str) -> int:
    text = arg.lower().removeprefix("0x")
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise CommandError(f"kmem: {cmd}: invalid address: {arg} (a hex address)")
    return int(text, 16)


def kmem_g_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `kmem -g`: enum pageflags' bits; with a FLAGS value, those set in it."""
    from crashtui.kernel.pages import page_flag_enum

    if len(args) > 1:
        raise CommandError("kmem: -g takes one hex flags value")
    flags = enum = page_flag_enum(session.kernel)
    width = max((len(n) for n, _b in enum), default=9)  # the longest name, all of them
    header = f"{'PAGE-FLAG':<{width}} BIT  VALUE"
    if args:
        value = _hex("-g", args[0])
        flags = [(n, b) for n, b in enum if value >> b & 1]
        return [f"FLAGS: {value:x}", "  " + header] + \
            [f"  {n:<{width}} {b:3d}  {1 << b:07x}" for n, b in flags]
    return [header] + [f"{n:<{width}} {b:3d}  {1 << b:07x}" for n, b in flags]


def page_of_address(session: Session, addr: int) -> int | None:
    """The struct page an address names: a struct page pointer, a kernel virtual address
    (translated) or a physical address."""
    from crashtui.kernel.memaddr import page_of_phys, page_pfn, phys_of

    k = session.kernel
    if page_pfn(k, addr) is not None:
        return addr
    phys = phys_of(k, addr) if addr >= KERNEL_SPACE else addr
    return None if phys is None else page_of_phys(k, phys)


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def kmem_f_address_lines(session: Session, arg: str) -> list[str]:
    """crash's `kmem -f ADDRESS`: the free block (zone, free area) holding the address's
    page; nothing when the page is not free."""
    from crashtui.kernel.zones import free_block_of

    addr = _hex("-f", arg)
    page = page_of_address(session, addr)
    if page is None:
        return []
    hit = free_block_of(session.kernel, page)
    if hit is None:
        return []
    fl = hit.free_list
    size = f"{(session.kernel.vmcoreinfo.page_size // 1024) << fl.order}k"
    return [ZONE_HDR, _zone_line(session, hit.zone), AREA_HDR_F,
            f"{fl.order:3d}  {size:>7}  {center(f'{fl.head:x}', 16)}  ",
            f"{hit.head:x}  ({addr:x} is {_ordinal(hit.nth + 1)} of {hit.pages} pages)"]


def kmem_F_lines(session: Session) -> list[str]:
    """crash's `kmem -F`: `kmem -f` with every free list's blocks (their first pages)."""
    from crashtui.kernel.zones import (
        free_area_shape,
        free_list_pages,
        memory_zones,
        zone_free_lists,
    )

    k = session.kernel
    table = memory_zones(k)
    free_area_shape(k)
    page_kib = k.vmcoreinfo.page_size // 1024
    out: list[str] = []
    total = found = 0
    nodes = sorted({z.node for z in table.zones})
    for z in table.zones:
        if z.index == 0 and table.nr_nodes > 1:
            if z.node != nodes[0]:
                out += ["", "-" * 74]
            out += (["", "NODE"] if z.node != nodes[0] else ["NODE"]) + [f" {z.node:2d}"]
        if z.index > 0:
            out.append("")
        out += [ZONE_HDR, _zone_line(session, z)]
        total += z.free_pages
        if not z.free_pages:
            continue
        for fl in zone_free_lists(k, z):
            out.append(AREA_HDR_F)
            out.append(f"{fl.order:3d}  {f'{page_kib << fl.order}k':>7}  "
                       f"{center(f'{fl.head:x}', 16)}  ")
            try:
                pages = free_list_pages(k, fl, z)
            except CrashtuiError as exc:
                out.append(f"kmem: corrupted free list from free_area struct: {fl.head:x}: "
                           f"{exc}")
                pages = []
            out += [f"{p:x}" for p in pages]
            found += len(pages) << fl.order
    out += ["", f"nr_free_pages: {total}  " +
            ("(verified)" if total == found else f"(found {found})")]
    return out + [f"kmem: {e}" for e in table.errors]


def _page_line(page: int, phys: int, mapping: int, index: int, count: int, flags: int,
               names: str) -> str:
    text = f"{flags:x}" + (" " + names if names else "")
    return f"{page:<16x} {phys:8x} {mapping:16x} {index:8x} {count:2d} {text}"


def kmem_p_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `kmem -p` (every struct page of every present section) or `kmem -p ADDRESS`
    (the page of a struct page pointer, kernel virtual or physical address)."""
    from crashtui.kernel.memaddr import page_info, page_pfn, pageflag_names
    from crashtui.kernel.pages import section_pages

    k = session.kernel
    if args:
        out = [PAGE_HEADER]
        for arg in args:
            addr = _hex("-p", arg)
            page = page_of_address(session, addr)
            pfn = page_pfn(k, page) if page is not None else None
            info = page_info(k, pfn << 12) if pfn is not None else None
            if info is None:
                out.append(f"kmem: {addr:x}: no struct page for this address")
                continue
            out.append(_page_line(info.page, info.phys, info.mapping, info.index, info.count,
                                  info.flags, ",".join(info.flag_names)))
        return out
    masks = pageflag_names(k)
    names: dict[int, str] = {}
    size = k.sizeof("struct page")
    page_bytes = k.vmcoreinfo.page_size
    out = [PAGE_HEADER]
    for sec in section_pages(k):
        for i, (flags, mapping, index, count) in enumerate(zip(
                sec.flags.tolist(), sec.mapping.tolist(), sec.index.tolist(),
                sec.count.tolist(), strict=True)):
            text = names.get(flags)
            if text is None:
                text = names[flags] = ",".join(n for m, n in masks if flags & m) \
                    if flags else ""
            out.append(_page_line(sec.mem_map + i * size, (sec.first_pfn + i) * page_bytes,
                                  mapping, index, count, flags, text))
    return out


def kmem_page_command(session: Session, option: str, args: list[str]) -> list[str]:
    """`kmem -g|-p|-F|-f ADDRESS`; a kernel without the layout is a CommandError."""
    try:
        if option == "-g":
            return kmem_g_lines(session, args)
        if option == "-p":
            return kmem_p_lines(session, args)
        if option == "-F":
            if args:
                raise CommandError("kmem: no address arguments allowed with this option")
            return kmem_F_lines(session)
        if len(args) != 1:
            raise CommandError("kmem: -f takes at most one address")
        return kmem_f_address_lines(session, args[0])
    except CommandError:
        raise
    except CrashtuiError as exc:
        raise CommandError(f"kmem: {option}: {exc}") from None
