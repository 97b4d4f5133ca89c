"""DWARF line-number programs (DWARF 5 §6.2), decoded into numpy row arrays."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from crashtui.errors import DebugInfoError

# Standard opcodes, DWARF 5 §6.2.5.2 (table 7.25).
DW_LNS_copy = 1
DW_LNS_advance_pc = 2
DW_LNS_advance_line = 3
DW_LNS_set_file = 4
DW_LNS_set_column = 5
DW_LNS_negate_stmt = 6
DW_LNS_set_basic_block = 7
DW_LNS_const_add_pc = 8
DW_LNS_fixed_advance_pc = 9
DW_LNS_set_prologue_end = 10
DW_LNS_set_epilogue_begin = 11
DW_LNS_set_isa = 12
# Extended opcodes, §6.2.5.3 (table 7.26).
DW_LNE_end_sequence = 1
DW_LNE_set_address = 2
DW_LNE_define_file = 3
DW_LNE_set_discriminator = 4
# Line-number header entry formats, §6.2.4.1 (table 7.27).
DW_LNCT_path = 1
DW_LNCT_directory_index = 2

# Forms that may appear in a DWARF 5 line header entry format (§7.5.6).
DW_FORM_block = 0x09
DW_FORM_block1 = 0x0A
DW_FORM_block2 = 0x03
DW_FORM_block4 = 0x04
DW_FORM_data1 = 0x0B
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data8 = 0x07
DW_FORM_data16 = 0x1E
DW_FORM_string = 0x08
DW_FORM_strp = 0x0E
DW_FORM_line_strp = 0x1F
DW_FORM_udata = 0x0F
DW_FORM_strx = 0x1A
DW_FORM_strx1 = 0x25
DW_FORM_strx2 = 0x26
DW_FORM_strx3 = 0x27
DW_FORM_strx4 = 0x28

# Bytes of a section: an mmap'd view (vmlinux) or a relocated copy (.ko).
Buffer = memoryview | bytes | bytearray

# Row flags kept in LineRows.flags.
ROW_IS_STMT = 1
ROW_END_SEQUENCE = 2
ROW_NZ_DISCRIMINATOR = 4  # gdb's m_line_has_non_zero_discriminator at this row

# Rows replayed through gdb's recording rules before the one asked for (see gdb_row).
_GDB_WINDOW = 64


def read_uleb(buf: Buffer, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at pos; returns (value, next position)."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def read_sleb(buf: Buffer, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at pos; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos


def read_cstr(buf: Buffer, pos: int) -> tuple[bytes, int]:
    """Read a NUL-terminated string at pos; returns (bytes, position after the NUL)."""
    end = pos
    n = len(buf)
    while end < n and buf[end] != 0:
        end += 1
    return bytes(buf[pos:end]), end + 1


def cstr_at(buf: Buffer | None, offset: int) -> str:
    """The NUL-terminated string at offset of a string section, decoded leniently."""
    if buf is None or not 0 <= offset < len(buf):
        return f"<bad string offset {offset:#x}>"
    raw, _ = read_cstr(buf, offset)
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class LineHeader:
    """The parts of a line-program header needed to run it and to name its files."""

    offset: int
    version: int
    offset_size: int
    address_size: int
    min_inst_length: int
    default_is_stmt: bool
    line_base: int
    line_range: int
    opcode_base: int
    standard_opcode_lengths: tuple[int, ...]
    include_dirs: tuple[str, ...]
    # (name, directory index) as written; index base depends on the version (see file_path).
    file_entries: tuple[tuple[str, int], ...]
    program_start: int
    program_end: int


@dataclass
class LineRows:
    """Decoded rows of one line program, in program order (each sequence ascending)."""

    address: np.ndarray  # uint64
    file: np.ndarray  # uint32, index into the header's file table
    line: np.ndarray  # uint32
    column: np.ndarray  # uint32
    flags: np.ndarray  # uint8, ROW_IS_STMT | ROW_END_SEQUENCE | ROW_NZ_DISCRIMINATOR
    # Sequences as [start row, end row] (end row is the DW_LNE_end_sequence row), sorted by
    # start address, for bisection.
    seq_start_addr: np.ndarray  # uint64
    seq_end_addr: np.ndarray  # uint64
    seq_first_row: np.ndarray  # int64
    seq_last_row: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.address.shape[0])

    def find_row(self, addr: int) -> tuple[int, int] | None:
        """(row, first row of its sequence) for addr: the last row at the greatest address
        <= addr within the sequence covering addr (None if no sequence covers it)."""
        if not len(self.seq_start_addr):
            return None
        a = np.uint64(addr)
        i = int(np.searchsorted(self.seq_start_addr, a, side="right")) - 1
        # Sequences may nest or overlap in odd objects: scan back a little for a cover.
        for j in range(i, max(i - 4, -1), -1):
            if self.seq_start_addr[j] <= a < self.seq_end_addr[j]:
                lo, hi = int(self.seq_first_row[j]), int(self.seq_last_row[j])
                k = lo + int(np.searchsorted(self.address[lo:hi], a, side="right")) - 1
                return k, lo
        return None

    def gdb_row(self, addr: int) -> int | None:
        """The row gdb reports for addr (so crash's `sym`, `bt -l`, `dis -l`), or None.

        gdb does not keep every row (gdb/dwarf2/read.c, lnp_state_machine::record_line):
        a row for the same file and line is dropped when that line had a non-zero
        discriminator; a non-statement row that switches file at an address where a
        statement row was already seen is ignored; switching file ends the previous file's
        table with a marker that deletes that file's rows at the same address. Lookup
        (symtab.c, find_pc_sect_line) then takes the last kept row at the greatest address
        <= addr, moving back to an is_stmt row at that same address if there is one.
        Those rules are replayed over the rows just before addr.
        """
        found = self.find_row(addr)
        if found is None:
            return None
        k, seq_first = found
        start = max(seq_first, k - _GDB_WINDOW)
        while True:
            kept = self._gdb_replay(start, k, seq_first)
            if kept or start == seq_first:
                break
            start = max(seq_first, start - 4 * _GDB_WINDOW)
        if not kept:
            return None
        addrs = self.address
        flags = self.flags
        best = kept[-1]
        # find_pc_sect_line: step back over non-stmt rows at the same address.
        i = len(kept) - 1
        while (i > 0 and addrs[kept[i - 1]] == addrs[kept[i]]
               and not flags[kept[i]] & ROW_IS_STMT):
            i -= 1
        if flags[kept[i]] & ROW_IS_STMT:
            best = kept[i]
        return best

    def _gdb_replay(self, start: int, last: int, seq_first: int) -> list[int]:
        """Rows start..last that gdb's line-table builder would still hold, in order."""
        addrs = self.address.tolist()  # small slices below; tolist avoids numpy scalars
        files = self.file
        lines = self.line
        flags = self.flags
        if start > seq_first:
            p = start - 1
            last_file, last_line = int(files[p]), int(lines[p])
            last_addr: int | None = addrs[p]
            stmt_at_addr = bool(flags[p] & ROW_IS_STMT)
        else:  # a fresh lnp_state_machine at each sequence start
            last_file, last_line, last_addr, stmt_at_addr = 1, 0, None, False
        kept: list[int] = []
        for j in range(start, last + 1):
            f, ln, a, fl = int(files[j]), int(lines[j]), addrs[j], int(flags[j])
            is_stmt = bool(fl & ROW_IS_STMT)
            changed = f != last_file
            ignore = ln == 0 or (changed and a == last_addr and not is_stmt and stmt_at_addr)
            if changed and not ignore:
                # dwarf_finish_line in the previous file at a: its rows at a are removed.
                while kept and addrs[kept[-1]] == a:
                    kept.pop()
            if not ignore:
                if changed or ln != last_line or not fl & ROW_NZ_DISCRIMINATOR:
                    kept.append(j)
                last_file, last_line = f, ln
            if a != last_addr:
                stmt_at_addr = False
                last_addr = a
            stmt_at_addr |= is_stmt
        return kept


def parse_line_header(
    buf: Buffer,
    offset: int,
    *,
    address_size: int = 8,
    line_str: Buffer | None = None,
    debug_str: Buffer | None = None,
) -> LineHeader:
    """Parse the line-program header at offset of .debug_line (DWARF versions 2 to 5)."""
    try:
        return _parse_line_header(buf, offset, address_size, line_str, debug_str)
    except (IndexError, struct.error) as exc:
        raise DebugInfoError(f"truncated .debug_line header at {offset:#x}: {exc}") from exc


def _parse_line_header(
    buf: Buffer,
    offset: int,
    address_size: int,
    line_str: Buffer | None,
    debug_str: Buffer | None,
) -> LineHeader:
    (unit_length,) = struct.unpack_from("<I", buf, offset)
    pos = offset + 4
    offset_size = 4
    if unit_length == 0xFFFFFFFF:  # 64-bit DWARF, §7.4
        (unit_length,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offset_size = 8
    end = pos + unit_length
    if end > len(buf):
        raise DebugInfoError(f".debug_line unit at {offset:#x} runs past the section")
    (version,) = struct.unpack_from("<H", buf, pos)
    pos += 2
    if not 2 <= version <= 5:
        raise DebugInfoError(f"unsupported .debug_line version {version} at {offset:#x}")
    if version >= 5:
        address_size = buf[pos]
        pos += 2  # address_size, segment_selector_size
    (header_length,) = struct.unpack_from("<I" if offset_size == 4 else "<Q", buf, pos)
    pos += offset_size
    program_start = pos + header_length
    min_inst_length = buf[pos]
    pos += 1
    if version >= 4:
        pos += 1  # maximum_operations_per_instruction: 1 on every non-VLIW target
    default_is_stmt = bool(buf[pos])
    line_base = struct.unpack_from("<b", buf, pos + 1)[0]
    line_range = buf[pos + 2]
    opcode_base = buf[pos + 3]
    pos += 4
    std_lengths = tuple(buf[pos : pos + opcode_base - 1])
    pos += opcode_base - 1
    if line_range == 0:
        raise DebugInfoError(f".debug_line unit at {offset:#x} has line_range 0")

    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    if version < 5:
        # §6.2.4 items 15-16 of DWARF 4: NUL-terminated lists.
        while buf[pos] != 0:
            raw, pos = read_cstr(buf, pos)
            dirs.append(raw.decode("utf-8", "replace"))
        pos += 1
        while buf[pos] != 0:
            raw, pos = read_cstr(buf, pos)
            d, pos = read_uleb(buf, pos)
            _, pos = read_uleb(buf, pos)  # mtime
            _, pos = read_uleb(buf, pos)  # length
            files.append((raw.decode("utf-8", "replace"), d))
    else:
        strings = _EntryReader(buf, offset_size, line_str, debug_str)
        formats, pos = strings.formats(pos)
        count, pos = read_uleb(buf, pos)
        for _ in range(count):
            entry, pos = strings.entry(formats, pos)
            dirs.append(str(entry.get(DW_LNCT_path, "")))
        formats, pos = strings.formats(pos)
        count, pos = read_uleb(buf, pos)
        for _ in range(count):
            entry, pos = strings.entry(formats, pos)
            di = entry.get(DW_LNCT_directory_index, 0)
            files.append((str(entry.get(DW_LNCT_path, "")), int(di) if isinstance(di, int) else 0))
    return LineHeader(
        offset=offset,
        version=version,
        offset_size=offset_size,
        address_size=address_size,
        min_inst_length=min_inst_length,
        default_is_stmt=default_is_stmt,
        line_base=line_base,
        line_range=line_range,
        opcode_base=opcode_base,
        standard_opcode_lengths=std_lengths,
        include_dirs=tuple(dirs),
        file_entries=tuple(files),
        program_start=program_start,
        program_end=end,
    )


class _EntryReader:
    """Reads DWARF 5 directory/file entries described by (content type, form) formats."""

    def __init__(
        self,
        buf: Buffer,
        offset_size: int,
        line_str: Buffer | None,
        debug_str: Buffer | None,
    ) -> None:
        self.buf = buf
        self.offset_size = offset_size
        self.line_str = line_str
        self.debug_str = debug_str

    def formats(self, pos: int) -> tuple[list[tuple[int, int]], int]:
        count = self.buf[pos]
        pos += 1
        out = []
        for _ in range(count):
            ct, pos = read_uleb(self.buf, pos)
            form, pos = read_uleb(self.buf, pos)
            out.append((ct, form))
        return out, pos

    def entry(self, formats: list[tuple[int, int]], pos: int) -> tuple[dict[int, object], int]:
        buf = self.buf
        out: dict[int, object] = {}
        osz = "<I" if self.offset_size == 4 else "<Q"
        for ct, form in formats:
            value: object
            if form == DW_FORM_line_strp:
                (off,) = struct.unpack_from(osz, buf, pos)
                pos += self.offset_size
                value = cstr_at(self.line_str, off)
            elif form == DW_FORM_strp:
                (off,) = struct.unpack_from(osz, buf, pos)
                pos += self.offset_size
                value = cstr_at(self.debug_str, off)
            elif form == DW_FORM_string:
                raw, pos = read_cstr(buf, pos)
                value = raw.decode("utf-8", "replace")
            elif form == DW_FORM_udata:
                value, pos = read_uleb(buf, pos)
            elif form == DW_FORM_data1:
                value, pos = buf[pos], pos + 1
            elif form == DW_FORM_data2:
                value, pos = struct.unpack_from("<H", buf, pos)[0], pos + 2
            elif form == DW_FORM_data4:
                value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
            elif form == DW_FORM_data8:
                value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
            elif form == DW_FORM_data16:
                value, pos = bytes(buf[pos : pos + 16]), pos + 16
            elif form in (DW_FORM_block, DW_FORM_block1, DW_FORM_block2, DW_FORM_block4):
                if form == DW_FORM_block:
                    n, pos = read_uleb(buf, pos)
                else:
                    size = {DW_FORM_block1: 1, DW_FORM_block2: 2, DW_FORM_block4: 4}[form]
                    n = int.from_bytes(buf[pos : pos + size], "little")
                    pos += size
                value, pos = bytes(buf[pos : pos + n]), pos + n
            else:
                # strx forms need .debug_str_offsets and a base only a CU provides; GCC and
                # clang do not use them in line headers of non-split objects.
                raise DebugInfoError(f"unsupported form {form:#x} in a .debug_line header")
            out[ct] = value
        return out, pos


def file_path(header: LineHeader, index: int, comp_dir: str | None) -> str | None:
    """The path of file `index` as gdb (so crash) prints it: include dir + name, then the
    compilation directory in front when still relative (gdb's symtab_to_fullname when the
    source is not on disk). No other normalisation: gdb keeps `./` components too."""
    files = header.file_entries
    dirs = header.include_dirs
    if header.version >= 5:
        # DWARF 5: file and directory indexes are 0-based; directory 0 is the compilation
        # directory itself (§6.2.4 items 20 and 22).
        if not 0 <= index < len(files):
            return None
        name, di = files[index]
        directory = comp_dir if di == 0 and comp_dir else dirs[di] if 0 <= di < len(dirs) else None
    else:
        # DWARF 2-4: 1-based; directory 0 means the compilation directory.
        if not 1 <= index <= len(files):
            return None
        name, di = files[index - 1]
        directory = comp_dir if di == 0 else dirs[di - 1] if 1 <= di <= len(dirs) else None
    path = _join(directory, name)
    if comp_dir and not path.startswith("/") and not (
            path == comp_dir or path.startswith(comp_dir.rstrip("/") + "/")):
        path = _join(comp_dir, path)
    return path


def _join(directory: str | None, name: str) -> str:
    """directory/name unless name is absolute (one slash at the joint)."""
    if not directory or name.startswith("/"):
        return name
    return directory.rstrip("/") + "/" + name


def clean_path(path: str) -> str:
    """Drop `.` components and doubled slashes (never `..`: symlinks make that unsafe)."""
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    out = "/".join(parts)
    return "/" + out if absolute else out


def decode_line_program(buf: Buffer, header: LineHeader) -> LineRows:
    """Run the line-number state machine (DWARF 5 §6.2.2) over the whole program."""
    try:
        return _decode(buf, header)
    except (IndexError, struct.error) as exc:
        raise DebugInfoError(f"truncated line program at {header.offset:#x}: {exc}") from exc


CACHED_PROGRAM_MIN = 16 << 10  # smaller programs decode in a few ms: not worth a cache file
_ROWS_KEYS = ("address", "flc", "flags")


def decode_line_program_cached(buf: Buffer, header: LineHeader, build_id: str | None
                               ) -> LineRows:
    """decode_line_program through the on-disk cache (crashtui.debuginfo.cache) for a big
    program: its rows are kept per build-id and unit, fingerprinted by the CRC of the unit's
    header and program bytes, so an entry can only be what decoding those bytes gives."""
    size = header.program_end - header.offset
    if build_id is None or header.program_end - header.program_start < CACHED_PROGRAM_MIN:
        return decode_line_program(buf, header)
    from crashtui.debuginfo import cache

    name = f"line-rows-{header.offset:x}"
    fingerprint = (header.offset, size, zlib.crc32(buf[header.offset:header.program_end]))
    got = cache.load_arrays(build_id, name, fingerprint, _ROWS_KEYS)
    if got is not None:
        address, flc, flags = (got[k] for k in _ROWS_KEYS)
        n = len(address)
        if (address.dtype == np.uint64 and address.ndim == 1 and flc.dtype == np.uint32
                and flc.shape == (3, n) and flags.dtype == np.uint8 and flags.shape == (n,)):
            return _rows(address, flc[0], flc[1], flc[2], flags)
    rows = decode_line_program(buf, header)
    cache.save_arrays(build_id, name, fingerprint, {
        "address": rows.address, "flc": np.stack([rows.file, rows.line, rows.column]),
        "flags": rows.flags})
    return rows


def _decode(buf: Buffer, h: LineHeader) -> LineRows:
    # Hot loop (about 1 µs a row): locals only, one list per column, the opcodes tested in
    # the order GCC's programs use them most (special, set_column, advance_line).
    addrs: list[int] = []
    files: list[int] = []
    lines: list[int] = []
    cols: list[int] = []
    flags: list[int] = []
    add_a, add_f, add_l, add_c, add_g = (addrs.append, files.append, lines.append,
                                         cols.append, flags.append)
    uleb: Callable[[Buffer, int], tuple[int, int]] = read_uleb
    sleb = read_sleb
    min_inst = h.min_inst_length
    line_base = h.line_base
    line_range = h.line_range
    opcode_base = h.opcode_base
    std_lengths = h.standard_opcode_lengths
    const_add = min_inst * ((255 - opcode_base) // line_range)
    # Per special opcode: (address advance, line advance), §6.2.5.1.
    special = [(0, 0)] * opcode_base + [
        (min_inst * ((op - opcode_base) // line_range),
         line_base + (op - opcode_base) % line_range) for op in range(opcode_base, 256)]
    first_file = 1  # §6.2.2 table 6.4: the file register starts at 1 (in DWARF 5 too)
    default_stmt = ROW_IS_STMT if h.default_is_stmt else 0
    addr_fmt = "<Q" if h.address_size == 8 else "<I"

    address = 0
    file = first_file
    line = 1
    column = 0
    stmt = default_stmt
    disc = 0  # discriminator register (§6.2.2)
    nzd = 0  # ROW_NZ_DISCRIMINATOR while the current line has had a non-zero discriminator
    pos = h.program_start
    end = h.program_end
    while pos < end:
        op = buf[pos]
        pos += 1
        if op >= opcode_base:
            da, dl = special[op]
            address += da
            if dl:
                line += dl
                nzd = ROW_NZ_DISCRIMINATOR if disc else 0
            add_a(address)
            add_f(file)
            add_l(line)
            add_c(column)
            add_g(stmt | nzd)
            disc = 0
        elif op == DW_LNS_set_column:
            column = buf[pos]
            if column < 0x80:
                pos += 1
            else:
                column, pos = uleb(buf, pos)
        elif op == DW_LNS_advance_line:
            delta, pos = sleb(buf, pos)
            if delta:
                line += delta
                nzd = ROW_NZ_DISCRIMINATOR if disc else 0
        elif op == DW_LNS_negate_stmt:
            stmt ^= ROW_IS_STMT
        elif op == DW_LNS_copy:
            add_a(address)
            add_f(file)
            add_l(line)
            add_c(column)
            add_g(stmt | nzd)
            disc = 0
        elif op == DW_LNS_advance_pc:
            delta, pos = uleb(buf, pos)
            address += min_inst * delta
        elif op == DW_LNS_set_file:
            file, pos = uleb(buf, pos)
        elif op == DW_LNS_const_add_pc:
            address += const_add
        elif op == 0:
            n, pos = uleb(buf, pos)
            if n == 0:
                continue
            sub = buf[pos]
            nxt = pos + n
            if sub == DW_LNE_end_sequence:
                add_a(address)
                add_f(file)
                add_l(line)
                add_c(column)
                add_g(stmt | ROW_END_SEQUENCE)
                address = 0
                file = first_file
                line = 1
                column = 0
                stmt = default_stmt
                disc = nzd = 0
            elif sub == DW_LNE_set_discriminator:
                disc, _ = uleb(buf, pos + 1)
                if disc:
                    nzd = ROW_NZ_DISCRIMINATOR
            elif sub == DW_LNE_set_address:
                if n - 1 == 8:
                    (address,) = struct.unpack_from("<Q", buf, pos + 1)
                elif n - 1 == 4:
                    (address,) = struct.unpack_from("<I", buf, pos + 1)
                else:
                    (address,) = struct.unpack_from(addr_fmt, buf, pos + 1)
            # DW_LNE_define_file, vendor ops: nothing we keep.
            pos = nxt
        elif op == DW_LNS_fixed_advance_pc:
            (delta,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            address += delta
        elif op in (DW_LNS_set_basic_block, DW_LNS_set_prologue_end, DW_LNS_set_epilogue_begin):
            pass
        else:  # DW_LNS_set_isa and unknown standard opcodes: skip their ULEB operands
            for _ in range(std_lengths[op - 1]):
                _, pos = uleb(buf, pos)

    return _rows(addrs, files, lines, cols, flags)


def _rows(addrs: Sequence[int] | np.ndarray, files: Sequence[int] | np.ndarray,
          lines: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
          flags: Sequence[int] | np.ndarray) -> LineRows:
    address = np.asarray(addrs, dtype=np.uint64)
    flag = np.asarray(flags, dtype=np.uint8)
    ends = np.flatnonzero(flag & ROW_END_SEQUENCE)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64) if len(ends) else ends
    # Drop empty sequences (an end_sequence with no row before it in the sequence, or a
    # sequence at address 0: discarded code, e.g. a dropped COMDAT or a stripped section).
    keep = (ends > starts) & (address[starts] != 0) if len(ends) else ends.astype(bool)
    starts, ends = starts[keep], ends[keep]
    order = np.argsort(address[starts], kind="stable")
    starts, ends = starts[order], ends[order]
    return LineRows(
        address=address,
        file=np.asarray(files, dtype=np.uint32),
        line=np.asarray(lines, dtype=np.uint32),
        column=np.asarray(cols, dtype=np.uint32),
        flags=flag,
        seq_start_addr=address[starts],
        seq_end_addr=address[ends],
        seq_first_row=starts.astype(np.int64),
        seq_last_row=ends.astype(np.int64),
    )
