"""The variables in scope at an address: subprogram → inlined subroutines → lexical blocks.

Only the one unit covering the address is read (.debug_aranges → unit → its subprogram
index, cached by DwarfLines), and in it only the subprogram containing the address and the
nested scopes whose ranges (DW_AT_low_pc/high_pc, DW_AT_ranges) contain it. Each formal
parameter and variable found is returned with the location expression that applies at the
address (an exprloc, or the matching entry of a DWARF 5 .debug_loclists / DWARF 4 .debug_loc
list, §2.6.2), its DW_AT_const_value, and its name and type (through DW_AT_abstract_origin
for inlined and out-of-line instances).
"""

from __future__ import annotations

import struct
import weakref
from dataclasses import dataclass, field
from typing import Any

from crashtui.debuginfo.dwarf.constants import (
    UNSIGNED,
    DW_AT_abstract_origin,
    DW_AT_low_pc,
    DW_AT_name,
    DW_AT_specification,
    DW_FORM_addrx,
    DW_FORM_block,
    DW_FORM_block1,
    DW_FORM_block2,
    DW_FORM_block4,
    DW_FORM_exprloc,
    DW_FORM_loclistx,
    DW_FORM_sdata,
    DW_TAG_inlined_subroutine,
    DW_TAG_lexical_block,
)
from crashtui.debuginfo.dwarf.reader import INFO_ATTRS, Attrs, DwarfReader, Unit
from crashtui.debuginfo.linetable import read_uleb

DW_TAG_formal_parameter = 0x05
DW_TAG_variable = 0x34
DW_AT_location = 0x02
DW_AT_const_value = 0x1C
DW_AT_frame_base = 0x40
DW_AT_type = 0x49
DW_AT_artificial = 0x34
DW_AT_loclists_base = 0x8C
DW_AT_call_return_pc = 0x7D
DW_AT_call_value = 0x7E
DW_AT_GNU_call_site_value = 0x2111
DW_TAG_call_site = 0x48
DW_TAG_call_site_parameter = 0x49
DW_TAG_GNU_call_site = 0x4109
DW_TAG_GNU_call_site_parameter = 0x410A
_CALL_SITES = (DW_TAG_call_site, DW_TAG_GNU_call_site)
_CALL_PARAMS = (DW_TAG_call_site_parameter, DW_TAG_GNU_call_site_parameter)
_PARAM_ATTRS = frozenset((DW_AT_location, DW_AT_call_value, DW_AT_GNU_call_site_value))

_VAR_ATTRS = frozenset((DW_AT_name, DW_AT_location, DW_AT_const_value, DW_AT_type,
                        DW_AT_abstract_origin, DW_AT_specification, DW_AT_artificial,
                        DW_AT_call_return_pc))
_SCOPE_ATTRS = INFO_ATTRS | {DW_AT_frame_base}
_BLOCK_FORMS = frozenset((DW_FORM_exprloc, DW_FORM_block, DW_FORM_block1, DW_FORM_block2,
                          DW_FORM_block4))
MAX_LIST_ENTRIES = 4096  # entries of one location list examined
MAX_DEPTH = 32  # nested scopes followed


class ExprReader(DwarfReader):
    """A DwarfReader that also returns exprloc/block attribute values (as bytes)."""

    def _read_form(self, u: Unit, form: int, pos: int) -> tuple[Any, int, int]:
        if form in _BLOCK_FORMS:
            if form in (DW_FORM_exprloc, DW_FORM_block):
                n, start = read_uleb(self.info, pos)
            elif form == DW_FORM_block1:
                n, start = self.info[pos], pos + 1
            elif form == DW_FORM_block2:
                n, start = struct.unpack_from("<H", self.info, pos)[0], pos + 2
            else:
                n, start = struct.unpack_from("<I", self.info, pos)[0], pos + 4
            return bytes(self.info[start:start + n]), start + n, form
        return super()._read_form(u, form, pos)


