"""BUG()/WARN() sites: the __bug_table entry (vmlinux's, or a module's) for an address."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel


@dataclass(frozen=True)
class BugSite:
    """A BUG()/WARN() site from __bug_table."""

    address: int
    file: str | None
    line: int | None
    warning: bool  # BUGFLAG_WARNING: a WARN(), not a BUG()


def bug_site(k: Kernel, address: int, module: int | None = None) -> BugSite | None:
    """The __bug_table entry for a BUG()/WARN() at `address`: vmlinux's table, then the
    table of the struct module at `module` (the module holding the address), if given."""
    tables: list[tuple[int, int]] = []
    start, stop = k.symbol_or_none("__start___bug_table"), k.symbol_or_none("__stop___bug_table")
    if start is not None and stop is not None and 0 < stop - start < 1 << 24:
        tables.append((start, stop - start))
    if module is not None:
        try:
            table = k.pointer(module, "module", "bug_table")
            num = k.member(module, "module", "num_bugs", 4)
            if table and 0 < num < 1 << 20:
                tables.append((table, num * _bug_entry_size(k)))
        except CrashtuiError:
            pass
    for base, size in tables:
        try:
            raw = k.read(base, size)
        except CrashtuiError:
            continue
        hit = _search_bug_table(k, raw, base, address)
        if hit is not None:
            return hit
    return None


def _bug_entry_size(k: Kernel) -> int:
    try:
        return k.sizeof("struct bug_entry")
    except CrashtuiError:
        return 12


def _search_bug_table(k: Kernel, raw: bytes, base: int, address: int) -> BugSite | None:
    """Entries are {s32 bug_addr_disp; s32 file_disp; u16 line; u16 flags} (relative
    pointers, CONFIG_GENERIC_BUG_RELATIVE_POINTERS)."""
    size = _bug_entry_size(k)
    try:
        off_line = k.offsetof("bug_entry", "line")
        off_flags = k.offsetof("bug_entry", "flags")
        off_file = k.offsetof("bug_entry", "file_disp")
    except CrashtuiError:
        off_line, off_flags, off_file = 8, 10, 4
    n = len(raw) // size
    if n == 0 or size % 4 or not -(1 << 40) < address - base < 1 << 40:
        return None
    disps = np.frombuffer(raw[:n * size], dtype="<i4").reshape(n, size // 4)[:, 0]
    offsets = np.arange(n, dtype=np.int64) * size  # of each entry from the table's start
    hits = np.flatnonzero(offsets + disps.astype(np.int64) == address - base)
    for i in hits.tolist():
        pos = i * size
        (fdisp,) = struct.unpack_from("<i", raw, pos + off_file)
        line, flags = struct.unpack_from("<H", raw, pos + off_line)[0], \
            struct.unpack_from("<H", raw, pos + off_flags)[0]
        file: str | None = None
        try:
            file = k.read_cstr(base + pos + off_file + fdisp, 256) or None
        except CrashtuiError:
            pass
        return BugSite(address, file, line or None, bool(flags & 1))
    return None

