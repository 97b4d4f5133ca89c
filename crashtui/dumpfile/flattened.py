"""makedumpfile's flattened format (-F): the kdump file as a stream of (offset, data) records."""

from __future__ import annotations

import bisect
import struct
from pathlib import Path

from crashtui.dumpfile.base import MmapSource
from crashtui.errors import DumpFormatError

# makedumpfile.h: struct makedumpfile_header {char signature[16]; int64_t type;
# int64_t version;} big-endian, padded to MAX_SIZE_MDF_HEADER (4096)
SIGNATURE = b"makedumpfile"
_FILE_HEADER = struct.Struct(">16sqq")
FILE_HEADER_SIZE = 4096
TYPE_FLAT_HEADER = 1
# makedumpfile.h: struct makedumpfile_data_header {int64_t offset; int64_t buf_size;}
_RECORD = struct.Struct(">qq")
END_FLAG_FLAT_HEADER = -1


class FlattenedSource:
    """Random access to the kdump file a flattened stream describes, read in place."""

    def __init__(self, path: Path, src: MmapSource) -> None:
        self.path = path
        self._src = src
        self._mm = src.mm
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._filepos: list[int] = []
        self._index()
        self.size = self._ends[-1] if self._ends else 0
        self.stored = sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def _index(self) -> None:
        """Walk the records once and build a sorted, non-overlapping offset map."""
        mm, path, total = self._mm, self.path, self._src.size
        if total < FILE_HEADER_SIZE:
            raise DumpFormatError(
                f"truncated flattened header: {total} bytes, needs {FILE_HEADER_SIZE}", path)
        sig, ftype, _version = _FILE_HEADER.unpack_from(mm, 0)
        if not sig.startswith(SIGNATURE) or ftype != TYPE_FLAT_HEADER:
            raise DumpFormatError(f"bad flattened header (type {ftype})", path)
        records: list[tuple[int, int, int]] = []  # (offset, size, file position of data)
        pos = FILE_HEADER_SIZE
        while True:
            if pos + _RECORD.size > total:
                raise DumpFormatError(
                    f"flattened stream ends at {pos:#x} without its end marker (truncated?)",
                    path)
            offset, size = _RECORD.unpack_from(mm, pos)
            pos += _RECORD.size
            if offset == END_FLAG_FLAT_HEADER:
                break
            if offset < 0 or size < 0:
                raise DumpFormatError(
                    f"bad flattened record at {pos - _RECORD.size:#x}: offset {offset}, "
                    f"size {size}", path)
            if pos + size > total:
                raise DumpFormatError(
                    f"flattened record at {pos - _RECORD.size:#x} ({size} bytes for offset "
                    f"{offset:#x}) is truncated", path)
            if size:
                records.append((offset, size, pos))
            pos += size
        if not records:
            raise DumpFormatError("flattened stream holds no data", path)
        ordered = sorted(records)
        if all(a[0] + a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False)):
            for offset, size, fpos in ordered:
                self._append(offset, offset + size, fpos)
        else:
            for offset, size, fpos in records:
                self._paint(offset, offset + size, fpos)

    def _append(self, start: int, end: int, fpos: int) -> None:
        self._starts.append(start)
        self._ends.append(end)
        self._filepos.append(fpos)

    def _paint(self, start: int, end: int, fpos: int) -> None:
        """Insert a record that overrides whatever earlier records held in [start, end)."""
        i = bisect.bisect_right(self._ends, start)
        keep: list[tuple[int, int, int]] = []
        j = i
        while j < len(self._starts) and self._starts[j] < end:
            s, e, p = self._starts[j], self._ends[j], self._filepos[j]
            if s < start:
                keep.append((s, start, p))
            if e > end:
                keep.append((end, e, p + (end - s)))
            j += 1
        pieces = sorted(keep + [(start, end, fpos)])
        self._starts[i:j] = [s for s, _, _ in pieces]
        self._ends[i:j] = [e for _, e, _ in pieces]
        self._filepos[i:j] = [p for _, _, p in pieces]

    def read(self, offset: int, length: int) -> bytes:
        """Return up to `length` bytes of the reconstructed file (holes read as zeros)."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, self.size)
        out = bytearray()
        pos = offset
        i = bisect.bisect_right(self._ends, pos)
        while pos < end:
            if i >= len(self._starts) or self._starts[i] >= end:
                out += bytes(end - pos)
                break
            s, e, fpos = self._starts[i], self._ends[i], self._filepos[i]
            if s > pos:
                out += bytes(s - pos)
                pos = s
            n = min(e, end) - pos
            at = fpos + (pos - s)
            out += self._mm[at:at + n]
            pos += n
            i += 1
        return bytes(out)

    def close(self) -> None:
        """Close the underlying file."""
        self._src.close()
