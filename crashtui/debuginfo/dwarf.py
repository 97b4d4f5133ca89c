"""DWARF of a vmlinux or module: address → CU (.debug_aranges) → line rows, functions, inlines.

Nothing here scans the whole of .debug_info (156 MiB, 16.8M DIEs on a distro kernel): an
address is mapped to its compilation unit through .debug_aranges (DWARF 5 §6.1.2), and only
that unit's line program (§6.2) or DIE tree (§2, §3.3) is decoded, then cached (LRU-bounded).
Section data is read in place from the mmap'd file. The hot loops (line programs, DIE walks)
are hand-written because pyelftools' object-per-row decoding is 5-10x slower; `dwarfinfo`
still offers a pyelftools DWARFInfo over the same zero-copy windows for other uses.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from crashtui.debuginfo.linetable import (
    ROW_IS_STMT,
    Buffer,
    LineHeader,
    LineRows,
    cstr_at,
    decode_line_program,
    file_path,
    parse_line_header,
    read_cstr,
    read_sleb,
    read_uleb,
)
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from crashtui.debuginfo.elf import ElfImage

# --- DWARF 5 constants (§7.5) --------------------------------------------------------------

DW_TAG_lexical_block = 0x0B
DW_TAG_compile_unit = 0x11
DW_TAG_inlined_subroutine = 0x1D
DW_TAG_partial_unit = 0x3C
DW_TAG_subprogram = 0x2E
DW_TAG_skeleton_unit = 0x4A

DW_AT_sibling = 0x01
DW_AT_name = 0x03
DW_AT_stmt_list = 0x10
DW_AT_low_pc = 0x11
DW_AT_high_pc = 0x12
DW_AT_comp_dir = 0x1B
DW_AT_inline = 0x20
DW_AT_producer = 0x25
DW_AT_abstract_origin = 0x31
DW_AT_decl_file = 0x3A
DW_AT_decl_line = 0x3B
DW_AT_declaration = 0x3C
DW_AT_specification = 0x47
DW_AT_ranges = 0x55
DW_AT_call_column = 0x57
DW_AT_call_file = 0x58
DW_AT_call_line = 0x59
DW_AT_linkage_name = 0x6E
DW_AT_str_offsets_base = 0x72
DW_AT_addr_base = 0x73
DW_AT_rnglists_base = 0x74
DW_AT_MIPS_linkage_name = 0x2007
DW_AT_GNU_ranges_base = 0x2132
DW_AT_GNU_addr_base = 0x2133

DW_FORM_addr = 0x01
DW_FORM_block2 = 0x03
DW_FORM_block4 = 0x04
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data8 = 0x07
DW_FORM_string = 0x08
DW_FORM_block = 0x09
DW_FORM_block1 = 0x0A
DW_FORM_data1 = 0x0B
DW_FORM_flag = 0x0C
DW_FORM_sdata = 0x0D
DW_FORM_strp = 0x0E
DW_FORM_udata = 0x0F
DW_FORM_ref_addr = 0x10
DW_FORM_ref1 = 0x11
DW_FORM_ref2 = 0x12
DW_FORM_ref4 = 0x13
DW_FORM_ref8 = 0x14
DW_FORM_ref_udata = 0x15
DW_FORM_indirect = 0x16
DW_FORM_sec_offset = 0x17
DW_FORM_exprloc = 0x18
DW_FORM_flag_present = 0x19
DW_FORM_strx = 0x1A
DW_FORM_addrx = 0x1B
DW_FORM_ref_sup4 = 0x1C
DW_FORM_strp_sup = 0x1D
DW_FORM_data16 = 0x1E
DW_FORM_line_strp = 0x1F
DW_FORM_ref_sig8 = 0x20
DW_FORM_implicit_const = 0x21
DW_FORM_loclistx = 0x22
DW_FORM_rnglistx = 0x23
DW_FORM_ref_sup8 = 0x24
DW_FORM_strx1 = 0x25
DW_FORM_strx2 = 0x26
DW_FORM_strx3 = 0x27
DW_FORM_strx4 = 0x28
DW_FORM_addrx1 = 0x29
DW_FORM_addrx2 = 0x2A
DW_FORM_addrx3 = 0x2B
DW_FORM_addrx4 = 0x2C
DW_FORM_GNU_addr_index = 0x1F01
DW_FORM_GNU_str_index = 0x1F02
DW_FORM_GNU_ref_alt = 0x1F20
DW_FORM_GNU_strp_alt = 0x1F21

# Range list entry kinds, §7.25 (table 7.30).
DW_RLE_end_of_list = 0
DW_RLE_base_addressx = 1
DW_RLE_startx_endx = 2
DW_RLE_startx_length = 3
DW_RLE_offset_pair = 4
DW_RLE_base_address = 5
DW_RLE_start_end = 6
DW_RLE_start_length = 7

_STRX_FORMS = frozenset((DW_FORM_strx, DW_FORM_strx1, DW_FORM_strx2, DW_FORM_strx3,
                         DW_FORM_strx4, DW_FORM_GNU_str_index))
_ADDRX_FORMS = frozenset((DW_FORM_addrx, DW_FORM_addrx1, DW_FORM_addrx2, DW_FORM_addrx3,
                          DW_FORM_addrx4, DW_FORM_GNU_addr_index))
_LOCAL_REF_FORMS = frozenset((DW_FORM_ref1, DW_FORM_ref2, DW_FORM_ref4, DW_FORM_ref8,
                              DW_FORM_ref_udata))
_UNSIGNED = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
             8: struct.Struct("<Q")}

# Sections a DwarfSections may hold (attribute name = section name without ".debug_").
DEBUG_SECTION_NAMES = ("info", "abbrev", "line", "str", "line_str", "rnglists", "ranges",
                  "aranges", "addr", "str_offsets")

DEFAULT_CU_CACHE = 48


# --- results -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceLine:
    """A line-table row: the file (as crash prints it), line and column, and the CU's comp_dir."""

    file: str
    line: int
    column: int
    comp_dir: str | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.line}"


