"""makedumpfile's kdump-compressed format ("KDUMP   ", older "DISKDUMP")."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crashtui.dumpfile.base import ByteSource, DumpFile, DumpInfo, UtsName, read_exact
from crashtui.dumpfile.codecs import (
    ALL_CODECS,
    CodecError,
    codec_names,
    decompress_into,
    decompress_page,
)
from crashtui.dumpfile.notes import parse_notes, pick_vmcoreinfo, vmcoreinfo_text
from crashtui.errors import (
    CrashtuiError,
    DumpCorruptError,
    DumpFormatError,
    PageExcludedError,
    PageMissingError,
)

SIGNATURES = (b"KDUMP   ", b"DISKDUMP")

# diskdump_mod.h: struct disk_dump_header (x86-64 layout)
_UTS_LEN = 65
_UTS_OFF = 12
_TIMEVAL = struct.Struct("<qq")  # struct timeval at 408 (after 6 x 65 utsname, aligned to 8)
_TIMEVAL_OFF = 408
_HDR_TAIL = struct.Struct("<IiiIIIIIIi")  # status .. nr_cpus at 424
_HDR_TAIL_OFF = 424
HEADER_SIZE = _HDR_TAIL_OFF + _HDR_TAIL.size  # 464

# diskdump_mod.h: struct kdump_sub_header, by header_version
_SUB_V1 = struct.Struct("<Qi")  # phys_base, dump_level
_SUB_V2 = struct.Struct("<iQQ")  # split, start_pfn, end_pfn (at 12, aligned)
_SUB_V3 = struct.Struct("<qQ")  # offset_vmcoreinfo, size_vmcoreinfo at 32
_SUB_V4 = struct.Struct("<qQ")  # offset_note, size_note at 48
_SUB_V6 = struct.Struct("<QQQ")  # start_pfn_64, end_pfn_64, max_mapnr_64 at 80
SUB_HEADER_SIZE = 104

# diskdump_mod.h: DUMP_DH_COMPRESSED_INCOMPLETE, DUMP_DH_EXCLUDED_VMEMMAP
STATUS_INCOMPLETE = 0x8

# diskdump_mod.h: page_desc_t {off_t offset; unsigned int size; unsigned int flags;
# unsigned long long page_flags;}
_PAGE_DESC = struct.Struct("<qIIQ")
_PAGE_DESC_DTYPE = np.dtype([("offset", "<i8"), ("size", "<u4"), ("flags", "<u4"),
                             ("page_flags", "<u8")])

_BLOCK_BYTES = 64  # bitmap bytes per cumulative-popcount block (512 pages) ...
_MAX_BLOCKS = 1 << 20  # ... or more, so the rank index stays within 8 MiB
_MAX_BLOCK_SIZE = 1 << 20
_CHUNK = 1 << 20  # bitmap bytes scanned at a time
_MAX_VMCOREINFO = 1 << 20  # the kernel's is one page (VMCOREINFO_BYTES)
_MAX_NOTES = 64 << 20  # NT_PRSTATUS and friends for 8192 CPUs fit in a few MiB
_SCAN_DESC_LIMIT = 64 << 20  # scan descriptor flags for codecs when the table is this small


def _data_ranges(src: ByteSource, offset: int, length: int) -> list[tuple[int, int]]:
    """The parts of [offset, offset + length) the file holds data for, relative to offset
    (the whole range unless the source knows its holes)."""
    ranges = getattr(src, "data_ranges", None)
    if ranges is None:
        return [(0, length)]
    return [(lo - offset, hi - offset) for lo, hi in ranges(offset, length)]


def _region(src: ByteSource, offset: int, length: int) -> bytes | memoryview:
    """A read-only view of [offset, offset + length) of a mapped file, else a copy."""
    view = getattr(src, "view", None)
    return view(offset, length) if view is not None else src.read(offset, length)


@dataclass(frozen=True)
class KdumpHeader:
    """The fields of disk_dump_header and kdump_sub_header crashtui uses."""

    signature: str
    header_version: int
    utsname: UtsName
    timestamp: float | None  # None when the writer left it zero (QEMU)
    status: int
    block_size: int
    sub_hdr_size: int
    bitmap_blocks: int
    max_mapnr: int
    nr_cpus: int
    phys_base: int | None
    dump_level: int | None
    split: bool
    start_pfn: int
    end_pfn: int
    offset_vmcoreinfo: int
    size_vmcoreinfo: int
    offset_note: int
    size_note: int


@dataclass(frozen=True)
class PageDesc:
    """One page_desc_t: where a dumped page's data is and how it is encoded."""

    offset: int
    size: int
    flags: int
    page_flags: int


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_header(src: ByteSource, path: Path) -> KdumpHeader:
    """Read and check disk_dump_header + kdump_sub_header against the file size."""
    raw = read_exact(src, 0, HEADER_SIZE, "kdump header", path)
    if raw[:8] not in SIGNATURES:
        raise DumpFormatError(f"bad kdump signature {raw[:8]!r}", path)
    (version,) = struct.unpack_from("<i", raw, 8)
    if version < 1:
        raise DumpFormatError(f"bad kdump header_version {version}", path)
    uts = UtsName(*(_cstr(raw[_UTS_OFF + i * _UTS_LEN:_UTS_OFF + (i + 1) * _UTS_LEN])
                    for i in range(6)))
    tv_sec, tv_usec = _TIMEVAL.unpack_from(raw, _TIMEVAL_OFF)
    (status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr, _total_ram, _dev_blocks,
     _written, _cur_cpu, nr_cpus) = _HDR_TAIL.unpack_from(raw, _HDR_TAIL_OFF)
    if block_size <= 0 or block_size > _MAX_BLOCK_SIZE or block_size & (block_size - 1):
        raise DumpFormatError(f"bad kdump block_size {block_size}", path)
    if block_size < HEADER_SIZE:
        raise DumpFormatError(f"kdump block_size {block_size} is smaller than the header", path)
    if sub_hdr_size < 1:
        raise DumpFormatError(f"bad kdump sub_hdr_size {sub_hdr_size}", path)
    sub_off = block_size
    if (1 + sub_hdr_size) * block_size > src.size:
        raise DumpFormatError(
            f"kdump sub header ({sub_hdr_size} blocks of {block_size}) extends past the end "
            f"of the file ({src.size} bytes)", path)
    sub = src.read(sub_off, min(SUB_HEADER_SIZE, sub_hdr_size * block_size))
    sub = sub.ljust(SUB_HEADER_SIZE, b"\0")
    phys_base, dump_level = _SUB_V1.unpack_from(sub, 0)
    split, start_pfn, end_pfn = (0, 0, 0)
    off_vmci = size_vmci = off_note = size_note = 0
    if version >= 2:
        split, start_pfn, end_pfn = _SUB_V2.unpack_from(sub, 12)
    if version >= 3:
        off_vmci, size_vmci = _SUB_V3.unpack_from(sub, 32)
    if version >= 4:
        off_note, size_note = _SUB_V4.unpack_from(sub, 48)
    if version >= 6:
        start64, end64, mapnr64 = _SUB_V6.unpack_from(sub, 80)
        start_pfn, end_pfn, max_mapnr = start64, end64, mapnr64
    if not split:
        start_pfn, end_pfn = 0, max_mapnr
    for what, off, size, cap in (("VMCOREINFO", off_vmci, size_vmci, _MAX_VMCOREINFO),
                                 ("note", off_note, size_note, _MAX_NOTES)):
        if size and (off <= 0 or off + size > src.size):
            raise DumpFormatError(
                f"kdump {what} area {off:#x}+{size:#x} lies outside the file "
                f"({src.size} bytes)", path)
        if size > min(cap, src.stored):  # a sparse flattened file could claim petabytes
            raise DumpFormatError(f"kdump {what} area of {size} bytes is implausibly large",
                                  path)
    return KdumpHeader(
        signature=raw[:8].decode("ascii").rstrip(), header_version=version, utsname=uts,
        timestamp=tv_sec + tv_usec / 1e6 if tv_sec or tv_usec else None,
        status=status, block_size=block_size,
        sub_hdr_size=sub_hdr_size, bitmap_blocks=bitmap_blocks, max_mapnr=max_mapnr,
        nr_cpus=nr_cpus, phys_base=phys_base, dump_level=dump_level,
        split=bool(split), start_pfn=start_pfn, end_pfn=end_pfn,
        offset_vmcoreinfo=off_vmci, size_vmcoreinfo=size_vmci,
        offset_note=off_note, size_note=size_note)


