"""What a kernel address is: a slab object of which cache, a task's stack or task_struct, a
vmalloc area, and the struct page of its physical page (crash's `kmem ADDR`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from crashtui.errors import CrashtuiError
from crashtui.kernel.pagetable import MODULES_VADDR, START_KERNEL_MAP
from crashtui.kernel.pageuse import vmemmap_base
from crashtui.kernel.slab import (
    MAX_FREELIST,
    CacheWalk,
    SlabCache,
    SlubLayout,
    cache_addresses,
    read_cache,
    slab_cpus,
)

if TYPE_CHECKING:
    from crashtui.arch.base import DirectMap
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.tasks import Task

MAX_RB_DEPTH = 256
MAX_VMAP_NODES = 4096
MAX_PAGEFLAG_NAMES = 128
SLAB_RED_ZONE = 0x400
_FLAG_NAMES: WeakKeyDictionary[Kernel, list[tuple[int, str]]] = WeakKeyDictionary()


@dataclass(frozen=True)
class PageInfo:
    """One struct page's fields as crash's mem_map lines show them."""

    page: int
    phys: int
    mapping: int
    index: int
    count: int
    flags: int
    flag_names: list[str]


@dataclass(frozen=True)
class VmapArea:
    """A vmalloc area (struct vmap_area and its vm_struct)."""

    address: int
    vm: int
    start: int
    end: int


@dataclass(frozen=True)
class SlabObject:
    """The slab, and the object in it, that hold an address."""

    cache: SlabCache
    slab: int  # struct slab (struct page before 5.17)
    memory: int  # the slab's first byte
    node: int
    objects: int
    inuse: int
    object: int | None  # the object holding the address (None: past the last object)
    free: bool
    cpu: int | None  # the CPU whose current slab this is (its free objects: "cpu N cache")
    every_object: bool = False  # asked for by its struct page: list all objects
    free_objects: frozenset[int] = frozenset()
    cpu_free_objects: frozenset[int] = frozenset()
    object_size: int = 0
    red_left_pad: int = 0


def page_of_phys(kernel: Kernel, phys: int) -> int | None:
    base = vmemmap_base(kernel)
    return None if base is None else base + (phys >> 12) * kernel.btf.sizeof("struct page")


def pageflag_names(kernel: Kernel) -> list[tuple[int, str]]:
    """(mask, name) from the kernel's pageflag_names[] (what crash decodes FLAGS with)."""
    cached = _FLAG_NAMES.get(kernel)
    if cached is not None:
        return cached
    out: list[tuple[int, str]] = []
    addr = kernel.symbol_or_none("pageflag_names")
    if addr is not None:
        try:
            for i in range(MAX_PAGEFLAG_NAMES):
                mask = kernel.read_u64(addr + 16 * i)
                name = kernel.read_u64(addr + 16 * i + 8)
                if not name:
                    break
                out.append((mask, kernel.read_cstr(name, 32)))
        except CrashtuiError:
            pass
    _FLAG_NAMES[kernel] = out
    return out


def page_info(kernel: Kernel, phys: int) -> PageInfo | None:
    """The struct page of a physical address (None when it cannot be read)."""
    page = page_of_phys(kernel, phys)
    if page is None:
        return None
    btf = kernel.btf
    index = "index" if btf.has_member("page", "index") else "__folio_index"
    try:
        flags = kernel.read_u64(page + btf.offsetof("page", "flags"))
        mapping = kernel.read_u64(page + btf.offsetof("page", "mapping"))
        idx = kernel.read_u64(page + btf.offsetof("page", index))
        count = kernel.read_s32(page + btf.offsetof("page", "_refcount"))
    except CrashtuiError:
        return None
    names = [n for mask, n in pageflag_names(kernel) if flags & mask] if flags else []
    return PageInfo(page, phys & ~0xFFF, mapping, idx, count, flags, names)


def compound_head(kernel: Kernel, page: int) -> int:
    """The head page of a compound page (page.compound_head, or 7.1+'s compound_info mask)."""
    from crashtui.kernel.pageuse import _compound_head

    member = "compound_head" if kernel.btf.has_member("page", "compound_head") \
        else "compound_info"
    return _compound_head(kernel, page, kernel.read_u64(page + kernel.btf.offsetof("page",
                                                                                     member)))


def direct_map(kernel: Kernel) -> DirectMap | None:
    """The linear map of RAM, once the page tables confirmed it."""
    return kernel.pagetable.direct_map


def phys_of(kernel: Kernel, vaddr: int) -> int | None:
    try:
        return kernel.translate(vaddr)
    except CrashtuiError:
        return None


