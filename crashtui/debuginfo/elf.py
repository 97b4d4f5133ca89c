"""A read-only, mmap'd ELF64 little-endian image: section/program headers, notes, build-id."""

from __future__ import annotations

import bisect
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from crashtui.errors import DebugInfoError

# Elf64_Ehdr after e_ident (include/uapi/linux/elf.h)
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr, 64 bytes
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr, 56 bytes
_NHDR = struct.Struct("<III")  # Elf64_Nhdr: namesz, descsz, type

ELFCLASS64 = 2
ELFDATA2LSB = 1

ET_REL = 1
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4

EM_386 = 3
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

MACHINE_NAMES = {
    EM_386: "i386", EM_PPC64: "ppc64", EM_S390: "s390", EM_ARM: "arm", EM_X86_64: "x86-64",
    EM_AARCH64: "aarch64", EM_RISCV: "riscv", EM_LOONGARCH: "loongarch",
}

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOTE = 7
SHT_NOBITS = 8

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

PT_LOAD = 1
PT_NOTE = 4

NT_GNU_BUILD_ID = 3


@dataclass(frozen=True, slots=True)
class Section:
    """One section header (Elf64_Shdr) with its resolved name."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    index: int

    @property
    def allocated(self) -> bool:
        """True if the section occupies memory at run time (SHF_ALLOC)."""
        return bool(self.flags & SHF_ALLOC)


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header (Elf64_Phdr)."""

    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class Note:
    """One ELF note: owner name (NUL stripped), type, descriptor bytes."""

    name: str
    type: int
    desc: bytes


def parse_notes(data: bytes | memoryview) -> list[Note]:
    """Split a note section/segment into notes (4-byte aligned name and desc)."""
    notes: list[Note] = []
    buf = memoryview(data)
    pos, end = 0, len(buf)
    while pos + _NHDR.size <= end:
        namesz, descsz, ntype = _NHDR.unpack_from(buf, pos)
        pos += _NHDR.size
        name_end = pos + namesz
        desc_off = pos + ((namesz + 3) & ~3)
        desc_end = desc_off + descsz
        if desc_end > end:
            break
        name = bytes(buf[pos:name_end]).rstrip(b"\0").decode("utf-8", "replace")
        notes.append(Note(name, ntype, bytes(buf[desc_off:desc_end])))
        pos = desc_off + ((descsz + 3) & ~3)
    return notes


