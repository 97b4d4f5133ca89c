"""Resource bounds: no header field makes crashtui allocate much beyond what it reads, and no
input makes it loop without end. Allocations are measured with tracemalloc (numpy's too)."""

from __future__ import annotations

import dataclasses
import lzma
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy  # noqa: F401 - imported before any measurement
import pytest
from test_robustness_support import copy_with, overlay

import crashtui.dumpfile.elfcore
import crashtui.dumpfile.flattened
import crashtui.dumpfile.kdump  # noqa: F401 - imported before any measurement
from crashtui.dumpfile import open_dump
from crashtui.dumpfile.base import PAGE_CACHE_SIZE
from crashtui.errors import CrashtuiError, KernelReadError

MIB = 1 << 20


def measured(fn: Callable[[], object]) -> tuple[float, int, object]:
    """(seconds, peak bytes allocated, result or the CrashtuiError raised) of fn()."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result: object = fn()
    except CrashtuiError as exc:
        result = exc
    finally:
        elapsed = time.monotonic() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, peak, result


@pytest.fixture(scope="module")
def kdump_head(sysrq_dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real dump's header, bitmaps, descriptors and first pages (1 MiB)."""
    return copy_with(sysrq_dump, tmp_path_factory.mktemp("head") / "dump", size=MIB)


@pytest.mark.parametrize("offset,value", [
    (428, struct.pack("<i", 1 << 20)),  # block_size 1 MiB: every area moves far out
    (432, struct.pack("<i", 0x7FFFFFFF)),  # sub_hdr_size
    (436, struct.pack("<I", 0xFFFFFFFF)),  # bitmap_blocks
    (440, struct.pack("<I", 0xFFFFFFFF)),  # max_mapnr (32-bit)
    (460, struct.pack("<i", 0x7FFFFFFF)),  # nr_cpus
    (4096 + 96, struct.pack("<Q", (1 << 64) - 1)),  # max_mapnr_64
    (4096 + 40, struct.pack("<Q", 1 << 62)),  # size_vmcoreinfo
    (4096 + 56, struct.pack("<Q", 1 << 62)),  # size_note
    (4096 + 12, struct.pack("<iQQ", 1, 0, 1 << 62)),  # split, start_pfn, end_pfn
    (4096 + 80, struct.pack("<QQ", 0, 1 << 62) + struct.pack("<I", 1)),  # 64-bit pfns
])
def test_huge_kdump_header_fields(kdump_head: Path, tmp_path: Path, offset: int,
                                  value: bytes) -> None:
    """Each field at its maximum: a quick error or a quick open, never a big allocation."""
    path = copy_with(kdump_head, tmp_path / "dump", {offset: value})

    def open_and_read() -> object:
        with open_dump(path) as dump:
            for pfn in (1, 2, dump.info.max_pfn - 1, dump.info.max_pfn + 5, 1 << 40):
                try:
                    dump.read_phys(pfn * dump.info.page_size, 8)
                except CrashtuiError:
                    pass
            return dump.info

    elapsed, peak, _result = measured(open_and_read)
    assert elapsed < 5 and peak < 4 * MIB, (elapsed, peak)


def flattened(path: Path, records: list[tuple[int, bytes]]) -> Path:
    with path.open("wb") as out:
        out.write((b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)).ljust(4096, b"\0"))
        for offset, data in records:
            out.write(struct.pack(">qq", offset, len(data)) + data)
        out.write(struct.pack(">qq", -1, -1))
    return path


def test_flattened_many_tiny_records(kdump_head: Path, tmp_path: Path) -> None:
    head = kdump_head.read_bytes()[:3 * 4096]
    path = flattened(tmp_path / "f", [(0, head)] + [(20_000 + 2 * i, b"x") for i in range(100_000)])
    elapsed, peak, result = measured(lambda: open_dump(path))
    size = path.stat().st_size
    assert isinstance(result, CrashtuiError)  # the kdump inside is cut short
    assert elapsed < 5 and peak < 8 * size, (elapsed, peak, size)


@pytest.mark.parametrize("shape", ["nested", "scattered"])
def test_flattened_overlapping_records(kdump_head: Path, tmp_path: Path, shape: str) -> None:
    """50,000 records overwriting each other: resolved in a second or two."""
    head = kdump_head.read_bytes()[:3 * 4096]
    n = 50_000
    if shape == "nested":
        records = [(20_000 + i, b"y" * 3) for i in range(n)]
    else:
        records = [(i * 7 % 50_021, b"zz") for i in range(n)]
    path = flattened(tmp_path / "f", [(0, head)] + records)
    elapsed, peak, _result = measured(lambda: open_dump(path))
    assert elapsed < 10 and peak < 12 * path.stat().st_size, (elapsed, peak)