def node_of_pfn(kernel: Kernel, pfn: int) -> int:
    """The NUMA node whose span holds a pfn (node_data[]), 0 when there is one node."""
    nodes = kernel.symbol_or_none("node_data")
    if nodes is None:
        return 0
    btf = kernel.btf
    try:
        for n in range(min(SlubLayout(kernel).node_ids, 1024)):
            pgdat = kernel.read_u64(nodes + 8 * n)
            if not pgdat:
                continue
            start = kernel.read_u64(pgdat + btf.offsetof("pglist_data", "node_start_pfn"))
            span = kernel.read_u64(pgdat + btf.offsetof("pglist_data", "node_spanned_pages"))
            if start <= pfn < start + span:
                return n
    except CrashtuiError:
        pass
    return 0


def slab_object(kernel: Kernel, vaddr: int) -> SlabObject | None:
    """The slab object holding a direct-map address (None when its page is not a slab's)."""
    from crashtui.kernel.pageuse import page_use

    dm = direct_map(kernel)
    if dm is None or not dm.contains(vaddr):
        return None
    phys = dm.to_phys(vaddr)
    if page_use(kernel, phys >> 12) != "slab":
        return None
    try:
        layout = SlubLayout(kernel)
        page = page_of_phys(kernel, phys)
        if page is None:
            return None
        head = compound_head(kernel, page)
        cache_addr = kernel.read_u64(head + layout.slab_cache)
        addrs, _ = cache_addresses(kernel, layout)
        if cache_addr not in addrs:
            return None
        cpus = slab_cpus(kernel, layout)
        cache = read_cache(kernel, layout, cache_addr, cpus)
        base = vmemmap_base(kernel)
        assert base is not None
        pfn = (head - base) // kernel.btf.sizeof("struct page")
        memory = dm.to_virt(pfn << 12)
        if memory is None:
            return None
        walk = CacheWalk(layout, cache_addr, cpus)
        inuse, objects = layout.counters(head)
        freelist = kernel.read_u64(head + layout.slab_freelist)
        cpu_freelist, cpu = 0, None
        if layout.cpu_slab is not None:
            per_cpu = kernel.read_u64(cache_addr + layout.cpu_slab)
            for c in cpus:
                ccpu = kernel.per_cpu(per_cpu, c)
                if kernel.read_u64(ccpu + layout.c_slab) == head:
                    cpu_freelist = kernel.read_u64(ccpu + layout.c_freelist)
                    free = walk.freelist_length(cpu_freelist)
                    if freelist:
                        free += objects - inuse
                    inuse, cpu = objects - free, c
                    break
        flags = kernel.read_u32(cache_addr + kernel.btf.offsetof("kmem_cache", "flags"))
        pad = kernel.read_u32(cache_addr + kernel.btf.offsetof("kmem_cache", "red_left_pad")) \
            if flags & SLAB_RED_ZONE and kernel.btf.has_member("kmem_cache", "red_left_pad") \
            else 0
        # 6.18+: objects cached in a CPU's sheaves or a barn are free (drgn's
        # slab_object_info() says so too), though their slab counts them in use
        sheaves = walk.sheaf_objects()
        slab_free = _freelist(walk, freelist) | {o for o in sheaves
                                                 if memory <= o < memory + objects * cache.size}
        cpu_free = _freelist(walk, cpu_freelist)
        obj = None
        free_obj = False
        if memory <= vaddr < memory + objects * cache.size:
            start = memory + (vaddr - memory) // cache.size * cache.size
            obj = start + pad
            free_obj = obj in slab_free | cpu_free
            if obj in sheaves and sheaves[obj] is not None:
                cpu = sheaves[obj]
        return SlabObject(cache, head, memory, node_of_pfn(kernel, pfn), objects, inuse, obj,
                          free_obj, cpu,
                          free_objects=frozenset(slab_free | cpu_free),
                          cpu_free_objects=frozenset(cpu_free), object_size=cache.size,
                          red_left_pad=pad)
    except CrashtuiError:
        return None


def _freelist(walk: CacheWalk, head: int) -> set[int]:
    seen: set[int] = set()
    q = head
    while q and not q & 1 and q not in seen and len(seen) < MAX_FREELIST:
        seen.add(q)
        try:
            q = walk.free_pointer(q)
        except CrashtuiError:
            break
    return seen


