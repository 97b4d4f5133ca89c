"""What every dump format offers: its description, notes, VMCOREINFO and physical pages."""

from __future__ import annotations

import mmap
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from crashtui.errors import CrashtuiError, DumpFormatError

PAGE_CACHE_SIZE = 64


@dataclass(frozen=True)
class UtsName:
    """The crashed kernel's `struct new_utsname` (uname -a)."""

    sysname: str
    nodename: str
    release: str
    version: str
    machine: str
    domainname: str


@dataclass(frozen=True)
class ElfNote:
    """One ELF note: owner name, type (NT_PRSTATUS = 1) and descriptor bytes."""

    name: str
    type: int
    desc: bytes


@dataclass(frozen=True)
class DumpInfo:
    """What the dump says about itself, before any kernel knowledge is applied."""

    format: str  # "kdump-compressed" | "flattened" | "elf"
    compression: frozenset[str]  # codecs the pages use; empty when all pages are raw
    dump_level: int | None
    partial: bool  # some RAM pages were filtered out
    incomplete: bool  # the writer ran out of space (kdump header status 0x8)
    page_size: int
    utsname: UtsName | None
    timestamp: float | None  # seconds since the epoch
    nr_cpus: int | None
    header_version: int | None
    phys_base: int | None
    max_pfn: int
    signature: str  # "KDUMP", "DISKDUMP" or "ELF" (trailing blanks removed)
    # Dumped pages whose data is not in the file: cut off (truncated copy) or never written
    # (incomplete dump). 0 when unknown (descriptor table too large to scan at open).
    lost_pages: int = 0


class ByteSource(Protocol):
    """Random access to the bytes of a (possibly reconstructed) dump file."""

    size: int  # length of the (reconstructed) file
    stored: int  # bytes actually held; less than size when a flattened file has holes

    def read(self, offset: int, length: int) -> bytes:
        """Return up to `length` bytes at `offset` (short only at the end of the file)."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


class MmapSource:
    """A plain file read through mmap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            self.size = self.stored = os.fstat(fd).st_size
            self._extents = _data_extents(fd, self.size)
            self._mm: mmap.mmap | None = (
                mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if self.size else None
            )
        finally:
            os.close(fd)

    def data_ranges(self, offset: int, length: int) -> list[tuple[int, int]]:
        """The parts of [offset, offset + length) that are not holes of a sparse file."""
        end = offset + length
        return [(max(lo, offset), min(hi, end)) for lo, hi in self._extents
                if lo < end and offset < hi]

    @property
    def mm(self) -> mmap.mmap:
        """The mapping (raises if the source was closed or the file is empty)."""
        if self._mm is None:
            raise ValueError("read from a closed or empty dump file")
        return self._mm

    def read(self, offset: int, length: int) -> bytes:
        """Return up to `length` bytes at `offset`."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        return self.mm[offset:offset + length]

    def view(self, offset: int, length: int) -> memoryview:
        """A zero-copy view of [offset, offset + length) (release it before close)."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        return memoryview(self.mm)[offset:offset + length]

    def close(self) -> None:
        """Unmap the file (if views are still held, the mapping goes with the last of them)."""
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a view is still exported; the mapping is freed with it
            self._mm = None


MAX_EXTENTS = 4096


def _data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of the file's data between its holes (SEEK_DATA/SEEK_HOLE); the whole
    file when the system cannot tell or the file has very many extents."""
    whole = [(0, size)]
    if not hasattr(os, "SEEK_DATA"):
        return whole
    out: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size and len(out) < MAX_EXTENTS:
            try:
                lo = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            hi = os.lseek(fd, lo, os.SEEK_HOLE)
            out.append((lo, hi))
            pos = hi
    except OSError:
        return whole
    return out if len(out) < MAX_EXTENTS else whole


def read_exact(src: ByteSource, offset: int, length: int, what: str, path: Path) -> bytes:
    """Read `length` bytes or raise DumpFormatError naming the truncated part."""
    if offset < 0 or length < 0 or offset + length > src.size:
        raise DumpFormatError(
            f"truncated {what}: needs bytes {offset:#x}..{offset + length:#x} "
            f"but the file has {src.size:#x}", path)
    return src.read(offset, length)


class DumpFile(ABC):
    """An open dump: description, notes, VMCOREINFO and page reads by physical address."""

    path: Path
    info: DumpInfo
    vmcoreinfo: str | None
    notes: list[ElfNote]

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._pages_lock = threading.Lock()  # scans read pages on the decoder threads too

    @abstractmethod
    def _load_page(self, pfn: int, paddr: int) -> bytes:
        """Return the whole page `pfn`, or raise Page*Error/DumpCorruptError naming `paddr`."""

    @abstractmethod
    def is_present(self, pfn: int) -> bool:
        """True when page `pfn` can be read (in the dump and not filtered out)."""

    def _page(self, pfn: int, paddr: int) -> bytes:
        """Return page `pfn` through the small LRU cache of decoded pages."""
        with self._pages_lock:
            page = self._pages.get(pfn)
            if page is not None:
                self._pages.move_to_end(pfn)
                return page
        page = self._load_page(pfn, paddr)
        with self._pages_lock:
            self._pages[pfn] = page
            if len(self._pages) > PAGE_CACHE_SIZE:
                self._pages.popitem(last=False)
        return page

    def read_phys(self, paddr: int, size: int) -> bytes:
        """Return `size` bytes of physical memory at `paddr`, across pages if needed."""
        if paddr < 0 or size < 0:
            raise ValueError(f"bad physical read {paddr:#x}+{size}")
        ps = self.info.page_size
        out = bytearray()
        addr, end = paddr, paddr + size
        while addr < end:
            pfn, off = divmod(addr, ps)
            n = min(ps - off, end - addr)
            out += self._page(pfn, addr)[off:off + n]
            addr += n
        return bytes(out)

    def read_pages(self, pfn: int, count: int) -> bytes | bytearray | memoryview:
        """Pages pfn .. pfn+count-1 whole, a page that cannot be read (excluded, missing,
        corrupt) as zeros: for scans of large tables such as the mem_map (a memoryview may
        be of the mapped file itself: read-only)."""
        ps = self.info.page_size
        out = bytearray(count * ps)
        for i in range(count):
            try:
                out[i * ps:(i + 1) * ps] = self._page(pfn + i, (pfn + i) * ps)
            except CrashtuiError:
                continue
        return out

    def close(self) -> None:
        """Release the file and the page cache."""
        self._pages.clear()

    def __enter__(self) -> DumpFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.format} {str(self.path)!r}>"
