"""Abbreviation tables (§7.5.3), parsed lazily, with each form's size resolved per unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.debuginfo.dwarf.constants import (
    DW_FORM_addr,
    DW_FORM_addrx1,
    DW_FORM_addrx2,
    DW_FORM_addrx3,
    DW_FORM_addrx4,
    DW_FORM_data1,
    DW_FORM_data2,
    DW_FORM_data4,
    DW_FORM_data8,
    DW_FORM_data16,
    DW_FORM_flag,
    DW_FORM_flag_present,
    DW_FORM_GNU_ref_alt,
    DW_FORM_GNU_strp_alt,
    DW_FORM_implicit_const,
    DW_FORM_line_strp,
    DW_FORM_ref1,
    DW_FORM_ref2,
    DW_FORM_ref4,
    DW_FORM_ref8,
    DW_FORM_ref_addr,
    DW_FORM_ref_sig8,
    DW_FORM_ref_sup4,
    DW_FORM_ref_sup8,
    DW_FORM_sec_offset,
    DW_FORM_strp,
    DW_FORM_strp_sup,
    DW_FORM_strx1,
    DW_FORM_strx2,
    DW_FORM_strx3,
    DW_FORM_strx4,
)
from crashtui.debuginfo.linetable import (
    Buffer,
    read_sleb,
    read_uleb,
)
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:

    pass


@dataclass(slots=True)
class Abbrev:
    """One abbreviation declaration, with per-attribute sizes resolved for its unit."""

    tag: int
    children: bool
    # (attribute, form, fixed size or -1, implicit_const value)
    specs: tuple[tuple[int, int, int, int], ...]


def fixed_form_sizes(address_size: int, offset_size: int, version: int) -> dict[int, int]:
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


class AbbrevTable:
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
        self.entries: dict[int, Abbrev] = {}

    def get(self, code: int) -> Abbrev | None:
        """The declaration for `code`, or None if the table has none."""
        ab = self.entries.get(code)
        if ab is None and not self._done:
            ab = self._parse_until(code)
        return ab

    def _parse_until(self, wanted: int) -> Abbrev | None:
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
                ab = Abbrev(tag, children, tuple(specs))
                self.entries[code] = ab
                self._pos = pos
                if code == wanted:
                    return ab
        except IndexError as exc:
            self._done = True
            raise DebugInfoError(f"truncated .debug_abbrev table at {self._offset:#x}",
                                 self._path) from exc
