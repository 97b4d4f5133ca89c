"""The vectorised mem_map scan of `kmem -i` (read by large pages, counted with numpy) gives
exactly what the former scan through Kernel.read, page by page, gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import dump_of

from crashtui.errors import CrashtuiError
from crashtui.kernel.mm import _Kmem, read_zero_filled
from crashtui.kernel.program import Kernel

NAMES = ["5.10-sysrq", "6.1-sysrq", "6.1-oom", "6.12-sysrq", "7.3-sysrq", "6.12-arm64-sysrq",
         "6.12-arm64-kdump-sysrq"]


def _page_fields_by_read(m: _Kmem, mem_map: int, count: int, page_size: int, o_flags: int,
                         o_count: int) -> tuple[np.ndarray, np.ndarray]:
    """The former scan: Kernel.read of the section, else 4 KiB at a time with zeros."""
    size = count * page_size
    try:
        buf = bytearray(m.k.read(mem_map, size))
    except CrashtuiError:
        buf = bytearray(size)
        for pos in range(0, size, 0x1000):
            try:
                buf[pos:pos + 0x1000] = m.k.read(mem_map + pos, min(0x1000, size - pos))
            except CrashtuiError:
                continue
    rows = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(count, page_size)
    return (rows[:, o_flags:o_flags + 8].copy().view("<u8").ravel(),
            rows[:, o_count:o_count + 4].copy().view("<i4").ravel())


@pytest.mark.parametrize("name", NAMES)
def test_vector_scan_equals_page_by_page(name: str, vmlinux_for: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    k = Kernel.open(dump_of(name), vmlinux_for[name])
    fast = _Kmem(k).shared_pages()
    slow_m = _Kmem(k)
    monkeypatch.setattr(slow_m, "_page_fields",
                        lambda *a: _page_fields_by_read(slow_m, *a))
    assert fast == slow_m.shared_pages()
    assert fast[0] > 0


def test_zero_filled_read_equals_kernel_read(vmlinux_for: dict[str, Path]) -> None:
    """Over vmemmap (2 MiB leaves), the direct map and the kernel image, and zeros where
    Kernel.read fails page by page."""
    name = "6.1-sysrq"
    k = Kernel.open(dump_of(name), vmlinux_for[name])
    page = k.read_u64(k.symbol("vmemmap_base"))
    for addr in (page, page + 0x1FF000, k.symbol("init_task") & ~0xFFF,
                 k.read_u64(k.symbol("page_offset_base")) + 0x100000):
        assert read_zero_filled(k, addr, 0x5000) == k.read(addr, 0x5000)
    # a range of which some pages are excluded from the dump (free memory in the direct map)
    base = k.read_u64(k.symbol("page_offset_base"))
    want = bytearray()
    missing = 0
    for pos in range(0, 1 << 24, 0x1000):
        try:
            want += k.read(base + (1 << 26) + pos, 0x1000)
        except CrashtuiError:
            want += bytes(0x1000)
            missing += 1
    assert missing  # the test means something only if some pages are missing
    assert read_zero_filled(k, base + (1 << 26), 1 << 24) == bytes(want)


@pytest.mark.parametrize("name", ["6.1-sysrq", "6.12-arm64-sysrq"])
def test_read_pages_equals_page_reads(name: str) -> None:
    """DumpFile.read_pages (kdump: page_descs in one read) is page-by-page read_phys with
    zeros where a page is excluded or missing, over ranges mixing both."""
    from crashtui.dumpfile import open_dump

    dump = open_dump(dump_of(name))
    ps = dump.info.page_size
    present = [p for p in range(0, min(dump.info.max_pfn, 1 << 18), 97) if dump.is_present(p)]
    assert present
    missing = 0
    for start in (0, present[len(present) // 2] - 700, present[-1] - 300, dump.info.max_pfn - 5):
        start = max(start, 0)
        want = bytearray()
        for p in range(start, start + 1024):
            try:
                want += dump.read_phys(p * ps, ps)
            except CrashtuiError:
                want += bytes(ps)
                missing += 1
        assert dump.read_pages(start, 1024) == bytes(want), start
    assert missing
