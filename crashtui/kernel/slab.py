"""SLUB slab caches (mm/slub.c): per cache its objects, slabs and how many objects are in use.

The counts follow crash's `kmem -s` (memory.c get_kmem_cache_slub_data(), which emulates
slub's sysfs slab_objects()): slabs and objects come from each node's nr_slabs and
total_objects (CONFIG_SLUB_DEBUG), free objects are counted where SLUB keeps them:
- the node partial lists (slab->objects - slab->inuse of each slab);
- up to 6.x, each CPU's kmem_cache_cpu: its slab's objects - inuse (0 while the slab is
  frozen), the lockless freelist's length and its partial slabs (CONFIG_SLUB_CPU_PARTIAL);
- from 6.18 (the only per-CPU layer in 7.0+, where kmem_cache_cpu is gone), the per-CPU
  sheaves (main and spare) and each node barn's full sheaves: sheaf->size objects each, as
  drgn's slab_cache_usage() counts them.
Which of these exist is read from BTF member presence, never from the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import walk_list

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_CACHES = 100_000
MAX_SLABS_PER_LIST = 1_000_000
MAX_FREELIST = 1 << 16  # objects in one slab: slab->objects is 15 bits
MAX_NODES = 1024


class SlabLayoutError(KernelReadError):
    """The kernel's kmem_cache lacks what the walk needs (SLAB, or no CONFIG_SLUB_DEBUG)."""


@dataclass(frozen=True)
class SlabCache:
    """One kmem_cache and its usage (counts None where they could not be read)."""

    address: int
    name: str
    object_size: int  # kmem_cache.object_size (crash's OBJSIZE)
    size: int  # kmem_cache.size: object plus metadata, the stride in a slab
    objects_per_slab: int  # oo_objects(s->oo)
    slab_size: int  # PAGE_SIZE << oo_order(s->oo)
    slabs: int | None = None
    total: int | None = None
    allocated: int | None = None
    error: str | None = None

    @property
    def free(self) -> int | None:
        return None if self.total is None or self.allocated is None else \
            self.total - self.allocated


@dataclass
class SlabCacheList:
    """Every cache on slab_caches, newest first (the list's order), and walk errors."""

    caches: list[SlabCache]
    errors: list[str] = field(default_factory=list)

    def named(self, name: str) -> SlabCache | None:
        return next((c for c in self.caches if c.name == name), None)


