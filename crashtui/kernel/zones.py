"""Memory zones (include/linux/mmzone.h): per node and zone its size, watermarks, vm_stat
counters and buddy free lists, read as crash's `kmem -z` and `kmem -f` read them.

Which fields exist is read from BTF: zone._watermark (5.0+) or zone.watermark, the zone
vm_stat items from enum zone_stat_item, the orders from zone.free_area[]'s length
(MAX_ORDER or NR_PAGE_ORDERS) and the migrate types from free_area.free_list[]'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import list_for_each
from crashtui.kernel.pageuse import vmemmap_base
from crashtui.kernel.system import online_nodes

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_ZONES = 16
MAX_ORDERS = 64


class ZoneLayoutError(KernelReadError):
    """The kernel's struct zone lacks what the walk needs."""


@dataclass(frozen=True)
class Zone:
    """One struct zone of one node."""

    node: int
    index: int
    address: int
    name: str
    spanned: int  # zone.spanned_pages (crash's SIZE)
    present: int
    watermarks: tuple[int, int, int]  # WMARK_MIN, WMARK_LOW, WMARK_HIGH
    start_pfn: int
    node_start_pfn: int
    vm_stat: list[tuple[str, int]]  # zone_stat_item name -> value, in enum order
    managed: int | None = None  # zone.managed_pages (None: no such member)

    @property
    def free_pages(self) -> int:
        return next((v for n, v in self.vm_stat if n == "NR_FREE_PAGES"), 0)


@dataclass(frozen=True)
class FreeList:
    """One free_area[order].free_list[migratetype]: its list head and blocks on it."""

    order: int
    migratetype: int
    head: int
    blocks: int
    error: str | None = None


@dataclass
class ZoneTable:
    zones: list[Zone]
    nr_nodes: int
    errors: list[str] = field(default_factory=list)


def zone_stat_names(kernel: Kernel) -> list[str]:
    """enum zone_stat_item's names by value, as crash's vm_stat_init() keeps them: of two
    enumerators with one value (NR_ZONE_LRU_BASE = NR_ZONE_INACTIVE_ANON) the later."""
    try:
        items = kernel.btf.enum("zone_stat_item")
    except CrashtuiError as exc:
        raise ZoneLayoutError(f"no enum zone_stat_item: {exc}") from None
    count = items.get("NR_VM_ZONE_STAT_ITEMS")
    if count is None or not 0 < count <= 256:
        raise ZoneLayoutError("enum zone_stat_item has no NR_VM_ZONE_STAT_ITEMS")
    names: dict[int, str] = {}
    for name, value in items.items():
        if 0 <= value < count:
            names[value] = name
    return [names.get(i, f"ITEM_{i}") for i in range(count)]


def _node_pgdats(kernel: Kernel) -> list[tuple[int, int]]:
    """(node id, pglist_data address) of each online node (contig_page_data without NUMA)."""
    node_data = kernel.symbol_or_none("node_data")
    if node_data is None:
        return [(0, kernel.symbol("contig_page_data"))]
    out = []
    for nid in online_nodes(kernel):
        pgdat = kernel.read_u64(node_data + 8 * nid)
        if pgdat:
            out.append((nid, pgdat))
    return out