def test_flattened_far_offsets(kdump_head: Path, tmp_path: Path) -> None:
    """A record at an exabyte offset is refused; one at a petabyte reads as a sparse file."""
    head = kdump_head.read_bytes()[:3 * 4096]
    far = flattened(tmp_path / "far", [(0, head), ((1 << 62), b"x")])
    with pytest.raises(CrashtuiError, match="bad flattened record"):
        open_dump(far)
    sparse = flattened(tmp_path / "sparse", [(0, head), (1 << 50, b"x")])
    elapsed, peak, result = measured(lambda: open_dump(sparse))
    assert isinstance(result, CrashtuiError) and elapsed < 2 and peak < MIB


@pytest.fixture(scope="module")
def elf_head(sysrq_dir: Path) -> bytes:
    with lzma.open(next(sysrq_dir.glob("vmcore-d31.elf.*.xz"))) as f:
        return f.read(0x20000)


def _elf_with_phdrs(head: bytes, path: Path, phdrs: list[tuple[int, ...]],
                    phentsize: int = 56) -> Path:
    data = bytearray(head)
    phoff = len(data)
    struct.pack_into("<Q", data, 32, phoff)
    struct.pack_into("<HH", data, 54, phentsize, len(phdrs))
    for ph in phdrs:
        data += struct.pack("<IIQQQQQQ", *ph).ljust(phentsize, b"\0")
    path.write_bytes(data)
    return path


def test_elf_huge_fields(elf_head: bytes, tmp_path: Path) -> None:
    note = struct.unpack_from("<IIQQQQQQ", elf_head, 64)
    cases = {
        "phnum": _elf_with_phdrs(elf_head, tmp_path / "a", [note] * 3, phentsize=0xFFFF),
        "note_size": _elf_with_phdrs(elf_head, tmp_path / "b",
                                     [(4, 0, 0x430, 0, 0, 1 << 40, 1 << 40, 0)]),
        "memsz": _elf_with_phdrs(elf_head, tmp_path / "c",
                                 [note, (1, 7, 0x16ac, 0, 0, 0x1000, 1 << 62, 0)]),
    }
    for name, path in cases.items():
        def open_and_read(path: Path = path) -> object:
            with open_dump(path) as dump:
                for paddr in (0, 0x1000, 1 << 40, (1 << 62) - 8):
                    try:
                        dump.read_phys(paddr, 8)
                    except CrashtuiError:
                        pass
            return None

        elapsed, peak, _result = measured(open_and_read)
        assert elapsed < 5 and peak < 2 * MIB, (name, elapsed, peak)


def test_elf_many_segments(elf_head: bytes, tmp_path: Path) -> None:
    """65,000 PT_LOADs, one of them endless: opening and reading stay bounded."""
    note = struct.unpack_from("<IIQQQQQQ", elf_head, 64)
    phdrs = [note, (1, 7, 0x16ac, 0, 0, 0x1000, 1 << 60, 0)]
    phdrs += [(1, 7, 0, 0, i << 12, 0, 0x1000, 0) for i in range(2, 65_000)]
    path = _elf_with_phdrs(elf_head, tmp_path / "elf", phdrs)

    def open_and_read() -> object:
        with open_dump(path) as dump:
            for pfn in range(0, 65_000, 65):
                try:
                    dump.read_phys(pfn << 12, 8)
                except CrashtuiError:
                    pass
        return None

    elapsed, peak, _result = measured(open_and_read)
    assert elapsed < 20 and peak < 16 * path.stat().st_size, (elapsed, peak)


def test_page_cache_is_bounded(sysrq_dump: Path) -> None:
    with open_dump(sysrq_dump) as dump:
        present = [p for p in range(dump.info.max_pfn) if dump.is_present(p)][:500]
        for pfn in present:
            dump.read_phys(pfn * 4096, 8)
        assert len(dump._pages) == PAGE_CACHE_SIZE  # noqa: SLF001


# --- the kernel layer ---------------------------------------------------------------------------

@pytest.mark.needs_vmlinux
def test_kernel_read_size_capped(sysrq_dump: Path, vmlinux_path: Path) -> None:
    from crashtui.kernel.program import Kernel

    kernel = Kernel.open(sysrq_dump, vmlinux_path)
    elapsed, peak, result = measured(lambda: kernel.read(kernel.symbol("init_task"), 2 << 30))
    assert isinstance(result, KernelReadError) and elapsed < 1 and peak < MIB
    kernel.close()