class SlubLayout:
    """Offsets of the SLUB structures in this kernel, from BTF."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        btf = kernel.btf
        if not btf.has_member("kmem_cache", "oo") or \
                not btf.has_member("kmem_cache_node", "nr_slabs"):
            raise SlabLayoutError("kmem -s needs SLUB with CONFIG_SLUB_DEBUG "
                                  "(kmem_cache.oo, kmem_cache_node.nr_slabs)")
        off = btf.offsetof
        self.name = off("kmem_cache", "name")
        self.list = off("kmem_cache", "list")
        self.object_size = off("kmem_cache", "object_size")
        self.size = off("kmem_cache", "size")
        self.offset = off("kmem_cache", "offset")
        self.oo = off("kmem_cache", "oo")
        self.random = off("kmem_cache", "random") if btf.has_member("kmem_cache", "random") \
            else None
        # 7.1+: per_node[] of {barn, node}; before: node[] pointers
        if btf.has_member("kmem_cache", "per_node"):
            self.nodes = off("kmem_cache", "per_node")
            self.node_stride = btf.sizeof("struct kmem_cache_per_node_ptrs")
            self.node_in = off("kmem_cache_per_node_ptrs", "node")
            self.barn_in: int | None = off("kmem_cache_per_node_ptrs", "barn")
        else:
            self.nodes = off("kmem_cache", "node")
            self.node_stride, self.node_in, self.barn_in = 8, 0, None
        self.nr_partial = off("kmem_cache_node", "nr_partial")
        self.partial = off("kmem_cache_node", "partial")
        self.nr_slabs = off("kmem_cache_node", "nr_slabs")
        self.total_objects = off("kmem_cache_node", "total_objects")
        if self.barn_in is None and btf.has_member("kmem_cache_node", "barn"):
            self.barn_in = -1  # 6.18-7.0: kmem_cache_node.barn (a pointer)
        self.node_barn = off("kmem_cache_node", "barn") if self.barn_in == -1 else 0
        # 5.17+ struct slab; before, struct page
        st = "slab" if btf.has_type("struct slab") and btf.has_member("slab", "slab_cache") \
            else "page"
        self.slab_type = st
        self.slab_cache = off(st, "slab_cache")
        self.slab_list = off(st, "slab_list") if btf.has_member(st, "slab_list") \
            else off(st, "lru")
        self.slab_next = off(st, "next") if btf.has_member(st, "next") else None
        self.slab_freelist = off(st, "freelist")
        self.inuse_bits = btf.offsetof_bits(st, "inuse")
        self.objects_bits = btf.offsetof_bits(st, "objects")
        self.frozen_bits = btf.offsetof_bits(st, "frozen")
        self.cpu_slab = off("kmem_cache", "cpu_slab") if btf.has_member("kmem_cache", "cpu_slab") \
            else None
        if self.cpu_slab is not None:
            self.c_freelist = off("kmem_cache_cpu", "freelist")
            self.c_slab = off("kmem_cache_cpu", "slab") if btf.has_member("kmem_cache_cpu", "slab") \
                else off("kmem_cache_cpu", "page")
            self.c_partial = off("kmem_cache_cpu", "partial") \
                if btf.has_member("kmem_cache_cpu", "partial") else None
        self.cpu_sheaves = off("kmem_cache", "cpu_sheaves") \
            if btf.has_member("kmem_cache", "cpu_sheaves") else None
        if self.cpu_sheaves is not None:
            self.pcs_main = off("slub_percpu_sheaves", "main")
            self.pcs_spare = off("slub_percpu_sheaves", "spare")
            self.sheaf_size = off("slab_sheaf", "size")
            self.sheaf_objects = off("slab_sheaf", "objects")
            self.sheaf_barn_list = off("slab_sheaf", "barn_list")
            self.barn_full = off("node_barn", "sheaves_full")

    def _bits(self, counters: int, where: tuple[int, int], base: int) -> int:
        bit, size = where
        return (counters >> (bit - base)) & ((1 << (size or 16)) - 1)

    def counters(self, slab: int) -> tuple[int, int]:
        """(inuse, objects) of a slab (struct slab or struct page)."""
        base = self.inuse_bits[0] & ~31
        word = self.kernel.read_u32(slab + base // 8)
        return self._bits(word, self.inuse_bits, base), self._bits(word, self.objects_bits, base)

    @cached_property
    def node_ids(self) -> int:
        addr = self.kernel.symbol_or_none("nr_node_ids")
        try:
            n = self.kernel.read_u32(addr) if addr is not None else 1
        except CrashtuiError:
            n = 1
        return n if 0 < n <= MAX_NODES else 1


class CacheWalk:
    """Counts of one cache (raises CrashtuiError where memory cannot be read)."""

    def __init__(self, layout: SlubLayout, cache: int, cpus: list[int]) -> None:
        self.l = layout
        self.k = layout.kernel
        self.cache = cache
        self.cpus = cpus
        self.random = self.k.read_u64(cache + layout.random) if layout.random is not None else 0
        self.fp_offset = self.k.read_u32(cache + layout.offset)

    def nodes(self) -> list[tuple[int, int]]:
        """(kmem_cache_node, node_barn or 0) of each node that has one."""
        out = []
        for i in range(self.l.node_ids):
            slot = self.cache + self.l.nodes + i * self.l.node_stride
            node = self.k.read_u64(slot + self.l.node_in)
            if not node:
                continue
            if self.l.barn_in is None:
                barn = 0
            elif self.l.barn_in == -1:
                barn = self.k.read_u64(node + self.l.node_barn)
            else:
                barn = self.k.read_u64(slot + self.l.barn_in)
            out.append((node, barn))
        return out

    def free_pointer(self, obj: int) -> int:
        """The next free object after `obj` (CONFIG_SLAB_FREELIST_HARDENED decoded)."""
        where = obj + self.fp_offset
        ptr = self.k.read_u64(where)
        if self.l.random is None:
            return ptr
        return ptr ^ self.random ^ int.from_bytes(where.to_bytes(8, "little"), "big")

    def freelist_length(self, head: int) -> int:
        """Objects on a freelist (crash's count_free_objects: stops at a tagged pointer)."""
        seen: set[int] = set()
        q = head
        while q and not q & 1:
            if q in seen or len(seen) >= MAX_FREELIST:
                break
            seen.add(q)
            try:
                q = self.free_pointer(q)
            except CrashtuiError:
                break
        return len(seen)

    def slab_free(self, slab: int) -> int:
        inuse, objects = self.l.counters(slab)
        return objects - inuse

    def cpu_free(self) -> int:
        """Free objects held per CPU: kmem_cache_cpu (up to 6.x) and sheaves (6.18+)."""
        free = 0
        k, lay = self.k, self.l
        if lay.cpu_slab is not None:
            base = k.read_u64(self.cache + lay.cpu_slab)
            for cpu in self.cpus:
                c = k.per_cpu(base, cpu)
                slab = k.read_u64(c + lay.c_slab)
                if slab:
                    free += self.slab_free(slab)
                    free += self.freelist_length(k.read_u64(c + lay.c_freelist))
                if lay.c_partial is not None and lay.slab_next is not None:
                    free += self._cpu_partial_free(k.read_u64(c + lay.c_partial))
        for sheaf, _cpu in self._cpu_sheaves():
            free += k.read_u32(sheaf + lay.sheaf_size)
        return free

    def _cpu_sheaves(self) -> list[tuple[int, int]]:
        """(sheaf, cpu) of each CPU's main and spare sheaf (6.18+ per-CPU object caches)."""
        k, lay = self.k, self.l
        if lay.cpu_sheaves is None:
            return []
        base = k.read_u64(self.cache + lay.cpu_sheaves)
        if not base:
            return []
        out = []
        for cpu in self.cpus:
            pcs = k.per_cpu(base, cpu)
            for member in (lay.pcs_main, lay.pcs_spare):
                sheaf = k.read_u64(pcs + member)
                if sheaf:
                    out.append((sheaf, cpu))
        return out

    def sheaf_objects(self) -> dict[int, int | None]:
        """Objects cached in sheaves (6.18+): {object: its CPU, or None in a node's barn}."""
        out: dict[int, int | None] = {}
        k, lay = self.k, self.l
        if lay.cpu_sheaves is None:
            return out

        def add(sheaf: int, cpu: int | None) -> None:
            n = min(k.read_u32(sheaf + lay.sheaf_size), MAX_FREELIST)
            raw = k.read(sheaf + lay.sheaf_objects, 8 * n)
            for i in range(n):
                out.setdefault(int.from_bytes(raw[8 * i:8 * i + 8], "little"), cpu)

        for sheaf, cpu in self._cpu_sheaves():
            add(sheaf, cpu)
        for _node, barn in self.nodes():
            if barn:
                full = walk_list(self.k, barn + lay.barn_full, MAX_SLABS_PER_LIST)
                for n in full.nodes:
                    add(n - lay.sheaf_barn_list, None)
        return out

    def _cpu_partial_free(self, slab: int) -> int:
        free, seen = 0, set[int]()
        while slab and slab not in seen and len(seen) < MAX_SLABS_PER_LIST:
            seen.add(slab)
            free += self.slab_free(slab)
            slab = self.k.read_u64(slab + self.l.slab_next)  # type: ignore[operator]
        return free

    def usage(self) -> tuple[int, int, int]:
        """(slabs, total objects, allocated objects)."""
        slabs = total = 0
        free = self.cpu_free()
        for node, barn in self.nodes():
            slabs += self.k.read_u64(node + self.l.nr_slabs)
            total += self.k.read_u64(node + self.l.total_objects)
            walk = walk_list(self.k, node + self.l.partial, MAX_SLABS_PER_LIST)
            if walk.error:
                raise KernelReadError(f"partial list: {walk.error}")
            free += sum(self.slab_free(n - self.l.slab_list) for n in walk.nodes)
            if barn:
                full = walk_list(self.k, barn + self.l.barn_full, MAX_SLABS_PER_LIST)
                if full.error:
                    raise KernelReadError(f"barn's full sheaves: {full.error}")
                free += sum(self.k.read_u32(n - self.l.sheaf_barn_list + self.l.sheaf_size)
                            for n in full.nodes)
        return slabs, total, total - free


def slab_cpus(kernel: Kernel, layout: SlubLayout) -> list[int]:
    """crash walks every possible CPU's kmem_cache_cpu; drgn the online CPUs' sheaves."""
    if layout.cpu_slab is None:
        try:
            return kernel.cpumask("__cpu_online_mask")
        except CrashtuiError:
            pass
    return list(range(kernel.nr_cpu_ids))


def read_cache(kernel: Kernel, layout: SlubLayout, addr: int, cpus: list[int]) -> SlabCache:
    """One kmem_cache with its counts (an error in place of counts it could not read)."""
    k = kernel
    try:
        name = k.read_cstr(k.read_u64(addr + layout.name), 64)
    except CrashtuiError:
        name = "(unknown)"
    oo = k.read_u32(addr + layout.oo)
    base = SlabCache(addr, name, k.read_u32(addr + layout.object_size),
                     k.read_u32(addr + layout.size), oo & 0xFFFF,
                     k.vmcoreinfo.page_size << (oo >> 16))
    try:
        slabs, total, allocated = CacheWalk(layout, addr, cpus).usage()
    except CrashtuiError as exc:
        return SlabCache(**{**base.__dict__, "error": f"{name}: {exc.message}"})
    return SlabCache(**{**base.__dict__, "slabs": slabs, "total": total,
                        "allocated": allocated})


def cache_addresses(kernel: Kernel, layout: SlubLayout) -> tuple[list[int], str | None]:
    """kmem_cache addresses on slab_caches, in list order."""
    walk = walk_list(kernel, kernel.symbol("slab_caches"), MAX_CACHES)
    return [n - layout.list for n in walk.nodes], walk.error


def slab_caches(kernel: Kernel, names: set[str] | None = None) -> SlabCacheList:
    """Every slab cache (or those named) with its usage; errors say what was skipped."""
    layout = SlubLayout(kernel)
    addrs, error = cache_addresses(kernel, layout)
    errors = [f"slab_caches: {error}"] if error else []
    cpus = slab_cpus(kernel, layout)
    out: list[SlabCache] = []
    for addr in addrs:
        if names is not None:
            try:
                name = kernel.read_cstr(kernel.read_u64(addr + layout.name), 64)
            except CrashtuiError:
                continue
            if name not in names:
                continue
        try:
            out.append(read_cache(kernel, layout, addr, cpus))
        except CrashtuiError as exc:
            errors.append(f"kmem_cache {addr:#x}: {exc.message}")
    return SlabCacheList(out, errors)
