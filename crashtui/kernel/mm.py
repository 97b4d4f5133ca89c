"""System memory usage as crash's `kmem -i` shows it (crash memory.c dump_kmeminfo()).

Each row is computed the way crash computes it on a 5.x/6.x kernel:
  TOTAL MEM   _totalram_pages (mm/page_alloc.c)
  FREE        sum over every zone of zone->vm_stat[NR_FREE_PAGES] (include/linux/mmzone.h)
  USED        TOTAL MEM - FREE
  SHARED      only when asked (crash 9's `kmem -i=shared`; crash 8 always printed it): pages
              of the mem_map that are not PG_reserved and have page->_refcount > 1 (crash
              tallies struct pages itself, unlike the kernel's NR_SHMEM). It reads every
              struct page, 16 MiB per GiB of RAM, so the default `kmem -i` stays flat in RAM
  BUFFERS     nr_blockdev_pages(): nrpages of every block device inode's mapping
              (blockdev_superblock->s_inodes since 5.9, all_bdevs before)
  CACHED      vm_node_stat[NR_FILE_PAGES] - swap cache pages - BUFFERS
  SLAB        NR_SLAB_RECLAIMABLE_B + NR_SLAB_UNRECLAIMABLE_B (older names before 5.9)
  TOTAL HUGE  hstates[]: nr_huge_pages << order; HUGE FREE: free_huge_pages << order
  TOTAL SWAP  swap_info[]->pages of each SWP_USED device; SWAP USED: ->inuse_pages
  COMMIT LIMIT  (totalram - huge) * sysctl_overcommit_ratio / 100 + swap, or
              sysctl_overcommit_kbytes; COMMITTED: vm_committed_as summed over its per-CPU deltas (>= 0)
Percentages are integer divisions, as crash prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from crashtui.dumpfile.codecs import map_on_decoder_threads
from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import list_for_each, walk_list
from crashtui.kernel.pages import mem_sections, read_zero_filled
from crashtui.kernel.system import online_nodes

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

SWP_USED = 1  # include/linux/swap.h


@dataclass(frozen=True)
class KmemRow:
    """One line of `kmem -i`: pages, and the row whose pages make 100% (None: "----")."""

    name: str
    pages: int
    of: str | None = None
    percent: int | None = None


@dataclass
class KmemInfo:
    """The rows of `kmem -i` in crash's groups (a blank line between groups)."""

    groups: list[list[KmemRow]]
    page_size: int = 4096
    errors: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[KmemRow]:
        return [r for g in self.groups for r in g]

    def row(self, name: str) -> KmemRow | None:
        return next((r for r in self.rows if r.name == name), None)


def _pct(part: int, whole: int) -> int | None:
    """crash's (part * 100) / whole, None when whole is 0."""
    return part * 100 // whole if whole else None


