"""kmem -z and kmem -f: zones and buddy free areas as crash prints them (the data is
crashtui.kernel.zones')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.zones import Zone

ZONE_HDR = "ZONE  NAME        SIZE    FREE      MEM_MAP       START_PADDR  START_MAPNR"
AREA_HDR = "AREA    SIZE  FREE_AREA_STRUCT  BLOCKS  PAGES"


def center(text: str, width: int, rjust: bool = False) -> str:
    """crash's mkstring(CENTER): an odd leftover space goes right (LJUST) or left (RJUST)."""
    extra = width - len(text)
    if extra <= 0:
        return text
    left = extra // 2 + (extra % 2 if rjust else 0)
    return " " * left + text + " " * (extra - left)


def kmem_z_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `kmem -z` (memory.c dump_zone_stats())."""
    from crashtui.kernel.zones import memory_zones

    if args:
        raise CommandError("kmem: -z takes no argument")
    table = memory_zones(session.kernel)
    out: list[str] = []
    for z in table.zones:
        out.append(f'NODE: {z.node}  ZONE: {z.index}  ADDR: {z.address:x}  NAME: "{z.name}"')
        if not z.spanned:
            out += ["  [unpopulated]", ""]
            continue
        present = f"  PRESENT: {z.present}" if z.present < z.spanned else ""
        lo, mid, hi = z.watermarks
        out.append(f"  SIZE: {z.spanned}{present}  MIN/LOW/HIGH: {lo}/{mid}/{hi}")
        out.append("  VM_STAT:")
        width = max(len(n) for n, _ in z.vm_stat)
        out += [f"{n:>{width}}: {v}" for n, v in z.vm_stat]
        out += ["", ""]
    return out + [f"kmem: {e}" for e in table.errors]


def _zone_line(session: Session, z: Zone) -> str:
    from crashtui.kernel.zones import zone_mem_map

    k = session.kernel
    mem_map = zone_mem_map(k, z)
    mapnr = (z.start_pfn - z.node_start_pfn) if mem_map else 0
    paddr = z.start_pfn * k.vmcoreinfo.page_size
    return (f"{z.index:3d}   {z.name:<9s} {z.spanned:6d}  {z.free_pages:6d}  "
            f"{center(f'{mem_map:x}', 16)}  {center(f'{paddr:x}', 11, True)}  "
            f"{center(str(mapnr), 11, True)}")


def kmem_f_lines(session: Session, args: list[str]) -> list[str]:
    """crash's `kmem -f` (memory.c dump_free_pages_zones_v2() and dump_zone_free_area())."""
    from crashtui.kernel.zones import free_area_shape, memory_zones, zone_free_lists

    if args:
        raise CommandError("kmem: -f takes no argument here (no -f ADDRESS)")
    k = session.kernel
    table = memory_zones(k)
    free_area_shape(k)  # a kernel without the buddy layout fails before any output
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
        out.append(ZONE_HDR)
        out.append(_zone_line(session, z))
        total += z.free_pages
        if not z.free_pages:
            continue
        out.append(AREA_HDR)
        errors = []
        for fl in zone_free_lists(k, z):
            if fl.error:
                errors.append(f"kmem: corrupted free list {fl.migratetype} from free_area "
                              f"struct: {fl.head:x}: {fl.error}")
            size = f"{(page_kib << fl.order)}k"
            out.append(f"{fl.order:3d}  {size:>7}  {center(f'{fl.head:x}', 16)}  "
                       f"{fl.blocks:6d} {fl.blocks << fl.order:6d}")
            found += fl.blocks << fl.order
        out += errors
    out += ["", f"nr_free_pages: {total}  " +
            ("(verified)" if total == found else f"(found {found})")]
    return out + [f"kmem: {e}" for e in table.errors]


def kmem_zone_command(session: Session, option: str, args: list[str]) -> list[str]:
    """`kmem -z` or `kmem -f`; a kernel without the zone layout is a CommandError."""
    try:
        if option == "-z":
            return kmem_z_lines(session, args)
        return kmem_f_lines(session, args)
    except CommandError:
        raise
    except CrashtuiError as exc:
        raise CommandError(f"kmem: {option}: {exc}") from None
