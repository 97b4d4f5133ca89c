"""ELF64 vmcores: /proc/vmcore copies, `makedumpfile -E`, QEMU dump-guest-memory.

What an ELF vmcore records, as checked on the real `makedumpfile -E -d 31` file:
- Filtered pages are cut off the PT_LOADs: makedumpfile splits a segment at runs of 256 or
  more excluded pages (and at the end of RAM), giving each piece p_filesz < p_memsz. Memory
  past p_filesz within p_memsz is reported excluded (PageExcludedError); memory in no
  PT_LOAD is missing (PageMissingError).
  Shorter runs stay in the file with their real bytes, and zero pages are cut too, so the
  ELF and kdump forms of one crash differ a little in which pages they hold (bytes agree).
- info.partial: some PT_LOAD has p_filesz < p_memsz. There is no header, so dump_level,
  utsname, timestamp, phys_base and header_version are None; nr_cpus counts NT_PRSTATUS
  notes; page_size is VMCOREINFO's PAGESIZE (else 4096).
- A file cut short inside the PT_LOAD data still opens (as crash does): the memory past the
  end reads as DumpCorruptError and info.lost_pages counts it. PT_LOADs that share file
  bytes mean damaged headers and are refused.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from pathlib import Path

from crashtui.dumpfile.base import DumpFile, DumpInfo, MmapSource, read_exact
from crashtui.dumpfile.notes import NT_PRSTATUS, parse_notes, vmcoreinfo_from_notes
from crashtui.dumpfile.pieces import last_writers
from crashtui.errors import (
    DumpCorruptError,
    DumpFormatError,
    PageExcludedError,
    PageMissingError,
)

# elf.h: Elf64_Ehdr (e_ident[16], e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
# e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx)
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
# elf.h: Elf64_Phdr (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align)
_PHDR = struct.Struct("<IIQQQQQQ")
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
DEFAULT_PAGE_SIZE = 4096
_MAX_NOTES_SIZE = 64 << 20


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD: physical range [paddr, paddr + memsz), of which filesz bytes are in the file."""

    paddr: int
    offset: int
    filesz: int
    memsz: int