@dataclass(frozen=True)
class ScopeVariable:
    """A formal parameter or variable in scope: its location expression at the address
    (None: no location there, i.e. optimized out) or constant value."""

    name: str
    parameter: bool
    type_offset: int | None  # .debug_info offset of its DW_AT_type DIE
    expr: bytes | None
    const_value: bytes | int | None = None
    artificial: bool = False
    die_offset: int = 0
    note: str = ""  # why there is no location ("no location list entry at this pc", ...)


@dataclass
class FunctionScope:
    """A subprogram or an inlined subroutine containing the address, with its variables
    (those of the lexical blocks containing the address included, outer ones first)."""

    name: str
    inlined: bool
    die_offset: int
    variables: list[ScopeVariable] = field(default_factory=list)


@dataclass
class ScopeChain:
    """Everything in scope at one address: functions outermost (the real one) first; the
    subprogram's frame base expression; how to read .debug_addr entries of the unit."""

    address: int
    functions: list[FunctionScope]
    frame_base: bytes | None
    unit: Unit
    reader: ExprReader
    # call sites in the scopes walked: return address -> (DIE offset, children position)
    call_sites: dict[int, tuple[int, int]] = field(default_factory=dict)

    def call_values(self, return_pc: int) -> dict[int, bytes]:
        """DWARF register number -> DW_AT_call_value expression of the call whose return
        address is `return_pc` (DW_TAG_call_site_parameter, §3.4.2), evaluated in the caller
        to give a callee's DW_OP_entry_value of that register."""
        site = self.call_sites.get(return_pc)
        if site is None:
            return {}
        out: dict[int, bytes] = {}
        r, u = self.reader, self.unit
        for _o, tag, _k, attrs, _a in r.children(u, site[1], _PARAM_ATTRS):
            if tag not in _CALL_PARAMS:
                continue
            loc = attrs.get(DW_AT_location, (0, None))[1]
            val = attrs.get(DW_AT_call_value, attrs.get(DW_AT_GNU_call_site_value,
                                                        (0, None)))[1]
            if isinstance(loc, bytes) and isinstance(val, bytes) and len(loc) >= 1:
                if 0x50 <= loc[0] <= 0x6F and len(loc) == 1:
                    out[loc[0] - 0x50] = val
                elif loc[0] == 0x90:
                    reg, _ = read_uleb(loc, 1)
                    out[reg] = val
        return out

    def addrx(self, index: int) -> int:
        """A .debug_addr entry of the unit (DW_OP_addrx)."""
        v = self.reader.attr_addr(self.unit, (DW_FORM_addrx, index))
        if v is None:
            raise ValueError(f".debug_addr entry {index} missing")
        return v


_READERS: weakref.WeakKeyDictionary[Any, ExprReader] = weakref.WeakKeyDictionary()
_LOCLISTS_BASE: weakref.WeakKeyDictionary[Any, dict[int, int | None]] = \
    weakref.WeakKeyDictionary()


def reader_for(lines: Any) -> ExprReader:
    """The ExprReader over a DwarfLines' sections (one per DwarfLines, units cached)."""
    r = _READERS.get(lines)
    if r is None:
        r = _READERS[lines] = ExprReader(lines.sections, lines.path)
    return r


def scopes_at(lines: Any, address: int) -> ScopeChain | None:
    """The scopes and variables at a DWARF address of `lines` (a DwarfLines), or None when
    no subprogram covers it."""
    with lines._lock:
        u0 = lines.unit_for(address)
        if u0 is None:
            return None
        r = reader_for(lines)
        u = r.unit_at(u0.offset)
        for die_off in lines._func_index(u0).candidates(address):
            d = r.read_die(u, die_off, _SCOPE_ATTRS)
            if d is None:
                continue
            _tag, has_children, attrs, after = d
            fb = attrs.get(DW_AT_frame_base)
            frame_base = _location_at(r, u, fb, address)[0] if fb is not None else None
            top = FunctionScope(_name(r, u, attrs), False, die_off)
            chain = ScopeChain(address, [top], frame_base, u, r)
            if has_children:
                _walk(r, u, after, address, top, chain, 0)
            return chain
    return None


