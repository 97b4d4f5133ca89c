"""Dump file formats: kdump-compressed, makedumpfile flattened and ELF vmcores."""

from crashtui.dumpfile.base import DumpFile, DumpInfo, ElfNote, UtsName
from crashtui.dumpfile.open import open_dump

__all__ = ["DumpFile", "DumpInfo", "ElfNote", "UtsName", "open_dump"]
