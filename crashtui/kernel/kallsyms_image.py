"""The kernel's own compressed kallsyms: where its tables are, and a vectorised decoder.

The tables (scripts/kallsyms.c write_src(), kernel/kallsyms.c) live in the image's .rodata.
Since 6.0 VMCOREINFO names them (kernel/vmcore_info.c, crash_core.c before 6.9). Older
kernels do not: `find_tables()` then recognises them by their structure in the image, using
the order scripts/kallsyms.c wrote them in before 6.4 (all 8-byte aligned by output_label()):

    kallsyms_offsets       s32 per symbol (CONFIG_KALLSYMS_BASE_RELATIVE, 4.6+)
    kallsyms_relative_base u64
    kallsyms_num_syms      u32 (u64 in older kernels: the low half reads the same)
    kallsyms_names         per symbol a length byte (two if the high bit is set, 6.1+), then
                           that many token indexes
    kallsyms_markers       u32 (u64 before 5.x) offset in kallsyms_names of every 256th symbol
    (kallsyms_seqs_of_names, 6.2 .. 6.3, 3 bytes per symbol)
    kallsyms_token_table   256 NUL-terminated tokens (token c is the character c itself
                           whenever c occurs in a name: the digits always do)
    kallsyms_token_index   256 u16 offsets of the tokens in kallsyms_token_table
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.pagetable import START_KERNEL_MAP

if TYPE_CHECKING:
    from crashtui.debuginfo.symbols import SymbolTable
    from crashtui.kernel.program import Kernel

MAX_KERNEL_SYMBOLS = 1 << 22
PAGE = 0x1000
# The token table holds the ten digits as one-character tokens, in order (slots 0x30..0x39).
_DIGITS = b"".join(bytes([c, 0]) for c in range(0x30, 0x3A))
MAX_TEXT_GAP = 64 << 10  # the longest a function is taken to be without a size (see symbol_table)
_SEARCH_LIMIT = 96 << 20  # bytes of kernel image searched for the tables (text + rodata)
_TABLE_NAMES = ("kallsyms_offsets", "kallsyms_num_syms", "kallsyms_names",
                "kallsyms_token_table", "kallsyms_token_index")  # + relative_base before 7.0


@dataclass(frozen=True)
class KallsymsTables:
    """Runtime addresses of the kernel's kallsyms tables and how they were found."""

    offsets: int
    relative_base: int | None  # None: place-relative offsets (7.0+)
    num_syms: int
    names: int
    token_table: int
    token_index: int
    found_by: str  # "VMCOREINFO" | "structure"


def tables_from_vmcoreinfo(symbols: Mapping[str, int]) -> KallsymsTables | None:
    """The tables VMCOREINFO names (6.0+), or None."""
    if not all(n in symbols for n in _TABLE_NAMES):
        return None
    return KallsymsTables(symbols["kallsyms_offsets"], symbols.get("kallsyms_relative_base"),
                          symbols["kallsyms_num_syms"], symbols["kallsyms_names"],
                          symbols["kallsyms_token_table"], symbols["kallsyms_token_index"],
                          "VMCOREINFO")


# -- decoding ---------------------------------------------------------------------------------

@dataclass
class DecodedKallsyms:
    """The decoded tables: parallel arrays in kallsyms order (runtime addresses)."""

    addresses: np.ndarray  # uint64
    letters: bytes  # the nm-style type letter of each symbol
    names: list[str]
    tables: KallsymsTables

    def __len__(self) -> int:
        return len(self.names)


