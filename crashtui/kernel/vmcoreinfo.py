"""VMCOREINFO: the key=value facts the kernel publishes for dump tools (kernel/vmcore_info.c)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crashtui.errors import KernelReadError

_KEYED = re.compile(r"^(SYMBOL|SIZE|OFFSET|LENGTH|NUMBER)\((.+)\)$")
_U64_END = 1 << 64
_FIELD_END = 1 << 32  # sizes, offsets and lengths of kernel structs and arrays
# Values a kernel can publish, by key (both ends included); a value outside is not used but
# kept in `rejected`, so a damaged dump cannot make a reader shift, divide or allocate by it.
PLAUSIBLE: dict[str, tuple[int, int]] = {
    "NUMBER(SECTION_SIZE_BITS)": (16, 31),
    "NUMBER(MAX_PHYSMEM_BITS)": (32, 52),
    "NUMBER(phys_base)": (-(1 << 47), (1 << 52) - 1),  # negative with KASLR
    "NUMBER(pgtable_l5_enabled)": (0, 1),
    "NUMBER(KERNEL_IMAGE_SIZE)": (1 << 20, 1 << 32),
    "SIZE(mem_section)": (8, 256),
    "LENGTH(mem_section)": (1, 1 << 20),
    "SIZE(page)": (32, 256),
    "LENGTH(node_data)": (1, 1 << 16),
    "LENGTH(zone.free_area)": (1, 64),
    "LENGTH(free_area.free_list)": (1, 64),
    "SIZE(pglist_data)": (1, 1 << 24),
    "SIZE(zone)": (1, 1 << 20),
}


@dataclass
class VmcoreInfo:
    """Parsed VMCOREINFO; unknown keys stay available in `raw`."""

    raw: dict[str, str] = field(default_factory=dict)
    symbols: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # key -> implausible value

    @classmethod
    def parse(cls, text: str) -> VmcoreInfo:
        """Parse the note text; malformed lines and out-of-range numbers are skipped."""
        info = cls()
        targets = {"SIZE": info.sizes, "OFFSET": info.offsets, "LENGTH": info.lengths,
                   "NUMBER": info.numbers}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep or not key:
                continue
            value = value.strip()
            info.raw[key] = value
            m = _KEYED.match(key)
            if not m:
                continue
            kind, name = m.groups()
            try:
                if kind == "SYMBOL":
                    number = int(value, 16)
                    if 0 <= number < _U64_END:
                        info.symbols[name] = number
                    continue
                number = int(value, 0) if value.startswith("0x") else int(value)
            except ValueError:
                continue
            low, high = PLAUSIBLE.get(key, (-_U64_END, _U64_END))
            if not low <= number <= high:
                info.rejected[key] = number
                continue
            if kind == "NUMBER" and -_U64_END < number < _U64_END:
                info.numbers[name] = number
            elif kind != "NUMBER" and 0 <= number < _FIELD_END:
                targets[kind][name] = number
        return info

    @property
    def osrelease(self) -> str | None:
        return self.raw.get("OSRELEASE")

    @property
    def build_id(self) -> str | None:
        return self.raw.get("BUILD-ID")

    @property
    def page_size(self) -> int:
        """PAGESIZE when it is a power of two from 4 KiB to 1 MiB, else 4096."""
        try:
            size = int(self.raw.get("PAGESIZE", "4096"))
        except ValueError:
            return 4096
        return size if 4096 <= size <= 1 << 20 and size & (size - 1) == 0 else 4096

    @property
    def kerneloffset(self) -> int | None:
        """The KASLR slide (runtime minus link-time address of kernel text)."""
        try:
            offset = int(self.raw["KERNELOFFSET"], 16)
        except (KeyError, ValueError):
            return None
        return offset if 0 <= offset < 1 << 31 else None  # within the 1 GiB+ image area

    @property
    def phys_base(self) -> int | None:
        return self.numbers.get("phys_base")

    def number(self, name: str, default: int) -> int:
        """NUMBER(name), or `default` when absent; KernelReadError when it was implausible."""
        key = f"NUMBER({name})"
        if key in self.rejected:
            raise KernelReadError(f"VMCOREINFO {key}={self.rejected[key]} is implausible "
                                  "(damaged dump?)")
        return self.numbers.get(name, default)

    @property
    def crashtime(self) -> int | None:
        try:
            return int(self.raw["CRASHTIME"])
        except (KeyError, ValueError):
            return None

    @property
    def pgtable_l5(self) -> bool:
        return bool(self.numbers.get("pgtable_l5_enabled", 0))
