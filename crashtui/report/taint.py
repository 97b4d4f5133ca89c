"""Kernel taint flags (include/linux/panic.h, kernel/panic.c taint_flags[]) as letters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaintFlag:
    """One bit of tainted_mask: its letter when set, its letter when clear, and its meaning."""

    bit: int
    letter: str
    clear: str
    meaning: str


TAINT_FLAGS = (
    TaintFlag(0, "P", "G", "proprietary module loaded"),
    TaintFlag(1, "F", " ", "module force-loaded"),
    TaintFlag(2, "S", " ", "CPU out of specification"),
    TaintFlag(3, "R", " ", "module force-unloaded"),
    TaintFlag(4, "M", " ", "machine check"),
    TaintFlag(5, "B", " ", "bad page"),
    TaintFlag(6, "U", " ", "tainted by user request"),
    TaintFlag(7, "D", " ", "kernel died recently (oops or BUG)"),
    TaintFlag(8, "A", " ", "ACPI table overridden"),
    TaintFlag(9, "W", " ", "warning issued"),
    TaintFlag(10, "C", " ", "staging driver loaded"),
    TaintFlag(11, "I", " ", "firmware bug workaround"),
    TaintFlag(12, "O", " ", "out-of-tree module loaded"),
    TaintFlag(13, "E", " ", "unsigned module loaded"),
    TaintFlag(14, "L", " ", "soft lockup occurred"),
    TaintFlag(15, "K", " ", "kernel live-patched"),
    TaintFlag(16, "X", " ", "auxiliary taint (distribution)"),
    TaintFlag(17, "T", " ", "built with struct randomization"),
    TaintFlag(18, "N", " ", "in-kernel test run"),
)

MODULE_TAINT_MEANINGS = {"P": "proprietary", "O": "out-of-tree", "E": "unsigned",
                         "C": "staging", "F": "force-loaded", "X": "auxiliary",
                         "K": "live patch", "N": "test", "T": "struct randomization"}


def taint_letters(mask: int) -> str:
    """The letters the kernel prints after `Tainted:` (`G           OE     `), or `Not tainted`."""
    if not mask:
        return "Not tainted"
    return "".join(f.letter if mask >> f.bit & 1 else f.clear for f in TAINT_FLAGS)


def taint_meanings(mask: int) -> list[str]:
    """`O: out-of-tree module loaded` for each set bit."""
    return [f"{f.letter}: {f.meaning}" for f in TAINT_FLAGS if mask >> f.bit & 1]


def module_taint_meaning(letters: str) -> str:
    """`out-of-tree, unsigned` for a module's `OE`."""
    return ", ".join(MODULE_TAINT_MEANINGS.get(c, c) for c in letters if c.strip())
