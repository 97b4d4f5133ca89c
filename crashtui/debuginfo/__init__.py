"""Debug information from the vmlinux and modules: ELF, symbols, BTF, ORC (link-time addresses)."""

from crashtui.debuginfo.elf import ElfImage, Section
from crashtui.debuginfo.symbols import Symbol, SymbolTable
from crashtui.debuginfo.vmlinux import Vmlinux

__all__ = ["ElfImage", "Section", "Symbol", "SymbolTable", "Vmlinux"]
