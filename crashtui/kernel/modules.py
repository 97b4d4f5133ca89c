"""Loaded kernel modules: the `modules` list, their memory, symbols and optional .ko debug info.

`struct module` (include/linux/module.h) sits on the list_head `modules` (kernel/module/main.c)
through `module.list`. Its memory is described by `core_layout`/`init_layout` (struct
module_layout, 4.5 to 6.3) or `mem[MOD_MEM_NUM_TYPES]` (struct module_memory, 6.4+). Every
module keeps its own symbol table in memory (crashtui.kernel.kallsyms), so an address in a
module is named without any file; a .ko with DWARF loaded on top (`mod -s`) adds file:line.

Addresses in a module's init memory (its init function, running when the kernel crashed in
`insmod`) are named from the full in-memory table the kernel keeps until init completes, like
the kernel's own oops does (`test_module_init+0x5/0x1000 [test_module]`).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from crashtui.errors import CrashtuiError, DebugInfoError
from crashtui.kernel.kallsyms import ModuleKallsyms, ModuleSymbol, read_mod_kallsyms
from crashtui.kernel.lists import list_for_each

if TYPE_CHECKING:
    from crashtui.debuginfo.dwarf import FunctionInfo, SourceLine
    from crashtui.debuginfo.elf import ElfImage
    from crashtui.debuginfo.kmodule import KernelModuleFile
    from crashtui.debuginfo.kmodule import ModuleSymbol as KoSymbol
    from crashtui.kernel.program import Kernel

# enum module_state (include/linux/module.h)
MODULE_STATES = {0: "LIVE", 1: "COMING", 2: "GOING", 3: "UNFORMED"}
MODULE_STATE_UNFORMED = 3

# enum taint_flags bit -> letter (kernel/panic.c taint_flags[]); modules carry P F C O E K X T N
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"

MAX_MODULES = 65536
MAX_MODULE_SIZE = 1 << 30  # the whole module area is 1 GiB (MODULES_LEN)

# enum mod_mem_type (6.4+, include/linux/module.h); names used when BTF has no enum
_MOD_MEM_TYPES = ("MOD_TEXT", "MOD_DATA", "MOD_RODATA", "MOD_RO_AFTER_INIT",
                  "MOD_INIT_TEXT", "MOD_INIT_DATA", "MOD_INIT_RODATA")


class HasKernel(Protocol):
    """Anything holding a Kernel (the analysis Session)."""

    kernel: Kernel


@dataclass(frozen=True, slots=True)
class MemRegion:
    """One range of a module's memory."""

    kind: str  # "core"/"init" (module_layout) or "text", "data", ..., "init_text" (6.4+)
    base: int
    size: int
    text_size: int  # bytes of code at the start of the region
    init: bool

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.size

    def in_text(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.text_size


@dataclass(frozen=True)
class Module:
    """One loaded module as read from its struct module."""

    address: int  # of the struct module (crash's MODULE column)
    name: str
    state: int
    base: int  # crash's BASE: start of the core (text) memory
    size: int  # crash's SIZE: bytes of core memory
    regions: tuple[MemRegion, ...]
    taints: int  # module.taints bits (enum taint_flags)
    kallsyms: int  # address of the struct mod_kallsyms in use (mod->kallsyms)
    sect_attrs: int  # struct module_sect_attrs * (sysfs section addresses), 0 if none
    num_orcs: int = 0  # module.arch (x86 ORC): entries, and the runtime tables
    orc_unwind_ip: int = 0
    orc_unwind: int = 0
    name_terminated: bool = True  # a NUL within module.name[MODULE_NAME_LEN]

    @property
    def taint_flags(self) -> str:
        """The letters the kernel prints after the name in "Modules linked in:" (e.g. "OE")."""
        return "".join(c for i, c in enumerate(TAINT_LETTERS) if self.taints >> i & 1)

    @property
    def state_name(self) -> str:
        return MODULE_STATES.get(self.state, str(self.state))

    def region_of(self, addr: int) -> MemRegion | None:
        """The memory region holding `addr`, or None."""
        for r in self.regions:
            if r.contains(addr):
                return r
        return None

    def contains(self, addr: int) -> bool:
        return self.region_of(addr) is not None


@dataclass
class ModuleList:
    """The loaded modules sorted by base address (crash's `mod` order), and walk errors."""

    modules: list[Module]
    errors: list[str] = field(default_factory=list)


# -- reading struct module ---------------------------------------------------------------------

class _ModuleReader:
    """Reads struct module with BTF offsets resolved once."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        btf = kernel.btf
        off = kernel.offsetof
        self.o_list = off("module", "list")
        self.o_name = off("module", "name")
        name_type = btf.member_type("module", "name").resolved()
        self.name_len = name_type.length or 56
        self.o_state = off("module", "state")
        self.o_taints = off("module", "taints") if btf.has_member("module", "taints") else None
        self.o_kallsyms = (off("module", "kallsyms") if btf.has_member("module", "kallsyms")
                           else None)
        self.o_sect_attrs = (off("module", "sect_attrs")
                             if btf.has_member("module", "sect_attrs") else None)
        self.orc = None
        if btf.has_member("module", "arch.num_orcs"):
            self.orc = (off("module", "arch.num_orcs"), off("module", "arch.orc_unwind_ip"),
                        off("module", "arch.orc_unwind"))
        self.layout = "mem" if btf.has_member("module", "mem") else (
            "layout" if btf.has_member("module", "core_layout") else "old")
        if self.layout == "mem":
            mem_type = btf.member_type("module", "mem").resolved()
            self.mem_count = mem_type.length or len(_MOD_MEM_TYPES)
            self.mem_size = btf.sizeof("struct module_memory")
            self.o_mem = off("module", "mem")
            self.o_mem_base = off("module_memory", "base")
            self.o_mem_sz = off("module_memory", "size")
            try:
                enum = btf.enum("mod_mem_type")
                self.mem_names = {v: k for k, v in enum.items()}
            except CrashtuiError:
                self.mem_names = dict(enumerate(_MOD_MEM_TYPES))
        self.struct_size = btf.sizeof("struct module")

    def read(self, addr: int) -> Module:
        k = self.k
        raw = k.read(addr, self.struct_size)

        def u(off: int, size: int = 8) -> int:
            return int.from_bytes(raw[off:off + size], "little")

        field_ = raw[self.o_name:self.o_name + self.name_len]
        name = field_.split(b"\0", 1)[0]
        regions = self._regions(raw, u)
        core = [r for r in regions if not r.init]
        base = core[0].base if core else 0
        size = sum(r.size for r in core)
        orc = (u(self.orc[0], 4), u(self.orc[1]), u(self.orc[2])) if self.orc else (0, 0, 0)
        return Module(
            address=addr, name=name.decode("utf-8", "replace"), state=u(self.o_state, 4),
            base=base, size=size, regions=tuple(r for r in regions if r.size),
            taints=u(self.o_taints) if self.o_taints is not None else 0,
            kallsyms=u(self.o_kallsyms) if self.o_kallsyms is not None else 0,
            sect_attrs=u(self.o_sect_attrs) if self.o_sect_attrs is not None else 0,
            num_orcs=orc[0], orc_unwind_ip=orc[1], orc_unwind=orc[2],
            name_terminated=b"\0" in field_)

    def _regions(self, raw: bytes, u: Any) -> list[MemRegion]:
        off = self.k.offsetof
        if self.layout == "mem":
            out = []
            for i in range(self.mem_count):
                name = self.mem_names.get(i, f"MOD_MEM_{i}")
                at = self.o_mem + i * self.mem_size
                b, s = u(at + self.o_mem_base), u(at + self.o_mem_sz, 4)
                kind = name.removeprefix("MOD_").lower()
                text = s if kind.endswith("text") else 0
                out.append(MemRegion(kind, b, s, text, kind.startswith("init")))
            return out
        if self.layout == "layout":
            out = []
            for kind in ("core", "init"):
                lay = off("module", f"{kind}_layout")
                b = u(lay + off("module_layout", "base"))
                s = u(lay + off("module_layout", "size"), 4)
                t = u(lay + off("module_layout", "text_size"), 4)
                out.append(MemRegion(kind, b, s, t, kind == "init"))
            return out
        # before 4.5: module_core/core_size/core_text_size, module_init/init_size/...
        return [MemRegion(kind, u(off("module", f"module_{kind}")),
                          u(off("module", f"{kind}_size"), 4),
                          u(off("module", f"{kind}_text_size"), 4), kind == "init")
                for kind in ("core", "init")]


def read_modules(kernel: Kernel) -> ModuleList:
    """Every module on the `modules` list, sorted by base; a bad entry ends the walk."""
    errors: list[str] = []
    try:
        reader = _ModuleReader(kernel)
    except CrashtuiError as exc:
        return ModuleList([], [f"cannot read modules: {exc.message}"])
    head = kernel.symbol_or_none("modules")
    if head is None:
        return ModuleList([], ["no `modules` symbol: the kernel has no loadable modules"])
    mods: list[Module] = []
    try:
        for node in list_for_each(kernel, head, limit=MAX_MODULES):
            addr = node - reader.o_list
            try:
                mod = reader.read(addr)
            except CrashtuiError as exc:
                errors.append(f"module list: entry at {addr:#x} unreadable: {exc.message}")
                break
            problem = _implausible(mod)
            if problem:
                errors.append(f"module list: entry at {addr:#x} looks damaged ({problem})")
                break
            if mod.state == MODULE_STATE_UNFORMED:
                continue
            mods.append(mod)
    except CrashtuiError as exc:
        errors.append(f"module list: {exc.message}")
    mods.sort(key=lambda m: (m.base, m.address))
    return ModuleList(mods, errors)


def _implausible(mod: Module) -> str | None:
    """Why a decoded struct module cannot be real, or None.

    Any non-empty NUL-terminated name fits: the kernel does not restrict module names to
    printable bytes, and odd bytes in one (escape sequences, markup) are for the views to
    show safely, not a sign the entry is garbage. An empty name, or one filling
    MODULE_NAME_LEN with no NUL, is."""
    if not mod.name or not mod.name_terminated:
        return "empty name" if not mod.name else "name not NUL-terminated"
    if mod.state not in MODULE_STATES:
        return f"state {mod.state}"
    if mod.size > MAX_MODULE_SIZE or any(r.size > MAX_MODULE_SIZE for r in mod.regions):
        return f"size {mod.size}"
    return None


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
        return ModuleSourceLine(str(line.file), int(line.line), int(getattr(line, "column", 0)),
                                getattr(line, "comp_dir", None), mod.name, where[0], where[1])

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
