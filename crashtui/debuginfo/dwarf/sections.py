"""The .debug_* sections of one ELF, and a pyelftools DWARFInfo over them (no copy)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crashtui.debuginfo.dwarf.constants import DEBUG_SECTION_NAMES
from crashtui.debuginfo.linetable import (
    Buffer,
)
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:
    from elftools.dwarf.dwarfinfo import DWARFInfo

    from crashtui.debuginfo.elf import ElfImage


@dataclass
class DwarfSections:
    """The .debug_* section bytes (zero-copy views for a vmlinux; relocated copies for a .ko)."""

    info: Buffer | None = None
    abbrev: Buffer | None = None
    line: Buffer | None = None
    str: Buffer | None = None
    line_str: Buffer | None = None
    rnglists: Buffer | None = None
    ranges: Buffer | None = None
    aranges: Buffer | None = None
    addr: Buffer | None = None
    str_offsets: Buffer | None = None
    loclists: Buffer | None = None  # variables' location lists (DWARF 5)
    loc: Buffer | None = None  # the same in DWARF 4
    frame: Buffer | None = None  # call frame information (callee-saved registers)

    @classmethod
    def from_image(cls, image: ElfImage) -> DwarfSections:
        """Views of an ET_EXEC/ET_DYN image's debug sections (no relocation needed)."""
        found: dict[str, Any] = {}
        for name in DEBUG_SECTION_NAMES:
            sec = image.sections.get(".debug_" + name)
            if sec is not None and sec.size:
                if sec.flags & 0x800:  # SHF_COMPRESSED
                    raise DebugInfoError(f".debug_{name} is compressed (SHF_COMPRESSED); "
                                         "decompress the vmlinux with objcopy", image.path)
                found[name] = image.section_data(sec)
        return cls(**found)


class SectionStream(io.RawIOBase):
    """A seekable read-only stream over a buffer (for pyelftools), without copying it."""

    def __init__(self, buf: Buffer) -> None:
        super().__init__()
        self._buf = memoryview(buf)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = len(self._buf) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._buf) - self._pos
        data = self._buf[self._pos:self._pos + size].tobytes()
        self._pos += len(data)
        return data


def make_pyelftools_dwarfinfo(sections: DwarfSections, address_size: int = 8) -> DWARFInfo:
    """A pyelftools DWARFInfo over the sections' buffers, without copying or relocating."""
    from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

    def desc(name: str) -> DebugSectionDescriptor | None:
        buf = getattr(sections, name)
        if buf is None:
            return None
        return DebugSectionDescriptor(stream=SectionStream(buf),  # type: ignore[arg-type]
                                      name=".debug_" + name,
                                      global_offset=None, size=len(buf), address=0)

    return DWARFInfo(
        config=DwarfConfig(little_endian=True, machine_arch="x64",
                           default_address_size=address_size),
        debug_info_sec=desc("info"), debug_aranges_sec=desc("aranges"),
        debug_abbrev_sec=desc("abbrev"), debug_frame_sec=None, eh_frame_sec=None,
        debug_str_sec=desc("str"), debug_loc_sec=None, debug_ranges_sec=desc("ranges"),
        debug_line_sec=desc("line"), debug_pubtypes_sec=None, debug_pubnames_sec=None,
        debug_addr_sec=desc("addr"), debug_str_offsets_sec=desc("str_offsets"),
        debug_line_str_sec=desc("line_str"), debug_loclists_sec=None,
        debug_rnglists_sec=desc("rnglists"), debug_sup_sec=None, gnu_debugaltlink_sec=None,
        debug_types_sec=None)