class _Kmem:
    """The reads behind each row; a failed read leaves that value at 0 and notes why."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        self.errors: list[str] = []

    def _try(self, what: str, fn: Callable[[], int], default: int = 0) -> int:
        try:
            return int(fn())
        except CrashtuiError as exc:
            self.errors.append(f"{what}: {exc.message}")
            return default

    def _ulong(self, name: str) -> int:
        return self.k.read_u64(self.k.symbol(name))

    def symbol_size(self, name: str) -> int:
        vm = self.k.vmlinux
        sym = vm.symbols.lookup(name) if vm is not None else None
        return sym.size if sym is not None else 0

    # -- counters ------------------------------------------------------------------------------

    def totalram(self) -> int:
        for name in ("_totalram_pages", "totalram_pages"):
            if self.k.has_symbol(name):
                return self._ulong(name)
        return 0

    def vm_stat(self, item: str) -> int | None:
        """A global vmstat counter by enumerator name (vm_zone_stat / vm_node_stat), or None."""
        btf = self.k.btf
        for enum, array in (("zone_stat_item", "vm_zone_stat"),
                            ("node_stat_item", "vm_node_stat"),
                            ("zone_stat_item", "vm_stat")):
            try:
                values = btf.enum(enum)
            except CrashtuiError:
                continue
            if item not in values or not self.k.has_symbol(array):
                continue
            return self.k.read_s64(self.k.symbol(array) + 8 * values[item])
        return None

    def free_pages(self) -> int:
        """Sum of zone->vm_stat[NR_FREE_PAGES] over the zones of every online node."""
        k = self.k
        nr_free = k.btf.enumerator("NR_FREE_PAGES")
        zone_size = k.sizeof("struct zone")
        o_zones = k.offsetof("pglist_data", "node_zones")
        nzones = k.btf.member_type("pglist_data", "node_zones").resolved().length or 0
        o_stat = k.offsetof("zone", "vm_stat") + 8 * nr_free
        node_data = k.symbol("node_data")
        total = 0
        for nid in online_nodes(k):
            pgdat = k.read_u64(node_data + 8 * nid)
            if not pgdat:
                continue
            raw = k.read(pgdat + o_zones, nzones * zone_size)
            for z in range(nzones):
                at = z * zone_size + o_stat
                total += int.from_bytes(raw[at:at + 8], "little")
        return total

    def shared_pages(self) -> tuple[int, int]:
        """(shared, slab) pages by crash's mem_map scan (dump_mem_map_SPARSEMEM, GET_ALL):
        every section with a section_mem_map, read by large page (pages.mem_sections)."""
        k = self.k
        btf = k.btf
        page_size = k.sizeof("struct page")
        o_flags = k.offsetof("page", "flags")
        try:
            o_count = k.offsetof("page", "_refcount")
        except CrashtuiError:
            o_count = k.offsetof("page", "_count")
        reserved = np.uint64(1 << btf.enumerator("PG_reserved"))
        try:
            slab_bit: np.uint64 | None = np.uint64(1 << btf.enumerator("PG_slab"))
        except CrashtuiError:  # 6.8+: slab is a page type, not a flag
            slab_bit = None
        per_section = 1 << (k.vmcoreinfo.number("SECTION_SIZE_BITS", 27) - 12)

        def counts(mem_map: int) -> tuple[int, int]:
            flags, count = self._page_fields(mem_map, per_section, page_size, o_flags, o_count)
            # not PG_reserved and _refcount > 1 (numpy's functions: fuzz/README.md)
            shared = int(np.count_nonzero(np.greater(count, 1) & np.equal(flags & reserved, 0)))
            return shared, 0 if slab_bit is None else int(np.count_nonzero(flags & slab_bit))

        # sections on the decoder threads: inflating the mem_map is most of the work
        per = map_on_decoder_threads(counts, [sec.mem_map for sec in mem_sections(k)])
        return sum(s for s, _ in per), sum(s for _, s in per)

    def _page_fields(self, mem_map: int, count: int, page_size: int, o_flags: int,
                     o_count: int) -> tuple[np.ndarray, np.ndarray]:
        """flags and _refcount of `count` struct pages (unreadable pages read as zeros)."""
        buf = read_zero_filled(self.k, mem_map, count * page_size)
        # struct page (include/linux/mm_types.h) as a numpy record: only the fields counted
        page = np.dtype({"names": ["flags", "refcount"], "formats": ["<u8", "<i4"],
                         "offsets": [o_flags, o_count], "itemsize": page_size})
        rows = np.frombuffer(buf, dtype=page, count=count)
        return rows["flags"], rows["refcount"]

    def blockdev_pages(self) -> int:
        """nr_blockdev_pages(): page cache of block device inodes (block/bdev.c)."""
        k = self.k
        o_nrpages = k.offsetof("address_space", "nrpages")
        total = 0
        if k.has_symbol("all_bdevs"):  # before 5.9: block_device.bd_list
            o_list = k.offsetof("block_device", "bd_list")
            o_inode = k.offsetof("block_device", "bd_inode")
            o_mapping = k.offsetof("inode", "i_mapping")
            for node in list_for_each(k, k.symbol("all_bdevs")):
                inode = k.read_u64(node - o_list + o_inode)
                total += k.read_u64(k.read_u64(inode + o_mapping) + o_nrpages)
            return total
        sb = k.read_u64(k.symbol("blockdev_superblock"))
        o_mapping = k.offsetof("inode", "i_mapping")
        o_sb_list = k.offsetof("inode", "i_sb_list")
        # An inode on a page the dump lacks is left out, and said so: the others still count.
        walk = walk_list(k, sb + k.offsetof("super_block", "s_inodes"))
        missed: list[str] = [walk.error] if walk.error else []
        for node in walk.nodes:
            try:
                mapping = k.read_u64(node - o_sb_list + o_mapping)
                total += k.read_u64(mapping + o_nrpages)
            except CrashtuiError as exc:
                missed.append(exc.message)
        if missed:
            self.errors.append(f"BUFFERS: {len(missed)} block device inode(s) not counted: "
                               f"{missed[0]}")
        return total

    def swap_cache_pages(self) -> int:
        """Pages in the swap cache: nrpages of every swapper_spaces[type][bank] mapping."""
        k = self.k
        if not k.has_symbol("swapper_spaces"):
            # 6.18+ keeps no address_space per swap device: total_swapcache_pages() is the
            # NR_SWAPCACHE node counter (include/linux/swap.h)
            return self.vm_stat("NR_SWAPCACHE") or 0
        as_size = k.sizeof("struct address_space")
        o_nrpages = k.offsetof("address_space", "nrpages")
        if k.has_symbol("nr_swapper_spaces"):
            n = self.symbol_size("nr_swapper_spaces") // 4 or 32
            banks = np.frombuffer(k.read(k.symbol("nr_swapper_spaces"), 4 * n), "<u4")
            total = 0
            for i, nbanks in enumerate(banks.tolist()):
                if not nbanks:
                    continue
                spaces = k.read_u64(k.symbol("swapper_spaces") + 8 * i)
                if not spaces:
                    continue
                for j in range(min(nbanks, 1 << 16)):
                    total += k.read_u64(spaces + j * as_size + o_nrpages)
            return total
        n = self.symbol_size("swapper_spaces") // as_size
        return sum(k.read_u64(k.symbol("swapper_spaces") + i * as_size + o_nrpages)
                   for i in range(n))

    def hugetlb(self) -> tuple[int, int]:
        """(total, free) huge pages in base pages, from hstates[] (mm/hugetlb.c)."""
        k = self.k
        if k.has_symbol("hstates"):
            size = k.sizeof("struct hstate")
            n = self.symbol_size("hstates") // size if size else 0
            if not n and k.has_symbol("hugetlb_max_hstate"):
                n = k.read_u32(k.symbol("hugetlb_max_hstate"))
            o_order = k.offsetof("hstate", "order")
            o_nr = k.offsetof("hstate", "nr_huge_pages")
            o_free = k.offsetof("hstate", "free_huge_pages")
            total = free = 0
            for i in range(n):
                h = k.symbol("hstates") + i * size
                order = k.read_u32(h + o_order)
                if not order:
                    continue
                if order > 30:  # 1 GiB pages are order 18; 16 GiB (arm64, ppc) order 22
                    raise KernelReadError(f"hstates[{i}].order {order} is implausible")
                total += k.read_u64(h + o_nr) << order
                free += k.read_u64(h + o_free) << order
            return total, free
        if k.has_symbol("nr_huge_pages"):
            per = (1 << 21) // k.vmcoreinfo.page_size
            return (self._ulong("nr_huge_pages") * per, self._ulong("free_huge_pages") * per)
        return 0, 0

    def swap(self) -> tuple[int, int]:
        """(total, used) swap pages over the SWP_USED swap_info[] devices (mm/swapfile.c)."""
        k = self.k
        nr = k.read_u32(k.symbol("nr_swapfiles"))
        base = k.symbol("swap_info")
        o_flags = k.offsetof("swap_info_struct", "flags")
        o_pages = k.offsetof("swap_info_struct", "pages")
        o_inuse = k.offsetof("swap_info_struct", "inuse_pages")
        total = used = 0
        for i in range(min(nr, 64)):
            si = k.read_u64(base + 8 * i)
            if not si or not k.read_u64(si + o_flags) & SWP_USED:
                continue
            total += k.read_s32(si + o_pages)
            used += k.read_u32(si + o_inuse)
        return total, used

    def committed(self) -> int:
        """Committed_AS as /proc/meminfo says it: vm_memory_committed() (mm/util.c) is
        percpu_counter_sum_positive(&vm_committed_as), the central count plus every online
        CPU's not yet folded delta. crash prints the central count alone."""
        k = self.k
        if not k.has_symbol("vm_committed_as"):
            return max(k.read_s32(k.symbol("vm_committed_space")), 0)
        counter = k.symbol("vm_committed_as")
        count = k.read_s64(counter + k.offsetof("percpu_counter", "count"))
        deltas = k.read_u64(counter + k.offsetof("percpu_counter", "counters"))
        for cpu in k.cpumask("__cpu_online_mask"):
            count += k.read_s32(k.per_cpu(deltas, cpu))  # s32 __percpu *counters
        return max(count, 0)


