"""Address → compilation unit through .debug_aranges (§6.1.2)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.debuginfo.linetable import (
    Buffer,
)

if TYPE_CHECKING:

    pass


@dataclass
class UnitIndex:
    """Sorted address ranges → unit offset in .debug_info (from .debug_aranges)."""

    starts: np.ndarray  # uint64
    ends: np.ndarray  # uint64
    units: np.ndarray  # uint64

    def lookup(self, addr: int) -> int | None:
        """The unit offset whose range contains addr, or None."""
        if not len(self.starts):
            return None
        a = np.uint64(addr)
        i = int(np.searchsorted(self.starts, a, side="right")) - 1
        for j in range(i, max(i - 8, -1), -1):
            if self.starts[j] <= a < self.ends[j]:
                return int(self.units[j])
        return None

    def __len__(self) -> int:
        return int(self.starts.shape[0])


def parse_aranges(buf: Buffer) -> UnitIndex:
    """Parse .debug_aranges (§6.1.2) into sorted arrays; skips empty/discarded ranges."""
    starts: list[int] = []
    lengths: list[int] = []
    units: list[int] = []
    pos = 0
    n = len(buf)
    while pos + 4 <= n:
        unit_start = pos
        (length,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        osz = 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
            osz = 8
        end = pos + length
        if length == 0 or end > n:
            break
        (version,) = struct.unpack_from("<H", buf, pos)
        (cu,) = struct.unpack_from("<I" if osz == 4 else "<Q", buf, pos + 2)
        asz = buf[pos + 2 + osz]
        seg = buf[pos + 3 + osz]
        pos += 4 + osz
        if version != 2 or asz not in (4, 8) or seg != 0:
            pos = end  # unknown layout: skip the set rather than misread it
            continue
        tup = 2 * asz
        pos = unit_start + ((pos - unit_start + tup - 1) // tup) * tup
        fmt = "<QQ" if asz == 8 else "<II"
        body = end - pos
        body -= body % tup
        for a, ln in struct.iter_unpack(fmt, buf[pos:pos + body]):
            if ln and a:
                starts.append(a)
                lengths.append(ln)
                units.append(cu)
        pos = end
    s = np.array(starts, dtype=np.uint64)
    e = s + np.array(lengths, dtype=np.uint64)
    u = np.array(units, dtype=np.uint64)
    order = np.argsort(s, kind="stable")
    return UnitIndex(s[order], e[order], u[order])