def _tokens(kernel: Kernel, tables: KallsymsTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(table bytes + a trailing '\\n', token start offsets, token lengths)."""
    index = np.frombuffer(kernel.read(tables.token_index, 256 * 2), "<u2").astype(np.int64)
    if index[0] != 0 or not bool(np.all(index[1:] > index[:-1])):
        raise KernelReadError("kallsyms_token_index is not increasing", tables.token_index)
    raw = kernel.read(tables.token_table, int(index[-1]) + 256)
    end = raw.find(b"\0", int(index[-1]))
    if end < 0:
        raise KernelReadError("kallsyms_token_table is not terminated", tables.token_table)
    table = np.frombuffer(raw[:end + 1] + b"\n", np.uint8)
    lengths = np.append(index[1:], end + 1) - index - 1
    if (lengths <= 0).any() or bool((table[index + lengths] != 0).any()):
        raise KernelReadError("kallsyms_token_table does not match its index",
                              tables.token_table)
    return table, index, lengths


def _name_starts(kernel: Kernel, addr: int, num: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(blob, start of each symbol's record, its header length) of kallsyms_names."""
    blob = bytearray(kernel.read(addr, min(max(num * 12, PAGE), 1 << 26)))
    starts = np.empty(num, dtype=np.int64)
    heads = np.ones(num, dtype=np.int64)
    pos = 0
    limit = len(blob) - 2
    for i in range(num):
        if pos > limit:
            blob += kernel.read(addr + len(blob), 1 << 20)
            limit = len(blob) - 2
        starts[i] = pos
        length = blob[pos]
        if length & 0x80:  # big symbol names (6.1+): 2-byte length
            length = (length & 0x7F) | (blob[pos + 1] << 7)
            heads[i] = 2
            pos += 2 + length
        else:
            pos += 1 + length
        if length == 0:
            raise KernelReadError(f"kallsyms_names: empty record for symbol {i}", addr + pos)
    while pos > len(blob):
        blob += kernel.read(addr + len(blob), 1 << 20)
    return bytes(blob[:pos]), starts, heads


def decode_kallsyms(kernel: Kernel, tables: KallsymsTables) -> DecodedKallsyms:
    """Decode every symbol (KernelReadError if the tables are unreadable or inconsistent);
    addresses as `_addresses` reads them."""
    num = kernel.read_u32(tables.num_syms)
    if not 0 < num <= MAX_KERNEL_SYMBOLS:
        raise KernelReadError(f"kallsyms_num_syms reads {num}", tables.num_syms)
    table, tok_start, tok_len = _tokens(kernel, tables)
    raw = table.tobytes()
    tokens = [raw[s:s + n].decode("latin-1") for s, n in zip(tok_start.tolist(),
                                                                tok_len.tolist(), strict=True)]
    tokens += ["\n", ""]  # 256: a record's length byte, 257: its second length byte (6.1+)
    blob, starts, heads = _name_starts(kernel, tables.names, num)
    codes = np.frombuffer(blob, np.uint8).astype(np.uint16)
    codes[starts] = 256
    codes[starts[heads == 2] + 1] = 257
    # one join over the whole blob: token indexes expanded, records separated by '\n'
    records = "".join(map(tokens.__getitem__, codes.data)).split("\n")[1:]
    if len(records) != num or not all(records):
        raise KernelReadError("kallsyms_names does not decode to kallsyms_num_syms names",
                              tables.names)
    letters = "".join([r[0] for r in records]).encode("latin-1", "replace")
    names = [r[1:] for r in records]
    offsets = np.frombuffer(kernel.read(tables.offsets, 4 * num), "<i4").astype(np.int64)
    base = None if tables.relative_base is None else kernel.read_u64(tables.relative_base)
    stext = kernel.vmcoreinfo.symbols.get("_stext")
    stext_index = names.index("_stext") if stext is not None and "_stext" in names else None
    addrs = _addresses(offsets, tables.offsets, base, stext_index, stext)
    return DecodedKallsyms(addrs.astype(np.uint64), letters, names, tables)


def _addresses(offs: np.ndarray, offsets_addr: int, base: int | None,
               stext_index: int | None, stext: int | None) -> np.ndarray:
    """Symbol addresses from kallsyms_offsets (s32 each, as int64) in the encoding that puts
    `_stext` where VMCOREINFO says it is (as drgn chooses), else the likeliest one.

    kernel/kallsyms.c kallsyms_sym_address(), by kernel:
    - base-relative with absolute per-CPU symbols (x86-64 SMP up to 6.14): a non-negative
      offset is the address itself (per-CPU symbols link at 0), a negative one means
      kallsyms_relative_base - 1 - offset;
    - base-relative (6.15+, other architectures): kallsyms_relative_base + (u32)offset;
    - place-relative (7.0+, no kallsyms_relative_base): the offset's own address + offset
      (offset_to_ptr).
    """
    place = (np.uint64(offsets_addr) + np.arange(len(offs), dtype=np.uint64) * np.uint64(4)
             + offs.astype(np.uint64))  # wraps modulo 2**64 like pointer arithmetic
    candidates = [place]
    if base is not None:
        absolute_percpu = np.where(offs >= 0, offs.astype(np.uint64),
                                   np.uint64(base) + (-1 - offs).astype(np.uint64))
        relative = np.uint64(base) + offs.astype(np.uint32).astype(np.uint64)
        likeliest = [absolute_percpu, relative] if (offs < 0).any() else [relative,
                                                                           absolute_percpu]
        candidates = likeliest + candidates
    if stext_index is not None and stext is not None:
        for addrs in candidates:
            if int(addrs[stext_index]) == stext:
                return addrs
    return candidates[0]


_KIND = np.zeros(256, dtype=np.uint8)  # nm letter -> symbols.KIND_* (other 0, object 1, func 2)
_BIND = np.zeros(256, dtype=np.uint8)  # nm letter -> STB_* (local 0, global 1, weak 2)
for _c in range(256):
    _ch = chr(_c)
    _low = _ch.lower()
    _KIND[_c] = 2 if _low == "t" else 1 if _low in "dbrgs" and _low else 0
    _BIND[_c] = 2 if _low in "wv" and _low else 1 if _ch.isupper() else 0


def symbol_table(decoded: DecodedKallsyms, slide: int = 0,
                 image_start: int = START_KERNEL_MAP) -> SymbolTable:
    """A SymbolTable of the decoded symbols, kernel-image addresses less `slide` (link-time).

    kallsyms has no sizes: a symbol extends to the next higher address (0 for the last one
    of the per-CPU range and of the image), which is what crash assumes too, except that a
    text symbol is taken to end MAX_TEXT_GAP bytes in at most: the image's text has
    alignment holes of up to 2 MiB (before .entry.text, the SRSO alias area) that belong to
    no function.
    """
    from crashtui.debuginfo.symbols import SymbolTable, _ListNames

    addrs = decoded.addresses
    if slide:
        image = addrs >= np.uint64(image_start)  # the arch's (x86-64: per-CPU from 0)
        addrs = np.where(image, addrs - np.uint64(slide), addrs)
    order = np.argsort(addrs, kind="stable")
    addrs = addrs[order]
    uniq = addrs[np.concatenate(([True], addrs[1:] != addrs[:-1]))]
    nxt_i = np.searchsorted(uniq, addrs, side="right")
    nxt = np.append(uniq, uniq[-1:])[nxt_i]
    sizes = nxt - addrs
    # the per-CPU range (absolute, from 0) does not run into the kernel image
    sizes[(addrs < np.uint64(START_KERNEL_MAP)) & (nxt >= np.uint64(START_KERNEL_MAP))] = 0
    letters = np.frombuffer(decoded.letters, np.uint8)[order]
    kinds = _KIND[letters]
    sizes = np.where(kinds == 2, np.minimum(sizes, np.uint64(MAX_TEXT_GAP)), sizes)
    names = decoded.names
    return SymbolTable(addrs, sizes, kinds, _BIND[letters],
                       _ListNames([names[i] for i in order.tolist()]))


# -- finding the tables by structure (kernels before 6.0) ----------------------------------------

def find_tables(kernel: Kernel) -> KallsymsTables | None:
    """Locate the tables in the kernel image by structure (layout before 6.4), or None.

    Searches downwards from a .data symbol VMCOREINFO names (init_uts_ns) to the image's
    start for the token table (the ten digit tokens in a row), then checks every table
    against the others before trusting it.
    """
    vi = kernel.vmcoreinfo.symbols
    top = vi.get("init_uts_ns") or vi.get("swapper_pg_dir") or vi.get("init_top_pgt")
    if top is None or top < START_KERNEL_MAP:
        return None
    bottom = vi.get("_stext") or (START_KERNEL_MAP + kernel.kaslr_offset + 0x1000000)
    bottom = max(bottom, top - _SEARCH_LIMIT, START_KERNEL_MAP)
    chunk = 64 * PAGE
    hi = top & ~(PAGE - 1)
    carry = b""
    while hi > bottom:
        lo = max(hi - chunk, bottom & ~(PAGE - 1))
        data = _read_lenient(kernel, lo, hi - lo)
        window = data + carry
        pos = window.rfind(_DIGITS)
        while pos >= 0:
            found = _tables_at_digits(kernel, lo + pos)
            if found is not None:
                return found
            pos = window.rfind(_DIGITS, 0, pos)
        carry = data[:len(_DIGITS)]
        hi = lo
    return None


def _read_lenient(kernel: Kernel, addr: int, size: int) -> bytes:
    """Read page by page; unreadable pages read as zeros."""
    try:
        return kernel.read(addr, size)
    except CrashtuiError:
        pass
    out = bytearray()
    for page in range(addr, addr + size, PAGE):
        try:
            out += kernel.read(page, PAGE)
        except CrashtuiError:
            out += bytes(PAGE)
    return bytes(out)


def _tables_at_digits(kernel: Kernel, digits: int) -> KallsymsTables | None:
    """The tables, given where the token "0" of a candidate token table is."""
    try:
        return _tables_at_digits_or_raise(kernel, digits)
    except CrashtuiError:
        return None


def _tables_at_digits_or_raise(kernel: Kernel, digits: int) -> KallsymsTables | None:
    # token table start: 0x30 tokens (non-empty, NUL-terminated) precede the "0"
    back = kernel.read(digits - 0x30 * 160, 0x30 * 160)
    pos = len(back) - 1  # the NUL ending token 0x2f
    for _ in range(0x30):
        prev = back.rfind(b"\0", 0, pos)
        if prev < 0 or pos - prev < 2:
            return None
        pos = prev
    table_start = digits - len(back) + pos + 1
    # the table ends after 256 tokens, the index follows it 8-byte aligned
    fwd = kernel.read(table_start, 256 * 160)
    offs = [0]
    p = 0
    for _ in range(256):
        end = fwd.find(b"\0", p)
        if end <= p:
            return None
        p = end + 1
        offs.append(p)
    index_addr = (table_start + p + 7) & ~7
    index = np.frombuffer(kernel.read(index_addr, 512), "<u2")
    if index.tolist() != offs[:256] or index[0x30] != digits - table_start:
        return None
    # markers: u32 (u64 in old kernels) offsets in kallsyms_names of every 256th name, right
    # before the token table, or (6.2+, and backports) before kallsyms_seqs_of_names
    span = 1 << 20
    below = np.frombuffer(kernel.read(table_start - span, span), "<u4").astype(np.int64)
    for width in (1, 2):
        for markers_addr, markers in _marker_arrays(below, table_start - span, width):
            end = (markers_addr + 4 * width * len(markers) + 7) & ~7
            tables = _names_before(kernel, markers_addr, markers, table_start, index_addr)
            if tables is None:
                continue
            num = kernel.read_u32(tables.num_syms)
            if table_start - end in (0, (3 * num + 7) & ~7):
                return tables
    return None


def _marker_arrays(words: np.ndarray, base: int, width: int) -> list[tuple[int, list[int]]]:
    """Candidate kallsyms_markers arrays in `words` (u32 at `base`), nearest the end first:
    8-aligned, starting with 0, rising by 256 names' worth of bytes per entry."""
    step = width
    n = len(words)
    ok = np.zeros(n, dtype=bool)
    lo_step, hi_step = 256 * 2, 256 * 2 * 128  # 256 records of 2..257 bytes (roughly)
    m = n - 3 * step
    if m <= 0:
        return []
    first = words[0:m]
    d1 = words[step:m + step] - first
    d2 = words[2 * step:m + 2 * step] - words[step:m + step]
    ok[:m] = (first == 0) & (d1 >= lo_step) & (d1 <= hi_step) & (d2 >= lo_step) & (d2 <= hi_step)
    if width == 2:
        ok[:m] &= (words[1:m + 1] == 0)
    ok[1::2] = False  # output_label() aligns every table to 8 bytes
    out = []
    for i in np.flatnonzero(ok)[::-1].tolist():
        vals = [0]
        j = i + step
        while j < n and lo_step <= words[j] - vals[-1] <= hi_step and \
                (width == 1 or (j + 1 < n and words[j + 1] == 0)):
            vals.append(int(words[j]))
            j += step
        out.append((base + 4 * i, vals))
    return out


def _names_before(kernel: Kernel, markers_addr: int, markers: list[int], table_start: int,
                  index_addr: int) -> KallsymsTables | None:
    """Find kallsyms_names (and num_syms, relative_base, offsets) before the markers."""
    n_markers = len(markers)
    last = markers[-1]
    span = last + 256 * 2 * 128
    lo = max(markers_addr - span - 64, START_KERNEL_MAP)
    lo &= ~7
    region = kernel.read(lo, markers_addr - lo)
    words = np.frombuffer(region[:len(region) & ~7], "<u4")[::2]  # u32 at 8-aligned slots
    low, high = 256 * (n_markers - 1) + 1, 256 * n_markers
    for k in np.flatnonzero((words >= low) & (words <= high))[::-1].tolist():
        num_addr = lo + 8 * k
        names = num_addr + 8
        if names + last >= markers_addr:
            continue
        num = int(words[k])
        if not _walk_matches(region, names - lo, markers[1] if n_markers > 1 else None):
            continue
        # before 6.4: offsets, relative_base, num_syms; 6.4+: offsets and relative_base
        # follow the token index
        after = (index_addr + 512 + 7) & ~7
        for base_addr, offsets in ((num_addr - 8, num_addr - 8 - ((4 * num + 7) & ~7)),
                                   (after + ((4 * num + 7) & ~7), after)):
            base = kernel.read_u64(base_addr)
            if START_KERNEL_MAP <= base <= table_start and table_start - base < 1 << 30:
                return KallsymsTables(offsets, base_addr, num_addr, names, table_start,
                                      index_addr, "structure")
    return None


def _walk_matches(region: bytes, start: int, second_marker: int | None) -> bool:
    """True if 256 records from `start` end exactly where the second marker says."""
    if second_marker is None:
        return True
    pos = start
    for _ in range(256):
        if pos + 1 >= len(region):
            return False
        length = region[pos]
        if length & 0x80:
            length = (length & 0x7F) | (region[pos + 1] << 7)
            pos += 2 + length
        else:
            pos += 1 + length
        if length == 0:
            return False
    return pos - start == second_marker


def kernel_kallsyms(kernel: Kernel, search: bool = True) -> DecodedKallsyms | None:
    """The kernel's kallsyms from the VMCOREINFO tables, else (search: also when those do not
    decode) found by structure. KernelReadError if the only tables found do not decode."""
    tables = tables_from_vmcoreinfo(kernel.vmcoreinfo.symbols)
    if tables is not None:
        try:
            return decode_kallsyms(kernel, tables)
        except CrashtuiError:
            if not search:
                raise
    if not search:
        return None
    found = find_tables(kernel)
    if found is None or (tables is not None and found.names == tables.names
                         and found.token_index == tables.token_index):
        return None
    return decode_kallsyms(kernel, found)
