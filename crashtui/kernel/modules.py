"""Loaded kernel modules: their symbols and optional .ko debug info, over the `modules` list
(crashtui.kernel.modlist). Every module keeps its own symbol table in memory
(crashtui.kernel.kallsyms), so an address in a module is named without any file; a .ko with
DWARF loaded on top (`mod -s`) adds file:line.

Addresses in a module's init memory (its init function, running when the kernel crashed in
`insmod`) are named from the full in-memory table the kernel keeps until init completes, like
the kernel's own oops does (`test_module_init+0x5/0x1000 [test_module]`).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from crashtui.errors import CrashtuiError, DebugInfoError
from crashtui.kernel.kallsyms import ModuleKallsyms, ModuleSymbol, read_mod_kallsyms
from crashtui.kernel.modlist import Module, ModuleList, read_modules

if TYPE_CHECKING:
    from crashtui.debuginfo.dwarf import FunctionInfo, SourceLine
    from crashtui.debuginfo.elf import ElfImage
    from crashtui.debuginfo.kmodule import KernelModuleFile
    from crashtui.debuginfo.kmodule import ModuleSymbol as KoSymbol
    from crashtui.kernel.program import Kernel

class HasKernel(Protocol):
    """Anything holding a Kernel (the analysis Session)."""

    kernel: Kernel


# -- symbols -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ModuleSymbolHit:
    """A module address named: symbol, offset, the size the kernel prints after '/', module."""

    name: str
    offset: int
    size: int
    module: str
    kind: str = "t"  # nm-style type letter ('t' text, 'd' data, ...)
    address: int = 0  # start of the symbol
    extent: int = 0  # its own length: st_size, else up to the next symbol (what dis lists)


class ModuleSymbols:
    """A module's symbols sorted by address; aliases resolve like the kernel's
    find_kallsyms_symbol() (kernel/module/kallsyms.c): the earliest symtab entry wins."""

    def __init__(self, module: Module, entries: list[tuple[int, int, str, str, int]]) -> None:
        """entries: (address, symtab order, name, type letter, st_size or 0), restricted to
        module memory."""
        self.module = module
        entries = sorted(e for e in entries if module.contains(e[0]))
        self.addresses = np.array([e[0] for e in entries], dtype=np.uint64)
        self.names = [e[2] for e in entries]
        self.kinds = [e[3] for e in entries]
        self.sizes = [e[4] for e in entries]

    @classmethod
    def from_kallsyms(cls, module: Module, ks: ModuleKallsyms) -> ModuleSymbols:
        return cls(module, [(s.address, s.index, s.name, s.kind, s.size) for s in ks.named()])

    @classmethod
    def from_table(cls, module: Module, table: Iterable[KoSymbol]) -> ModuleSymbols:
        """From a .ko's symbols at runtime addresses, in address order (equal addresses in
        symtab order, as KernelModuleFile.symbols_for() returns them)."""
        entries = []
        for i, sym in enumerate(table):
            if not sym.name or sym.name.startswith("$"):
                continue
            letter = {"func": "t", "object": "d"}.get(sym.kind, "?")
            if sym.binding != "local":
                letter = letter.upper()
            entries.append((sym.address, i, sym.name, letter, sym.size))
        return cls(module, entries)

    def __len__(self) -> int:
        return len(self.names)

    def lookup(self, name: str) -> int | None:
        """Runtime address of `name`, or None."""
        for i, n in enumerate(self.names):
            if n == name:
                return int(self.addresses[i])
        return None

    def nearest(self, addr: int) -> ModuleSymbolHit | None:
        """The symbol at or below `addr` in the same memory region, kernel-style."""
        region = self.module.region_of(addr)
        if region is None or not len(self.names):
            return None
        hi = int(np.searchsorted(self.addresses, np.uint64(addr), side="right"))
        if hi == 0:
            return None
        start = int(self.addresses[hi - 1])
        if start < region.base:
            return None
        first = int(np.searchsorted(self.addresses, np.uint64(start), side="left"))
        nxt = int(self.addresses[hi]) if hi < len(self.names) else 0
        end = region.base + (region.text_size if region.in_text(addr) else region.size)
        if nxt and start < nxt < end:
            end = nxt
        # The kernel's size (after '/' in an oops) runs to the next symbol or the end of the
        # region's text; the symbol's own extent is its st_size when the entry has one.
        size = max(end - start, 0)
        own = max(self.sizes[first:hi], default=0)
        extent = min(own, size) if own else size
        return ModuleSymbolHit(self.names[first], addr - start, size,
                               self.module.name, self.kinds[first], start, extent)


# -- .ko debug info ----------------------------------------------------------------------------

@dataclass
class ModuleDebugInfo:
    """A .ko with DWARF, placed at the runtime addresses of one loaded module."""

    module: str
    path: Path
    ko: KernelModuleFile
    section_bases: dict[str, int]  # .ko section name -> runtime address
    section_sizes: dict[str, int]
    symbols: ModuleSymbols

    def section_at(self, addr: int) -> tuple[str, int] | None:
        """(.ko section name, offset into it) for a runtime address."""
        best: tuple[str, int] | None = None
        for name, base in self.section_bases.items():
            size = self.section_sizes.get(name, 0)
            if base <= addr < base + size and (best is None or addr - base < best[1]):
                best = (name, addr - base)
        return best

    def source_line(self, addr: int) -> SourceLine | None:
        """The DWARF line (file, line, column, comp_dir) of a runtime address, or None."""
        hit = self.section_at(addr)
        if hit is None:
            return None
        try:
            return self.ko.source_line(hit[0], hit[1])
        except CrashtuiError:
            return None

    def function_at(self, addr: int) -> FunctionInfo | None:
        """The DWARF function (with inlines) containing a runtime address, or None."""
        hit = self.section_at(addr)
        if hit is None:
            return None
        try:
            return self.ko.function_at(hit[0], hit[1])
        except CrashtuiError:
            return None


@dataclass(frozen=True, slots=True)
class ModuleSourceLine:
    """Where a module address is in the source, from its .ko's DWARF."""

    file: str
    line: int
    column: int = 0
    comp_dir: str | None = None
    module: str = ""
    section: str = ""
    offset: int = 0


