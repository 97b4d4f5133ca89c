"""kallsyms in memory: a module's own symbol table and the kernel's compressed tables.

A module keeps an ELF symbol table in memory (`struct mod_kallsyms`, include/linux/module.h):
`symtab` is an Elf64_Sym array whose st_value fields the loader relocated to runtime
addresses (kernel/module/main.c simplify_symbols), `strtab` the names and `typetab` the
nm-style type letter of each symbol (kernel/module/kallsyms.c add_kallsyms). While the module
is still in its init function, `mod->kallsyms` is the full copy (every symbol, init ones too);
afterwards it points at `mod->core_kallsyms`, the subset in the module's core memory.

The kernel's own compressed kallsyms are decoded in kallsyms_image.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

# Elf64_Sym (include/uapi/linux/elf.h)
ELF64_SYM = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                      ("value", "<u8"), ("size", "<u8")])
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
STT_SECTION = 3
STT_FILE = 4
MAX_MODULE_SYMBOLS = 1 << 20  # a sanity bound on num_symtab read from a dump


@dataclass(frozen=True, slots=True)
class ModuleSymbol:
    """One entry of a module's in-memory symbol table."""

    index: int  # position in the symtab: the kernel prefers the lowest index among aliases
    name: str
    address: int  # runtime address
    size: int
    kind: str  # nm-style type letter from typetab ('t', 'T', 'd', 'b', 'r', ...)
    shndx: int  # section index in the module's .ko
    elf_type: int  # STT_* from st_info

    @property
    def is_function(self) -> bool:
        return self.kind in "tTwW" and self.elf_type != STT_SECTION


@dataclass
class ModuleKallsyms:
    """A module's in-memory symbol table (every entry, in symtab order)."""

    symbols: list[ModuleSymbol]

    def named(self) -> list[ModuleSymbol]:
        """The entries the kernel's find_kallsyms_symbol() may return: defined and named."""
        return [s for s in self.symbols
                if s.name and s.shndx != SHN_UNDEF and not s.name.startswith("$")
                and s.elf_type not in (STT_SECTION, STT_FILE) and s.kind not in "uUaA"]

    def section_addresses(self) -> dict[int, int]:
        """Runtime base of each .ko section index, from STT_SECTION entries (full copy only)."""
        return {s.shndx: s.address for s in self.symbols
                if s.elf_type == STT_SECTION and 0 < s.shndx < SHN_LORESERVE}


def read_mod_kallsyms(kernel: Kernel, addr: int) -> ModuleKallsyms:
    """Decode the `struct mod_kallsyms` at `addr` (raises KernelReadError if unreadable)."""
    off = kernel.offsetof
    symtab = kernel.read_u64(addr + off("mod_kallsyms", "symtab"))
    num = kernel.read_u32(addr + off("mod_kallsyms", "num_symtab"))
    strtab = kernel.read_u64(addr + off("mod_kallsyms", "strtab"))
    typetab = 0
    if kernel.btf.has_member("mod_kallsyms", "typetab"):
        typetab = kernel.read_u64(addr + off("mod_kallsyms", "typetab"))
    if num == 0:
        return ModuleKallsyms([])
    if num > MAX_MODULE_SYMBOLS:
        raise KernelReadError(f"mod_kallsyms at {addr:#x} claims {num} symbols", addr)
    syms = np.frombuffer(kernel.read(symtab, num * ELF64_SYM.itemsize), dtype=ELF64_SYM)
    types = kernel.read(typetab, num) if typetab else b""
    strings = _read_strtab(kernel, strtab, int(syms["name"].max()) + 1)
    out: list[ModuleSymbol] = []
    for i, sym in enumerate(syms.tolist()):
        st_name, info, _other, shndx, value, size = sym
        end = strings.find(b"\0", st_name)
        name = strings[st_name:end if end >= 0 else None].decode("utf-8", "replace")
        kind = chr(types[i]) if types else _letter(info, shndx)
        out.append(ModuleSymbol(i, name, value, size, kind, shndx, info & 0xF))
    return ModuleKallsyms(out)


def _read_strtab(kernel: Kernel, addr: int, minimum: int) -> bytes:
    """The string table up to the end of the last name referenced (read page by page)."""
    data = bytearray()
    pos = addr
    while len(data) < minimum or data.rfind(b"\0") < minimum - 1:
        chunk = 0x1000 - (pos & 0xFFF)
        try:
            data += kernel.read(pos, chunk)
        except CrashtuiError:
            if len(data) >= minimum:
                break
            raise
        pos += chunk
        if len(data) > 1 << 24:
            break
    return bytes(data)


def _letter(info: int, shndx: int) -> str:
    """A rough type letter when the kernel kept no typetab (before 4.x)."""
    if shndx == SHN_UNDEF:
        return "U"
    bind, typ = info >> 4, info & 0xF
    letter = "t" if typ == 2 else "d" if typ == 1 else "?"
    return letter.upper() if bind == 1 else letter