@dataclass(frozen=True, slots=True)
class LineRow:
    """One line-table row of an address range (for `dis -l`-style listings)."""

    address: int
    file: str
    line: int
    column: int
    is_stmt: bool


@dataclass(frozen=True, slots=True)
class InlinedCall:
    """A DW_TAG_inlined_subroutine containing the address: what was inlined and from where."""

    name: str
    call_file: str | None
    call_line: int
    call_column: int
    ranges: tuple[tuple[int, int], ...]
    decl_file: str | None = None
    decl_line: int = 0


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """The DW_TAG_subprogram containing an address, with its inline chain (innermost first)."""

    name: str
    decl_file: str | None
    decl_line: int
    low_pc: int
    high_pc: int
    ranges: tuple[tuple[int, int], ...]
    inlined: tuple[InlinedCall, ...] = ()
    cu_name: str | None = None
    die_offset: int = 0

    def contains(self, addr: int) -> bool:
        """True if addr is inside one of the function's ranges."""
        return any(lo <= addr < hi for lo, hi in self.ranges)


@dataclass(frozen=True, slots=True)
class InlineFrame:
    """A source-level frame at an address (drgn style): inlined frames come first."""

    function: str
    file: str | None
    line: int
    column: int
    inlined: bool


# --- section access ------------------------------------------------------------------------

@dataclass
class DwarfSections:
    """The .debug_* section bytes (zero-copy views for a vmlinux; relocated copies for a .ko)."""

    info: Buffer | None = None
    abbrev: Buffer | None = None
    line: Buffer | None = None
    str: Buffer | None = None
    line_str: Buffer | None = None
    rnglists: Buffer | None = None
    ranges: Buffer | None = None
    aranges: Buffer | None = None
    addr: Buffer | None = None
    str_offsets: Buffer | None = None

    @classmethod
    def from_image(cls, image: ElfImage) -> DwarfSections:
        """Views of an ET_EXEC/ET_DYN image's debug sections (no relocation needed)."""
        found: dict[str, Any] = {}
        for name in DEBUG_SECTION_NAMES:
            sec = image.sections.get(".debug_" + name)
            if sec is not None and sec.size:
                if sec.flags & 0x800:  # SHF_COMPRESSED
                    raise DebugInfoError(f".debug_{name} is compressed (SHF_COMPRESSED); "
                                         "decompress the vmlinux with objcopy", image.path)
                found[name] = image.section_data(sec)
        return cls(**found)


class _SectionStream(io.RawIOBase):
    """A seekable read-only stream over a buffer (for pyelftools), without copying it."""

    def __init__(self, buf: Buffer) -> None:
        super().__init__()
        self._buf = memoryview(buf)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = len(self._buf) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._buf) - self._pos
        data = self._buf[self._pos:self._pos + size].tobytes()
        self._pos += len(data)
        return data


def make_pyelftools_dwarfinfo(sections: DwarfSections, address_size: int = 8) -> DWARFInfo:
    """A pyelftools DWARFInfo over the sections' buffers, without copying or relocating."""
    from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

    def desc(name: str) -> DebugSectionDescriptor | None:
        buf = getattr(sections, name)
        if buf is None:
            return None
        return DebugSectionDescriptor(stream=_SectionStream(buf),  # type: ignore[arg-type]
                                      name=".debug_" + name,
                                      global_offset=None, size=len(buf), address=0)

    return DWARFInfo(
        config=DwarfConfig(little_endian=True, machine_arch="x64",
                           default_address_size=address_size),
        debug_info_sec=desc("info"), debug_aranges_sec=desc("aranges"),
        debug_abbrev_sec=desc("abbrev"), debug_frame_sec=None, eh_frame_sec=None,
        debug_str_sec=desc("str"), debug_loc_sec=None, debug_ranges_sec=desc("ranges"),
        debug_line_sec=desc("line"), debug_pubtypes_sec=None, debug_pubnames_sec=None,
        debug_addr_sec=desc("addr"), debug_str_offsets_sec=desc("str_offsets"),
        debug_line_str_sec=desc("line_str"), debug_loclists_sec=None,
        debug_rnglists_sec=desc("rnglists"), debug_sup_sec=None, gnu_debugaltlink_sec=None,
        debug_types_sec=None)


