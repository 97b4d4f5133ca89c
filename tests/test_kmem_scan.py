"""The struct page scan behind kmem -i's SHARED (and kmem -p): the threaded kdump inflater and
the ELF file's own mapping give exactly what a plain page-by-page read gives, and crash's
numbers, on the real samples (kdump and makedumpfile -E / QEMU ELF copies of one crash)."""

from __future__ import annotations

import lzma
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, dump_of, manifest_of
from test_kmem import crash_pages

from crashtui.dumpfile import open_dump
from crashtui.dumpfile.base import DumpFile
from crashtui.dumpfile.codecs import MIN_BATCH, THREADS_ENV, ZLIB, decompress_into
from crashtui.errors import CrashtuiError
from crashtui.kernel.mm import _Kmem
from crashtui.kernel.pages import mem_sections, present_sections, section_pages
from crashtui.kernel.program import Kernel


def _plain_shared(k: Kernel) -> tuple[int, int]:
    """kmem -i's (shared, slab) by the slowest route: every page of every section's mem_map
    read alone through Kernel.read (zeros where it fails), every struct page in Python."""
    size = k.sizeof("struct page")
    o_flags, o_count = k.offsetof("page", "flags"), k.offsetof("page", "_refcount")
    reserved = 1 << k.btf.enumerator("PG_reserved")
    slab_bit = 1 << k.btf.enumerator("PG_slab")
    per_section = 1 << (k.vmcoreinfo.number("SECTION_SIZE_BITS", 27) - 12)
    shared = slab = 0
    for sec in mem_sections(k):
        for pos in range(0, per_section * size, 0x1000):
            try:
                raw = k.read(sec.mem_map + pos, 0x1000)
            except CrashtuiError:
                continue
            for at in range(0, 0x1000 - size + 1, size):
                flags = int.from_bytes(raw[at + o_flags:at + o_flags + 8], "little")
                count = int.from_bytes(raw[at + o_count:at + o_count + 4], "little",
                                       signed=True)
                shared += count > 1 and not flags & reserved
                slab += bool(flags & slab_bit)
    return shared, slab


def _elf_of(name: str, key: str, glob: str, tmp: Path) -> Path:
    """A sample's committed .xz ELF copy, decompressed into tmp."""
    src = SAMPLES / name / manifest_of(SAMPLES / name)[key] if key else \
        next((SAMPLES / name).glob(glob))
    out = tmp / src.name.removesuffix(".xz")
    with lzma.open(src) as fin, out.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
    return out


@pytest.fixture(scope="module")
def elf_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ELF vmcores of the same crash as the sample's kdump: 6.1-sysrq's makedumpfile -E -d
    31 and 6.12-arm64-sysrq's QEMU dump-guest-memory (MANIFEST's dump_elf)."""
    tmp = tmp_path_factory.mktemp("elf")
    return {"6.1-sysrq": _elf_of("6.1-sysrq", "", "vmcore-d31.elf.*.xz", tmp),
            "6.12-arm64-sysrq": _elf_of("6.12-arm64-sysrq", "dump_elf", "", tmp)}


def test_threaded_scan_equals_plain_walk(vmlinux_for: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """6.1-sysrq's kdump: with 1 and 4 decoder threads, shared_pages is the per-page walk's
    result, and that is crash's SHARED."""
    name = "6.1-sysrq"
    k = Kernel.open(dump_of(name), vmlinux_for[name])
    plain = _plain_shared(k)
    for threads in ("1", "4"):
        monkeypatch.setenv(THREADS_ENV, threads)
        assert _Kmem(k).shared_pages() == plain
    assert plain[0] == crash_pages(name)["SHARED"]


@pytest.mark.parametrize("name", ["6.1-sysrq", "6.12-arm64-sysrq"])
def test_elf_scan_equals_kdump_scan(name: str, vmlinux_for: dict[str, Path],
                                    elf_copies: dict[str, Path]) -> None:
    """The ELF copy's scan (the mem_map viewed in the mapped file) counts what the kdump's
    does, and 6.1's equals crash's SHARED."""
    elf = Kernel.open(elf_copies[name], vmlinux_for[name])
    assert elf.dump.info.format == "elf"
    ours = _Kmem(elf).shared_pages()
    assert ours == _Kmem(Kernel.open(dump_of(name), vmlinux_for[name])).shared_pages()
    assert ours[0] > 0
    if name == "6.1-sysrq":
        assert ours == _plain_shared(elf)
        assert ours[0] == crash_pages(name)["SHARED"]


