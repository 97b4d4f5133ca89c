"""What DWARF lookups answer: source lines, line rows, functions and their inline chains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:

    pass


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
