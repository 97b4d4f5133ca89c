"""Searching memory for values (crash's `search`, memory.c search_virtual/search_physical).

Memory is read a page at a time, only pages the dump has (excluded and absent pages are
skipped, nothing outside the dump is read) and matched with numpy over the whole page.
Kernel virtual space is crash's x86_64 ranges in crash's order: the direct map up to
high_memory, the vmalloc areas (modules among them), the vmemmap, the kernel image map.
A search stops at a byte budget or when its `cancelled` callback says so, and says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError
from crashtui.kernel.pagetable import START_KERNEL_MAP
from crashtui.kernel.pageuse import vmemmap_base

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

PAGE = 4096
DEFAULT_BUDGET = 8 << 30  # bytes read at most by one search
MAX_HITS = 100_000
RUN = 64  # pages read and matched at once
_DTYPES: dict[int, str] = {8: "<u8", 4: "<u4", 2: "<u2"}
ULONG_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class Hit:
    address: int
    value: int  # the word found (before the mask)
    which: int  # index of the searched value it matched
    text: str = ""  # -c: the string and what follows it, as crash shows it


@dataclass
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the search ended early


@dataclass
class Searcher:
    """Values of `size` bytes (8, 4 or 2) with don't-care `mask` bits (crash: X | mask)."""

    values: list[int]
    size: int = 8
    mask: int = 0
    budget: int = DEFAULT_BUDGET
    cancelled: Callable[[], bool] | None = None
    result: SearchResult = field(default_factory=SearchResult)

    def run(self, pages: Iterator[tuple[int, bytes]]) -> SearchResult:
        """Search each (address, bytes) chunk in order; address-aligned words only."""
        began = time.monotonic()
        dtype = _DTYPES[self.size]
        wmask = self.mask & ((1 << (8 * self.size)) - 1)
        targets = [np.array((v | wmask) & ((1 << (8 * self.size)) - 1), dtype=dtype)
                   for v in self.values]
        out = self.result
        for addr, data in pages:
            over = out.bytes_read + len(data) > self.budget
            if over:  # search up to the budget, then stop
                data = data[:max(0, self.budget - out.bytes_read)]
            if self.cancelled is not None and self.cancelled():
                out.stopped = f"search interrupted after {out.bytes_read >> 20} MiB"
                break
            out.bytes_read += len(data)
            skip = (-addr) % self.size
            usable = (len(data) - skip) // self.size * self.size
            words = np.frombuffer(data, dtype=dtype, count=usable // self.size, offset=skip)
            masked = words | np.array(wmask, dtype=dtype) if wmask else words
            found: list[tuple[int, int]] = []
            for i, t in enumerate(targets):
                found += [(int(j), i) for j in np.flatnonzero(masked == t)]
            if found:
                found.sort()
                for j, i in found:
                    out.hits.append(Hit(addr + skip + j * self.size, int(words[j]), i))
                if len(out.hits) >= MAX_HITS:
                    out.stopped = f"search stopped after {MAX_HITS} hits"
                    break
            if over:
                out.stopped = f"search stopped after {out.bytes_read >> 20} MiB (the budget)"
                break
        out.seconds = time.monotonic() - began
        return out


CHARS_CTX = 56  # crash's context of a string match


def _printable(raw: bytes) -> str:
    return "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in raw)


@dataclass
class StringSearcher:
    """crash's search -c: each place a string starts, shown with what follows it up to
    CHARS_CTX characters, cut at the end of its page (a match across two pages read one
    after the other shows the string, then the next page's bytes)."""

    strings: list[bytes]
    budget: int = DEFAULT_BUDGET
    cancelled: Callable[[], bool] | None = None
    result: SearchResult = field(default_factory=SearchResult)

    def run(self, pages: Iterator[tuple[int, bytes]]) -> SearchResult:
        began = time.monotonic()
        out = self.result
        longest = max(len(t) for t in self.strings)
        tail, tail_end = b"", -1  # the previous chunk's last bytes, and where they end
        for addr, data in pages:
            if self.cancelled is not None and self.cancelled():
                out.stopped = f"search interrupted after {out.bytes_read >> 20} MiB"
                break
            over = out.bytes_read + len(data) > self.budget
            if over:
                data = data[:max(0, self.budget - out.bytes_read)]
            out.bytes_read += len(data)
            found: list[tuple[int, int, str]] = []
            if tail and tail_end == addr:  # matches starting in the previous chunk's tail
                joined = tail + data[:longest]
                base = addr - len(tail)
                for i, t in enumerate(self.strings):
                    pos = joined.find(t)
                    while 0 <= pos < len(tail):
                        if pos + len(t) > len(tail):
                            rest = data[pos + len(t) - len(tail):][:CHARS_CTX - len(t)]
                            found.append((base + pos, i, _printable(t + rest)))
                        pos = joined.find(t, pos + 1)
            for i, t in enumerate(self.strings):
                pos = data.find(t)
                while pos >= 0:
                    a = addr + pos
                    page_end = (a // PAGE + 1) * PAGE
                    if a + len(t) <= page_end:
                        found.append((a, i, _printable(data[pos:pos + min(CHARS_CTX,
                                                                          page_end - a)])))
                    elif pos + len(t) <= len(data):  # across a page boundary in this chunk
                        rest = data[pos + len(t):pos + CHARS_CTX]
                        found.append((a, i, _printable(t + rest)))
                    pos = data.find(t, pos + 1)
            found.sort()
            out.hits += [Hit(a, 0, i, text) for a, i, text in found]
            tail, tail_end = data[-(longest - 1):] if longest > 1 else b"", addr + len(data)
            if len(out.hits) >= MAX_HITS:
                out.stopped = f"search stopped after {MAX_HITS} hits"
                break
            if over:
                out.stopped = f"search stopped after {out.bytes_read >> 20} MiB (the budget)"
                break
        out.seconds = time.monotonic() - began
        return out


def physical_pages(kernel: Kernel, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Physical memory in [start, end) the dump holds, in runs of up to RUN present pages."""
    dump = kernel.dump
    last = min(end, (dump.info.max_pfn + 1) * PAGE)
    addr = start
    while addr < last:
        run_start = addr
        while addr < last and addr - run_start < RUN * PAGE and dump.is_present(addr // PAGE):
            addr = min((addr // PAGE + 1) * PAGE, last)
        if addr > run_start:
            try:
                yield run_start, dump.read_phys(run_start, addr - run_start)
            except CrashtuiError:
                yield from _page_by_page(kernel, run_start, addr)
        else:
            addr = min((addr // PAGE + 1) * PAGE, last)


def _page_by_page(kernel: Kernel, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """A run that failed as a whole, its readable pages one at a time."""
    addr = start
    while addr < end:
        stop = min((addr // PAGE + 1) * PAGE, end)
        try:
            yield addr, kernel.dump.read_phys(addr, stop - addr)
        except CrashtuiError:
            pass
        addr = stop


def _mapped_pages(kernel: Kernel, start: int, end: int,
                  translate: Callable[[int], int | None]) -> Iterator[tuple[int, bytes]]:
    """Each mapped, present page of virtual [start, end)."""
    addr = start
    while addr < end:
        stop = min((addr & ~(PAGE - 1)) + PAGE, end)
        paddr = translate(addr)
        if paddr is not None and kernel.dump.is_present(paddr // PAGE):
            try:
                yield addr, kernel.dump.read_phys(paddr, stop - addr)
            except CrashtuiError:
                pass
        addr = stop


def _kernel_translate(kernel: Kernel) -> Callable[[int], int | None]:
    def tr(vaddr: int) -> int | None:
        try:
            return kernel.translate(vaddr)
        except CrashtuiError:
            return None
    return tr


def vmalloc_areas(kernel: Kernel) -> list[tuple[int, int]]:
    """[va_start, va_end) of each busy vmap_area (vmap_area_list, else the vmap_area_root
    rbtree), in address order."""
    from crashtui.kernel.lists import walk_list
    from crashtui.kernel.trees import rb_root_node, rbtree_walk

    off = kernel.offsetof
    o_start, o_end = off("vmap_area", "va_start"), off("vmap_area", "va_end")
    areas: list[int] = []
    head = kernel.symbol_or_none("vmap_area_list")
    nodes = kernel.symbol_or_none("vmap_nodes")
    if head is not None:
        o_list = off("vmap_area", "list")
        areas = [n - o_list for n in walk_list(kernel, head).nodes]
    elif nodes is not None and kernel.has_symbol("nr_vmap_nodes"):
        # 6.9+: vmap_nodes[nr_vmap_nodes], each with its busy areas on busy.head
        o_list = off("vmap_area", "list")
        o_busy = off("vmap_node", "busy") + off("rb_list", "head")
        size = kernel.sizeof("struct vmap_node")
        array = kernel.read_u64(nodes)
        for i in range(min(kernel.read_u32(kernel.symbol("nr_vmap_nodes")), 4096)):
            areas += [n - o_list for n in walk_list(kernel, array + i * size + o_busy).nodes]
    else:
        root = kernel.symbol_or_none("vmap_area_root")
        if root is None:
            return []
        areas = [e.address for e in rbtree_walk(kernel, rb_root_node(kernel, root),
                                                off("vmap_area", "rb_node")).entries]
    out = []
    for va in areas:
        try:
            out.append((kernel.read_u64(va + o_start), kernel.read_u64(va + o_end)))
        except CrashtuiError:
            continue
    return sorted(out)


def kernel_ranges(kernel: Kernel) -> list[tuple[str, int, int]]:
    """crash's x86_64_get_kvaddr_ranges() / arm64_get_kvaddr_ranges(): (kind, start, end)
    sorted by start. arm64 has no separate kernel-image range: the image is a vmalloc area."""
    out: list[tuple[str, int, int]] = []
    dm = kernel.pagetable.direct_map
    if dm is not None:
        high = kernel.symbol_or_none("high_memory")
        top = kernel.read_u64(high) if high is not None else dm.virt + dm.size
        out.append(("unity", dm.virt, min(top, dm.virt + dm.size)))
    end = kernel.symbol_or_none("_end")
    if end is not None and kernel.arch.name == "x86_64":
        out.append(("kernel", START_KERNEL_MAP, end))
    areas = vmalloc_areas(kernel)
    if areas:
        out.append(("vmalloc", areas[0][0], areas[-1][1]))
    start = vmemmap_base(kernel)
    if start is not None:
        size = kernel.sizeof("struct page")
        out.append(("vmemmap", start, start + (kernel.dump.info.max_pfn + 1) * size))
    return sorted(out, key=lambda r: r[1])


def kernel_pages(kernel: Kernel, start: int, end: int,
                 skip: tuple[str, ...] = ()) -> Iterator[tuple[int, bytes]]:
    """The kernel virtual pages crash's `search -k` reads in [start, end), in its order;
    `skip` leaves out ranges by kind (-K: vmalloc, vmemmap; -V: unity, kernel)."""
    tr = _kernel_translate(kernel)
    for kind, lo, hi in kernel_ranges(kernel):
        if kind in skip:
            continue
        lo, hi = max(lo, start), min(hi, end)
        if lo >= hi:
            continue
        if kind == "unity":  # linear: only the pages the dump has
            offset = kernel_ranges_unity_base(kernel, lo)
            for paddr, data in physical_pages(kernel, lo - offset, hi - offset):
                yield paddr + offset, data
        elif kind == "vmalloc":
            for a, b in vmalloc_areas(kernel):
                a, b = max(a, lo), min(b, hi)
                if a < b:
                    yield from _mapped_pages(kernel, a, b, tr)
        else:
            yield from _mapped_pages(kernel, lo, hi, tr)


def kernel_ranges_unity_base(kernel: Kernel, vaddr: int) -> int:
    """virtual - physical in the direct map, given an address in it."""
    dm = kernel.pagetable.direct_map
    if dm is not None:
        return dm.virt - dm.phys
    return vaddr - kernel.translate(vaddr)


def stack_pages(kernel: Kernel, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The mapped, present pages of one kernel stack (crash's -t reads them directly)."""
    yield from _mapped_pages(kernel, start, end, _kernel_translate(kernel))


def user_pages(kernel: Kernel, task: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The present pages of a task's VMAs in [start, end)."""
    from crashtui.kernel.vm import task_vm
    from crashtui.kernel.vtop import walk_user_address

    vm = task_vm(kernel, task)
    if not vm.mm:
        return

    def tr(vaddr: int) -> int | None:
        try:
            return walk_user_address(kernel, vm.pgd, vaddr).phys
        except CrashtuiError:
            return None

    for area in vm.areas:
        a, b = max(area.start, start), min(area.end, end)
        if a < b:
            yield from _mapped_pages(kernel, a, b, tr)