# --- units and DIEs ------------------------------------------------------------------------

@dataclass(slots=True)
class _Abbrev:
    """One abbreviation declaration, with per-attribute sizes resolved for its unit."""

    tag: int
    children: bool
    # (attribute, form, fixed size or -1, implicit_const value)
    specs: tuple[tuple[int, int, int, int], ...]


def _fixed_form_sizes(address_size: int, offset_size: int, version: int) -> dict[int, int]:
    """Byte sizes of the fixed-size forms (§7.5.6) for one unit's address/offset sizes."""
    return {
        DW_FORM_addr: address_size, DW_FORM_data1: 1, DW_FORM_data2: 2, DW_FORM_data4: 4,
        DW_FORM_data8: 8, DW_FORM_data16: 16, DW_FORM_flag: 1, DW_FORM_flag_present: 0,
        DW_FORM_implicit_const: 0, DW_FORM_ref1: 1, DW_FORM_ref2: 2, DW_FORM_ref4: 4,
        DW_FORM_ref8: 8, DW_FORM_ref_addr: offset_size if version >= 3 else address_size,
        DW_FORM_ref_sig8: 8, DW_FORM_ref_sup4: 4, DW_FORM_ref_sup8: 8,
        DW_FORM_sec_offset: offset_size, DW_FORM_strp: offset_size,
        DW_FORM_line_strp: offset_size, DW_FORM_strp_sup: offset_size,
        DW_FORM_GNU_ref_alt: offset_size, DW_FORM_GNU_strp_alt: offset_size,
        DW_FORM_strx1: 1, DW_FORM_strx2: 2, DW_FORM_strx3: 3, DW_FORM_strx4: 4,
        DW_FORM_addrx1: 1, DW_FORM_addrx2: 2, DW_FORM_addrx3: 3, DW_FORM_addrx4: 4,
    }


class _AbbrevTable:
    """An abbreviation table (§7.5.3), parsed lazily: only as far as the codes asked for."""

    def __init__(self, buf: Buffer | None, offset: int, sizes: dict[int, int],
                 path: object | None) -> None:
        if buf is None:
            raise DebugInfoError("no .debug_abbrev section", path)
        self._buf = buf
        self._offset = offset
        self._pos = offset
        self._sizes = sizes
        self._path = path
        self._done = False
        self.entries: dict[int, _Abbrev] = {}

    def get(self, code: int) -> _Abbrev | None:
        """The declaration for `code`, or None if the table has none."""
        ab = self.entries.get(code)
        if ab is None and not self._done:
            ab = self._parse_until(code)
        return ab

    def _parse_until(self, wanted: int) -> _Abbrev | None:
        buf = self._buf
        sizes = self._sizes
        pos = self._pos
        try:
            while True:
                code, pos = read_uleb(buf, pos)
                if code == 0:
                    self._done = True
                    return None
                tag, pos = read_uleb(buf, pos)
                children = buf[pos] != 0
                pos += 1
                specs = []
                while True:
                    at, pos = read_uleb(buf, pos)
                    form, pos = read_uleb(buf, pos)
                    if at == 0 and form == 0:
                        break
                    implicit = 0
                    if form == DW_FORM_implicit_const:
                        implicit, pos = read_sleb(buf, pos)
                    specs.append((at, form, sizes.get(form, -1), implicit))
                ab = _Abbrev(tag, children, tuple(specs))
                self.entries[code] = ab
                self._pos = pos
                if code == wanted:
                    return ab
        except IndexError as exc:
            self._done = True
            raise DebugInfoError(f"truncated .debug_abbrev table at {self._offset:#x}",
                                 self._path) from exc


@dataclass
class _Unit:
    """A unit header (§7.5.1) plus the attributes of its top DIE that other reads need."""

    offset: int
    version: int
    unit_type: int
    offset_size: int
    address_size: int
    abbrev_offset: int
    die_offset: int
    end: int
    abbrevs: _AbbrevTable | None = None
    name: str | None = None
    comp_dir: str | None = None
    stmt_list: int | None = None
    base_address: int = 0
    str_offsets_base: int = 8
    addr_base: int = 8
    rnglists_base: int | None = None
    top_tag: int = 0