def memory_zones(kernel: Kernel) -> ZoneTable:
    """Every zone of every online node, in node_zones[] order."""
    btf = kernel.btf
    if not btf.has_member("zone", "spanned_pages") or \
            not btf.has_member("pglist_data", "node_zones"):
        raise ZoneLayoutError("struct zone has no spanned_pages (or pglist_data no node_zones)")
    wm = "_watermark" if btf.has_member("zone", "_watermark") else "watermark"
    o_wm = kernel.offsetof("zone", wm)
    marks = []
    for i, name in enumerate(("WMARK_MIN", "WMARK_LOW", "WMARK_HIGH")):
        try:
            marks.append(btf.enumerator(name))
        except CrashtuiError:
            marks.append(i)
    names = zone_stat_names(kernel)
    o_stat = kernel.offsetof("zone", "vm_stat")
    zone_size = kernel.sizeof("struct zone")
    o_zones = kernel.offsetof("pglist_data", "node_zones")
    nzones = min(btf.member_type("pglist_data", "node_zones").resolved().length or 0, MAX_ZONES)
    o_node_start = kernel.offsetof("pglist_data", "node_start_pfn")

    has_managed = btf.has_member("zone", "managed_pages")

    def field_(zone: int, member: str) -> int:
        return kernel.read_u64(zone + kernel.offsetof("zone", member))

    zones: list[Zone] = []
    errors: list[str] = []
    pgdats = _node_pgdats(kernel)
    for nid, pgdat in pgdats:
        try:
            node_start = kernel.read_u64(pgdat + o_node_start)
        except CrashtuiError as exc:
            errors.append(f"node {nid}: pglist_data at {pgdat:x} unreadable: {exc}")
            continue
        for i in range(nzones):
            z = pgdat + o_zones + i * zone_size
            try:
                raw = kernel.read(z + o_stat, 8 * len(names))
                stats = [int.from_bytes(raw[8 * j:8 * j + 8], "little", signed=True)
                         for j in range(len(names))]
                zones.append(Zone(
                    node=nid, index=i, address=z,
                    name=kernel.read_cstr(field_(z, "name"), 64),
                    spanned=field_(z, "spanned_pages"),
                    present=field_(z, "present_pages"),
                    watermarks=(kernel.read_u64(z + o_wm + 8 * marks[0]),
                                kernel.read_u64(z + o_wm + 8 * marks[1]),
                                kernel.read_u64(z + o_wm + 8 * marks[2])),
                    start_pfn=field_(z, "zone_start_pfn"),
                    node_start_pfn=node_start,
                    vm_stat=list(zip(names, stats, strict=True)),
                    managed=field_(z, "managed_pages") if has_managed else None))
            except CrashtuiError as exc:
                errors.append(f"node {nid} zone {i} at {z:x} unreadable: {exc}")
    return ZoneTable(zones, len(pgdats), errors)


def free_area_shape(kernel: Kernel) -> tuple[int, int]:
    """(orders, migrate types): the lengths of zone.free_area[] and free_area.free_list[]."""
    btf = kernel.btf
    orders = btf.member_type("zone", "free_area").resolved().length or 0
    lists = btf.member_type("free_area", "free_list").resolved().length or 1
    if not 0 < orders <= MAX_ORDERS or not 0 < lists <= 64:
        raise ZoneLayoutError(f"zone.free_area[{orders}] of free_list[{lists}]: not a buddy "
                              "allocator layout")
    return orders, lists


def zone_free_lists(kernel: Kernel, zone: Zone) -> list[FreeList]:
    """Each order's free lists of a zone, with the blocks on each (walks bounded by the
    zone's size in blocks of that order)."""
    orders, lists = free_area_shape(kernel)
    o_area = kernel.offsetof("zone", "free_area")
    area_size = kernel.sizeof("struct free_area")
    o_list = kernel.offsetof("free_area", "free_list")
    out = []
    for order in range(orders):
        for mt in range(lists):
            head = zone.address + o_area + order * area_size + o_list + 16 * mt
            count, error = 0, None
            try:
                for _node in list_for_each(kernel, head, limit=(zone.spanned >> order) + 1):
                    count += 1
            except CrashtuiError as exc:
                error = str(exc)
            out.append(FreeList(order, mt, head, count, error))
    return out


def zone_mem_map(kernel: Kernel, zone: Zone) -> int:
    """The struct page of the zone's first pfn (0 for an empty zone or no vmemmap)."""
    base = vmemmap_base(kernel)
    if not zone.spanned or base is None:
        return 0
    return base + zone.start_pfn * kernel.sizeof("struct page")


def free_list_pages(kernel: Kernel, fl: FreeList, zone: Zone) -> list[int]:
    """The struct page of each block on one free list, in list order (page.lru / buddy_list
    links them; bounded as zone_free_lists() is)."""
    o_lru = kernel.offsetof("page", "lru")
    return [node - o_lru for node in
            list_for_each(kernel, fl.head, limit=(zone.spanned >> fl.order) + 1)]


@dataclass(frozen=True)
class FreeBlock:
    """The free block holding a page: its zone, free list, head page and the page's place."""

    zone: Zone
    free_list: FreeList
    head: int
    nth: int  # 0: the block's first page
    pages: int


def free_block_of(kernel: Kernel, page: int) -> FreeBlock | None:
    """The buddy free block whose pages include the struct page at `page` (None: in use)."""
    size = kernel.sizeof("struct page")
    for z in memory_zones(kernel).zones:
        if not z.free_pages:
            continue
        for fl in zone_free_lists(kernel, z):
            if not fl.blocks:
                continue
            span = size << fl.order
            for head in free_list_pages(kernel, fl, z):
                if head <= page < head + span:
                    return FreeBlock(z, fl, head, (page - head) // size, 1 << fl.order)
    return None
