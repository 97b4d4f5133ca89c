"""Call frame information (.debug_frame, DWARF 5 §6.4): where a function saved the
caller's registers at an address, so a caller frame's callee-saved registers can be known.

The section is indexed once (FDE address ranges, ~50k FDEs for a distro vmlinux, one pass
over its ~2.5 MiB; kept in the on-disk cache by build-id); a lookup runs one CIE's and one
FDE's instructions up to the address.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from crashtui.debuginfo.linetable import Buffer, read_sleb, read_uleb

MAX_INSTRUCTIONS = 100_000
_CACHE_NAME = "debug-frame-index"


@dataclass(frozen=True)
class Rule:
    """How to find a register's value in the caller: kind "offset" (saved at CFA + n),
    "val_offset" (is CFA + n), "register" (in register n), "same", "undefined", "expr"
    (saved at the address the expression computes), "val_expr"."""

    kind: str
    n: int = 0
    expr: bytes = b""


@dataclass
class Row:
    """The CFA rule (register + offset, or an expression) and the register rules at an address."""

    cfa_reg: int | None = None
    cfa_offset: int = 0
    cfa_expr: bytes | None = None
    rules: dict[int, Rule] = field(default_factory=dict)
    return_register: int = 16


@dataclass
class _Cie:
    code_align: int
    data_align: int
    return_register: int
    instructions: bytes
    address_size: int


class CallFrameInfo:
    """The FDEs of one .debug_frame section, indexed by address."""

    def __init__(self, buf: Buffer, address_size: int = 8, build_id: str | None = None
                 ) -> None:
        self.buf = buf
        self.address_size = address_size
        # per FDE, sorted by address (lists, or uint64 arrays from the cache): its address
        # range, its CIE's offset, its instructions' start and end
        self._starts: Sequence[Any] = []
        self._ends: Sequence[Any] = []
        self._cie_offs: Sequence[Any] = []
        self._ins_starts: Sequence[Any] = []
        self._ins_ends: Sequence[Any] = []
        self._cies: dict[int, _Cie] = {}
        if build_id is None or not self._load_cached(build_id):
            self._index()
            if build_id is not None:
                self._save_cached(build_id)

    def _fingerprint(self) -> tuple[int, ...]:
        """What the cached index was built from: the section's size and CRC (a relocated .ko's
        differs with its load address; ~2 ms for a vmlinux's)."""
        return (len(self.buf), self.address_size, zlib.crc32(self.buf))

    def _load_cached(self, build_id: str) -> bool:
        """Take the index from the on-disk cache (crashtui.debuginfo.cache); False if absent,
        stale or inconsistent with the section."""
        from crashtui.debuginfo import cache

        got = cache.load_arrays(build_id, _CACHE_NAME, self._fingerprint(), ("fdes",))
        if got is None:
            return False
        fdes = got["fdes"]
        if fdes.ndim != 2 or fdes.shape[0] != 5 or not _proves_index(
                self.buf, self.address_size, *fdes):
            return False
        # a few lookups per report: bisect on the arrays, not 5 lists of ~50k ints
        self._starts, self._ends, self._cie_offs, self._ins_starts, self._ins_ends = fdes
        return True

    def _save_cached(self, build_id: str) -> None:
        """Keep the index for the next start (~50k FDEs take ~100 ms to walk)."""
        import numpy as np

        from crashtui.debuginfo import cache

        lists = (self._starts, self._ends, self._cie_offs, self._ins_starts, self._ins_ends)
        fdes = np.array(lists, dtype=np.uint64).reshape(5, len(self._starts))
        if _proves_index(self.buf, self.address_size, *fdes):  # else it could not be trusted
            cache.save_arrays(build_id, _CACHE_NAME, self._fingerprint(), {"fdes": fdes})

    def _index(self) -> None:
        buf = self.buf
        pos = 0
        n = len(buf)
        asz = self.address_size
        afmt = "<Q" if asz == 8 else "<I"
        # 32-bit DWARF's common case in one unpack: unit_length, CIE_pointer, initial_location,
        # address_range (DWARF 5 §6.4.1); 64-bit units and the section's tail take the long way
        head = struct.Struct("<IIQQ" if asz == 8 else "<IIII")
        unpack_head, hsize, skip = head.unpack_from, head.size, 8 + 2 * asz
        rows: list[tuple[int, int, tuple[int, int, int]]] = []
        append = rows.append
        while pos + 4 <= n:
            if pos + hsize <= n:
                length, cie_id, loc, rng = unpack_head(buf, pos)
                if length != 0xFFFFFFFF:
                    if length == 0:
                        pos += 4
                        continue
                    end = pos + 4 + length
                    if end > n:
                        break
                    if cie_id != 0xFFFFFFFF and loc and rng:
                        append((loc, loc + rng, (cie_id, pos + skip, end)))
                    pos = end
                    continue
            (length,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            osz = 4
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from("<Q", buf, pos)
                pos += 8
                osz = 8
            if length == 0:
                continue
            end = pos + length
            if end > n:
                break
            cie_id = struct.unpack_from("<I" if osz == 4 else "<Q", buf, pos)[0]
            if cie_id not in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                loc = struct.unpack_from(afmt, buf, pos + osz)[0]
                rng = struct.unpack_from(afmt, buf, pos + osz + asz)[0]
                if loc and rng:
                    append((loc, loc + rng, (cie_id, pos + osz + 2 * asz, end)))
            pos = end
        rows.sort(key=itemgetter(0))
        self._starts = [r[0] for r in rows]
        self._ends = [r[1] for r in rows]
        self._cie_offs = [r[2][0] for r in rows]
        self._ins_starts = [r[2][1] for r in rows]
        self._ins_ends = [r[2][2] for r in rows]

    def __len__(self) -> int:
        return len(self._starts)

    def _cie(self, offset: int) -> _Cie | None:
        hit = self._cies.get(offset)
        if hit is not None:
            return hit
        buf = self.buf
        (length,) = struct.unpack_from("<I", buf, offset)
        pos = offset + 4
        osz = 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
            osz = 8
        end = pos + length
        pos += osz  # CIE_id
        version = buf[pos]
        pos += 1
        aug_end = bytes(buf[pos:end]).find(b"\0")
        if aug_end < 0:
            return None
        aug = bytes(buf[pos:pos + aug_end])
        pos += aug_end + 1
        if aug not in (b"",):
            return None  # augmentations are an .eh_frame matter; .debug_frame has none
        asz = self.address_size
        if version >= 4:
            asz = buf[pos]
            pos += 2  # address_size, segment_selector_size
        code_align, pos = read_uleb(buf, pos)
        data_align, pos = read_sleb(buf, pos)
        if version == 1:
            ret = buf[pos]
            pos += 1
        else:
            ret, pos = read_uleb(buf, pos)
        cie = _Cie(code_align, data_align, ret, bytes(buf[pos:end]), asz)
        self._cies[offset] = cie
        return cie

    def row_at(self, address: int) -> Row | None:
        """The CFI row in effect at `address`, or None when no FDE covers it."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or not address < int(self._ends[i]):
            return None
        start = int(self._starts[i])
        cie_off, ins_start, ins_end = (int(self._cie_offs[i]), int(self._ins_starts[i]),
                                       int(self._ins_ends[i]))
        cie = self._cie(cie_off)
        if cie is None:
            return None
        row = Row(return_register=cie.return_register)
        _run(cie.instructions, cie, row, None, start, address, None)
        initial = Row(row.cfa_reg, row.cfa_offset, row.cfa_expr, dict(row.rules),
                      row.return_register)
        _run(bytes(self.buf[ins_start:ins_end]), cie, row, initial, start,
             address, cie.address_size)
        return row


def _proves_index(buf: Buffer, asz: int, starts: Any, ends: Any, cies: Any, ins: Any,
                  ins_ends: Any) -> bool:
    """True if these arrays are exactly what CallFrameInfo._index computes for buf: every FDE's
    header says so (32-bit DWARF), and the FDEs and their CIEs tile the section but for units
    the index skips (checked one by one). A cached index is used only then."""
    import numpy as np

    n = len(starts)
    if not (len(ends) == len(cies) == len(ins) == len(ins_ends) == n) or asz not in (4, 8):
        return False
    b = np.frombuffer(buf, dtype=np.uint8)
    size = len(b)
    s, e, cu, insu, iendu = (np.asarray(a, dtype=np.uint64) for a in
                             (starts, ends, cies, ins, ins_ends))
    if n and max(int(a.max()) for a in (cu, insu, iendu)) > size:
        return False
    c, ins64, iend = (a.astype(np.int64) for a in (cu, insu, iendu))  # offsets in the section
    head = ins64 - (8 + 2 * asz)
    cie_at = np.sort(c)  # np.unique would import numpy.ma (~25 ms)
    if len(cie_at):
        cie_at = cie_at[np.concatenate(([True], cie_at[1:] != cie_at[:-1]))]
    if n and (int(head.min()) < 0 or int(iend.max()) > size or int(cie_at.max()) + 8 > size
              or int(head.max()) + 8 + 2 * asz > size or not bool((s[1:] >= s[:-1]).all())):
        return False

    u32 = np.ndarray((max(size - 3, 0),), "<u4", b, 0, (1,))  # a word at every byte
    u64 = np.ndarray((max(size - 7, 0),), "<u8", b, 0, (1,))

    def word(pos: Any, width: int) -> Any:
        return (u64 if width == 8 else u32)[pos].astype(np.uint64)

    fde_len, cie_id = word(head, 4).astype(np.int64), word(head + 4, 4).astype(np.int64)
    cie_len = word(cie_at, 4).astype(np.int64)
    if not (bool((fde_len == iend - head - 4).all()) and bool((cie_id == c).all())
            and bool((word(head + 8, asz) == s).all())
            and bool((word(head + 8 + asz, asz) == e - s).all()) and bool((e > s).all())
            and bool((s > 0).all()) and bool((word(cie_at + 4, 4) == 0xFFFFFFFF).all())
            and bool((cie_len != 0).all()) and bool((cie_len != 0xFFFFFFFF).all())):
        return False
    unit_starts = np.concatenate([head, cie_at])
    order = np.argsort(unit_starts, kind="stable")
    us = unit_starts[order]
    ue = np.concatenate([iend, cie_at + 4 + cie_len])[order]
    if len(us) and (not bool((us[1:] >= ue[:-1]).all()) or int(ue[-1]) > size):
        return False
    if not len(us):
        return _only_skipped(buf, asz, 0, None)
    gaps = np.flatnonzero(us[1:] != ue[:-1])
    return (_only_skipped(buf, asz, 0, int(us[0])) and _only_skipped(buf, asz, int(ue[-1]), None)
            and all(_only_skipped(buf, asz, int(ue[g]), int(us[g + 1])) for g in gaps.tolist()))


def _only_skipped(buf: Buffer, asz: int, pos: int, end: int | None) -> bool:
    """True if the units from pos up to end (None: the section's end) are all ones _index
    leaves out: terminators, CIEs, FDEs without an address or range (32-bit DWARF)."""
    n = len(buf)
    while pos + 4 <= n and (end is None or pos < end):
        (length,) = struct.unpack_from("<I", buf, pos)
        if length == 0:
            pos += 4
            continue
        if length == 0xFFFFFFFF or pos + 8 + 2 * asz > n:
            return False
        unit_end = pos + 4 + length
        if unit_end > n:
            return end is None  # _index stops at a unit running past the section
        (cie_id,) = struct.unpack_from("<I", buf, pos + 4)
        if cie_id != 0xFFFFFFFF:
            afmt = "<Q" if asz == 8 else "<I"
            loc = struct.unpack_from(afmt, buf, pos + 8)[0]
            rng = struct.unpack_from(afmt, buf, pos + 8 + asz)[0]
            if loc and rng:
                return False
        pos = unit_end
    return end is None or pos == end


def _run(code: bytes, cie: _Cie, row: Row, initial: Row | None, loc: int, address: int,
         address_size: int | None) -> None:
    """Execute CFA instructions (§6.4.2) until the location passes `address`."""
    pos = 0
    n = len(code)
    stack: list[tuple[int | None, int, bytes | None, dict[int, Rule]]] = []
    ca, da = cie.code_align, cie.data_align
    count = 0
    while pos < n:
        count += 1
        if count > MAX_INSTRUCTIONS:
            return
        op = code[pos]
        pos += 1
        high, low = op & 0xC0, op & 0x3F
        if high == 0x40:  # advance_loc
            loc += low * ca
            if loc > address:
                return
            continue
        if high == 0x80:  # offset
            off, pos = read_uleb(code, pos)
            row.rules[low] = Rule("offset", off * da)
            continue
        if high == 0xC0:  # restore
            _restore(row, initial, low)
            continue
        if op == 0x00:  # nop
            continue
        if op == 0x01:  # set_loc
            asz = address_size or 8
            loc = int.from_bytes(code[pos:pos + asz], "little")
            pos += asz
            if loc > address:
                return
        elif op in (0x02, 0x03, 0x04):  # advance_loc1/2/4
            size = {0x02: 1, 0x03: 2, 0x04: 4}[op]
            loc += int.from_bytes(code[pos:pos + size], "little") * ca
            pos += size
            if loc > address:
                return
        elif op == 0x05:  # offset_extended
            r, pos = read_uleb(code, pos)
            off, pos = read_uleb(code, pos)
            row.rules[r] = Rule("offset", off * da)
        elif op == 0x06:  # restore_extended
            r, pos = read_uleb(code, pos)
            _restore(row, initial, r)
        elif op == 0x07:  # undefined
            r, pos = read_uleb(code, pos)
            row.rules[r] = Rule("undefined")
        elif op == 0x08:  # same_value
            r, pos = read_uleb(code, pos)
            row.rules[r] = Rule("same")
        elif op == 0x09:  # register
            r, pos = read_uleb(code, pos)
            r2, pos = read_uleb(code, pos)
            row.rules[r] = Rule("register", r2)
        elif op == 0x0A:  # remember_state
            stack.append((row.cfa_reg, row.cfa_offset, row.cfa_expr, dict(row.rules)))
        elif op == 0x0B:  # restore_state
            if stack:
                row.cfa_reg, row.cfa_offset, row.cfa_expr, row.rules = stack.pop()
        elif op == 0x0C:  # def_cfa
            row.cfa_reg, pos = read_uleb(code, pos)
            row.cfa_offset, pos = read_uleb(code, pos)
            row.cfa_expr = None
        elif op == 0x0D:  # def_cfa_register
            row.cfa_reg, pos = read_uleb(code, pos)
            row.cfa_expr = None
        elif op == 0x0E:  # def_cfa_offset
            row.cfa_offset, pos = read_uleb(code, pos)
        elif op == 0x0F:  # def_cfa_expression
            ln, pos = read_uleb(code, pos)
            row.cfa_expr = bytes(code[pos:pos + ln])
            pos += ln
        elif op in (0x10, 0x16):  # expression, val_expression
            r, pos = read_uleb(code, pos)
            ln, pos = read_uleb(code, pos)
            row.rules[r] = Rule("expr" if op == 0x10 else "val_expr", 0,
                                bytes(code[pos:pos + ln]))
            pos += ln
        elif op == 0x11:  # offset_extended_sf
            r, pos = read_uleb(code, pos)
            off, pos = read_sleb(code, pos)
            row.rules[r] = Rule("offset", off * da)
        elif op == 0x12:  # def_cfa_sf
            row.cfa_reg, pos = read_uleb(code, pos)
            off, pos = read_sleb(code, pos)
            row.cfa_offset = off * da
            row.cfa_expr = None
        elif op == 0x13:  # def_cfa_offset_sf
            off, pos = read_sleb(code, pos)
            row.cfa_offset = off * da
        elif op in (0x14, 0x15):  # val_offset, val_offset_sf
            r, pos = read_uleb(code, pos)
            if op == 0x14:
                off, pos = read_uleb(code, pos)
            else:
                off, pos = read_sleb(code, pos)
            row.rules[r] = Rule("val_offset", off * da)
        elif op == 0x2E:  # GNU_args_size
            _, pos = read_uleb(code, pos)
        elif op == 0x2F:  # GNU_negative_offset_extended
            r, pos = read_uleb(code, pos)
            off, pos = read_uleb(code, pos)
            row.rules[r] = Rule("offset", -off * da)
        else:
            return  # unknown instruction: stop with what is known


def _restore(row: Row, initial: Row | None, r: int) -> None:
    if initial is not None and r in initial.rules:
        row.rules[r] = initial.rules[r]
    else:
        row.rules.pop(r, None)