# Attributes decoded while walking DIEs; everything else is skipped by size.
_WALK_ATTRS = frozenset((DW_AT_sibling, DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges))
_INFO_ATTRS = frozenset((DW_AT_sibling, DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges, DW_AT_name,
                         DW_AT_abstract_origin, DW_AT_specification, DW_AT_decl_file,
                         DW_AT_decl_line, DW_AT_call_file, DW_AT_call_line, DW_AT_call_column,
                         DW_AT_linkage_name, DW_AT_MIPS_linkage_name))
_TOP_ATTRS = frozenset((DW_AT_name, DW_AT_comp_dir, DW_AT_stmt_list, DW_AT_low_pc,
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
        self._units: OrderedDict[int, _Unit] = OrderedDict()
        self._unit_offsets: list[int] | None = None

    def _fail(self, message: str) -> DebugInfoError:
        return DebugInfoError(message, self.path)

    # -- units --

    def unit_at(self, offset: int) -> _Unit:
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

    def _parse_unit(self, offset: int) -> _Unit:
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
        u = _Unit(offset, version, unit_type, osz, asz, abbrev_off, pos, end)
        u.abbrevs = _AbbrevTable(self.s.abbrev, abbrev_off,
                                 _fixed_form_sizes(asz, osz, version), self.path)
        top = self.read_die(u, pos, _TOP_ATTRS)
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

    def unit_containing(self, die_offset: int) -> _Unit:
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

    def read_die(self, u: _Unit, pos: int, want: frozenset[int]
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
                value = _UNSIGNED[size].unpack_from(buf, pos)[0]
                pos += size
            elif form == DW_FORM_implicit_const:
                value = implicit
            elif form == DW_FORM_flag_present:
                value = 1
            else:
                value, pos, form = self._read_form(u, form, pos)
            attrs[at] = (form, value)
        return ab.tag, ab.children, attrs, pos

    def _skip_form(self, u: _Unit, form: int, pos: int) -> int:
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
            size = _fixed_form_sizes(u.address_size, u.offset_size, u.version).get(real, -1)
            return pos + size if size >= 0 else self._skip_form(u, real, pos)
        if form in (DW_FORM_strx3, DW_FORM_addrx3):
            return pos + 3
        if form == DW_FORM_data16:
            return pos + 16
        raise self._fail(f"unknown attribute form {form:#x} in unit at {u.offset:#x}")

    def _read_form(self, u: _Unit, form: int, pos: int) -> tuple[Any, int, int]:
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
            size = _fixed_form_sizes(u.address_size, u.offset_size, u.version).get(real, -1)
            if size in (1, 2, 4, 8):
                return _UNSIGNED[size].unpack_from(buf, pos)[0], pos + size, real
            return self._read_form(u, real, pos)
        # blocks, exprloc, data16: not needed by any caller here
        return None, self._skip_form(u, form, pos), form

    def attr_str(self, u: _Unit, fv: tuple[int, Any]) -> str | None:
        """A string attribute value (DW_FORM_string/strp/line_strp/strx*)."""
        form, v = fv
        if form == DW_FORM_string:
            return str(v)
        if form == DW_FORM_strp:
            return cstr_at(self.s.str, v)
        if form == DW_FORM_line_strp:
            return cstr_at(self.s.line_str, v)
        if form in _STRX_FORMS:
            so = self.s.str_offsets
            at = u.str_offsets_base + v * u.offset_size
            if so is None or at + u.offset_size > len(so):
                return None
            off = _UNSIGNED[u.offset_size].unpack_from(so, at)[0]
            return cstr_at(self.s.str, off)
        return None

    def attr_addr(self, u: _Unit, fv: tuple[int, Any]) -> int | None:
        """An address attribute value (DW_FORM_addr or an index into .debug_addr)."""
        form, v = fv
        if form in _ADDRX_FORMS:
            da = self.s.addr
            at = u.addr_base + v * u.address_size
            if da is None or at + u.address_size > len(da):
                return None
            return int(_UNSIGNED[u.address_size].unpack_from(da, at)[0])
        return int(v) if isinstance(v, int) else None

    def attr_ref(self, u: _Unit, fv: tuple[int, Any]) -> int | None:
        """The .debug_info offset a reference attribute points to (None if not local)."""
        form, v = fv
        if form in _LOCAL_REF_FORMS:
            return u.offset + v
        if form == DW_FORM_ref_addr:
            return int(v)
        return None  # ref_sig8 (type units), supplementary-file references

    def pc_ranges(self, u: _Unit, attrs: Attrs) -> list[tuple[int, int]]:
        """The [low, high) ranges of a DIE from low_pc/high_pc or DW_AT_ranges (§2.17)."""
        if DW_AT_ranges in attrs:
            return self.range_list(u, attrs[DW_AT_ranges])
        if DW_AT_low_pc in attrs and DW_AT_high_pc in attrs:
            lo = self.attr_addr(u, attrs[DW_AT_low_pc])
            hform, hv = attrs[DW_AT_high_pc]
            if lo is None:
                return []
            if hform == DW_FORM_addr or hform in _ADDRX_FORMS:
                hi = self.attr_addr(u, attrs[DW_AT_high_pc])
            else:  # class constant: an offset from low_pc (DWARF 4+)
                hi = lo + int(hv)
            if hi is None or hi <= lo or lo == 0:
                return []
            return [(lo, hi)]
        return []

    def range_list(self, u: _Unit, fv: tuple[int, Any]) -> list[tuple[int, int]]:
        """Decode a range list: .debug_rnglists (DWARF 5 §2.17.3) or .debug_ranges (DWARF 4)."""
        form, v = fv
        try:
            if u.version >= 5:
                rl = self.s.rnglists
                if rl is None:
                    return []
                if form == DW_FORM_rnglistx:
                    base = u.rnglists_base if u.rnglists_base is not None else 12
                    (rel,) = _UNSIGNED[u.offset_size].unpack_from(rl, base + v * u.offset_size)
                    offset = base + rel
                else:
                    offset = v
                return self._rnglist(u, rl, offset)
            if self.s.ranges is None:
                return []
            return self._ranges_v4(u, self.s.ranges, int(v))
        except (IndexError, struct.error):
            return []

    def _rnglist(self, u: _Unit, rl: Buffer, pos: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        asz = u.address_size
        afmt = _UNSIGNED[asz]
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

    def _ranges_v4(self, u: _Unit, rs: Buffer, pos: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        asz = u.address_size
        afmt = _UNSIGNED[asz]
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

    def children(self, u: _Unit, pos: int, want: frozenset[int]
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

    def _skip_subtree(self, u: _Unit, pos: int) -> int:
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

    def _sibling(self, u: _Unit, attrs: Attrs, after: int) -> int | None:
        """DW_AT_sibling if present and sane (forward, inside the unit), else None."""
        fv = attrs.get(DW_AT_sibling)
        if fv is None:
            return None
        sib = self.attr_ref(u, fv)
        return sib if sib is not None and after <= sib <= u.end else None


# --- address → unit ------------------------------------------------------------------------

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


# --- per-unit cached data ------------------------------------------------------------------

class _LRU(OrderedDict[int, Any]):
    """A small least-recently-used map."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def fetch(self, key: int, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.limit:
            self.popitem(last=False)
        return value


@dataclass
class _FuncIndex:
    """Top-level subprogram ranges of one unit, sorted by start."""

    lo: np.ndarray
    hi: np.ndarray
    die: np.ndarray

    def candidates(self, addr: int) -> list[int]:
        """DIE offsets of subprograms whose ranges contain addr, narrowest first."""
        if not len(self.lo):
            return []
        a = np.uint64(addr)
        i = int(np.searchsorted(self.lo, a, side="right"))
        hits = [(int(self.hi[j] - self.lo[j]), int(self.die[j]))
                for j in range(i - 1, max(i - 16, -1), -1) if self.lo[j] <= a < self.hi[j]]
        return [d for _, d in sorted(hits)]


class SymbolLookup(Protocol):
    """What function_range needs to turn a name into an address."""

    def address_of(self, name: str) -> int | None: ...


# --- the public API ------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _damage_is_debuginfo_error(method: F) -> F:
    """Serialise a public lookup (the caches are shared by UI threads) and turn low-level
    decoding failures of damaged DWARF into DebugInfoError."""

    @functools.wraps(method)
    def wrapper(self: DwarfLines, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._lock:
                return method(self, *args, **kwargs)
        except (IndexError, KeyError, ValueError, OverflowError, struct.error) as exc:
            where = " ".join(f"{a:#x}" if isinstance(a, int) else str(a) for a in args)
            raise DebugInfoError(f"damaged DWARF ({method.__name__} {where}): {exc}",
                                 self.path) from exc

    return wrapper  # type: ignore[return-value]


class DwarfLines:
    """Line tables and function/inline info of one ELF's DWARF, by link-time address."""

    def __init__(self, source: Any, *, symbols: SymbolLookup | None = None,
                 cache_size: int = DEFAULT_CU_CACHE) -> None:
        """Open from an ElfImage, a path, or an object with `.image` (e.g. Vmlinux) or `.path`."""
        from crashtui.debuginfo.elf import ET_REL, ElfImage

        self._owned: ElfImage | None = None
        image = getattr(source, "image", None)
        if image is None and isinstance(source, ElfImage):
            image = source
        if image is None:
            p = source if isinstance(source, str | os.PathLike) else getattr(source, "path", None)
            if p is None:
                raise TypeError(f"cannot open DWARF from {source!r}")
            image = self._owned = ElfImage(p)
        self.image: ElfImage | None = image
        self.path: Path | None = Path(image.path)
        self.build_id: str | None = image.build_id
        try:
            if image.e_type == ET_REL:  # DWARF needs relocating: kmodule.KernelModuleFile
                raise DebugInfoError("is a relocatable object: open it with KernelModuleFile",
                                     self.path)
            self._setup(DwarfSections.from_image(image), symbols, cache_size)
        except BaseException:
            if self._owned is not None:
                self._owned.close()
            raise

    @classmethod
    def from_sections(cls, sections: DwarfSections, *, path: object | None = None,
                      symbols: SymbolLookup | None = None, build_id: str | None = None,
                      cache_size: int = DEFAULT_CU_CACHE) -> DwarfLines:
        """Build over already prepared section buffers (e.g. a relocated .ko). A build_id
        enables the on-disk cache of the unit index when there is no .debug_aranges: give
        one only if the addresses are the file's own (not a relocation of it)."""
        self = cls.__new__(cls)
        self._owned = None
        self.image = None
        self.path = Path(str(path)) if path is not None else None
        self.build_id = build_id
        self._setup(sections, symbols, cache_size)
        return self

    def _setup(self, sections: DwarfSections, symbols: SymbolLookup | None,
               cache_size: int) -> None:
        self.sections = sections
        self.reader = DwarfReader(sections, self.path)
        self._symbols = symbols
        self._index: UnitIndex | None = None
        self._headers = _LRU(cache_size * 4)
        self._rows = _LRU(cache_size)
        self._funcs = _LRU(cache_size)
        self._dwarfinfo: DWARFInfo | None = None
        self._lock = threading.RLock()

    # -- address → unit --

    @property
    def unit_index(self) -> UnitIndex:
        """Address ranges → unit (from .debug_aranges, else from the units' top DIEs)."""
        if self._index is None:
            if self.sections.aranges is not None:
                self._index = parse_aranges(self.sections.aranges)  # ~3 ms, not cached
            else:
                self._index = self._cached_index_from_units()
        return self._index

    def _cached_index_from_units(self) -> UnitIndex:
        """_index_from_units through the on-disk cache (keyed by build-id)."""
        from crashtui.debuginfo import cache

        info = self.reader.info
        abbrev = self.sections.abbrev or b""
        fingerprint = (len(info), len(abbrev), len(self.sections.line or b""),
                       zlib.crc32(info[:1 << 16]))
        keys = ("starts", "ends", "units")
        got = cache.load_arrays(self.build_id, "dwarf-units", fingerprint, keys)
        if got is not None:
            index = UnitIndex(got["starts"].astype(np.uint64), got["ends"].astype(np.uint64),
                              got["units"].astype(np.uint64))
            n = len(index.starts)
            # An empty index is only right for an empty .debug_info: a well-formed entry
            # with no ranges for a non-empty one would hide every file:line, so rebuild it.
            if len(index.ends) == n == len(index.units) and (
                    (n == 0 and len(info) == 0) or
                    (n > 0 and bool((index.starts[1:] >= index.starts[:-1]).all()))):
                return index
        index = self._index_from_units()
        cache.save_arrays(self.build_id, "dwarf-units", fingerprint,
                          {"starts": index.starts, "ends": index.ends, "units": index.units})
        return index

    def _index_from_units(self) -> UnitIndex:
        """Fallback without .debug_aranges: every unit's top-DIE ranges (slow for a vmlinux)."""
        starts: list[int] = []
        ends: list[int] = []
        units: list[int] = []
        for off in self.reader.all_unit_offsets():
            u = self.reader.unit_at(off)
            d = self.reader.read_die(u, u.die_offset, _TOP_ATTRS)
            if d is None:
                continue
            for lo, hi in self.reader.pc_ranges(u, d[2]):
                starts.append(lo)
                ends.append(hi)
                units.append(off)
        s = np.array(starts, dtype=np.uint64)
        order = np.argsort(s, kind="stable")
        return UnitIndex(s[order], np.array(ends, dtype=np.uint64)[order],
                         np.array(units, dtype=np.uint64)[order])

    def unit_for(self, addr: int) -> _Unit | None:
        """The compilation unit covering addr, or None."""
        off = self.unit_index.lookup(addr)
        return None if off is None else self.reader.unit_at(off)

    # -- line tables --

    def _header(self, u: _Unit) -> LineHeader | None:
        if u.stmt_list is None or self.sections.line is None:
            return None
        line = self.sections.line
        stmt = u.stmt_list
        return self._headers.fetch(u.offset, lambda: parse_line_header(
            line, stmt, address_size=u.address_size, line_str=self.sections.line_str,
            debug_str=self.sections.str))

    def _line_rows(self, u: _Unit) -> tuple[LineHeader, LineRows] | None:
        h = self._header(u)
        if h is None or self.sections.line is None:
            return None
        line = self.sections.line
        rows = self._rows.fetch(u.offset, lambda: decode_line_program(line, h))
        return h, rows

    def _unit_line_rows(self, addr: int) -> tuple[_Unit, LineHeader, LineRows] | None:
        """The unit covering addr with its line header and rows, or None."""
        u = self.unit_for(addr)
        if u is None:
            return None
        hr = self._line_rows(u)
        if hr is None:
            return None
        return u, *hr

    def _file(self, u: _Unit, h: LineHeader | None, index: int) -> str | None:
        if h is None:
            return None
        return file_path(h, index, u.comp_dir)

    @_damage_is_debuginfo_error
    def source_line(self, addr: int) -> SourceLine | None:
        """The line-table row covering addr (as gdb/crash choose it), or None."""
        uhr = self._unit_line_rows(addr)
        if uhr is None:
            return None
        u, h, rows = uhr
        k = rows.gdb_row(addr)
        if k is None:
            return None
        f = self._file(u, h, int(rows.file[k]))
        if f is None:
            return None
        return SourceLine(f, int(rows.line[k]), int(rows.column[k]), u.comp_dir)

    @_damage_is_debuginfo_error
    def lines_in_range(self, start: int, end: int) -> list[LineRow]:
        """Line rows with start <= address < end (plus the row covering start), in order."""
        out: list[LineRow] = []
        uhr = self._unit_line_rows(start)
        if uhr is None:
            return out
        u, h, rows = uhr
        first = rows.gdb_row(start)
        a = rows.address
        for j in range(len(rows.seq_first_row)):
            lo, hi = int(rows.seq_first_row[j]), int(rows.seq_last_row[j])
            if rows.seq_end_addr[j] <= start or rows.seq_start_addr[j] >= end:
                continue
            i0 = lo + int(np.searchsorted(a[lo:hi], np.uint64(start), side="left"))
            i1 = lo + int(np.searchsorted(a[lo:hi], np.uint64(end), side="left"))
            idx = list(range(i0, i1))
            if first is not None and lo <= first < hi and (not idx or first < idx[0]):
                idx.insert(0, first)
            for k in idx:
                f = self._file(u, h, int(rows.file[k]))
                out.append(LineRow(max(int(a[k]), start), f or "??", int(rows.line[k]),
                                   int(rows.column[k]), bool(rows.flags[k] & ROW_IS_STMT)))
        return out

    # -- functions --

    def _func_index(self, u: _Unit) -> _FuncIndex:
        return self._funcs.fetch(u.offset, lambda: self._build_func_index(u))

    def _build_func_index(self, u: _Unit) -> _FuncIndex:
        r = self.reader
        lo: list[int] = []
        hi: list[int] = []
        die: list[int] = []
        top = r.read_die(u, u.die_offset, frozenset())
        if top is None or not top[1]:
            return _FuncIndex(np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                              np.zeros(0, np.uint64))
        for off, tag, _, attrs, _ in r.children(u, top[3], _WALK_ATTRS):
            if tag == DW_TAG_subprogram:
                for a, b in r.pc_ranges(u, attrs):
                    lo.append(a)
                    hi.append(b)
                    die.append(off)
        lo_a = np.array(lo, dtype=np.uint64)
        order = np.argsort(lo_a, kind="stable")
        return _FuncIndex(lo_a[order], np.array(hi, dtype=np.uint64)[order],
                          np.array(die, dtype=np.uint64)[order])

    def _origin(self, u: _Unit, attrs: Attrs) -> tuple[str, str | None, int]:
        """(name, decl_file, decl_line) of a DIE, following abstract_origin/specification."""
        name: str | None = None
        decl_file: str | None = None
        decl_line = 0
        r = self.reader
        for _ in range(6):
            if name is None:
                for at in (DW_AT_name, DW_AT_linkage_name, DW_AT_MIPS_linkage_name):
                    if at in attrs:
                        name = r.attr_str(u, attrs[at])
                        break
            if decl_file is None and DW_AT_decl_file in attrs:
                decl_file = self._file(u, self._header(u), int(attrs[DW_AT_decl_file][1]))
                decl_line = int(attrs.get(DW_AT_decl_line, (0, 0))[1])
            if name is not None and decl_file is not None:
                break
            ref = None
            for at in (DW_AT_abstract_origin, DW_AT_specification):
                if at in attrs:
                    ref = r.attr_ref(u, attrs[at])
                    break
            if ref is None:
                break
            if not u.offset <= ref < u.end:
                u = r.unit_containing(ref)
            d = r.read_die(u, ref, _INFO_ATTRS)
            if d is None:
                break
            attrs = d[2]
        return name or "??", decl_file, decl_line

    @_damage_is_debuginfo_error
    def function_at(self, addr: int) -> FunctionInfo | None:
        """The subprogram containing addr with its inline chain (innermost first), or None."""
        u = self.unit_for(addr)
        if u is None:
            return None
        r = self.reader
        for die_off in self._func_index(u).candidates(addr):
            d = r.read_die(u, die_off, _INFO_ATTRS)
            if d is None:
                continue
            _, has_children, attrs, after = d
            ranges = tuple(r.pc_ranges(u, attrs))
            name, decl_file, decl_line = self._origin(u, attrs)
            chain = self._inline_chain(u, after, addr) if has_children else []
            lo = min(a for a, _ in ranges)
            hi = max(b for _, b in ranges)
            return FunctionInfo(name, decl_file, decl_line, lo, hi, ranges,
                                tuple(reversed(chain)), u.name, die_off)
        return None

    def _inline_chain(self, u: _Unit, pos: int, addr: int) -> list[InlinedCall]:
        """Inlined subroutines containing addr below a subprogram, outermost first."""
        r = self.reader
        h = self._header(u)
        chain: list[InlinedCall] = []
        descend: int | None = pos
        while descend is not None:
            children_pos, descend = descend, None
            for _, tag, has_children, attrs, after in r.children(u, children_pos, _INFO_ATTRS):
                if tag not in (DW_TAG_inlined_subroutine, DW_TAG_lexical_block):
                    continue
                ranges = r.pc_ranges(u, attrs)
                if not any(lo <= addr < hi for lo, hi in ranges):
                    continue
                if tag == DW_TAG_inlined_subroutine:
                    name, decl_file, decl_line = self._origin(u, attrs)
                    cf = attrs.get(DW_AT_call_file)
                    chain.append(InlinedCall(
                        name=name,
                        call_file=self._file(u, h, int(cf[1])) if cf else None,
                        call_line=int(attrs.get(DW_AT_call_line, (0, 0))[1]),
                        call_column=int(attrs.get(DW_AT_call_column, (0, 0))[1]),
                        ranges=tuple(ranges), decl_file=decl_file, decl_line=decl_line))
                if has_children:
                    descend = after
                break
        return chain

    @_damage_is_debuginfo_error
    def inline_frames(self, addr: int) -> list[InlineFrame]:
        """Source frames at addr, innermost first: each inlined function at its line, then
        its callers at their call sites, ending with the real (out-of-line) function."""
        fn = self.function_at(addr)
        sl = self.source_line(addr)
        if fn is None:
            return [InlineFrame("??", sl.file, sl.line, sl.column, False)] if sl else []
        frames: list[InlineFrame] = []
        file, line, col = (sl.file, sl.line, sl.column) if sl else (None, 0, 0)
        for call in fn.inlined:
            frames.append(InlineFrame(call.name, file, line, col, True))
            file, line, col = call.call_file, call.call_line, call.call_column
        frames.append(InlineFrame(fn.name, file, line, col, False))
        return frames

    @_damage_is_debuginfo_error
    def function_range(self, target: int | str) -> tuple[int, int] | None:
        """[low_pc, high_pc) of the function containing an address or named by a symbol."""
        addr = self._resolve(target)
        if addr is None:
            return None
        fn = self.function_at(addr)
        if fn is None:
            return None
        for lo, hi in fn.ranges:
            if lo <= addr < hi:
                return lo, hi
        return fn.low_pc, fn.high_pc

    def function_lines(self, target: int | str) -> list[LineRow]:
        """The line rows of the function range containing an address (or named)."""
        rng = self.function_range(target)
        return [] if rng is None else self.lines_in_range(*rng)

    def _resolve(self, target: int | str) -> int | None:
        if isinstance(target, int):
            return target
        if self._symbols is None and self.image is not None:
            from crashtui.debuginfo.symbols import SymbolTable

            self._symbols = SymbolTable.from_elf(self.image)
        return self._symbols.address_of(target) if self._symbols is not None else None

    # -- misc --

    @property
    def dwarfinfo(self) -> DWARFInfo:
        """A pyelftools DWARFInfo over the same zero-copy section windows (not relocated)."""
        if self._dwarfinfo is None:
            self._dwarfinfo = make_pyelftools_dwarfinfo(self.sections)
        return self._dwarfinfo

    def close(self) -> None:
        """Drop caches and close the file if this object opened it."""
        self._rows.clear()
        self._funcs.clear()
        self._headers.clear()
        self._dwarfinfo = None
        if self._owned is not None:
            self.sections = DwarfSections()
            self._owned.close()
            self._owned = None

    def __enter__(self) -> DwarfLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DwarfLines({str(self.path)!r})"


__all__ = [
    "DwarfLines", "DwarfReader", "DwarfSections", "FunctionInfo", "InlineFrame", "InlinedCall",
    "LineRow", "SourceLine", "UnitIndex", "make_pyelftools_dwarfinfo",
    "parse_aranges",
]