def _walk(r: ExprReader, u: Unit, pos: int, address: int, fn: FunctionScope,
          chain: ScopeChain, depth: int) -> None:
    """Collect the variables below one scope, then descend into the child scope holding
    the address."""
    inner: tuple[int, int, Attrs, int] | None = None
    for off, tag, has_children, attrs, after in r.children(u, pos, _VAR_ATTRS | INFO_ATTRS):
        if tag in (DW_TAG_formal_parameter, DW_TAG_variable):
            fn.variables.append(_variable(r, u, off, tag, attrs, address))
        elif tag in _CALL_SITES and has_children:
            at = DW_AT_call_return_pc if tag == DW_TAG_call_site else DW_AT_low_pc
            ret = r.attr_addr(u, attrs[at]) if at in attrs else None
            if ret:
                chain.call_sites[ret] = (off, after)
        elif tag in (DW_TAG_lexical_block, DW_TAG_inlined_subroutine) and has_children \
                and inner is None:
            if any(lo <= address < hi for lo, hi in r.pc_ranges(u, attrs)):
                inner = (off, tag, attrs, after)
    if inner is None or depth >= MAX_DEPTH:
        return
    off, tag, attrs, after = inner
    if tag == DW_TAG_inlined_subroutine:
        fn = FunctionScope(_name(r, u, attrs), True, off)
        chain.functions.append(fn)
    _walk(r, u, after, address, fn, chain, depth + 1)


def _origin_attrs(r: ExprReader, u: Unit, attrs: Attrs, want: frozenset[int]
                  ) -> list[tuple[Unit, Attrs]]:
    """The DIE's attributes followed by its abstract origin's / specification's."""
    out = [(u, attrs)]
    for _ in range(4):
        ref = None
        for at in (DW_AT_abstract_origin, DW_AT_specification):
            if at in attrs:
                ref = r.attr_ref(u, attrs[at])
                break
        if ref is None:
            break
        if not u.offset <= ref < u.end:
            u = r.unit_containing(ref)
        d = r.read_die(u, ref, want)
        if d is None:
            break
        attrs = d[2]
        out.append((u, attrs))
    return out


def _name(r: ExprReader, u: Unit, attrs: Attrs) -> str:
    for uu, a in _origin_attrs(r, u, attrs, INFO_ATTRS):
        if DW_AT_name in a:
            return r.attr_str(uu, a[DW_AT_name]) or "??"
    return "??"


def _variable(r: ExprReader, u: Unit, off: int, tag: int, attrs: Attrs,
              address: int) -> ScopeVariable:
    name = None
    type_offset = None
    artificial = False
    for uu, a in _origin_attrs(r, u, attrs, _VAR_ATTRS):
        if name is None and DW_AT_name in a:
            name = r.attr_str(uu, a[DW_AT_name])
        if type_offset is None and DW_AT_type in a:
            type_offset = r.attr_ref(uu, a[DW_AT_type])
        artificial = artificial or DW_AT_artificial in a
    const: bytes | int | None = None
    if DW_AT_const_value in attrs:
        form, v = attrs[DW_AT_const_value]
        const = v if isinstance(v, bytes | int) else None
        if form == DW_FORM_sdata and isinstance(v, int):
            const = v
    expr: bytes | None = None
    note = ""
    if DW_AT_location in attrs:
        expr, note = _location_at(r, u, attrs[DW_AT_location], address)
    elif const is None:
        note = "no location"
    return ScopeVariable(name or "??", tag == DW_TAG_formal_parameter, type_offset, expr,
                         const, artificial, off, note)


def _location_at(r: ExprReader, u: Unit, fv: tuple[int, Any], address: int
                 ) -> tuple[bytes | None, str]:
    """The location expression of an attribute that applies at `address`."""
    form, v = fv
    if isinstance(v, bytes):
        return v, ""
    try:
        if u.version >= 5:
            return _loclists(r, u, form, int(v), address)
        return _loc_v4(r, u, int(v), address)
    except (IndexError, struct.error, ValueError):
        return None, "damaged location list"


