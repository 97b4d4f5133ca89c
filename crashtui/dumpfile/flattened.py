"""makedumpfile's flattened format (-F): the kdump file as a stream of (offset, data) records."""

from __future__ import annotations

import bisect
import struct
from array import array
from pathlib import Path

import numpy as np

from crashtui.dumpfile.base import MmapSource
from crashtui.dumpfile.pieces import last_writers
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
_MAX_OFFSET = 1 << 60  # no reconstructed dump file is an exabyte long


class FlattenedSource:
    """Random access to the kdump file a flattened stream describes, read in place."""

    def __init__(self, path: Path, src: MmapSource) -> None:
        self.path = path
        self._src = src
        self._mm = src.mm
        self._starts = array("q")
        self._ends = array("q")
        self._filepos = array("q")
        self.cut_at: int | None = None  # where the stream ends without its end marker
        self._index()
        self.size = self._ends[-1] if self._ends else 0
        self.stored = int(np.sum(np.frombuffer(self._ends, dtype=np.int64)
                                 - np.frombuffer(self._starts, dtype=np.int64)))

    def _index(self) -> None:
        """Walk the records once and build a sorted, non-overlapping offset map."""
        mm, path, total = self._mm, self.path, self._src.size
        if total < FILE_HEADER_SIZE:
            raise DumpFormatError(
                f"truncated flattened header: {total} bytes, needs {FILE_HEADER_SIZE}", path)
        sig, ftype, _version = _FILE_HEADER.unpack_from(mm, 0)
        if not sig.startswith(SIGNATURE) or ftype != TYPE_FLAT_HEADER:
            raise DumpFormatError(f"bad flattened header (type {ftype})", path)
        # The index is three int64 arrays (24 bytes a record, at most ~1.5x the 16-byte
        # record headers read), never a Python object per record.
        offsets, sizes, filepos = array("q"), array("q"), array("q")
        pos = FILE_HEADER_SIZE
        while True:
            if pos + _RECORD.size > total:
                # A stream cut short (an interrupted `makedumpfile -F | ssh ...`): keep what
                # arrived; the kdump reader finds what is missing.
                self.cut_at = pos
                break
            offset, size = _RECORD.unpack_from(mm, pos)
            pos += _RECORD.size
            if offset == END_FLAG_FLAT_HEADER:
                break
            if offset < 0 or size < 0 or offset > _MAX_OFFSET:
                raise DumpFormatError(
                    f"bad flattened record at {pos - _RECORD.size:#x}: offset {offset}, "
                    f"size {size}", path)
            if pos + size > total:
                self.cut_at = pos - _RECORD.size
                size = total - pos  # the part of the last record that arrived
            if size:
                offsets.append(offset)
                sizes.append(size)
                filepos.append(pos)
            pos += size
        if not offsets:
            raise DumpFormatError("flattened stream holds no data", path)
        starts = np.frombuffer(offsets, dtype=np.int64)
        order = np.argsort(starts, kind="stable")
        s_starts = starts[order]
        s_ends = s_starts + np.frombuffer(sizes, dtype=np.int64)[order]
        if bool(np.all(np.less_equal(s_ends[:-1], s_starts[1:]))):
            self._starts = array("q", s_starts.tobytes())
            self._ends = array("q", s_ends.tobytes())
            self._filepos = array("q", np.frombuffer(filepos, dtype=np.int64)[order].tobytes())
        else:
            self._paint_all(starts, starts + np.frombuffer(sizes, dtype=np.int64),
                            np.frombuffer(filepos, dtype=np.int64))

    def _paint_all(self, starts: np.ndarray, ends: np.ndarray, filepos: np.ndarray) -> None:
        """Overlapping records: each byte comes from the last record that wrote it.

        The offsets cut the file into at most 2n elementary pieces; records are taken last
        first and each piece is given to the first record that covers it (a "next free
        piece" forest keeps this O(n log n) whatever the overlaps).
        """
        bounds = np.unique(np.concatenate([starts, ends]))
        first = array("q", np.searchsorted(bounds, starts).astype(np.int64).tobytes())
        last = array("q", np.searchsorted(bounds, ends).astype(np.int64).tobytes())
        owner = last_writers(first, last, len(bounds) - 1)
        own = np.frombuffer(owner, dtype=np.int64)  # record index; -1: a hole
        keep = np.greater_equal(own, 0)
        piece_starts = bounds[:-1][keep]
        rec = own[keep]
        self._starts = array("q", piece_starts.tobytes())
        self._ends = array("q", bounds[1:][keep].tobytes())
        self._filepos = array("q", (filepos[rec] + (piece_starts - starts[rec])).tobytes())

    def holds(self, offset: int, length: int) -> bool:
        """True when the stream holds every byte of [offset, offset + length)."""
        end = offset + length
        i = bisect.bisect_right(self._ends, offset)
        while offset < end:
            if i >= len(self._starts) or self._starts[i] > offset:
                return False
            offset = self._ends[i]
            i += 1
        return True

    def missing(self, offsets: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """For each range [offsets[k], ends[k]), whether some byte of it is not stored."""
        starts = np.frombuffer(self._starts, dtype=np.int64)
        stops = np.frombuffer(self._ends, dtype=np.int64)
        # Runs of adjacent records (a page's data may straddle two of them).
        breaks = np.flatnonzero(np.not_equal(starts[1:], stops[:-1])) + 1
        run_starts = starts[np.concatenate(([0], breaks))]
        run_ends = stops[np.concatenate((breaks - 1, [len(stops) - 1]))]
        i = np.searchsorted(run_ends, offsets, side="right")
        inside = np.less(i, len(run_ends))
        j = np.minimum(i, len(run_ends) - 1)
        held = inside & np.less_equal(run_starts[j], offsets) & np.less_equal(ends, run_ends[j])
        return ~held

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