def vmap_area(kernel: Kernel, vaddr: int) -> VmapArea | None:
    """The vmap_area (with a vm_struct) holding an address: vmap_area_root's rbtree (up to
    6.8), or each of vmap_nodes[]' busy trees (6.9+)."""
    btf = kernel.btf
    if not btf.has_type("struct vmap_area"):
        return None
    roots: list[int] = []
    root = kernel.symbol_or_none("vmap_area_root")
    if root is not None:
        roots.append(root)
    else:
        nodes_var, nr_var = kernel.symbol_or_none("vmap_nodes"), \
            kernel.symbol_or_none("nr_vmap_nodes")
        if nodes_var is None or nr_var is None:
            return None
        try:
            nodes = kernel.read_u64(nodes_var)
            n = kernel.read_u32(nr_var)
        except CrashtuiError:
            return None
        size = btf.sizeof("struct vmap_node")
        busy = btf.offsetof("vmap_node", "busy.root")
        roots += [nodes + i * size + busy for i in range(min(n, MAX_VMAP_NODES))]
    rb = btf.offsetof("vmap_area", "rb_node")
    o_start, o_end = btf.offsetof("vmap_area", "va_start"), btf.offsetof("vmap_area", "va_end")
    o_vm = btf.offsetof("vmap_area", "vm")
    for r in roots:
        try:
            node = kernel.read_u64(r)
            for _ in range(MAX_RB_DEPTH):
                if not node:
                    break
                va = node - rb
                start, end = kernel.read_u64(va + o_start), kernel.read_u64(va + o_end)
                if vaddr < start:
                    node = kernel.read_u64(node + 16)  # rb_left
                elif vaddr >= end:
                    node = kernel.read_u64(node + 8)  # rb_right
                else:
                    vm = kernel.read_u64(va + o_vm)
                    if vm:
                        return VmapArea(va, vm, start, end)
                    break
        except CrashtuiError:
            continue
    return None


def thread_size(kernel: Kernel) -> int:
    try:
        return kernel.btf.sizeof("union thread_union")
    except CrashtuiError:
        return 16384


def stack_owner(kernel: Kernel, tasks: list[Task], vaddr: int) -> Task | None:
    size = thread_size(kernel)
    return next((t for t in tasks if t.stack and t.stack <= vaddr < t.stack + size), None)


def task_struct_size(kernel: Kernel) -> int:
    """arch_task_struct_size (x86's task_struct ends in the FPU state, sized at boot), else
    the type's size."""
    size = kernel.btf.sizeof("struct task_struct")
    addr = kernel.symbol_or_none("arch_task_struct_size")
    try:
        boot = kernel.read_s32(addr) if addr is not None else 0
    except CrashtuiError:
        boot = 0
    return boot if 0 < boot <= 4 * size else size


def task_holding(kernel: Kernel, tasks: list[Task], vaddr: int) -> Task | None:
    size = task_struct_size(kernel)
    return next((t for t in tasks if t.address <= vaddr < t.address + size), None)


@dataclass(frozen=True)
class AddressInfo:
    """Everything crash's `kmem ADDR` says about one address (None: not that kind)."""

    address: int
    in_kernel_image: bool
    stack_of: Task | None
    vmap: VmapArea | None
    slab: SlabObject | None
    task: Task | None
    page: PageInfo | None
    is_page: bool = False  # the address is a struct page's


def describe_address(kernel: Kernel, tasks: list[Task], vaddr: int,
                     in_image: bool) -> AddressInfo:
    """Look an address up the way crash's kmem_search() does, in its order."""
    dm = direct_map(kernel)
    in_dm = dm is not None and dm.contains(vaddr)
    stack = vmap = slab = task = None
    pfn = page_pfn(kernel, vaddr)
    if pfn is not None:  # a struct page: the slab it heads (all its objects), and itself
        return AddressInfo(vaddr, in_image, None, None, slab_of_page(kernel, pfn), None,
                           page_info(kernel, pfn << 12), True)
    # vmalloc space and the modules' area (crash's IS_VMALLOC_ADDR), not the kernel image
    if not in_dm and not START_KERNEL_MAP <= vaddr < MODULES_VADDR:
        stack = stack_owner(kernel, tasks, vaddr)
        vmap = vmap_area(kernel, vaddr)
    if vmap is None:
        slab = slab_object(kernel, vaddr)
        task = task_holding(kernel, tasks, vaddr)
        if task is None:
            stack = stack_owner(kernel, tasks, vaddr)
    phys = phys_of(kernel, vaddr)
    page = page_info(kernel, phys) if phys is not None else None
    return AddressInfo(vaddr, in_image, stack, vmap, slab, task, page)


def page_pfn(kernel: Kernel, vaddr: int) -> int | None:
    """The pfn whose struct page is at `vaddr` (None: not a struct page's address)."""
    base = vmemmap_base(kernel)
    if base is None or vaddr < base:
        return None
    size = kernel.btf.sizeof("struct page")
    pfn, rem = divmod(vaddr - base, size)
    return pfn if not rem and pfn <= kernel.dump.info.max_pfn else None


def slab_of_page(kernel: Kernel, pfn: int) -> SlabObject | None:
    """The slab headed by page `pfn`, every object listed (crash's is_slab_page())."""
    dm = direct_map(kernel)
    virt = dm.to_virt(pfn << 12) if dm is not None else None
    if virt is None:
        return None
    found = slab_object(kernel, virt)
    if found is None or found.memory != virt:
        return None
    return replace(found, object=None, every_object=True)
