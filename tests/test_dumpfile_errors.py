"""Damaged copies of the real dumps: every problem is the right error, naming what is wrong."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from dumpfile_fixtures import damaged_copy, flatten
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crashtui.dumpfile import open_dump
from crashtui.dumpfile.base import MmapSource
from crashtui.dumpfile.flattened import FlattenedSource
from crashtui.errors import (
    CrashtuiError,
    DumpCorruptError,
    DumpFormatError,
    PageExcludedError,
    PageMissingError,
)


@dataclass(frozen=True)
class Layout:
    """Where things are in the real sysrq dump, read with struct (not with crashtui)."""

    size: int
    block_size: int
    sub_off: int
    bitmap_off: int
    bitmap_len: int
    desc_off: int
    nr_dumped: int
    first_pfn: int  # the first dumped pfn (its descriptor is the first one)


@pytest.fixture(scope="module")
def layout(sysrq_dump: Path) -> Layout:
    raw = sysrq_dump.read_bytes()
    _status, bs, sub_blocks, bitmap_blocks = struct.unpack_from("<IiiI", raw, 424)
    bitmap_off = bs * (1 + sub_blocks)
    bitmap_len = bs * bitmap_blocks
    second = raw[bitmap_off + bitmap_len // 2:bitmap_off + bitmap_len]
    nr = sum(bin(b).count("1") for b in second)
    first = next(i for i in range(len(second) * 8) if second[i >> 3] >> (i & 7) & 1)
    return Layout(len(raw), bs, bs, bitmap_off, bitmap_len, bitmap_off + bitmap_len, nr, first)


def _desc(dump_path: Path, layout: Layout, index: int) -> tuple[int, int, int]:
    with dump_path.open("rb") as f:
        f.seek(layout.desc_off + 24 * index)
        offset, size, flags, _ = struct.unpack("<qIIQ", f.read(24))
    return offset, size, flags


def _open_error(path: Path, exc: type[CrashtuiError], match: str) -> CrashtuiError:
    with pytest.raises(exc, match=match) as info:
        open_dump(path)
    assert info.value.path == str(path)
    return info.value


def test_empty_directory_missing_fifo(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    _open_error(empty, DumpFormatError, "empty file")
    _open_error(tmp_path, DumpFormatError, "is a directory")
    _open_error(tmp_path / "nope", DumpFormatError, "no such file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _open_error(fifo, DumpFormatError, "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable(sysrq_dump: Path, tmp_path: Path) -> None:
    path = damaged_copy(sysrq_dump, tmp_path / "d", size=8192)
    path.chmod(0)
    _open_error(path, DumpFormatError, "cannot read")


def test_not_a_dump(tmp_path: Path) -> None:
    path = tmp_path / "text"
    path.write_text("hello, this is not a vmcore\n" * 10)
    _open_error(path, DumpFormatError, "not a kdump-compressed, flattened or ELF dump")


@pytest.mark.parametrize("cut,match", [
    (100, "truncated kdump header"),
    (4096 + 50, "sub header .* extends past the end"),
    (3 * 4096 + 1000, "bitmap .* extends past the end"),
])
def test_truncated_headers(sysrq_dump: Path, tmp_path: Path, cut: int, match: str) -> None:
    _open_error(damaged_copy(sysrq_dump, tmp_path / "d", size=cut), DumpFormatError, match)


def test_truncated_descriptors(sysrq_dump: Path, layout: Layout, tmp_path: Path) -> None:
    path = damaged_copy(sysrq_dump, tmp_path / "d", size=layout.desc_off + 1000)
    _open_error(path, DumpFormatError, f"page descriptors truncated: {layout.nr_dumped} ")


def test_truncated_page_data(sysrq_dump: Path, layout: Layout, tmp_path: Path) -> None:
    """A dump cut inside the page data opens; the lost pages are DumpCorruptError, not zeros."""
    cut = layout.size - 200_000
    path = damaged_copy(sysrq_dump, tmp_path / "d", size=cut)
    with open_dump(path) as dump, open_dump(sysrq_dump) as ref:
        present = [p for p in range(dump.info.max_pfn) if dump.is_present(p)]
        assert dump.read_phys(present[0] * 4096, 4096) == ref.read_phys(present[0] * 4096, 4096)
        raw = sysrq_dump.read_bytes()[layout.desc_off:layout.desc_off + 24 * layout.nr_dumped]
        offsets = [o for o, _s, _f, _p in struct.iter_unpack("<qIIQ", raw)]
        last = present[offsets.index(max(offsets))]
        with pytest.raises(DumpCorruptError,
                           match=f"pfn {last:#x} .*past the end of the file .*truncated"):
            dump.read_phys(last * 4096, 8)


@pytest.mark.parametrize("patch,match", [
    ({0: b"KDUMPXXX"}, "not a kdump-compressed"),
    ({8: struct.pack("<i", 0)}, "bad kdump header_version 0"),
    ({428: struct.pack("<i", 0)}, "bad kdump block_size 0"),
    ({428: struct.pack("<i", 3000)}, "bad kdump block_size 3000"),
    ({432: struct.pack("<i", 0x7FFFFFFF)}, "sub header .* extends past the end"),
    ({436: struct.pack("<I", 0xFFFFFFFF)}, "bitmap .* extends past the end"),
    ({436: struct.pack("<I", 0)}, "bitmap"),
    ({4096 + 96: struct.pack("<Q", 1 << 60)}, "max_mapnr 1152921504606846976 exceeds"),
    ({4096 + 32: struct.pack("<q", 1 << 40)}, "VMCOREINFO area .* outside the file"),
    ({4096 + 48: struct.pack("<q", -5)}, "note area .* outside the file"),
])
def test_bad_header_fields(sysrq_dump: Path, tmp_path: Path, patch: dict[int, bytes],
                           match: str) -> None:
    path = damaged_copy(sysrq_dump, tmp_path / "d", patch)
    _open_error(path, DumpFormatError, match)


def test_diskdump_signature(sysrq_dump: Path, tmp_path: Path) -> None:
    path = damaged_copy(sysrq_dump, tmp_path / "d", {0: b"DISKDUMP"})
    with open_dump(path) as dump:
        assert dump.info.signature == "DISKDUMP" and dump.info.format == "kdump-compressed"


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6])
def test_header_versions(sysrq_dump: Path, tmp_path: Path, version: int) -> None:
    """Older header versions read only the sub header fields they define."""
    path = damaged_copy(sysrq_dump, tmp_path / "d", {8: struct.pack("<i", version)})
    with open_dump(path) as dump, open_dump(sysrq_dump) as ref:
        assert dump.info.header_version == version
        assert dump.info.max_pfn == ref.info.max_pfn  # the 32-bit field agrees here
        assert dump.info.dump_level == 31
        assert (dump.vmcoreinfo == ref.vmcoreinfo) if version >= 3 else dump.vmcoreinfo is None
        assert len(dump.notes) == (5 if version >= 4 else 0)


def test_incomplete_flag(sysrq_dump: Path, tmp_path: Path) -> None:
    path = damaged_copy(sysrq_dump, tmp_path / "d", {424: struct.pack("<I", 0x1 | 0x8)})
    with open_dump(path) as dump:
        assert dump.info.incomplete


def test_descriptor_past_end(sysrq_dump: Path, layout: Layout, tmp_path: Path) -> None:
    _off, size, flags = _desc(sysrq_dump, layout, 0)
    patch = {layout.desc_off: struct.pack("<qII", 1 << 40, size, flags)}
    with open_dump(damaged_copy(sysrq_dump, tmp_path / "d", patch)) as dump:
        with pytest.raises(DumpCorruptError, match=f"pfn {layout.first_pfn:#x} .*past the end"):
            dump.read_phys(layout.first_pfn * 4096, 8)


@pytest.mark.parametrize("size,flags,match", [
    (0, 1, "bad page descriptor"),
    (8192, 1, "bad page descriptor"),
    (100, 0, "raw page of pfn .* has size 100"),
    (100, 0x40, "unknown page compression flags 0x40"),
])
def test_bad_descriptor(sysrq_dump: Path, layout: Layout, tmp_path: Path, size: int,
                        flags: int, match: str) -> None:
    offset, _size, _flags = _desc(sysrq_dump, layout, 0)
    patch = {layout.desc_off: struct.pack("<qII", offset, size, flags)}
    with open_dump(damaged_copy(sysrq_dump, tmp_path / "d", patch)) as dump:
        with pytest.raises(DumpCorruptError, match=match):
            dump.read_phys(layout.first_pfn * 4096, 8)


def test_corrupted_zlib_page(sysrq_dump: Path, layout: Layout, tmp_path: Path) -> None:
    index = next(i for i in range(layout.nr_dumped)
                 if _desc(sysrq_dump, layout, i)[2] == 1 and _desc(sysrq_dump, layout, i)[1] > 64)
    offset, size, _flags = _desc(sysrq_dump, layout, index)
    path = damaged_copy(sysrq_dump, tmp_path / "d", {offset + 2: b"\x55" * (size - 2)})
    with open_dump(path) as dump:
        pfn = [p for p in range(dump.info.max_pfn) if dump.is_present(p)][index]
        with pytest.raises(DumpCorruptError, match=f"pfn {pfn:#x} .*zlib data does not decompress"):
            dump.read_phys(pfn * 4096, 8)
        assert dump.read_phys(layout.first_pfn * 4096, 8) is not None  # the rest still reads


# --- flattened -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sysrq_bytes(sysrq_dump: Path) -> bytes:
    return sysrq_dump.read_bytes()


def test_flattened_out_of_order_records(sysrq_bytes: bytes, sysrq_dump: Path,
                                        tmp_path: Path) -> None:
    path = flatten(sysrq_bytes, tmp_path / "flat", chunk=40_000)
    with open_dump(path) as dump, open_dump(sysrq_dump) as ref:
        assert dump.info.format == "flattened" and dump.vmcoreinfo == ref.vmcoreinfo
        present = [p for p in range(ref.info.max_pfn) if ref.is_present(p)]
        for pfn in present[::97]:
            assert dump.read_phys(pfn * 4096, 4096) == ref.read_phys(pfn * 4096, 4096)


def test_flattened_later_records_win(sysrq_bytes: bytes, tmp_path: Path) -> None:
    """Overlapping records: the reconstructed file is what makedumpfile -R would write."""
    data = sysrq_bytes[:300_000]
    extra = [(5000, b"A" * 10_000), (12_000, b"B" * 100), (0x10000 - 10, b"C" * 20),
             (299_990, b"D" * 30)]
    expected = bytearray(data)
    for off, raw in extra:
        expected[off:off + len(raw)] = raw
    path = flatten(data, tmp_path / "flat", chunk=0x10000, extra=extra)
    flat = FlattenedSource(path, MmapSource(path))
    try:
        assert flat.size == len(expected)
        assert flat.read(0, flat.size) == expected
        for start, length in [(4990, 30), (14_990, 20), (0x10000 - 20, 40), (299_980, 100)]:
            assert flat.read(start, length) == expected[start:start + length]
    finally:
        flat.close()


def test_flattened_truncated(sysrq_bytes: bytes, sysrq_dump: Path, tmp_path: Path) -> None:
    """A stream cut short keeps the records that arrived; the kdump reader judges the rest."""
    path = flatten(sysrq_bytes[:200_000], tmp_path / "flat")
    whole = path.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[:150_000])
    _open_error(cut, DumpFormatError, "kdump page descriptors truncated")
    in_order = [(o, sysrq_bytes[o:o + (1 << 16)]) for o in range(0, len(sysrq_bytes), 1 << 16)]
    stream = flatten(b"", tmp_path / "stream", extra=in_order).read_bytes()
    for keep, lost in ((len(stream) - 16, False), (len(stream) * 9 // 10, True)):
        cut.write_bytes(stream[:keep])  # the end marker lost, then the last tenth too
        with open_dump(cut) as dump, open_dump(sysrq_dump) as ref:
            assert dump.vmcoreinfo == ref.vmcoreinfo and (dump.info.lost_pages > 0) == lost
            present = [p for p in range(ref.info.max_pfn) if ref.is_present(p)]
            for pfn in present[:50]:
                assert dump.read_phys(pfn * 4096, 4096) == ref.read_phys(pfn * 4096, 4096)
            if lost:
                with pytest.raises(DumpCorruptError, match="past the end of the file"):
                    for pfn in present:
                        dump.read_phys(pfn * 4096, 8)
    cut.write_bytes(whole[:4096 + 10])
    _open_error(cut, DumpFormatError, "flattened stream holds no data")
    cut.write_bytes(whole[:1000])
    _open_error(cut, DumpFormatError, "truncated flattened header")


def test_flattened_bad_header_and_record(sysrq_bytes: bytes, tmp_path: Path) -> None:
    _open_error(flatten(sysrq_bytes[:100_000], tmp_path / "t", file_type=7), DumpFormatError,
                r"bad flattened header \(type 7\)")
    bad = flatten(sysrq_bytes[:100_000], tmp_path / "r", extra=[(-8, b"xx")])
    _open_error(bad, DumpFormatError, "bad flattened record .* offset -8")
    _open_error(flatten(b"", tmp_path / "e"), DumpFormatError, "holds no data")


def test_flattened_kdump_inside_is_checked(sysrq_bytes: bytes, layout: Layout,
                                           tmp_path: Path) -> None:
    """The shared kdump parser checks the reconstructed file as it checks a plain one."""
    _open_error(flatten(sysrq_bytes[:layout.desc_off + 100], tmp_path / "f"), DumpFormatError,
                "page descriptors truncated")


# --- ELF -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def elf_head(sysrq_elf_vmcore: Path) -> bytes:
    with sysrq_elf_vmcore.open("rb") as f:
        return f.read(0x3000)


@pytest.mark.parametrize("patch,match", [
    ({4: b"\x01"}, "only 64-bit little-endian"),
    ({5: b"\x02"}, "only 64-bit little-endian"),
    ({16: struct.pack("<H", 2)}, r"not a core dump \(e_type 2\)"),
    ({56: struct.pack("<H", 0)}, "bad ELF program header table"),
    ({32: struct.pack("<Q", 1 << 40)}, "truncated ELF program headers"),
])
def test_elf_bad_headers(elf_head: bytes, tmp_path: Path, patch: dict[int, bytes],
                         match: str) -> None:
    data = bytearray(elf_head)
    for off, raw in patch.items():
        data[off:off + len(raw)] = raw
    path = tmp_path / "elf"
    path.write_bytes(data)
    _open_error(path, DumpFormatError, match)


def test_elf_truncated(elf_head: bytes, tmp_path: Path) -> None:
    """Cut inside the memory: opens, the lost part is counted and reads as DumpCorruptError."""
    path = tmp_path / "elf"
    path.write_bytes(elf_head)
    with open_dump(path) as dump:
        assert dump.info.lost_pages > 30_000 and dump.vmcoreinfo
        with pytest.raises(DumpCorruptError, match="past the end of the file .*truncated"):
            dump.read_phys(0x21a00000 + 0x2000, 8)
    path.write_bytes(elf_head[:0x16ac])
    _open_error(path, DumpFormatError, "ends before the first memory segment")
    path.write_bytes(elf_head[:0x1000])
    _open_error(path, DumpFormatError, "PT_NOTE at .* extends past the end of the file")
    path.write_bytes(elf_head[:40])
    _open_error(path, DumpFormatError, "truncated ELF header")


def test_read_phys_arguments(sysrq_dump: Path) -> None:
    with open_dump(sysrq_dump) as dump:
        with pytest.raises(ValueError):
            dump.read_phys(-1, 8)
        with pytest.raises(ValueError):
            dump.read_phys(0, -8)


# --- fuzz ------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 700_000), st.binary(min_size=1, max_size=8)),
                min_size=1, max_size=6))
def test_fuzzed_headers_only_raise_crashtui_errors(sysrq_bytes: bytes, tmp_path: Path,
                                                   edits: list[tuple[int, bytes]]) -> None:
    """Random damage to the header, bitmaps and descriptors: a CrashtuiError or good reads."""
    data = bytearray(sysrq_bytes[:2_000_000])
    for off, raw in edits:
        data[off:off + len(raw)] = raw
    path = tmp_path / "fuzz"
    path.write_bytes(data)
    try:
        dump = open_dump(path)
    except DumpFormatError:
        return
    with dump:
        for pfn in range(0, min(dump.info.max_pfn, 1 << 20), 997):
            try:
                assert len(dump.read_phys(pfn * dump.info.page_size, 64)) == 64
            except (PageExcludedError, PageMissingError, DumpCorruptError):
                pass


def test_flattened_sparse_bogus_bitmap(sysrq_bytes: bytes, tmp_path: Path) -> None:
    """A far-away record cannot make a huge bogus bitmap look present (no huge allocation)."""
    head = bytearray(sysrq_bytes[:3 * 4096])
    struct.pack_into("<I", head, 436, 1 << 28)  # bitmap_blocks: 1 TiB of bitmap
    path = flatten(bytes(head), tmp_path / "f", extra=[(1 << 41, b"x")])
    _open_error(path, DumpFormatError, "bitmap .* is larger than the .* bytes of data")
