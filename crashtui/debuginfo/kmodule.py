"""A kernel module file (.ko, ET_REL): sections, .modinfo, symbols, and DWARF by section.

A .ko is relocatable: every section starts at address 0 and its DWARF refers to code through
relocations (.rela.debug_*). We apply those relocations ourselves (x86-64: R_X86_64_64/32/
32S/PC32/PC64; arm64: R_AARCH64_ABS64/ABS32/PREL64/PREL32) with a base address for each allocated section, so the DWARF addresses of
.text, .init.text and .exit.text no longer overlap: either the module's real load addresses
(`lines(section_bases)`) or private per-section bases behind `source_line(section, offset)`.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from crashtui.debuginfo.dwarf import (
    DEBUG_SECTION_NAMES,
    DwarfLines,
    DwarfSections,
    FunctionInfo,
    InlineFrame,
    LineRow,
    SourceLine,
)
from crashtui.debuginfo.elf import (
    EM_X86_64,
    ET_REL,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHN_LORESERVE,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_RELA,
    ElfImage,
    Section,
)
from crashtui.debuginfo.symbols import ELF64_SYM, SymbolTable
from crashtui.errors import DebugInfoError

# Elf64_Rela (include/uapi/linux/elf.h)
ELF64_RELA = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])

# x86-64 relocation types used in debug sections (System V x86-64 psABI, table 4.10).
R_X86_64_NONE = 0
R_X86_64_64 = 1
R_X86_64_PC32 = 2
R_X86_64_32 = 10
R_X86_64_32S = 11
R_X86_64_PC64 = 24
_RELOC_SIZE = {R_X86_64_64: 8, R_X86_64_PC64: 8, R_X86_64_32: 4, R_X86_64_32S: 4,
               R_X86_64_PC32: 4}
_PCREL = (R_X86_64_PC32, R_X86_64_PC64)
# AArch64 (ELF for the Arm 64-bit Architecture, table "Data relocations").
EM_AARCH64 = 183
R_AARCH64_ABS64, R_AARCH64_ABS32, R_AARCH64_PREL64, R_AARCH64_PREL32 = 257, 258, 260, 261
# machine -> (relocation type -> size, the PC-relative types)
_RELOCS: dict[int, tuple[dict[int, int], tuple[int, ...]]] = {
    EM_X86_64: (_RELOC_SIZE, _PCREL),
    EM_AARCH64: ({R_AARCH64_ABS64: 8, R_AARCH64_PREL64: 8, R_AARCH64_ABS32: 4,
                  R_AARCH64_PREL32: 4}, (R_AARCH64_PREL32, R_AARCH64_PREL64)),
}

STT_OBJECT, STT_FUNC = 1, 2
_BINDINGS = {0: "local", 1: "global", 2: "weak"}


@dataclass(frozen=True, slots=True)
class ModuleSection:
    """One section of the .ko: what the module loader lays out (SHF_ALLOC) and the rest."""

    name: str
    index: int
    type: int
    flags: int
    size: int
    align: int

    @property
    def allocated(self) -> bool:
        """True if the loader copies it into module memory."""
        return bool(self.flags & SHF_ALLOC)

    @property
    def executable(self) -> bool:
        """True for code sections (.text, .init.text, .exit.text, ...)."""
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class ModuleSymbol:
    """A FUNC/OBJECT symbol placed at a runtime address (section base + st_value)."""

    name: str
    address: int
    size: int
    kind: str  # 'func' | 'object'
    section: str
    binding: str  # 'local' | 'global' | 'weak'


class KernelModuleFile:
    """A .ko file: cheap to open; relocated DWARF is built on first use and cached."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.image = ElfImage(self.path)
        if self.image.e_type != ET_REL:
            self.image.close()
            raise DebugInfoError(f"is not a kernel module (ELF type {self.image.e_type}, "
                                 "a .ko is relocatable)", self.path)
        if ".modinfo" not in self.image.sections and \
                ".gnu.linkonce.this_module" not in self.image.sections:
            self.image.close()
            raise DebugInfoError("is a relocatable object without .modinfo: not a kernel "
                                 "module", self.path)
        try:
            self.sections: list[ModuleSection] = self._read_sections()
            self.modinfo: dict[str, list[str]] = self._read_modinfo()
        except BaseException:
            self.image.close()
            raise
        self._by_name = {s.name: s for s in self.sections}
        self._lines: dict[tuple[tuple[int, int], ...], DwarfLines] = {}
        self._lock = threading.Lock()
        self._private_bases: dict[int, int] = {
            s.index: (s.index + 1) << 32 for s in self.sections if s.allocated}

    # -- sections --

    def _read_sections(self) -> list[ModuleSection]:
        """Section headers with sh_addralign (read from the table ElfImage parsed)."""
        ehdr = self.image.file_bytes(0, 64)
        (shoff,) = struct.unpack_from("<Q", ehdr, 0x28)
        out = []
        for sec in self.image.section_list:
            if sec.index == 0:
                continue
            (align,) = struct.unpack_from("<Q", self.image.file_bytes(shoff + sec.index * 64 + 48,
                                                                      8))
            out.append(ModuleSection(sec.name, sec.index, sec.type, sec.flags, sec.size, align))
        return out

    def section(self, name: str) -> ModuleSection:
        """The section called name (DebugInfoError if absent)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise DebugInfoError(f"no section {name}", self.path) from None

    @property
    def allocated_sections(self) -> list[ModuleSection]:
        """The sections the module loader places in memory, in file order."""
        return [s for s in self.sections if s.allocated]

    # -- .modinfo --

    def _read_modinfo(self) -> dict[str, list[str]]:
        """key=value strings of .modinfo (include/linux/moduleparam.h, MODULE_INFO)."""
        info: dict[str, list[str]] = {}
        if ".modinfo" not in self.image.sections:
            return info
        raw = bytes(self.image.section_data(".modinfo"))
        for item in raw.split(b"\0"):
            if b"=" not in item:
                continue
            key, _, value = item.decode("utf-8", "replace").partition("=")
            info.setdefault(key, []).append(value)
        return info

    def _info(self, key: str) -> str | None:
        values = self.modinfo.get(key)
        return values[0] if values else None

    @property
    def module_name(self) -> str:
        """The module's name (modinfo name=, else the file name with - turned into _)."""
        return self._info("name") or self.path.name.split(".")[0].replace("-", "_")

    @property
    def vermagic(self) -> str | None:
        """e.g. "6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions "."""
        return self._info("vermagic")

    @property
    def release(self) -> str | None:
        """The kernel release the module was built for (vermagic's first word)."""
        vm = self.vermagic
        return vm.split()[0] if vm and vm.split() else None

    def matches_release(self, release: str) -> bool:
        """True if the module was built for kernel `release` (uname -r)."""
        return self.release == release

    @property
    def srcversion(self) -> str | None:
        """MODULE_VERSION's source checksum, if modpost recorded one."""
        return self._info("srcversion")

    @property
    def license(self) -> str | None:
        """MODULE_LICENSE."""
        return self._info("license")

    @property
    def description(self) -> str | None:
        """MODULE_DESCRIPTION."""
        return self._info("description")

    @property
    def depends(self) -> list[str]:
        """Modules this one needs (modinfo depends=, comma separated)."""
        value = self._info("depends") or ""
        return [d for d in value.split(",") if d]

    @property
    def build_id(self) -> str | None:
        """The GNU build-id (hex), if the module has one."""
        return self.image.build_id

    # -- symbols --

    def _symtab(self) -> tuple[np.ndarray, bytes]:
        sec = self.image.sections.get(".symtab")
        if sec is None:
            raise DebugInfoError("no .symtab section (stripped module?)", self.path)
        syms = self._entries(sec, ELF64_SYM)
        if not 0 < sec.link < len(self.image.section_list):
            raise DebugInfoError(f".symtab names string table {sec.link} (sh_link), but the "
                                 f"module has {len(self.image.section_list)} sections",
                                 self.path)
        strtab = bytes(self.image.section_data(self.image.section_list[sec.link]))
        return syms, strtab

    def _entries(self, sec: Section, dtype: np.dtype) -> np.ndarray:
        """A table section's entries (DebugInfoError unless it holds whole entries)."""
        if sec.size % dtype.itemsize:
            raise DebugInfoError(f"section {sec.name} is {sec.size} bytes, not a multiple of "
                                 f"its {dtype.itemsize}-byte entries", self.path)
        return np.frombuffer(self.image.section_data(sec), dtype=dtype)

    def symbols(self) -> list[tuple[str, str, int, int, str]]:
        """FUNC/OBJECT symbols as (name, section, st_value, size, kind), in table order."""
        syms, strtab = self._symtab()
        out = []
        for s in syms:
            stype = int(s["info"]) & 0xF
            shndx = int(s["shndx"])
            if stype not in (STT_FUNC, STT_OBJECT) or shndx == SHN_UNDEF or \
                    shndx >= SHN_LORESERVE or shndx >= len(self.image.section_list):
                continue
            name = _cstr(strtab, int(s["name"]))
            out.append((name, self.image.section_list[shndx].name, int(s["value"]),
                        int(s["size"]), "func" if stype == STT_FUNC else "object"))
        return out

    def symbols_for(self, section_bases: Mapping[str, int]) -> list[ModuleSymbol]:
        """FUNC/OBJECT symbols at runtime addresses, given where each section was loaded
        (sections missing from section_bases, e.g. a freed .init.text, are left out)."""
        syms, strtab = self._symtab()
        out = []
        for s in syms:
            stype = int(s["info"]) & 0xF
            shndx = int(s["shndx"])
            if stype not in (STT_FUNC, STT_OBJECT) or shndx == SHN_UNDEF or \
                    shndx >= min(SHN_LORESERVE, len(self.image.section_list)):
                continue
            sec_name = self.image.section_list[shndx].name
            if sec_name not in section_bases:
                continue
            out.append(ModuleSymbol(
                name=_cstr(strtab, int(s["name"])),
                address=(section_bases[sec_name] + int(s["value"])) & 0xFFFFFFFFFFFFFFFF,
                size=int(s["size"]), kind="func" if stype == STT_FUNC else "object",
                section=sec_name, binding=_BINDINGS.get(int(s["info"]) >> 4, "other")))
        out.sort(key=lambda m: m.address)
        return out

    def symbol_table(self, section_bases: Mapping[str, int]) -> SymbolTable:
        """The module's symbols as a SymbolTable at the given section load addresses."""
        bases: dict[str | int, int] = {k: v for k, v in section_bases.items()}
        return SymbolTable.from_elf(self.image, bases)

    # -- DWARF --

    @property
    def has_dwarf(self) -> bool:
        """True if the module carries .debug_info and .debug_line."""
        return ".debug_info" in self.image.sections and ".debug_line" in self.image.sections

    def lines(self, section_bases: Mapping[str, int] | None = None) -> DwarfLines:
        """DWARF with the module's sections at `section_bases` (runtime addresses), or at
        private non-overlapping bases when None. DebugInfoError if there is no DWARF."""
        if section_bases is None:
            bases = self._private_bases
        else:
            bases = {}
            for name, base in section_bases.items():
                sec = self._by_name.get(name)
                if sec is not None:
                    bases[sec.index] = base
        key = tuple(sorted(bases.items()))
        with self._lock:
            dl = self._lines.get(key)
            if dl is None:
                if not self.has_dwarf:
                    raise DebugInfoError("has no DWARF debug info (.debug_info/.debug_line)",
                                         self.path)
                dl = DwarfLines.from_sections(self._relocated(bases), path=self.path)
                if len(self._lines) >= 4:
                    self._lines.pop(next(iter(self._lines)))
                self._lines[key] = dl
        return dl

    def _relocated(self, bases: Mapping[int, int]) -> DwarfSections:
        """Copies of the .debug_* sections with their .rela.debug_* applied."""
        if self.image.machine not in _RELOCS:
            raise DebugInfoError(f"relocating DWARF of a {self.image.machine_name} module is "
                                 "not supported", self.path)
        syms, _ = self._symtab()
        n_sections = len(self.image.section_list)
        base_of = np.zeros(n_sections + 1, dtype=np.uint64)
        for index, base in bases.items():
            base_of[index] = np.uint64(base & 0xFFFFFFFFFFFFFFFF)
        shndx = syms["shndx"].astype(np.int64)
        shndx = np.where(shndx < min(SHN_LORESERVE, n_sections), shndx, n_sections)
        sym_values = syms["value"] + base_of[shndx]  # uint64, wraps like the CPU would
        relas: dict[int, Section] = {s.info: s for s in self.image.section_list
                                     if s.type == SHT_RELA}
        found: dict[str, bytearray] = {}
        for name in DEBUG_SECTION_NAMES:
            sec = self.image.sections.get(".debug_" + name)
            if sec is None or sec.type == SHT_NOBITS or not sec.size:
                continue
            data = bytearray(self.image.section_data(sec))
            rela = relas.get(sec.index)
            if rela is not None:
                self._apply(data, sec, self._entries(rela, ELF64_RELA), sym_values)
            found[name] = data
        return DwarfSections(**found)

    def _apply(self, data: bytearray, sec: Section, rela: np.ndarray,
               sym_values: np.ndarray) -> None:
        """Apply RELA entries to one section's bytes, vectorised by relocation size."""
        sizes, pcrel_types = _RELOCS[self.image.machine]
        rtype = (rela["info"] & 0xFFFFFFFF).astype(np.int64)
        rsym = (rela["info"] >> 32).astype(np.int64)
        unknown = set(np.unique(rtype).tolist()) - set(sizes) - {R_X86_64_NONE}
        if unknown:
            raise DebugInfoError(f"unsupported relocation type(s) {sorted(unknown)} in "
                                 f".rela{sec.name}", self.path)
        if len(rsym) and int(rsym.max()) >= len(sym_values):
            raise DebugInfoError(f"bad symbol index in .rela{sec.name}", self.path)
        offsets = rela["offset"].astype(np.int64)
        with np.errstate(over="ignore"):
            values = sym_values[rsym] + rela["addend"].astype(np.uint64)
            pcrel = np.isin(rtype, pcrel_types)
            values = np.where(pcrel, values - rela["offset"], values)  # P = offset (addr 0)
        buf = np.frombuffer(data, dtype=np.uint8)
        for size in (8, 4):
            sel = np.isin(rtype, [t for t, s in sizes.items() if s == size])
            if not sel.any():
                continue
            offs = offsets[sel]
            if int(offs.max()) + size > len(data) or int(offs.min()) < 0:
                raise DebugInfoError(f"relocation past the end of {sec.name}", self.path)
            vals = values[sel]
            if size == 4:
                vals = (vals & np.uint64(0xFFFFFFFF)).astype("<u4")
            else:
                vals = vals.astype("<u8")
            buf[offs[:, None] + np.arange(size)] = vals.view(np.uint8).reshape(-1, size)

    def _private_address(self, section: str, offset: int) -> int:
        sec = self.section(section)
        if not sec.allocated:
            raise DebugInfoError(f"section {section} is not loaded into memory", self.path)
        return self._private_bases[sec.index] + offset

    def _section_of(self, private_addr: int) -> str | None:
        """Which section a private-base address is in (the bases are (index + 1) << 32)."""
        index = (private_addr >> 32) - 1
        return self.image.section_list[index].name if index in self._private_bases else None

    def source_line(self, section: str, offset: int) -> SourceLine | None:
        """file: line of code at `offset` in `section` (like addr2line -j SECTION)."""
        if not self.has_dwarf:
            return None
        return self.lines().source_line(self._private_address(section, offset))

    def function_at(self, section: str, offset: int) -> FunctionInfo | None:
        """The function (and inline chain) at section+offset; low_pc/high_pc and ranges are
        offsets in that section (ranges elsewhere, e.g. a .text.unlikely part, left out)."""
        if not self.has_dwarf:
            return None
        base = self._private_address(section, 0)
        fn = self.lines().function_at(base + offset)
        if fn is None:
            return None
        ranges = tuple((lo - base, hi - base) for lo, hi in fn.ranges
                       if self._section_of(lo) == section)
        inlined = tuple(replace(c, ranges=tuple((lo - base, hi - base) for lo, hi in c.ranges))
                        for c in fn.inlined)
        lo = min((r[0] for r in ranges), default=0)
        hi = max((r[1] for r in ranges), default=0)
        return replace(fn, low_pc=lo, high_pc=hi, ranges=ranges, inlined=inlined)

    def inline_frames(self, section: str, offset: int) -> list[InlineFrame]:
        """Source frames at section+offset, innermost (inlined) first."""
        if not self.has_dwarf:
            return []
        return self.lines().inline_frames(self._private_address(section, offset))

    def lines_in_range(self, section: str, start: int, end: int) -> list[LineRow]:
        """Line rows for section offsets [start, end), addresses given as offsets."""
        if not self.has_dwarf:
            return []
        base = self._private_address(section, 0)
        return [replace(r, address=r.address - base)
                for r in self.lines().lines_in_range(base + start, base + end)]

    def close(self) -> None:
        """Drop the relocated DWARF and unmap the file."""
        for dl in self._lines.values():
            dl.close()
        self._lines.clear()
        self.image.close()

    def __enter__(self) -> KernelModuleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KernelModuleFile({str(self.path)!r}, name={self.module_name!r})"


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("utf-8", "replace")


__all__ = ["KernelModuleFile", "ModuleSection", "ModuleSymbol"]