class ElfImage:
    """An ELF64 LE file mapped read-only; headers parsed by hand, data sliced zero-copy."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise DebugInfoError("empty file, not an ELF image", self.path)
                self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise DebugInfoError(f"cannot open: {exc.strerror or exc}", self.path) from exc
        self._view = memoryview(self._mmap)
        self.size = size
        try:
            self._parse()
        except DebugInfoError:
            self.close()
            raise
        except (struct.error, ValueError, IndexError) as exc:
            self.close()
            raise DebugInfoError(f"damaged ELF headers: {exc}", self.path) from exc
        self._alloc: list[Section] | None = None
        self._alloc_starts: list[int] = []
        self._build_id: str | None | bool = False

    # -- parsing -----------------------------------------------------------------------------

    def _fail(self, message: str) -> DebugInfoError:
        return DebugInfoError(message, self.path)

    def _parse(self) -> None:
        m = self._mmap
        if self.size < 64 or m[:4] != b"\x7fELF":
            raise self._fail("not an ELF file")
        if m[4] != ELFCLASS64:
            raise self._fail("not a 64-bit ELF file (ELFCLASS32)")
        if m[5] != ELFDATA2LSB:
            raise self._fail("not a little-endian ELF file")
        (self.e_type, self.machine, _version, self.entry, phoff, shoff, self.e_flags, _ehsize,
         phentsize, phnum, shentsize, shnum, shstrndx) = _EHDR.unpack_from(m, 16)
        self.segments = self._parse_segments(phoff, phentsize, phnum)
        self.sections: dict[str, Section] = {}
        self.section_list: list[Section] = []
        if shoff == 0:
            return
        if shentsize != _SHDR.size:
            raise self._fail(f"unexpected section header size {shentsize}")
        if shoff + _SHDR.size > self.size:
            raise self._fail(f"section header table at {shoff:#x} is past the end of the file "
                             f"({self.size:#x} bytes): truncated?")
        first = _SHDR.unpack_from(m, shoff)
        if shnum == 0:  # more than SHN_LORESERVE sections: real count in section 0's sh_size
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if shoff + shnum * _SHDR.size > self.size:
            raise self._fail(f"section header table ({shnum} entries at {shoff:#x}) runs past "
                             f"the end of the file ({self.size:#x} bytes): truncated?")
        raw = [_SHDR.unpack_from(m, shoff + i * _SHDR.size) for i in range(shnum)]
        if not 0 <= shstrndx < shnum:
            raise self._fail(f"bad section name table index {shstrndx}")
        _, _, _, _, str_off, str_size, *_ = raw[shstrndx]
        if str_off + str_size > self.size:
            raise self._fail("section name table is past the end of the file: truncated?")
        names = m[str_off:str_off + str_size]
        for i, (sh_name, sh_type, flags, addr, off, sz, link, info, _al, entsize) in enumerate(raw):
            end = names.find(b"\0", sh_name)
            name = names[sh_name:end if end >= 0 else len(names)].decode("utf-8", "replace")
            sec = Section(name, sh_type, flags, addr, off, sz, link, info, entsize, i)
            self.section_list.append(sec)
            if name and name not in self.sections:
                self.sections[name] = sec

    def _parse_segments(self, phoff: int, phentsize: int, phnum: int) -> list[Segment]:
        if phoff == 0 or phnum == 0:
            return []
        if phentsize != _PHDR.size:
            raise self._fail(f"unexpected program header size {phentsize}")
        if phoff + phnum * _PHDR.size > self.size:
            raise self._fail("program header table is past the end of the file: truncated?")
        return [Segment(*_PHDR.unpack_from(self._mmap, phoff + i * _PHDR.size))
                for i in range(phnum)]

    # -- data --------------------------------------------------------------------------------

    def section(self, name: str) -> Section:
        """The section called `name`; DebugInfoError if absent."""
        try:
            return self.sections[name]
        except KeyError:
            raise self._fail(f"no {name} section") from None

    def section_data(self, name_or_section: str | Section) -> memoryview:
        """Zero-copy view of a section's file bytes (empty for NOBITS)."""
        sec = (name_or_section if isinstance(name_or_section, Section)
               else self.section(name_or_section))
        if sec.type == SHT_NOBITS:
            return self._view[0:0]
        if sec.offset + sec.size > self.size:
            raise self._fail(f"section {sec.name} runs past the end of the file: truncated?")
        return self._view[sec.offset:sec.offset + sec.size]

    def file_bytes(self, offset: int, size: int) -> memoryview:
        """Zero-copy view of `size` bytes at a file offset."""
        if offset < 0 or offset + size > self.size:
            raise self._fail(f"file range {offset:#x}+{size:#x} is past the end of the file")
        return self._view[offset:offset + size]

    def _alloc_index(self) -> list[Section]:
        if self._alloc is None:
            alloc = sorted((s for s in self.section_list if s.allocated and s.size > 0),
                           key=lambda s: s.addr)
            self._alloc = alloc
            self._alloc_starts = [s.addr for s in alloc]
        return self._alloc

    def section_at(self, vaddr: int) -> Section | None:
        """The allocated section containing link-time address `vaddr`, if any."""
        alloc = self._alloc_index()
        i = bisect.bisect_right(self._alloc_starts, vaddr) - 1
        # .data..percpu sits at address 0 and sections may nest; scan back a little
        while i >= 0:
            sec = alloc[i]
            if sec.addr <= vaddr < sec.addr + sec.size:
                return sec
            if vaddr - sec.addr > (1 << 32):
                break
            i -= 1
        return None

    def read_at(self, vaddr: int, size: int) -> bytes:
        """Bytes at a link-time address from allocated sections (NOBITS reads as zeros)."""
        out = bytearray()
        addr, remaining = vaddr, size
        while remaining > 0:
            sec = self.section_at(addr)
            if sec is None:
                raise self._fail(f"address {addr:#x} is not in any allocated section")
            n = min(remaining, sec.addr + sec.size - addr)
            if sec.type == SHT_NOBITS:
                out += bytes(n)
            else:
                start = sec.offset + (addr - sec.addr)
                out += self.file_bytes(start, n)
            addr += n
            remaining -= n
        return bytes(out)

    # -- notes / build-id ----------------------------------------------------------------------

    def notes(self, section: str | Section | None = None) -> list[Note]:
        """Notes of one section, or of every SHT_NOTE section (else PT_NOTE segments)."""
        if section is not None:
            return parse_notes(self.section_data(section))
        secs = [s for s in self.section_list if s.type == SHT_NOTE]
        if secs:
            return [n for s in secs for n in parse_notes(self.section_data(s))]
        return [n for p in self.segments if p.type == PT_NOTE
                for n in parse_notes(self.file_bytes(p.offset, p.filesz))]

    @property
    def build_id(self) -> str | None:
        """The GNU build-id as lowercase hex, or None."""
        if self._build_id is False:
            self._build_id = None
            for note in self.notes():
                if note.name == "GNU" and note.type == NT_GNU_BUILD_ID:
                    self._build_id = note.desc.hex()
                    break
        return self._build_id  # type: ignore[return-value]

    @property
    def machine_name(self) -> str:
        """A readable name for e_machine."""
        return MACHINE_NAMES.get(self.machine, f"machine {self.machine}")

    def close(self) -> None:
        """Release the mapping (views handed out must not be used afterwards)."""
        view = getattr(self, "_view", None)
        if view is not None:
            try:
                view.release()
            except BufferError:
                pass  # exported to numpy; freed with its last user
            self._view = None  # type: ignore[assignment]
        m = getattr(self, "_mmap", None)
        if m is not None:
            try:
                m.close()
            except BufferError:
                pass  # a caller still holds a view; the mapping goes when it is collected
            self._mmap = None  # type: ignore[assignment]

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ElfImage({str(self.path)!r}, {len(self.section_list)} sections)"