def _slab_vm_stat(m: _Kmem) -> int | None:
    """SLAB from vm_stat under the names the kernel has used (None: no such counters)."""
    for names in (("NR_SLAB",), ("NR_SLAB_RECLAIMABLE", "NR_SLAB_UNRECLAIMABLE"),
                  ("NR_SLAB_RECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE_B")):
        values = [m.vm_stat(n) for n in names]
        if values[0] is not None:
            return sum(v or 0 for v in values)
    return None


def read_kmem_info(kernel: Kernel, shared: bool = False) -> KmemInfo:
    """Every row crash's `kmem -i` prints, computed as crash computes it; SHARED (the
    mem_map scan) only when `shared`, as crash 9's `kmem -i=shared`."""
    m = _Kmem(kernel)
    k = kernel
    total = m._try("TOTAL MEM", m.totalram)
    free = m._try("FREE", m.free_pages)
    slab_stats = _slab_vm_stat(m)
    shared_slab = (0, 0)
    if shared or slab_stats is None:  # crash scans too when vm_stat has no slab counts
        try:
            shared_slab = m.shared_pages()
        except CrashtuiError as exc:
            m.errors.append(f"{'SHARED' if shared else 'SLAB'}: mem_map scan failed: "
                            f"{exc.message}")
    buffers = 0
    if k.has_symbol("nr_blockdev_pages"):
        buffers = m._try("BUFFERS", m.blockdev_pages)
    cached = 0
    file_pages = m.vm_stat("NR_FILE_PAGES")
    if file_pages is not None:
        cached = max(file_pages - m._try("swap cache", m.swap_cache_pages) - buffers, 0)
    slab = shared_slab[1] if slab_stats is None else slab_stats
    of_mem = "TOTAL MEM"
    groups = [[KmemRow("TOTAL MEM", total)]]
    counted = [("FREE", free), ("USED", total - free)]
    if shared:
        counted.append(("SHARED", shared_slab[0]))
    counted += [("BUFFERS", buffers), ("CACHED", cached), ("SLAB", slab)]
    groups[0] += [KmemRow(name, pages, of_mem, _pct(pages, total)) for name, pages in counted]
    huge_total, huge_free = 0, 0
    try:
        huge_total, huge_free = m.hugetlb()
        groups.append([KmemRow("TOTAL HUGE", huge_total),
                       KmemRow("HUGE FREE", huge_free, "TOTAL HUGE",
                               _pct(huge_free, huge_total) or 0)])
    except CrashtuiError as exc:
        m.errors.append(f"TOTAL HUGE: {exc.message}")
    swap_total = 0
    # CONFIG_SWAP: crash asks for swapper_space(s), gone in 6.18; swap_info stays
    if any(k.has_symbol(s) for s in ("swapper_space", "swapper_spaces", "nr_swapfiles")):
        try:
            swap_total, swap_used = m.swap()
            groups.append([KmemRow("TOTAL SWAP", swap_total),
                           KmemRow("SWAP USED", swap_used, "TOTAL SWAP",
                                   _pct(swap_used, swap_total) or 0),
                           KmemRow("SWAP FREE", swap_total - swap_used, "TOTAL SWAP",
                                   _pct(swap_total - swap_used, swap_total) or 0)])
        except CrashtuiError as exc:
            m.errors.append(f"TOTAL SWAP: {exc.message}")
    if k.has_symbol("sysctl_overcommit_memory"):
        try:
            kbytes = (k.read_u64(k.symbol("sysctl_overcommit_kbytes"))
                      if k.has_symbol("sysctl_overcommit_kbytes") else 0)
            if kbytes:
                allowed = kbytes // (k.vmcoreinfo.page_size // 1024)
            else:
                ratio = k.read_s32(k.symbol("sysctl_overcommit_ratio"))
                allowed = (total - huge_total) * ratio // 100
            allowed += swap_total
            committed = m.committed()
            pct = (committed * 100 // allowed if committed else 0) if allowed else None
            groups.append([KmemRow("COMMIT LIMIT", allowed),
                           KmemRow("COMMITTED", committed,
                                   "TOTAL LIMIT" if allowed else None, pct)])
        except CrashtuiError as exc:
            m.errors.append(f"COMMIT LIMIT: {exc.message}")
    return KmemInfo(groups, k.vmcoreinfo.page_size, m.errors)