class KdumpFile(DumpFile):
    """A kdump-compressed dump read from any ByteSource (a plain file or a flattened one)."""

    def __init__(self, path: Path, src: ByteSource, format_name: str = "kdump-compressed"):
        super().__init__(path)
        self._src = src
        h = self.header = parse_header(src, path)
        bs = h.block_size
        bitmap_off = bs * (1 + h.sub_hdr_size)
        bitmap_len = bs * h.bitmap_blocks
        if h.bitmap_blocks == 0 or bitmap_off + bitmap_len > src.size:
            raise DumpFormatError(
                f"kdump bitmap ({h.bitmap_blocks} blocks at {bitmap_off:#x}) extends past the "
                f"end of the file ({src.size} bytes)", path)
        if bitmap_len > src.stored:
            raise DumpFormatError(
                f"kdump bitmap ({bitmap_len} bytes) is larger than the {src.stored} bytes of "
                f"data the file holds", path)
        half = bitmap_len // 2
        if h.max_mapnr > half * 8:
            raise DumpFormatError(
                f"kdump max_mapnr {h.max_mapnr} exceeds the {half * 8} pages the bitmap covers",
                path)
        if h.split and not (h.start_pfn <= h.end_pfn <= h.max_mapnr):
            raise DumpFormatError(
                f"kdump split range {h.start_pfn:#x}..{h.end_pfn:#x} is outside max_mapnr", path)
        # Views into the mapped file when it is a plain one (nothing copied); the rank index
        # costs 8 bytes per 512 pages and is built a chunk at a time.
        self._bitmap1 = _region(src, bitmap_off, half)
        self._bitmap2 = _region(src, bitmap_off + half, half)
        # A sparse file can claim gigabytes of bitmap it does not hold: only the parts with
        # data are scanned (holes read as zeros), and the index has at most _MAX_BLOCKS.
        self._block_bytes = _BLOCK_BYTES
        while half > self._block_bytes * _MAX_BLOCKS:
            self._block_bytes *= 2
        self._data1 = _data_ranges(src, bitmap_off, half)
        self._cum = self._cumulative_popcount(self._bitmap2, self._block_bytes,
                                              _data_ranges(src, bitmap_off + half, half))
        self._base_index = self._rank(h.start_pfn)
        self._nr_dumped = self._rank(h.end_pfn) - self._base_index
        self._desc_off = bitmap_off + bitmap_len
        desc_end = self._desc_off + self._nr_dumped * _PAGE_DESC.size
        if desc_end > src.size or desc_end - self._desc_off > src.stored:
            raise DumpFormatError(
                f"kdump page descriptors truncated: {self._nr_dumped} descriptors end at "
                f"{desc_end:#x} but the file has {src.size:#x} bytes", path)
        area = (vmcoreinfo_text(src.read(h.offset_vmcoreinfo, h.size_vmcoreinfo))
                if h.size_vmcoreinfo else None)
        self.notes = parse_notes(src.read(h.offset_note, h.size_note)) if h.size_note else []
        self.vmcoreinfo = pick_vmcoreinfo(area, self.notes)
        codecs, lost = self._scan_descriptors()
        self.info = DumpInfo(
            format=format_name, compression=codecs,
            dump_level=h.dump_level, partial=self._is_partial(),
            incomplete=bool(h.status & STATUS_INCOMPLETE), page_size=bs,
            utsname=h.utsname, timestamp=h.timestamp, nr_cpus=h.nr_cpus,
            header_version=h.header_version, phys_base=h.phys_base, max_pfn=h.max_mapnr,
            signature=h.signature, lost_pages=lost)

    @staticmethod
    def _cumulative_popcount(bitmap: bytes | memoryview, block_bytes: int = _BLOCK_BYTES,
                             ranges: list[tuple[int, int]] | None = None) -> np.ndarray:
        """Set bits before each block of `bitmap` (one extra entry for the total), reading
        only `ranges` (the parts the file holds; the rest is zeros)."""
        nblocks = (len(bitmap) + block_bytes - 1) // block_bytes
        cum = np.zeros(nblocks + 1, dtype=np.int64)
        chunk_size = max(_CHUNK, block_bytes)
        for start, end in ranges if ranges is not None else [(0, len(bitmap))]:
            for lo in range(start - start % block_bytes, end, chunk_size):
                chunk = bitmap[lo:lo + chunk_size]
                pad = (-len(chunk)) % block_bytes
                arr = np.frombuffer(bytes(chunk) + b"\0" * pad if pad else chunk,
                                    dtype=np.uint8)
                first = lo // block_bytes
                per_block = np.bitwise_count(arr).reshape(-1, block_bytes).sum(
                    axis=1, dtype=np.int64)
                cum[first + 1:first + 1 + len(per_block)] = per_block
                del arr
        np.cumsum(cum, out=cum)
        return cum

    def _rank(self, pfn: int) -> int:
        """Number of dumped pages (2nd bitmap bits) below `pfn`."""
        block, bit = divmod(pfn, self._block_bytes * 8)
        start = block * self._block_bytes
        word = int.from_bytes(self._bitmap2[start:start + self._block_bytes], "little")
        return int(self._cum[block]) + (word & ((1 << bit) - 1)).bit_count()

    @staticmethod
    def _bit(bitmap: bytes | memoryview, pfn: int) -> bool:
        return bool(bitmap[pfn >> 3] >> (pfn & 7) & 1)

    def _is_partial(self) -> bool:
        """Pages were filtered: a dump level was used or RAM pages are missing from bitmap 2."""
        if self.header.dump_level:
            return True
        for start, end in self._data1:  # where bitmap 1 is a hole it has no pages
            for lo in range(start, end, _CHUNK):
                hi = min(lo + _CHUNK, end)
                b1 = np.frombuffer(self._bitmap1[lo:hi], dtype=np.uint8)
                b2 = np.frombuffer(self._bitmap2[lo:hi], dtype=np.uint8)
                found = bool(np.any(b1 & ~b2))
                del b1, b2
                if found:
                    return True
        return False

    def _scan_descriptors(self) -> tuple[frozenset[str], int]:
        """Codecs the pages use and how many pages' data the file lacks (modest tables only).

        Larger tables are not read at open: the codecs come from the header status alone
        and lost pages are found when read.
        """
        flags = self.header.status & ALL_CODECS
        lost = 0
        table = self._nr_dumped * _PAGE_DESC.size
        if 0 < table <= _SCAN_DESC_LIMIT:
            descs = np.frombuffer(self._src.read(self._desc_off, table), dtype=_PAGE_DESC_DTYPE)
            flags = int(np.bitwise_or.reduce(descs["flags"])) & ALL_CODECS
            ends = descs["offset"].astype(np.float64) + descs["size"]  # no int64 overflow
            # numpy's functions, not operators: the fuzzer's comparison hooks keep every
            # array compared with `==`/`>` alive (fuzz/README.md)
            unwritten = np.equal(descs["offset"], 0) & np.equal(descs["size"], 0)
            gone = np.greater(ends, self._src.size) | unwritten
            missing = getattr(self._src, "missing", None)
            if missing is not None:  # a flattened stream: data in no record is lost too
                gone |= missing(descs["offset"], descs["offset"] + descs["size"])
            lost = int(np.count_nonzero(gone))
        return codec_names(flags), lost

    def is_present(self, pfn: int) -> bool:
        """True when page `pfn` is in this dump's 2nd (dumped) bitmap."""
        h = self.header
        return h.start_pfn <= pfn < h.end_pfn and self._bit(self._bitmap2, pfn)

    def _descriptor(self, pfn: int) -> PageDesc:
        """The page_desc of a dumped `pfn` (in this file's 2nd bitmap and pfn range)."""
        index = self._rank(pfn) - self._base_index
        raw = self._src.read(self._desc_off + index * _PAGE_DESC.size, _PAGE_DESC.size)
        return PageDesc(*_PAGE_DESC.unpack(raw))

    def read_pages(self, pfn: int, count: int) -> bytes | bytearray | memoryview:
        """Pages pfn .. pfn+count-1 (unreadable ones as zeros), their page_descs read in one
        piece: dumped pages of a pfn range have consecutive descriptors. A descriptor that
        is not plainly valid goes through _load_page, which says what is wrong with it."""
        h = self.header
        bs = h.block_size
        out = bytearray(count * bs)
        lo, hi = max(pfn, h.start_pfn, 0), min(pfn + count, h.end_pfn, h.max_mapnr)
        if lo >= hi or getattr(self._src, "holds", None) is not None:
            return super().read_pages(pfn, count) if lo < hi else bytes(out)
        first_byte, last_byte = lo >> 3, (hi + 7) >> 3
        bits = np.unpackbits(np.frombuffer(bytes(self._bitmap1[first_byte:last_byte]),
                                           np.uint8), bitorder="little")
        bits &= np.unpackbits(np.frombuffer(bytes(self._bitmap2[first_byte:last_byte]),
                                            np.uint8), bitorder="little")
        dumped = np.flatnonzero(bits[lo - (first_byte << 3):hi - (first_byte << 3)]) + lo
        if not len(dumped):
            return bytes(out)
        first = self._rank(lo) - self._base_index
        descs = np.frombuffer(self._src.read(self._desc_off + first * _PAGE_DESC.size,
                                             len(dumped) * _PAGE_DESC.size), _PAGE_DESC_DTYPE)
        offsets, sizes, flags = descs["offset"], descs["size"], descs["flags"]
        at = (dumped - pfn) * bs
        # numpy's functions, not operators (the fuzzer's comparison hooks, fuzz/README.md)
        sane = (np.greater(sizes, 0) & np.less_equal(sizes, bs)
                & np.greater_equal(offsets, self._desc_off)
                & np.less_equal(offsets, self._src.size - sizes.astype(np.int64)))
        raw = sane & np.equal(flags, 0) & np.equal(sizes, bs)
        packed = sane & np.not_equal(flags, 0)
        read = self._src.read
        ra, ro = at[raw], offsets[raw]
        # raw pages are copied by runs stored one after the other (a view when that is all)
        cut = np.flatnonzero(np.not_equal(np.diff(ra), bs) | np.not_equal(np.diff(ro), bs)) + 1
        view = getattr(self._src, "view", None)
        if len(ra) == count and not len(cut) and view is not None:
            return view(int(ro[0]), count * bs)
        for s, e in zip([0, *cut.tolist()], [*cut.tolist(), len(ra)], strict=True):
            if s < e:
                p, n = int(ra[s]), (e - s) * bs
                out[p:p + n] = read(int(ro[s]), n)
        if np.any(packed):
            data, where = self._packed_data(offsets[packed], sizes[packed])
            decompress_into(out, list(zip(at[packed].tolist(), where.tolist(),
                                          sizes[packed].tolist(), flags[packed].tolist(),
                                          strict=True)), data, bs)
        # a descriptor that is not plainly valid: _load_page says what is wrong with it (a
        # raw page of the wrong size is corrupt, read as zeros)
        odd = ~sane
        for p in dumped[odd].tolist():
            try:
                page = self._load_page(p, p * bs)
            except CrashtuiError:
                continue
            out[(p - pfn) * bs:(p - pfn + 1) * bs] = page
        return out

    def _packed_data(self, offsets: np.ndarray, sizes: np.ndarray
                     ) -> tuple[bytes | bytearray, np.ndarray]:
        """The compressed data of some pages in one buffer, and where each page's is in it:
        one read of the span when it is dense (makedumpfile writes the pages of a pfn range
        one after the other), else the pages' data joined."""
        lo = int(offsets.min())
        span = int((offsets + sizes.astype(np.int64)).max()) - lo
        if span <= 2 * int(sizes.sum()) + (64 << 10):
            return self._src.read(lo, span), offsets - lo
        read = self._src.read
        where = np.zeros(len(offsets), np.int64)
        np.cumsum(sizes[:-1], out=where[1:])
        return b"".join(read(o, s) for o, s in zip(offsets.tolist(), sizes.tolist(),
                                                   strict=True)), where

    def _load_page(self, pfn: int, paddr: int) -> bytes:
        """Find the page_desc of `pfn` and decode its data."""
        h = self.header
        if not 0 <= pfn < h.max_mapnr or not self._bit(self._bitmap1, pfn):
            raise PageMissingError(paddr, self.path)
        if not self._bit(self._bitmap2, pfn):
            raise PageExcludedError(paddr, self.path)
        if not h.start_pfn <= pfn < h.end_pfn:
            raise PageMissingError(paddr, self.path)  # in another file of a split dump
        desc = self._descriptor(pfn)
        offset, size, flags = desc.offset, desc.size, desc.flags
        bs = h.block_size
        if offset == 0 and size == 0 and h.status & STATUS_INCOMPLETE:
            raise PageMissingError(paddr, self.path)  # never written: the dump is incomplete
        if size == 0 or size > bs or offset < self._desc_off:
            raise DumpCorruptError(
                f"bad page descriptor for pfn {pfn:#x} (offset {offset:#x}, size {size}, "
                f"flags {flags:#x})", self.path)
        if offset + size > self._src.size:
            raise DumpCorruptError(
                f"page data of pfn {pfn:#x} at {offset:#x}+{size:#x} lies past the end of the "
                f"file ({self._src.size} bytes): truncated dump?", self.path)
        holds = getattr(self._src, "holds", None)
        if holds is not None and not holds(offset, size):
            raise DumpCorruptError(
                f"page data of pfn {pfn:#x} at {offset:#x}+{size:#x} is in no record of the "
                "flattened stream: the stream was cut short?", self.path)
        data = self._src.read(offset, size)
        if flags == 0:
            if size != bs:
                raise DumpCorruptError(
                    f"raw page of pfn {pfn:#x} has size {size}, not {bs}", self.path)
            return data
        try:
            return decompress_page(flags, data, bs)
        except CodecError as exc:
            raise DumpCorruptError(f"page of pfn {pfn:#x} at {offset:#x}: {exc}",
                                   self.path) from exc

    def close(self) -> None:
        """Release the bitmap views and close the underlying source."""
        super().close()
        for view in (self._bitmap1, self._bitmap2):
            if isinstance(view, memoryview):
                view.release()
        self._src.close()