def _loclists_base(r: ExprReader, u: Unit) -> int | None:
    cache = _LOCLISTS_BASE.setdefault(r, {})
    if u.offset not in cache:
        d = r.read_die(u, u.die_offset, frozenset((DW_AT_loclists_base,)))
        cache[u.offset] = int(d[2][DW_AT_loclists_base][1]) \
            if d is not None and DW_AT_loclists_base in d[2] else None
    return cache[u.offset]


def _loclists(r: ExprReader, u: Unit, form: int, v: int, address: int
              ) -> tuple[bytes | None, str]:
    """DWARF 5 §2.6.2 location list entries (DW_LLE_*) in .debug_loclists."""
    buf = r.s.loclists
    if buf is None:
        return None, "no .debug_loclists section"
    if form == DW_FORM_loclistx:
        base = _loclists_base(r, u)
        base = 12 if base is None else base
        (rel,) = UNSIGNED[u.offset_size].unpack_from(buf, base + v * u.offset_size)
        pos = base + rel
    else:
        pos = v
    asz = u.address_size
    afmt = UNSIGNED[asz]
    base_addr = u.base_address

    def addrx(i: int) -> int:
        a = r.attr_addr(u, (DW_FORM_addrx, i))
        if a is None:
            raise ValueError("missing .debug_addr entry")
        return a

    default: bytes | None = None
    for _ in range(MAX_LIST_ENTRIES):
        kind = buf[pos]
        pos += 1
        lo = hi = None
        if kind == 0:  # DW_LLE_end_of_list
            break
        if kind == 1:  # base_addressx
            i, pos = read_uleb(buf, pos)
            base_addr = addrx(i)
            continue
        if kind == 6:  # base_address
            base_addr = afmt.unpack_from(buf, pos)[0]
            pos += asz
            continue
        if kind == 2:  # startx_endx
            a, pos = read_uleb(buf, pos)
            b, pos = read_uleb(buf, pos)
            lo, hi = addrx(a), addrx(b)
        elif kind == 3:  # startx_length
            a, pos = read_uleb(buf, pos)
            n, pos = read_uleb(buf, pos)
            lo = addrx(a)
            hi = lo + n
        elif kind == 4:  # offset_pair
            a, pos = read_uleb(buf, pos)
            b, pos = read_uleb(buf, pos)
            lo, hi = base_addr + a, base_addr + b
        elif kind == 7:  # start_end
            lo, hi = afmt.unpack_from(buf, pos)[0], afmt.unpack_from(buf, pos + asz)[0]
            pos += 2 * asz
        elif kind == 8:  # start_length
            lo = afmt.unpack_from(buf, pos)[0]
            n, pos = read_uleb(buf, pos + asz)
            hi = lo + n
        elif kind != 5:  # not default_location either: unknown kind
            return None, f"unknown location list entry kind {kind}"
        n, pos = read_uleb(buf, pos)
        expr = bytes(buf[pos:pos + n])
        pos += n
        if kind == 5:
            default = expr
        elif lo is not None and hi is not None and lo <= address < hi:
            return expr, ""
    if default is not None:
        return default, ""
    return None, "no location at this pc"


def _loc_v4(r: ExprReader, u: Unit, pos: int, address: int) -> tuple[bytes | None, str]:
    """DWARF 4 §2.6.2 location lists in .debug_loc (address pairs, base selection)."""
    buf = r.s.loc
    if buf is None:
        return None, "no .debug_loc section"
    asz = u.address_size
    afmt = UNSIGNED[asz]
    top = (1 << (8 * asz)) - 1
    base = u.base_address
    for _ in range(MAX_LIST_ENTRIES):
        a = afmt.unpack_from(buf, pos)[0]
        b = afmt.unpack_from(buf, pos + asz)[0]
        pos += 2 * asz
        if a == 0 and b == 0:
            break
        if a == top:
            base = b
            continue
        (n,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        if base + a <= address < base + b:
            return bytes(buf[pos:pos + n]), ""
        pos += n
    return None, "no location at this pc"
