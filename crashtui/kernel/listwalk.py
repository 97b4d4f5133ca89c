"""crash's `list` walk (tools.c do_list()): follow a next pointer at an offset from entry to
entry, bounded and duplicate-checked, stopping where crash stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_LIST_ENTRIES = 1_000_000


@dataclass
class ListEntries:
    """The entries' addresses (each minus the list_head offset) and why the walk stopped
    early, if it did."""

    entries: list[int] = field(default_factory=list)
    error: str | None = None


def walk_entries(kernel: Kernel, start: int, member_offset: int = 0,
                 list_head_offset: int = 0, end: int = 0, head_format: bool = False,
                 limit: int = MAX_LIST_ENTRIES) -> ListEntries:
    """Walk from `start`: print-address = pointer - list_head_offset, next pointer at pointer +
    member_offset; stops at NULL (an error for list_head lists), `end`, back at start, a
    self-loop or back at the first entry; a duplicate or unreadable entry is an error."""
    out = ListEntries()
    try:
        first = kernel.read_u64(start + member_offset)
    except CrashtuiError:
        out.error = f"invalid list entry: {start:x}"
        return out
    seen: set[int] = set()
    nxt = start
    while True:
        if len(out.entries) >= limit:
            out.error = f"list longer than {limit} entries"
            return out
        out.entries.append(nxt - list_head_offset)
        if nxt and nxt in seen:
            out.entries.pop()
            out.error = f"duplicate list entry: {nxt:x}"
            return out
        seen.add(nxt)
        last = nxt
        try:
            nxt = kernel.read_u64(nxt + member_offset)
        except CrashtuiError:
            out.error = f"invalid list entry: {nxt:x}"
            return out
        if nxt == 0:
            if head_format:
                out.error = "invalid list entry: 0"
            return out
        if nxt in (end, start, last) or (nxt == first and len(out.entries) != 1):
            return out
