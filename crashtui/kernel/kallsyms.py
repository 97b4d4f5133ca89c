"""kallsyms in memory: a module's own symbol table and the kernel's compressed tables.

A module keeps an ELF symbol table in memory (`struct mod_kallsyms`, include/linux/module.h):
`symtab` is an Elf64_Sym array whose st_value fields the loader relocated to runtime
addresses (kernel/module/main.c simplify_symbols), `strtab` the names and `typetab` the
nm-style type letter of each symbol (kernel/module/kallsyms.c add_kallsyms). While the module
is still in its init function, `mod->kallsyms` is the full copy (every symbol, init ones too);
afterwards it points at `mod->core_kallsyms`, the subset in the module's core memory.

Since 6.0 VMCOREINFO also exports the kernel's own compressed kallsyms
(kernel/kallsyms.c, scripts/kallsyms.c): symbol names without a vmlinux.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.debuginfo.symbols import SymbolTable
    from crashtui.kernel.program import Kernel

# Elf64_Sym (include/uapi/linux/elf.h)
ELF64_SYM = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                      ("value", "<u8"), ("size", "<u8")])
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
STT_SECTION = 3
STT_FILE = 4
MAX_MODULE_SYMBOLS = 1 << 20  # a sanity bound on num_symtab read from a dump
MAX_KERNEL_SYMBOLS = 1 << 22


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


# -- the kernel's own compressed kallsyms (VMCOREINFO, 6.0+) -----------------------------------

def read_kernel_kallsyms(kernel: Kernel) -> SymbolTable | None:
    """The kernel's kallsyms as a SymbolTable (runtime addresses), or None if not exported.

    Layout (scripts/kallsyms.c): kallsyms_names holds, per symbol, a length byte (two bytes
    when the high bit is set, 6.1+) then that many token indexes; kallsyms_token_index[t] is
    where token t starts in kallsyms_token_table; the first decoded character is the type.
    Addresses (kallsyms_sym_address()) are encoded one of three ways, see `_addresses`.
    """
    from crashtui.debuginfo.symbols import SymbolTable

    syms = kernel.vmcoreinfo.symbols
    need = ("kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table",
            "kallsyms_token_index", "kallsyms_offsets")
    if not all(n in syms for n in need):
        return None
    try:
        num = kernel.read_u32(syms["kallsyms_num_syms"])
        if not 0 < num <= MAX_KERNEL_SYMBOLS:
            return None
        index = np.frombuffer(kernel.read(syms["kallsyms_token_index"], 256 * 2), "<u2")
        table = kernel.read(syms["kallsyms_token_table"], int(index[-1]) + 256)
        tokens = []
        for t in index.tolist():
            end = table.find(b"\0", t)
            tokens.append(table[t:end].decode("latin-1"))
        offsets = np.frombuffer(kernel.read(syms["kallsyms_offsets"], 4 * num), "<i4")
        base = (kernel.read_u64(syms["kallsyms_relative_base"])
                if "kallsyms_relative_base" in syms else None)
        names_addr = syms["kallsyms_names"]
        blob = kernel.read(names_addr, min(num * 32, 1 << 26))
        names: list[str] = []
        kinds: list[str] = []
        pos = 0
        for _ in range(num):
            while pos + 2 > len(blob):
                blob += kernel.read(names_addr + len(blob), 1 << 20)
            length = blob[pos]
            pos += 1
            if length & 0x80:  # big symbol names (6.1): 2-byte length
                length = (length & 0x7F) | (blob[pos] << 7)
                pos += 1
            while pos + length > len(blob):
                blob += kernel.read(names_addr + len(blob), 1 << 20)
            text = "".join(tokens[b] for b in blob[pos:pos + length])
            pos += length
            kinds.append(text[:1] or "?")
            names.append(text[1:])
    except CrashtuiError:
        return None
    stext = syms.get("_stext")
    addrs = _addresses(offsets, syms["kallsyms_offsets"], base,
                       names.index("_stext") if stext is not None and "_stext" in names else None,
                       stext)
    sizes = np.zeros(num, dtype=np.uint64)
    order = np.argsort(addrs, kind="stable")
    sorted_addrs = addrs[order]
    gaps = np.diff(sorted_addrs, append=sorted_addrs[-1:])
    sizes[order] = gaps
    return SymbolTable.from_arrays(addrs, sizes, [k if len(k) == 1 else "?" for k in kinds],
                                   names)


def _addresses(offsets: np.ndarray, offsets_addr: int, base: int | None,
               stext_index: int | None, stext: int | None) -> np.ndarray:
    """Symbol addresses from kallsyms_offsets (s32 each), in the encoding that puts `_stext`
    where VMCOREINFO says it is (drgn does the same), else the likeliest one.

    - base-relative with absolute per-CPU symbols (x86-64 SMP up to 6.14): a non-negative
      offset is the address itself (per-CPU symbols link at 0), a negative one means
      kallsyms_relative_base - 1 - offset;
    - base-relative (6.15+, and other architectures): kallsyms_relative_base + (u32)offset;
    - place-relative (7.0+, no kallsyms_relative_base): the offset's own address + offset
      (kernel/kallsyms.c kallsyms_sym_address: offset_to_ptr).
    """
    offs = offsets.astype(np.int64)
    place = (np.uint64(offsets_addr) + np.arange(len(offs), dtype=np.uint64) * np.uint64(4)
             + offs.astype(np.uint64))  # wraps modulo 2**64 like pointer arithmetic
    candidates = [place]
    if base is not None:
        absolute_percpu = np.where(offs >= 0, offs.astype(np.uint64),
                                   np.uint64(base) + (-1 - offs).astype(np.uint64))
        relative = np.uint64(base) + offsets.astype(np.uint32).astype(np.uint64)
        likeliest = [absolute_percpu, relative] if (offs < 0).any() else [relative,
                                                                           absolute_percpu]
        candidates = likeliest + candidates
    if stext_index is not None and stext is not None:
        for addrs in candidates:
            if int(addrs[stext_index]) == stext:
                return addrs
    return candidates[0]