class ElfDumpFile(DumpFile):
    """An ELF vmcore; PT_LOAD memory past p_filesz was filtered out (makedumpfile -E)."""

    def __init__(self, path: Path, src: MmapSource) -> None:
        super().__init__(path)
        self._src = src
        ehdr = read_exact(src, 0, _EHDR.size, "ELF header", path)
        (ident, e_type, _machine, _version, _entry, phoff, _shoff, _flags, _ehsize,
         phentsize, phnum, _shentsize, _shnum, _shstrndx) = _EHDR.unpack(ehdr)
        if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
            raise DumpFormatError("only 64-bit little-endian ELF vmcores are supported", path)
        if e_type != ET_CORE:
            raise DumpFormatError(f"ELF file is not a core dump (e_type {e_type})", path)
        if phnum == 0 or phentsize < _PHDR.size:
            raise DumpFormatError(
                f"bad ELF program header table (e_phnum {phnum}, e_phentsize {phentsize})",
                path)
        table = read_exact(src, phoff, phnum * phentsize, "ELF program headers", path)
        segments: list[Segment] = []
        note_bytes = bytearray()
        for i in range(phnum):
            p_type, _pf, offset, _vaddr, paddr, filesz, memsz, _align = _PHDR.unpack_from(
                table, i * phentsize)
            if p_type not in (PT_LOAD, PT_NOTE):
                continue
            if p_type == PT_NOTE and filesz and offset + filesz > src.size:
                raise DumpFormatError(
                    f"ELF segment {i} (PT_NOTE at {offset:#x}+{filesz:#x}) extends past the end "
                    f"of the file ({src.size} bytes): truncated?", path)
            if p_type == PT_NOTE:
                if len(note_bytes) + filesz > _MAX_NOTES_SIZE:
                    raise DumpFormatError(f"ELF notes too large ({filesz} bytes)", path)
                note_bytes += src.read(offset, filesz)
            elif memsz:
                if filesz > memsz:
                    raise DumpFormatError(
                        f"ELF segment {i} has p_filesz {filesz:#x} > p_memsz {memsz:#x}", path)
                segments.append(Segment(paddr, offset, filesz, memsz))
        if not segments:
            raise DumpFormatError("ELF core has no PT_LOAD segments", path)
        _check_file_overlap(segments, path)
        # A copy cut short keeps the PT_LOADs it still holds: like crash, read on and report
        # the memory past the end of the file as lost (DumpCorruptError when read).
        lost = sum(max(0, s.offset + s.filesz - max(s.offset, src.size)) for s in segments)
        if lost and all(s.offset >= src.size for s in segments if s.filesz):
            raise DumpFormatError(
                f"truncated ELF vmcore: the file ({src.size} bytes) ends before the first "
                f"memory segment", path)
        # Several PT_LOADs can map the same RAM (kernel text and the direct map): prefer
        # one that holds the bytes, then the one with the longer file part.
        self._segments = sorted(segments, key=lambda s: (s.paddr, -s.filesz))
        self._bounds, self._owner, self._mapped = _piece_index(self._segments)
        self.notes = parse_notes(bytes(note_bytes))
        self.vmcoreinfo = vmcoreinfo_from_notes(self.notes)
        page_size = _vmcoreinfo_pagesize(self.vmcoreinfo) or DEFAULT_PAGE_SIZE
        end = max(s.paddr + s.memsz for s in self._segments)
        nr_prstatus = sum(1 for n in self.notes if n.type == NT_PRSTATUS)
        self.info = DumpInfo(
            format="elf", compression=frozenset(), dump_level=None,
            partial=any(s.filesz < s.memsz for s in self._segments), incomplete=False,
            page_size=page_size, utsname=None, timestamp=None,
            nr_cpus=nr_prstatus or None, header_version=None, phys_base=None,
            max_pfn=(end + page_size - 1) // page_size, signature="ELF",
            lost_pages=(lost + page_size - 1) // page_size)

    def _covering(self, paddr: int) -> tuple[Segment | None, bool]:
        """The segment holding `paddr` in the file (or None) and whether any PT_LOAD maps it."""
        k = bisect.bisect_right(self._bounds, paddr) - 1
        if not 0 <= k < len(self._owner):
            return None, False
        owner = self._owner[k]
        return (self._segments[owner], True) if owner >= 0 else (None, self._mapped[k])

    def is_present(self, pfn: int) -> bool:
        """True when the start of page `pfn` is within some PT_LOAD's file part."""
        return self._covering(pfn * self.info.page_size)[0] is not None

    def _load_page(self, pfn: int, paddr: int) -> bytes:
        """Return page `pfn`, assembled from the segments that hold it."""
        ps = self.info.page_size
        return self._read_range(pfn * ps, ps, paddr)

    def _read_range(self, start: int, size: int, paddr: int) -> bytes:
        """Return [start, start + size) from the file parts of the segments, or raise."""
        out = bytearray()
        addr, end = start, start + size
        while addr < end:
            seg, mapped = self._covering(addr)
            if seg is None:
                at = max(addr, paddr)
                if mapped:
                    raise PageExcludedError(at, self.path)
                raise PageMissingError(at, self.path)
            n = min(end, seg.paddr + seg.filesz) - addr
            pos = seg.offset + (addr - seg.paddr)
            if pos + n > self._src.size:
                raise DumpCorruptError(
                    f"memory at physical address {max(addr, paddr):#x} (file offset {pos:#x}) "
                    f"lies past the end of the file ({self._src.size} bytes): truncated dump?",
                    self.path)
            out += self._src.read(pos, n)
            addr += n
        return bytes(out)

    def read_pages(self, pfn: int, count: int) -> bytes | bytearray | memoryview:
        """Pages pfn .. pfn+count-1 (unreadable ones as zeros) straight from the file: a
        view of the mapping when one segment's file part holds them all (no copy), else
        each piece copied once."""
        ps = self.info.page_size
        if pfn < 0 or count <= 0:
            return super().read_pages(pfn, count)
        start, end = pfn * ps, (pfn + count) * ps
        pieces: list[tuple[int, int, int]] = []  # (start, end, file offset) of held memory
        k = max(bisect.bisect_right(self._bounds, start) - 1, 0)
        while k < len(self._owner) and self._bounds[k] < end:
            lo, hi = max(self._bounds[k], start), min(self._bounds[k + 1], end)
            owner = self._owner[k]
            k += 1
            if lo >= hi or owner < 0:
                continue
            if lo % ps or hi % ps:  # a page only partly held: page by page, as read_phys
                return super().read_pages(pfn, count)
            seg = self._segments[owner]
            pos = seg.offset + lo - seg.paddr
            # a copy cut short holds the whole pages before the end of the file
            hi = min(hi, lo + max(0, (self._src.size - pos) // ps * ps))
            if lo < hi:
                pieces.append((lo, hi, pos))
        if len(pieces) == 1 and pieces[0][:2] == (start, end):
            return self._src.view(pieces[0][2], end - start)
        out = bytearray(end - start)
        for lo, hi, pos in pieces:
            out[lo - start:hi - start] = self._src.view(pos, hi - lo)
        return out

    def read_phys(self, paddr: int, size: int) -> bytes:
        """Return `size` bytes of physical memory at `paddr`, straight from the segments."""
        if paddr < 0 or size < 0:
            raise ValueError(f"bad physical read {paddr:#x}+{size}")
        return self._read_range(paddr, size, paddr)

    def close(self) -> None:
        """Unmap the file."""
        super().close()
        self._src.close()


def _piece_index(segments: list[Segment]) -> tuple[list[int], list[int], list[bool]]:
    """Physical memory cut at every segment edge; for each piece, the segment whose file part
    holds it (-1: none) and whether any PT_LOAD maps it. Lookups are then one bisect,
    whatever the number of segments and however they overlap.

    Where file parts overlap, the segment that sorts last (higher paddr, then the shorter
    file part) wins, as a walk back from the address would find it.
    """
    bounds = sorted({edge for seg in segments
                     for edge in (seg.paddr, seg.paddr + seg.filesz, seg.paddr + seg.memsz)})
    where = {edge: i for i, edge in enumerate(bounds)}
    owner = list(last_writers([where[seg.paddr] for seg in segments],
                              [where[seg.paddr + seg.filesz] for seg in segments],
                              len(bounds) - 1))
    depth = [0] * len(bounds)
    for seg in segments:
        depth[where[seg.paddr]] += 1
        depth[where[seg.paddr + seg.memsz]] -= 1
    mapped, level = [], 0
    for d in depth[:-1]:
        level += d
        mapped.append(level > 0)
    return bounds, owner, mapped


def _check_file_overlap(segments: list[Segment], path: Path) -> None:
    """Refuse PT_LOADs whose file bytes overlap: the headers are damaged, no way to know how."""
    stored = sorted((s for s in segments if s.filesz), key=lambda s: s.offset)
    for a, b in zip(stored, stored[1:], strict=False):
        if b.offset < a.offset + a.filesz:
            raise DumpFormatError(
                f"damaged ELF program headers: PT_LOADs for physical {a.paddr:#x} and "
                f"{b.paddr:#x} share file bytes at {b.offset:#x}", path)


def _vmcoreinfo_pagesize(vmcoreinfo: str | None) -> int | None:
    """PAGESIZE= from VMCOREINFO text (the only page size an ELF vmcore records)."""
    for line in (vmcoreinfo or "").splitlines():
        if line.startswith("PAGESIZE="):
            try:
                value = int(line[len("PAGESIZE="):])
            except ValueError:
                return None
            return value if value > 0 and value & (value - 1) == 0 else None
    return None
