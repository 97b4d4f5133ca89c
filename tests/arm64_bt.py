"""Reading crashtui's arm64 `bt` text back into return addresses, to compare the unwinding with
drgn's port of `bt` and the kernel's own call traces, which print return addresses.

crashtui's arm64 `bt` prints frames in crash's convention (arm64_print_stackframe_entry): a
return address as its `bl`, pc - 4; an exact pc (frame #0 of a task stopped on a CPU, the
interrupted pc after an EL1 exception's registers) as it is. A trace ends at kthread,
kthreadd, start_kernel and secondary_start_kernel.
"""

from __future__ import annotations

import re

FRAME = re.compile(r"^\s*#(\d+) \[([0-9a-f?]+)\] (\S+) at ([0-9a-f]+)")
CRASH_LAST = ("kthread", "kthreadd", "start_kernel", "secondary_start_kernel")


def frames(text: str, active: bool = True) -> list[tuple[str, int, str]]:
    """(function, return address or exact pc, bracket) of each frame line of crashtui's
    arm64 bt text; `active`: frame #0 is a CPU's exact pc (not a sleeping task's switch)."""
    out: list[tuple[str, int, str]] = []
    previous = ""
    for line in text.splitlines():
        m = FRAME.match(line)
        if m:
            # after a register block (its last line: X0, or ORIG_X0 .. PSTATE)
            exact = (m.group(1) == "0" and active) or re.search(r" X0: |PSTATE: ", previous)
            pc = int(m.group(4), 16) + (0 if exact else 4)
            out.append((m.group(3), pc, m.group(2)))
        if not line.startswith("--- <"):
            previous = line
    return out


def until_crash_stops(names: list[str]) -> list[str]:
    """A reference trace cut where crash's (and crashtui's) arm64 bt ends it."""
    for i, name in enumerate(names):
        if name in CRASH_LAST:
            return names[:i + 1]
    return names