def _open_ko(path: Path) -> KernelModuleFile:
    from crashtui.debuginfo.kmodule import KernelModuleFile

    return KernelModuleFile(path)


def _normal(name: str) -> str:
    """Module names as the kernel spells them ('-' becomes '_', KBUILD_MODNAME)."""
    return name.replace("-", "_")


# -- the per-kernel table ----------------------------------------------------------------------

class ModuleTable:
    """The modules of one dump, their symbols (lazy) and any .ko debug info loaded."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._list: ModuleList | None = None
        self._symbols: dict[int, ModuleSymbols] = {}
        self._kallsyms: dict[int, ModuleKallsyms | None] = {}
        self.debuginfo: dict[str, ModuleDebugInfo] = {}
        self.symbol_errors: dict[str, str] = {}

    @property
    def listing(self) -> ModuleList:
        if self._list is None:
            self._list = read_modules(self.kernel)
        return self._list

    @property
    def modules(self) -> list[Module]:
        return self.listing.modules

    @property
    def errors(self) -> list[str]:
        return self.listing.errors

    def find(self, name: str) -> Module | None:
        """The loaded module called `name` ('-' and '_' are the same)."""
        want = _normal(name)
        return next((m for m in self.modules if _normal(m.name) == want), None)

    def module_at(self, addr: int) -> Module | None:
        """The module whose memory holds `addr` (core or init), or None."""
        return next((m for m in self.modules if m.contains(addr)), None)

    def kallsyms(self, module: Module) -> ModuleKallsyms | None:
        """The module's in-memory symbol table (None if it cannot be read)."""
        if module.address not in self._kallsyms:
            ks: ModuleKallsyms | None = None
            if module.kallsyms:
                try:
                    ks = read_mod_kallsyms(self.kernel, module.kallsyms)
                except CrashtuiError as exc:
                    self.symbol_errors[module.name] = exc.message
            self._kallsyms[module.address] = ks
        return self._kallsyms[module.address]

    def symbols(self, module: Module) -> ModuleSymbols:
        """The module's symbols from memory (empty if its kallsyms are unreadable)."""
        if module.address not in self._symbols:
            ks = self.kallsyms(module)
            self._symbols[module.address] = (ModuleSymbols.from_kallsyms(module, ks) if ks
                                             else ModuleSymbols(module, []))
        return self._symbols[module.address]

    def symbolize(self, addr: int) -> ModuleSymbolHit | None:
        """Name a module address: in-memory kallsyms first (what the kernel's oops prints),
        then a loaded .ko's symbol table."""
        mod = self.module_at(addr)
        if mod is None:
            return None
        hit = self.symbols(mod).nearest(addr)
        if hit is None:
            di = self.debuginfo.get(mod.name)
            if di is not None:
                hit = di.symbols.nearest(addr)
        return hit

    def source_line(self, addr: int) -> ModuleSourceLine | None:
        """file:line of a module address, if its .ko was loaded."""
        mod = self.module_at(addr)
        if mod is None:
            return None
        di = self.debuginfo.get(mod.name)
        if di is None:
            return None
        line = di.source_line(addr)
        where = di.section_at(addr)
        if line is None or where is None:
            return None
        return ModuleSourceLine(line.file, line.line, line.column, line.comp_dir, mod.name,
                                where[0], where[1])

    # -- loading .ko files ---------------------------------------------------------------------

    def load_debuginfo(self, name: str, path: str | Path) -> ModuleDebugInfo:
        """Load `path` as the debug info of the loaded module `name` (crash's `mod -s`).

        Refuses (DebugInfoError) a .ko of another module, of another kernel release
        (vermagic), or of another build than the one in memory (build-id, symbol addresses).
        """
        path = Path(path)
        mod = self.find(name)
        if mod is None:
            raise DebugInfoError(f"no module {name} is loaded in the dump", path)
        if not path.is_file():
            raise DebugInfoError("module object not found" if not path.exists()
                                 else "module object is not a regular file", path)
        ko = _open_ko(path)
        try:
            if _normal(ko.module_name) != _normal(mod.name):
                raise DebugInfoError(f"is module {ko.module_name}, not {mod.name}", path)
            self._check_vermagic(ko, path)
            if not ko.has_dwarf:
                raise DebugInfoError("has no debug info (no .debug_info/.debug_line: built "
                                     "without -g, or stripped)", path)
            bases = self._section_bases(mod, ko.image)
            self._check_build(mod, ko.image, bases, path)
            sizes = {s.name: s.size for s in ko.image.section_list if s.name in bases}
            di = ModuleDebugInfo(mod.name, path, ko, bases, sizes,
                                 ModuleSymbols.from_table(mod, ko.symbols_for(bases)))
        except BaseException:
            ko.close()
            raise
        old = self.debuginfo.pop(mod.name, None)
        if old is not None:
            old.ko.close()
        self.debuginfo[mod.name] = di
        return di

    def unload_debuginfo(self, name: str) -> bool:
        """Forget a module's .ko (crash's `mod -d`); True if one was loaded."""
        mod = self.find(name)
        di = self.debuginfo.pop(mod.name, None) if mod else None
        if di is not None:
            di.ko.close()
        return di is not None

    def load_dir(self, directory: str | Path) -> tuple[list[str], list[str]]:
        """Load every .ko under `directory` whose module name is loaded in the dump.

        Returns (loaded module names, one-line problems with the files that matched a loaded
        module but could not be used). Files of modules not in the dump are skipped.
        """
        root = Path(directory)
        if not root.is_dir():
            raise DebugInfoError("module directory not found" if not root.exists()
                                 else "not a directory", root)
        loaded: list[str] = []
        problems: list[str] = []
        found = sorted(Path(d) / f for d, _, files in os.walk(root)  # unreadable dirs skipped
                       for f in files if f.endswith(".ko"))
        for path in found:
            if not path.is_file():
                continue
            guess = _normal(path.stem)
            try:
                with _open_ko(path) as ko:
                    name = _normal(ko.module_name)
            except CrashtuiError as exc:
                if self.find(guess) is not None:
                    problems.append(str(exc))
                continue
            mod = self.find(name)
            if mod is None or mod.name in loaded:
                continue
            try:
                self.load_debuginfo(mod.name, path)
            except CrashtuiError as exc:
                problems.append(str(exc))
                continue
            loaded.append(mod.name)
        return loaded, problems

    def _check_vermagic(self, ko: KernelModuleFile, path: Path) -> None:
        release = ko.release
        if release is None:
            return
        if release != self.kernel.release:
            raise DebugInfoError(f"was built for kernel {release}, but the dump is of kernel "
                                 f"{self.kernel.release}", path)

    def _section_bases(self, mod: Module, image: ElfImage) -> dict[str, int]:
        """Runtime address of each allocated .ko section.

        From the module's sysfs section attributes (mod->sect_attrs, kernel/module/sysfs.c)
        when present, else from the section symbols of the full in-memory symtab, else by
        matching named symbols of the .ko to the in-memory ones (same name and section).
        """
        bases = self._sect_attrs(mod)
        ks = self.kallsyms(mod)
        secs = image.section_list
        if ks is not None:
            for shndx, addr in ks.section_addresses().items():
                if shndx < len(secs) and secs[shndx].allocated and mod.contains(addr):
                    bases.setdefault(secs[shndx].name, addr)
            values = _ko_symbol_values(image)
            for s in ks.named():
                key = (s.name, s.shndx)
                if (key in values and s.shndx < len(secs) and secs[s.shndx].allocated
                        and mod.contains(s.address)):
                    bases.setdefault(secs[s.shndx].name, s.address - values[key])
        return {n: a for n, a in bases.items() if n in image.sections}

    def _sect_attrs(self, mod: Module) -> dict[str, int]:
        """Section name -> runtime address from struct module_sect_attrs (empty if unknown)."""
        if not mod.sect_attrs:
            return {}
        k = self.kernel
        try:
            off = k.offsetof
            n = k.read_u32(mod.sect_attrs + off("module_sect_attrs", "nsections"))
            if n > 1024:
                return {}
            first = mod.sect_attrs + off("module_sect_attrs", "attrs")
            size = k.sizeof("struct module_sect_attr")
            o_name = off("module_sect_attr", "battr.attr.name")
            o_addr = off("module_sect_attr", "address")
            out = {}
            for i in range(n):
                at = first + i * size
                out[k.read_cstr(k.read_u64(at + o_name), 128)] = k.read_u64(at + o_addr)
            return out
        except CrashtuiError:
            return {}

    def _check_build(self, mod: Module, image: ElfImage, bases: dict[str, int],
                     path: Path) -> None:
        """Refuse a .ko that is not the build in memory (build-id note, symbol addresses)."""
        ko_id = image.build_id
        note = bases.get(".note.gnu.build-id")
        if ko_id and note:
            try:
                raw = self.kernel.read(note, 16 + len(ko_id) // 2)
                mem_id = raw[16:].hex()
            except CrashtuiError:
                mem_id = None
            if mem_id and mem_id != ko_id:
                raise DebugInfoError(f"is not the build of {mod.name} loaded in the dump "
                                     f"(build-id {ko_id}, loaded {mem_id})", path)
        ks = self.kallsyms(mod)
        if ks is None:
            return
        values = _ko_symbol_values(image)
        secs = image.section_list
        bad = [s.name for s in ks.named()
               if (s.name, s.shndx) in values and s.shndx < len(secs)
               and secs[s.shndx].name in bases
               and bases[secs[s.shndx].name] + values[(s.name, s.shndx)] != s.address]
        if bad:
            raise DebugInfoError(f"does not match the {mod.name} loaded in the dump "
                                 f"({bad[0]} is elsewhere in memory)", path)


def _ko_symbol_values(image: ElfImage) -> dict[tuple[str, int], int]:
    """(name, section index) -> st_value of the defined named symbols of a .ko."""
    from crashtui.kernel.kallsyms import ELF64_SYM

    sec = image.sections.get(".symtab")
    if sec is None or not 0 < sec.link < len(image.section_list) \
            or sec.size % ELF64_SYM.itemsize:
        return {}  # a damaged table: ModuleTable's .ko reader says what is wrong with it
    strtab = bytes(image.section_data(image.section_list[sec.link]))
    syms = np.frombuffer(image.section_data(sec), dtype=ELF64_SYM)
    out: dict[tuple[str, int], int] = {}
    for st_name, _info, _other, shndx, value, _size in syms.tolist():
        if not st_name or shndx == 0 or shndx >= 0xFF00:
            continue
        end = strtab.find(b"\0", st_name)
        out.setdefault((strtab[st_name:end].decode("utf-8", "replace"), shndx), value)
    return out


# -- one table per Kernel, reachable from a Kernel or a Session ---------------------------------

_TABLES: weakref.WeakKeyDictionary[Kernel, ModuleTable] = weakref.WeakKeyDictionary()


def module_table(source: Kernel | HasKernel) -> ModuleTable:
    """The ModuleTable of a Kernel (or of the Session holding it), created on first use."""
    kernel = cast("Kernel", getattr(source, "kernel", source))
    table = _TABLES.get(kernel)
    if table is None:
        table = _TABLES[kernel] = ModuleTable(kernel)
    return table


def module_symbolize(source: Kernel | HasKernel, addr: int) -> tuple[str, int, str] | None:
    """(function, offset, module name) for an address in a module's memory, else None."""
    try:
        hit = module_table(source).symbolize(addr)
    except CrashtuiError:
        return None
    return None if hit is None else (hit.name, hit.offset, hit.module)


def module_symbol(source: Kernel | HasKernel, addr: int) -> ModuleSymbolHit | None:
    """The full ModuleSymbolHit (with the kernel-style size and type letter), else None."""
    try:
        return module_table(source).symbolize(addr)
    except CrashtuiError:
        return None


def module_source_line(source: Kernel | HasKernel, addr: int) -> ModuleSourceLine | None:
    """file:line of a module address from its loaded .ko (`mod -s`/--modules), else None.

    The result has SourceLocation's fields (file, line, column, comp_dir) plus the module,
    .ko section and offset; Session.module_source_line() returns a SourceLocation.
    """
    try:
        return module_table(source).source_line(addr)
    except CrashtuiError:
        return None


module_line = module_source_line  # the name crashtui.analysis.backtraces.module_hooks looks for


def kallsyms_symbol(kernel: Kernel, mod: Module, name: str) -> ModuleSymbol | None:
    """A named entry of a module's in-memory symbol table."""
    ks = module_table(kernel).kallsyms(mod)
    if ks is None:
        return None
    return next((s for s in ks.named() if s.name == name), None)
