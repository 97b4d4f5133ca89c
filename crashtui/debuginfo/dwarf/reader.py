"""Unit headers (§7.5.1), single DIEs, their children and range lists, read in place."""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crashtui.debuginfo.dwarf.abbrev import AbbrevTable, fixed_form_sizes
from crashtui.debuginfo.dwarf.constants import (
    ADDRX_FORMS,
    DEFAULT_CU_CACHE,
    LOCAL_REF_FORMS,
    STRX_FORMS,
    UNSIGNED,
    DW_AT_abstract_origin,
    DW_AT_addr_base,
    DW_AT_call_column,
    DW_AT_call_file,
    DW_AT_call_line,
    DW_AT_comp_dir,
    DW_AT_decl_file,
    DW_AT_decl_line,
    DW_AT_GNU_addr_base,
    DW_AT_GNU_ranges_base,
    DW_AT_high_pc,
    DW_AT_linkage_name,
    DW_AT_low_pc,
    DW_AT_MIPS_linkage_name,
    DW_AT_name,
    DW_AT_ranges,
    DW_AT_rnglists_base,
    DW_AT_sibling,
    DW_AT_specification,
    DW_AT_stmt_list,
    DW_AT_str_offsets_base,
    DW_FORM_addr,
    DW_FORM_addrx,
    DW_FORM_addrx3,
    DW_FORM_block,
    DW_FORM_block1,
    DW_FORM_block2,
    DW_FORM_block4,
    DW_FORM_data16,
    DW_FORM_exprloc,
    DW_FORM_flag_present,
    DW_FORM_GNU_addr_index,
    DW_FORM_GNU_str_index,
    DW_FORM_implicit_const,
    DW_FORM_indirect,
    DW_FORM_line_strp,
    DW_FORM_loclistx,
    DW_FORM_ref_addr,
    DW_FORM_ref_udata,
    DW_FORM_rnglistx,
    DW_FORM_sdata,
    DW_FORM_string,
    DW_FORM_strp,
    DW_FORM_strx,
    DW_FORM_strx3,
    DW_FORM_udata,
    DW_RLE_base_address,
    DW_RLE_base_addressx,
    DW_RLE_end_of_list,
    DW_RLE_offset_pair,
    DW_RLE_start_end,
    DW_RLE_start_length,
    DW_RLE_startx_endx,
    DW_RLE_startx_length,
)
from crashtui.debuginfo.dwarf.sections import DwarfSections
from crashtui.debuginfo.linetable import (
    Buffer,
    cstr_at,
    read_cstr,
    read_sleb,
    read_uleb,
)
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:

    pass


@dataclass
class Unit:
    """A unit header (§7.5.1) plus the attributes of its top DIE that other reads need."""

    offset: int
    version: int
    unit_type: int
    offset_size: int
    address_size: int
    abbrev_offset: int
    die_offset: int
    end: int
    abbrevs: AbbrevTable | None = None
    name: str | None = None
    comp_dir: str | None = None
    stmt_list: int | None = None
    base_address: int = 0
    str_offsets_base: int = 8
    addr_base: int = 8
    rnglists_base: int | None = None
    top_tag: int = 0


# Attributes decoded while walking DIEs; everything else is skipped by size.
WALK_ATTRS = frozenset((DW_AT_sibling, DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges))
INFO_ATTRS = frozenset((DW_AT_sibling, DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges, DW_AT_name,
                         DW_AT_abstract_origin, DW_AT_specification, DW_AT_decl_file,
                         DW_AT_decl_line, DW_AT_call_file, DW_AT_call_line, DW_AT_call_column,
                         DW_AT_linkage_name, DW_AT_MIPS_linkage_name))
TOP_ATTRS = frozenset((DW_AT_name, DW_AT_comp_dir, DW_AT_stmt_list, DW_AT_low_pc,
                        DW_AT_high_pc, DW_AT_ranges, DW_AT_str_offsets_base, DW_AT_addr_base,
                        DW_AT_rnglists_base, DW_AT_GNU_addr_base, DW_AT_GNU_ranges_base))

Attrs = dict[int, tuple[int, Any]]


