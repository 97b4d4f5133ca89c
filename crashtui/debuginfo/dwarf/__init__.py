"""DWARF of a vmlinux or module: address → CU (.debug_aranges) → line rows, functions, inlines.

Nothing here scans the whole of .debug_info (156 MiB, 16.8M DIEs on a distro kernel): an
address is mapped to its compilation unit through .debug_aranges (DWARF 5 §6.1.2), and only
that unit's line program (§6.2) or DIE tree (§2, §3.3) is decoded, then cached (LRU-bounded).
Section data is read in place from the mmap'd file. The hot loops (line programs, DIE walks)
are hand-written because pyelftools' object-per-row decoding is 5-10x slower; `dwarfinfo`
still offers a pyelftools DWARFInfo over the same zero-copy windows for other uses.

The modules follow pyelftools' dwarf/ package: constants (DW_* values), sections (the
.debug_* buffers), abbrev (abbreviation tables), reader (unit headers, DIEs, range lists),
aranges (address → unit), results (what lookups answer) and lines (DwarfLines, the API).
The line-number program itself is decoded in ../linetable.py, variables in ../dwarfvars.py.
"""

from crashtui.debuginfo.dwarf.aranges import UnitIndex, parse_aranges
from crashtui.debuginfo.dwarf.constants import DEBUG_SECTION_NAMES, DEFAULT_CU_CACHE
from crashtui.debuginfo.dwarf.lines import DwarfLines, SymbolLookup
from crashtui.debuginfo.dwarf.results import (
    FunctionInfo,
    InlinedCall,
    InlineFrame,
    LineRow,
    SourceLine,
)
from crashtui.debuginfo.dwarf.sections import DwarfSections, make_pyelftools_dwarfinfo

__all__ = ["DEBUG_SECTION_NAMES", "DEFAULT_CU_CACHE", "DwarfLines", "DwarfSections",
           "FunctionInfo", "InlineFrame", "InlinedCall", "LineRow", "SourceLine",
           "SymbolLookup", "UnitIndex", "make_pyelftools_dwarfinfo", "parse_aranges"]