@pytest.mark.parametrize("name", ["6.1-sysrq", "6.12-arm64-sysrq"])
def test_elf_read_pages_equals_page_reads(name: str, elf_copies: dict[str, Path]) -> None:
    """ElfDumpFile.read_pages (a view or pieces of the mapping) is DumpFile's page-by-page
    read with zeros where a page is not in the file, over ranges crossing segment edges."""
    dump = open_dump(elf_copies[name])
    segs = dump._segments  # type: ignore[attr-defined]
    ps = dump.info.page_size
    starts = {0, dump.info.max_pfn - 7}
    for seg in segs[:40]:
        for edge in (seg.paddr, seg.paddr + seg.filesz, seg.paddr + seg.memsz):
            starts.add(max(edge // ps - 300, 0))
        if seg.filesz >= 600 * ps and not seg.paddr % ps:
            starts.add(seg.paddr // ps + 50)  # inside one segment's file part
    views = 0
    for start in sorted(starts):
        got = dump.read_pages(start, 512)
        views += isinstance(got, memoryview)
        assert bytes(got) == bytes(DumpFile.read_pages(dump, start, 512)), start
    assert views  # some range lies in one segment's file part: read without a copy


def test_kdump_read_pages_threaded_equals_page_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kdump's vmemmap-sized reads decoded by 4 threads equal page-by-page decoding."""
    monkeypatch.setenv(THREADS_ENV, "4")
    dump = open_dump(dump_of("6.1-sysrq"))
    present = [p for p in range(0, dump.info.max_pfn, 512) if dump.is_present(p)]
    assert len(present) > 8
    for start in present[::max(1, len(present) // 8)]:
        assert dump.read_pages(start, 512) == bytes(DumpFile.read_pages(dump, start, 512))


def test_decompress_into_leaves_bad_pages_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages that do not inflate to exactly one page (garbage, short, a bomb) stay zeros and
    are counted; the others land where they belong, on the threads as inline."""
    ps = 4096
    good = [bytes([i % 251]) * ps for i in range(4 * MIN_BATCH)]
    blobs = [zlib.compress(p) for p in good]
    bad = {5: b"\xff" * 40, 77: zlib.compress(bytes(ps // 2)),
           200: zlib.compress(bytes(4 << 20), 9)}
    for i, blob in bad.items():
        blobs[i] = blob
    data = b"".join(blobs)
    where = np.cumsum([0] + [len(b) for b in blobs])
    pages = [(i * ps, int(where[i]), len(b), ZLIB) for i, b in enumerate(blobs)]
    for threads in ("1", "3"):
        monkeypatch.setenv(THREADS_ENV, threads)
        out = bytearray(len(blobs) * ps)
        assert decompress_into(out, pages, data, ps) == len(bad)
        for i, page in enumerate(good):
            assert out[i * ps:(i + 1) * ps] == (bytes(ps) if i in bad else page), i


def test_kmem_p_sections_are_kmem_i_sections(vmlinux_for: dict[str, Path]) -> None:
    """kmem -p lists the sections kmem -i counts, from the same walk and the same reads."""
    name = "6.1-sysrq"
    k = Kernel.open(dump_of(name), vmlinux_for[name])
    sections = list(present_sections(k))
    assert sections == [(s.nr, s.first_pfn, s.mem_map) for s in mem_sections(k)]
    reserved = np.uint64(1 << k.btf.enumerator("PG_reserved"))
    shared = sum(int(np.count_nonzero((rows.count > 1) & ((rows.flags & reserved) == 0)))
                 for rows in section_pages(k))
    assert shared == _Kmem(k).shared_pages()[0]


def test_map_on_decoder_threads_keeps_order_and_never_nests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Results in the items' order; work that a decoder thread hands on runs on that thread
    (a pool waiting on itself would deadlock once every thread waits)."""
    import threading

    from crashtui.dumpfile.codecs import map_on_decoder_threads, on_decoder_thread

    monkeypatch.setenv(THREADS_ENV, "2")

    def inner(x: int) -> tuple[int, str]:
        return x * 2, threading.current_thread().name

    def outer(x: int) -> list[int]:
        assert on_decoder_thread()
        got = map_on_decoder_threads(inner, range(x, x + 3))
        assert {name for _, name in got} == {threading.current_thread().name}
        return [v for v, _ in got]

    assert map_on_decoder_threads(outer, [0, 10, 20, 30]) == [
        [0, 2, 4], [20, 22, 24], [40, 42, 44], [60, 62, 64]]
    assert not on_decoder_thread()