class DwarfReader:
    """Low-level reads: unit headers, abbreviations, single DIEs, children, range lists."""

    def __init__(self, sections: DwarfSections, path: object | None = None) -> None:
        self.s = sections
        self.path = path
        if sections.info is None or sections.abbrev is None:
            raise DebugInfoError("no DWARF (.debug_info/.debug_abbrev) in this file", path)
        self.info: Buffer = sections.info
        self._units: OrderedDict[int, Unit] = OrderedDict()
        self._unit_offsets: list[int] | None = None

    def _fail(self, message: str) -> DebugInfoError:
        return DebugInfoError(message, self.path)

    # -- units --

    def unit_at(self, offset: int) -> Unit:
        """The unit whose header is at `offset` of .debug_info (cached, bounded)."""
        u = self._units.get(offset)
        if u is not None:
            self._units.move_to_end(offset)
            return u
        try:
            u = self._parse_unit(offset)
        except (IndexError, struct.error) as exc:
            raise self._fail(f"damaged .debug_info unit at {offset:#x}: {exc}") from exc
        self._units[offset] = u
        if len(self._units) > 4 * DEFAULT_CU_CACHE:
            self._units.popitem(last=False)
        return u

    def _parse_unit(self, offset: int) -> Unit:
        buf = self.info
        if not 0 <= offset < len(buf):
            raise self._fail(f"unit offset {offset:#x} is outside .debug_info")
        (length,) = struct.unpack_from("<I", buf, offset)
        pos = offset + 4
        osz = 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
            osz = 8
        end = pos + length
        (version,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        ofmt = "<I" if osz == 4 else "<Q"
        unit_type = 1  # DW_UT_compile
        if version >= 5:
            unit_type, asz = buf[pos], buf[pos + 1]
            (abbrev_off,) = struct.unpack_from(ofmt, buf, pos + 2)
            pos += 2 + osz
            if unit_type in (4, 5):  # DW_UT_skeleton, DW_UT_split_compile: dwo_id
                pos += 8
            elif unit_type in (2, 6):  # DW_UT_type, DW_UT_split_type
                pos += 8 + osz
        elif 2 <= version <= 4:
            (abbrev_off,) = struct.unpack_from(ofmt, buf, pos)
            asz = buf[pos + osz]
            pos += osz + 1
        else:
            raise self._fail(f"unsupported DWARF version {version} in unit at {offset:#x}")
        if end > len(buf):
            raise self._fail(f".debug_info unit at {offset:#x} runs past the section")
        u = Unit(offset, version, unit_type, osz, asz, abbrev_off, pos, end)
        u.abbrevs = AbbrevTable(self.s.abbrev, abbrev_off,
                                 fixed_form_sizes(asz, osz, version), self.path)
        top = self.read_die(u, pos, TOP_ATTRS)
        if top is not None:
            tag, _, attrs, _ = top
            u.top_tag = tag
            # Bases first: DW_FORM_strx/addrx values of the top DIE itself depend on them.
            for at in (DW_AT_str_offsets_base,):
                if at in attrs:
                    u.str_offsets_base = attrs[at][1]
            for at in (DW_AT_addr_base, DW_AT_GNU_addr_base):
                if at in attrs:
                    u.addr_base = attrs[at][1]
            for at in (DW_AT_rnglists_base, DW_AT_GNU_ranges_base):
                if at in attrs:
                    u.rnglists_base = attrs[at][1]
            if DW_AT_name in attrs:
                u.name = self.attr_str(u, attrs[DW_AT_name])
            if DW_AT_comp_dir in attrs:
                u.comp_dir = self.attr_str(u, attrs[DW_AT_comp_dir])
            if DW_AT_stmt_list in attrs:
                u.stmt_list = attrs[DW_AT_stmt_list][1]
            if DW_AT_low_pc in attrs:
                u.base_address = self.attr_addr(u, attrs[DW_AT_low_pc]) or 0
        return u


    def all_unit_offsets(self) -> list[int]:
        """Offsets of every unit header (walks only the unit_length chain)."""
        if self._unit_offsets is None:
            out = []
            buf = self.info
            pos = 0
            while pos + 4 <= len(buf):
                out.append(pos)
                (length,) = struct.unpack_from("<I", buf, pos)
                if length == 0xFFFFFFFF:
                    (length,) = struct.unpack_from("<Q", buf, pos + 4)
                    pos += 12 + length
                else:
                    pos += 4 + length
            self._unit_offsets = out
        return self._unit_offsets

    def unit_containing(self, die_offset: int) -> Unit:
        """The unit holding a .debug_info offset (for DW_FORM_ref_addr targets)."""
        for u in self._units.values():
            if u.offset <= die_offset < u.end:
                return u
        import bisect

        offsets = self.all_unit_offsets()
        i = bisect.bisect_right(offsets, die_offset) - 1
        if i < 0:
            raise self._fail(f"DIE offset {die_offset:#x} is before the first unit")
        return self.unit_at(offsets[i])

    # -- DIEs --

    def read_die(self, u: Unit, pos: int, want: frozenset[int]
                 ) -> tuple[int, bool, Attrs, int] | None:
        """Decode the DIE at `pos`: (tag, has_children, wanted attrs, position after it);
        None for a null entry (§2.3: end of a sibling chain). Attr values are (form, raw)."""
        buf = self.info
        code, pos = read_uleb(buf, pos)
        if code == 0:
            return None
        ab = u.abbrevs.get(code)  # type: ignore[union-attr]
        if ab is None:
            raise self._fail(f"unknown abbreviation {code} in unit at {u.offset:#x}")
        attrs: Attrs = {}
        for at, form, size, implicit in ab.specs:
            if at not in want:
                if size >= 0:
                    pos += size
                else:
                    pos = self._skip_form(u, form, pos)
                continue
            if size > 0 and size != 16 and size != 3:
                value = UNSIGNED[size].unpack_from(buf, pos)[0]
                pos += size
            elif form == DW_FORM_implicit_const:
                value = implicit
            elif form == DW_FORM_flag_present:
                value = 1
            else:
                value, pos, form = self._read_form(u, form, pos)
            attrs[at] = (form, value)
        return ab.tag, ab.children, attrs, pos

    def _skip_form(self, u: Unit, form: int, pos: int) -> int:
        """Position after a variable-size attribute value."""
        buf = self.info
        if form in (DW_FORM_udata, DW_FORM_sdata, DW_FORM_ref_udata, DW_FORM_strx,
                    DW_FORM_addrx, DW_FORM_loclistx, DW_FORM_rnglistx,
                    DW_FORM_GNU_addr_index, DW_FORM_GNU_str_index):
            while buf[pos] & 0x80:
                pos += 1
            return pos + 1
        if form == DW_FORM_exprloc or form == DW_FORM_block:
            n, pos = read_uleb(buf, pos)
            return pos + n
        if form == DW_FORM_string:
            while buf[pos] != 0:
                pos += 1
            return pos + 1
        if form == DW_FORM_block1:
            return pos + 1 + buf[pos]
        if form == DW_FORM_block2:
            return pos + 2 + struct.unpack_from("<H", buf, pos)[0]
        if form == DW_FORM_block4:
            return pos + 4 + struct.unpack_from("<I", buf, pos)[0]
        if form == DW_FORM_indirect:
            real, pos = read_uleb(buf, pos)
            size = fixed_form_sizes(u.address_size, u.offset_size, u.version).get(real, -1)
            return pos + size if size >= 0 else self._skip_form(u, real, pos)
        if form in (DW_FORM_strx3, DW_FORM_addrx3):
            return pos + 3
        if form == DW_FORM_data16:
            return pos + 16
        raise self._fail(f"unknown attribute form {form:#x} in unit at {u.offset:#x}")

    def _read_form(self, u: Unit, form: int, pos: int) -> tuple[Any, int, int]:
        """Decode a value whose form is not a plain 1/2/4/8-byte integer."""
        buf = self.info
        if form in (DW_FORM_udata, DW_FORM_ref_udata, DW_FORM_strx, DW_FORM_addrx,
                    DW_FORM_loclistx, DW_FORM_rnglistx, DW_FORM_GNU_addr_index,
                    DW_FORM_GNU_str_index):
            v, pos = read_uleb(buf, pos)
            return v, pos, form
        if form == DW_FORM_sdata:
            v, pos = read_sleb(buf, pos)
            return v, pos, form
        if form == DW_FORM_string:
            raw, pos = read_cstr(buf, pos)
            return raw.decode("utf-8", "replace"), pos, form
        if form in (DW_FORM_strx3, DW_FORM_addrx3):
            return int.from_bytes(buf[pos:pos + 3], "little"), pos + 3, form
        if form == DW_FORM_indirect:
            real, pos = read_uleb(buf, pos)
            size = fixed_form_sizes(u.address_size, u.offset_size, u.version).get(real, -1)
            if size in (1, 2, 4, 8):
                return UNSIGNED[size].unpack_from(buf, pos)[0], pos + size, real
            return self._read_form(u, real, pos)
        # blocks, exprloc, data16: not needed by any caller here
        return None, self._skip_form(u, form, pos), form

    def attr_str(self, u: Unit, fv: tuple[int, Any]) -> str | None:
        """A string attribute value (DW_FORM_string/strp/line_strp/strx*)."""
        form, v = fv
        if form == DW_FORM_string:
            return str(v)
        if form == DW_FORM_strp:
            return cstr_at(self.s.str, v)
        if form == DW_FORM_line_strp:
            return cstr_at(self.s.line_str, v)
        if form in STRX_FORMS:
            so = self.s.str_offsets
            at = u.str_offsets_base + v * u.offset_size
            if so is None or at + u.offset_size > len(so):
                return None
            off = UNSIGNED[u.offset_size].unpack_from(so, at)[0]
            return cstr_at(self.s.str, off)
        return None

    def attr_addr(self, u: Unit, fv: tuple[int, Any]) -> int | None:
        """An address attribute value (DW_FORM_addr or an index into .debug_addr)."""
        form, v = fv
        if form in ADDRX_FORMS:
            da = self.s.addr
            at = u.addr_base + v * u.address_size
            if da is None or at + u.address_size > len(da):
                return None
            return int(UNSIGNED[u.address_size].unpack_from(da, at)[0])
        return int(v) if isinstance(v, int) else None

    def attr_ref(self, u: Unit, fv: tuple[int, Any]) -> int | None:
        """The .debug_info offset a reference attribute points to (None if not local)."""
        form, v = fv
        if form in LOCAL_REF_FORMS:
            return u.offset + v
        if form == DW_FORM_ref_addr:
            return int(v)
        return None  # ref_sig8 (type units), supplementary-file references

    def pc_ranges(self, u: Unit, attrs: Attrs) -> list[tuple[int, int]]:
        """The [low, high) ranges of a DIE from low_pc/high_pc or DW_AT_ranges (§2.17)."""
        if DW_AT_ranges in attrs:
            return self.range_list(u, attrs[DW_AT_ranges])
        if DW_AT_low_pc in attrs and DW_AT_high_pc in attrs:
            lo = self.attr_addr(u, attrs[DW_AT_low_pc])
            hform, hv = attrs[DW_AT_high_pc]
            if lo is None:
                return []
            if hform == DW_FORM_addr or hform in ADDRX_FORMS:
                hi = self.attr_addr(u, attrs[DW_AT_high_pc])
            else:  # class constant: an offset from low_pc (DWARF 4+)
                hi = lo + int(hv)
            if hi is None or hi <= lo or lo == 0:
                return []
            return [(lo, hi)]
        return []

    def range_list(self, u: Unit, fv: tuple[int, Any]) -> list[tuple[int, int]]:
        """Decode a range list: .debug_rnglists (DWARF 5 §2.17.3) or .debug_ranges (DWARF 4)."""
        form, v = fv
        try:
            if u.version >= 5:
                rl = self.s.rnglists
                if rl is None:
                    return []
                if form == DW_FORM_rnglistx:
                    base = u.rnglists_base if u.rnglists_base is not None else 12
                    (rel,) = UNSIGNED[u.offset_size].unpack_from(rl, base + v * u.offset_size)
                    offset = base + rel
                else:
                    offset = v
                return self._rnglist(u, rl, offset)
            if self.s.ranges is None:
                return []
            return self._ranges_v4(u, self.s.ranges, int(v))
        except (IndexError, struct.error):
            return []

    def _rnglist(self, u: Unit, rl: Buffer, pos: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        asz = u.address_size
        afmt = UNSIGNED[asz]
        base = u.base_address

        def addrx(i: int) -> int:
            return self.attr_addr(u, (DW_FORM_addrx, i)) or 0

        while True:
            kind = rl[pos]
            pos += 1
            if kind == DW_RLE_end_of_list:
                break
            if kind == DW_RLE_base_addressx:
                i, pos = read_uleb(rl, pos)
                base = addrx(i)
            elif kind == DW_RLE_startx_endx:
                a, pos = read_uleb(rl, pos)
                b, pos = read_uleb(rl, pos)
                out.append((addrx(a), addrx(b)))
            elif kind == DW_RLE_startx_length:
                a, pos = read_uleb(rl, pos)
                n, pos = read_uleb(rl, pos)
                s = addrx(a)
                out.append((s, s + n))
            elif kind == DW_RLE_offset_pair:
                a, pos = read_uleb(rl, pos)
                b, pos = read_uleb(rl, pos)
                out.append((base + a, base + b))
            elif kind == DW_RLE_base_address:
                base = afmt.unpack_from(rl, pos)[0]
                pos += asz
            elif kind == DW_RLE_start_end:
                a, b = afmt.unpack_from(rl, pos)[0], afmt.unpack_from(rl, pos + asz)[0]
                pos += 2 * asz
                out.append((a, b))
            elif kind == DW_RLE_start_length:
                a = afmt.unpack_from(rl, pos)[0]
                n, pos = read_uleb(rl, pos + asz)
                out.append((a, a + n))
            else:
                break  # unknown entry kind: stop rather than misread
        # Empty ranges and ones of discarded code (address 0) describe nothing.
        return [(a, b) for a, b in out if b > a and a != 0]

    def _ranges_v4(self, u: Unit, rs: Buffer, pos: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        asz = u.address_size
        afmt = UNSIGNED[asz]
        top = (1 << (8 * asz)) - 1
        base = u.base_address
        while True:
            a = afmt.unpack_from(rs, pos)[0]
            b = afmt.unpack_from(rs, pos + asz)[0]
            pos += 2 * asz
            if a == 0 and b == 0:
                break
            if a == top:  # base address selection entry
                base = b
                continue
            out.append((base + a, base + b))
        return [(a, b) for a, b in out if b > a and a != 0]

    def children(self, u: Unit, pos: int, want: frozenset[int]
                 ) -> Iterator[tuple[int, int, bool, Attrs, int]]:
        """Yield (offset, tag, has_children, attrs, children position) for each child of the
        DIE whose attributes end at `pos`; subtrees are skipped via DW_AT_sibling or walked."""
        want = want | {DW_AT_sibling}
        end = u.end
        while pos < end:
            off = pos
            d = self.read_die(u, pos, want)
            if d is None:
                return
            tag, has_children, attrs, after = d
            yield off, tag, has_children, attrs, after
            if not has_children:
                pos = after
            elif (sib := self._sibling(u, attrs, after)) is not None:
                pos = sib
            else:
                pos = self._skip_subtree(u, after)

    def _skip_subtree(self, u: Unit, pos: int) -> int:
        """Position after the children (and their terminating null entry) starting at pos."""
        depth = 1
        want = frozenset((DW_AT_sibling,))
        while depth and pos < u.end:
            d = self.read_die(u, pos, want)
            if d is None:
                depth -= 1
                pos += 1
                continue
            _, has_children, attrs, after = d
            if not has_children:
                pos = after
            elif (sib := self._sibling(u, attrs, after)) is not None:
                pos = sib
            else:
                depth += 1
                pos = after
        return pos

    def _sibling(self, u: Unit, attrs: Attrs, after: int) -> int | None:
        """DW_AT_sibling if present and sane (forward, inside the unit), else None."""
        fv = attrs.get(DW_AT_sibling)
        if fv is None:
            return None
        sib = self.attr_ref(u, fv)
        return sib if sib is not None and after <= sib <= u.end else None
