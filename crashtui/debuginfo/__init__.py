"""Debug information from the vmlinux and modules: ELF, symbols, BTF, ORC (link-time addresses)."""

from crashtui.debuginfo.btf import Btf, Member, StructType, TypeNotFoundError, TypeRef
from crashtui.debuginfo.elf import ElfImage, Section
from crashtui.debuginfo.orc import OrcEntry, OrcTable, OrcType
from crashtui.debuginfo.symbols import Symbol, SymbolTable
from crashtui.debuginfo.vmlinux import Vmlinux

__all__ = ["Btf", "ElfImage", "Member", "OrcEntry", "OrcTable", "OrcType", "Section",
           "StructType", "Symbol", "SymbolTable", "TypeNotFoundError", "TypeRef", "Vmlinux"]
