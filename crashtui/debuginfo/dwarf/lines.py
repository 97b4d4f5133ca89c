"""DwarfLines: line tables and function/inline info of one ELF's DWARF, by address."""

from __future__ import annotations

import functools
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from crashtui.debuginfo.dwarf.aranges import UnitIndex, parse_aranges
from crashtui.debuginfo.dwarf.constants import (
    DEFAULT_CU_CACHE,
    DW_AT_abstract_origin,
    DW_AT_call_column,
    DW_AT_call_file,
    DW_AT_call_line,
    DW_AT_decl_file,
    DW_AT_decl_line,
    DW_AT_linkage_name,
    DW_AT_MIPS_linkage_name,
    DW_AT_name,
    DW_AT_specification,
    DW_TAG_inlined_subroutine,
    DW_TAG_lexical_block,
    DW_TAG_subprogram,
)
from crashtui.debuginfo.dwarf.reader import (
    INFO_ATTRS,
    TOP_ATTRS,
    WALK_ATTRS,
    Attrs,
    DwarfReader,
    Unit,
)
from crashtui.debuginfo.dwarf.results import (
    FunctionInfo,
    InlinedCall,
    InlineFrame,
    LineRow,
    SourceLine,
)
from crashtui.debuginfo.dwarf.sections import DwarfSections, make_pyelftools_dwarfinfo
from crashtui.debuginfo.linetable import (
    ROW_IS_STMT,
    LineHeader,
    LineRows,
    decode_line_program_cached,
    file_path,
    parse_line_header,
)
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from crashtui.debuginfo.elf import ElfImage


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
            d = self.reader.read_die(u, u.die_offset, TOP_ATTRS)
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

    def unit_for(self, addr: int) -> Unit | None:
        """The compilation unit covering addr, or None."""
        off = self.unit_index.lookup(addr)
        return None if off is None else self.reader.unit_at(off)

    # -- line tables --

    def _header(self, u: Unit) -> LineHeader | None:
        if u.stmt_list is None or self.sections.line is None:
            return None
        line = self.sections.line
        stmt = u.stmt_list
        return self._headers.fetch(u.offset, lambda: parse_line_header(
            line, stmt, address_size=u.address_size, line_str=self.sections.line_str,
            debug_str=self.sections.str))

    def _line_rows(self, u: Unit) -> tuple[LineHeader, LineRows] | None:
        h = self._header(u)
        if h is None or self.sections.line is None:
            return None
        line = self.sections.line
        rows = self._rows.fetch(u.offset, lambda: decode_line_program_cached(
            line, h, self.build_id))
        return h, rows

    def _unit_line_rows(self, addr: int) -> tuple[Unit, LineHeader, LineRows] | None:
        """The unit covering addr with its line header and rows, or None."""
        u = self.unit_for(addr)
        if u is None:
            return None
        hr = self._line_rows(u)
        if hr is None:
            return None
        return u, *hr

    def _file(self, u: Unit, h: LineHeader | None, index: int) -> str | None:
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

    def _func_index(self, u: Unit) -> _FuncIndex:
        return self._funcs.fetch(u.offset, lambda: self._build_func_index(u))

    def _build_func_index(self, u: Unit) -> _FuncIndex:
        r = self.reader
        lo: list[int] = []
        hi: list[int] = []
        die: list[int] = []
        top = r.read_die(u, u.die_offset, frozenset())
        if top is None or not top[1]:
            return _FuncIndex(np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                              np.zeros(0, np.uint64))
        for off, tag, _, attrs, _ in r.children(u, top[3], WALK_ATTRS):
            if tag == DW_TAG_subprogram:
                for a, b in r.pc_ranges(u, attrs):
                    lo.append(a)
                    hi.append(b)
                    die.append(off)
        lo_a = np.array(lo, dtype=np.uint64)
        order = np.argsort(lo_a, kind="stable")
        return _FuncIndex(lo_a[order], np.array(hi, dtype=np.uint64)[order],
                          np.array(die, dtype=np.uint64)[order])

    def _origin(self, u: Unit, attrs: Attrs) -> tuple[str, str | None, int]:
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
            d = r.read_die(u, ref, INFO_ATTRS)
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
            d = r.read_die(u, die_off, INFO_ATTRS)
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

    def _inline_chain(self, u: Unit, pos: int, addr: int) -> list[InlinedCall]:
        """Inlined subroutines containing addr below a subprogram, outermost first."""
        r = self.reader
        h = self._header(u)
        chain: list[InlinedCall] = []
        descend: int | None = pos
        while descend is not None:
            children_pos, descend = descend, None
            for _, tag, has_children, attrs, after in r.children(u, children_pos, INFO_ATTRS):
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