@pytest.mark.needs_vmlinux
def test_header_nr_cpus_fallback_clamped(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """nr_cpu_ids unreadable and a huge header nr_cpus: one CPU assumed, not 2**31."""
    from crashtui.analysis.session import Session

    session = Session.open(sysrq_dump, vmlinux_path)
    k = session.kernel
    k.dump.info = dataclasses.replace(k.dump.info, nr_cpus=0x7FFFFFFF)
    with overlay(k) as view:
        view.hole(k.symbol("nr_cpu_ids"), 4)
        assert k.nr_cpu_ids == 1
        elapsed, _peak, _result = measured(lambda: session.summary.sys_lines())
    assert elapsed < 20
    session.close()


@pytest.mark.needs_vmlinux
def test_log_ring_sizes_inconsistent(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """count_bits 22 with a 128 KiB text ring: refused before reading 100 MB of descriptors."""
    from crashtui.kernel.printk import read_log
    from crashtui.kernel.program import Kernel

    kernel = Kernel.open(sysrq_dump, vmlinux_path)
    prb = kernel.read_u64(kernel.vmcoreinfo.symbols["prb"])
    with overlay(kernel) as view:
        view.set(prb, struct.pack("<I", 22))
        elapsed, peak, result = measured(lambda: read_log(kernel))
    assert isinstance(result, KernelReadError) and "inconsistent printk ring sizes" in str(result)
    assert elapsed < 1 and peak < MIB
    kernel.close()


def test_zlib_bomb_page(sysrq_dump: Path, tmp_path: Path) -> None:
    """A page whose 4 KiB of zlib data inflate to 4 MiB: refused after one page's worth."""
    import zlib

    from test_robustness_support import KdumpLayout

    bomb = zlib.compress(bytes(4 << 20), 9)
    assert len(bomb) < 4096
    path = copy_with(sysrq_dump, tmp_path / "dump")
    layout = KdumpLayout.of(path)
    pfn = next(p for p in range(1, 4096) if layout.bitmap2[p >> 3] >> (p & 7) & 1)
    with path.open("r+b") as f:
        end = f.seek(0, 2)
        f.write(bomb)
        f.seek(layout.desc_pos(pfn))
        f.write(struct.pack("<qII", end, len(bomb), 1))
    with open_dump(path) as dump:
        elapsed, peak, result = measured(lambda: dump.read_phys(pfn * 4096, 8))
    assert isinstance(result, CrashtuiError) and "decompressed to 4097 bytes" in str(result)
    assert peak < MIB


def test_bitmaps_read_in_place(sysrq_dump: Path, tmp_path: Path) -> None:
    """A 64 MiB bitmap (a 1 TiB machine) costs its 4 MiB rank index at open, not copies."""
    raw = bytearray(sysrq_dump.read_bytes()[:3 * 4096])
    blocks = 16384
    mapnr = blocks * 4096 // 2 * 8
    struct.pack_into("<II", raw, 436, blocks, 0xFFFFFFFF)
    struct.pack_into("<Q", raw, 4096 + 96, mapnr)
    path = tmp_path / "dump"
    path.write_bytes(raw)
    with path.open("r+b") as f:
        f.truncate(len(raw) + blocks * 4096 + 4096)  # sparse: the bitmaps read as zeros

    def open_and_close() -> object:
        with open_dump(path) as dump:
            assert dump.info.max_pfn == mapnr and not dump.is_present(mapnr - 1)
        return None

    elapsed, peak, _result = measured(open_and_close)
    assert elapsed < 5 and peak < 6 * MIB, (elapsed, peak)


def test_flattened_sparse_notes_area(kdump_head: Path, tmp_path: Path) -> None:
    """A sparse flattened file a petabyte long whose header claims a petabyte of VMCOREINFO
    and notes: refused, not a petabyte of zeros (found by the flattened fuzz target)."""
    head = bytearray(kdump_head.read_bytes()[:3 * 4096])
    struct.pack_into("<qQqQ", head, 4096 + 32, 5648, 1 << 49, 4200, 1 << 49)
    path = flattened(tmp_path / "f", [(0, bytes(head)), (1 << 50, b"x" * 100)])
    elapsed, peak, result = measured(lambda: open_dump(path))
    assert isinstance(result, CrashtuiError) and "implausibly large" in str(result)
    assert elapsed < 1 and peak < MIB
