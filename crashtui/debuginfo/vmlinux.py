"""A kernel image (vmlinux) with lazily loaded symbols, BTF, ORC and line tables."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crashtui.debuginfo.elf import EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC, ET_REL, ElfImage
from crashtui.debuginfo.symbols import SymbolTable
from crashtui.errors import DebugInfoError

if TYPE_CHECKING:
    from crashtui.debuginfo.btf import Btf
    from crashtui.debuginfo.orc import OrcTable

_BANNER_PREFIX = b"Linux version "


class Vmlinux:
    """The vmlinux ELF: cheap to open (mmap + headers); everything else on first use."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.image = ElfImage(self.path)
        if self.image.machine not in (EM_X86_64, EM_AARCH64):
            name = self.image.machine_name
            self.image.close()
            raise DebugInfoError(f"is an ELF for {name}, crashtui supports x86-64 and arm64",
                                 self.path)
        if self.image.e_type == ET_REL:
            self.image.close()
            raise DebugInfoError("is a relocatable object (a kernel module?), not a vmlinux",
                                 self.path)
        if self.image.e_type not in (ET_EXEC, ET_DYN):
            self.image.close()
            raise DebugInfoError(f"is not a kernel image (ELF type {self.image.e_type})",
                                 self.path)

    @property
    def build_id(self) -> str | None:
        """GNU build-id (hex) from the .notes section, or None."""
        return self.image.build_id

    @cached_property
    def symbols(self) -> SymbolTable:
        """The .symtab symbols (DebugInfoError if the vmlinux is stripped)."""
        return SymbolTable.from_elf(self.image)

    @cached_property
    def btf(self) -> Btf | None:
        """The .BTF type information, or None if the kernel was built without it."""
        from crashtui.debuginfo.btf import Btf

        if ".BTF" not in self.image.sections:
            return None
        return Btf.from_elf(self.image)

    @cached_property
    def orc(self) -> OrcTable | None:
        """The ORC unwind tables, or None if the kernel has none."""
        from crashtui.debuginfo.orc import OrcTable

        if ".orc_unwind_ip" not in self.image.sections:
            return None
        return OrcTable.from_elf(self.image)

    @cached_property
    def lines(self) -> Any:
        """DWARF line tables (crashtui.debuginfo.dwarf.DwarfLines), None if unavailable."""
        try:
            from crashtui.debuginfo.dwarf import DwarfLines  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return None
        return DwarfLines(self.image)

    @cached_property
    def banner(self) -> str | None:
        """The linux_banner string ("Linux version 6.1.0-... (...) #1 SMP ..."), or None."""
        raw: bytes | None = None
        sym = self.symbols.lookup("linux_banner") if ".symtab" in self.image.sections else None
        if sym is not None:
            try:
                raw = self.read_at(sym.address, sym.size or 512)
            except DebugInfoError:
                raw = None
        if raw is None or not raw.startswith(_BANNER_PREFIX):
            raw = self._find_banner()
        if raw is None:
            return None
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace").rstrip("\n")

    def _find_banner(self) -> bytes | None:
        """Search .rodata for the banner (symbol missing or stripped)."""
        if ".rodata" not in self.image.sections:
            return None
        data = bytes(self.image.section_data(".rodata"))
        pos = data.find(_BANNER_PREFIX)
        while pos >= 0:
            chunk = data[pos:pos + 512]
            if b"(" in chunk.split(b"\0", 1)[0]:
                return chunk
            pos = data.find(_BANNER_PREFIX, pos + 1)
        return None

    def check_is_kernel(self) -> None:
        """DebugInfoError unless this ELF is a kernel image: its banner (linux_banner, or
        "Linux version ... (" in .rodata), or at least a linux_banner symbol (a separate debug
        file whose .rodata holds no bytes). Any other executable (/bin/ls) is refused here, by
        name, instead of being called "the vmlinux of kernel None"."""
        if self.banner is not None:
            return
        try:
            has_symbol = (".symtab" in self.image.sections
                          and self.symbols.lookup("linux_banner") is not None)
        except DebugInfoError:
            has_symbol = False
        if not has_symbol:
            raise DebugInfoError("is not a kernel image (no linux_banner symbol)", self.path)

    @cached_property
    def release(self) -> str | None:
        """The kernel release (uname -r) from linux_banner, e.g. "6.1.0-56-cloud-amd64"."""
        banner = self.banner
        if banner is None:
            return None
        words = banner[len("Linux version "):].split()
        return words[0] if words else None

    def read_at(self, vaddr: int, size: int) -> bytes:
        """Static bytes at a link-time address (NOBITS sections read as zeros)."""
        return self.image.read_at(vaddr, size)

    def close(self) -> None:
        """Unmap the file."""
        self.image.close()

    def __enter__(self) -> Vmlinux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vmlinux({str(self.path)!r}, build_id={self.build_id})"
