"""The `modules` list: each loaded `struct module`, its memory regions, state and taint.

`struct module` (include/linux/module.h) sits on the list_head `modules` (kernel/module/main.c)
through `module.list`. Its memory is described by `core_layout`/`init_layout` (struct
module_layout, 4.5 to 6.3) or `mem[MOD_MEM_NUM_TYPES]` (struct module_memory, 6.4+).
Symbols, .ko debug info and address lookups on top of this list are crashtui.kernel.modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crashtui.errors import CrashtuiError
from crashtui.kernel.lists import list_for_each

if TYPE_CHECKING:
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
