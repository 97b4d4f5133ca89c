"""Open a dump file, recognising its format by its first bytes."""

from __future__ import annotations

import os
from pathlib import Path

from crashtui.dumpfile.base import DumpFile, MmapSource
from crashtui.errors import DumpFormatError

ELF_MAGIC = b"\x7fELF"
FLATTENED_SIGNATURE = b"makedumpfile"


def open_dump(path: str | os.PathLike[str]) -> DumpFile:
    """Open a kdump-compressed, flattened or ELF dump; DumpFormatError if it is none of them."""
    from crashtui.dumpfile.kdump import SIGNATURES, KdumpFile

    p = Path(path)
    if p.is_dir():
        raise DumpFormatError("is a directory, not a dump file", p)
    if p.exists() and not p.is_file():
        raise DumpFormatError("not a regular file", p)
    try:
        src = MmapSource(p)
    except FileNotFoundError:
        raise DumpFormatError("no such file", p) from None
    except OSError as exc:
        raise DumpFormatError(f"cannot read: {exc.strerror or exc}", p) from None
    try:
        if src.size == 0:
            raise DumpFormatError("empty file", p)
        head = src.read(0, 16)
        if head[:8] in SIGNATURES:
            return KdumpFile(p, src)
        if head.startswith(FLATTENED_SIGNATURE):
            from crashtui.dumpfile.flattened import FlattenedSource

            return KdumpFile(p, FlattenedSource(p, src), "flattened")
        if head.startswith(ELF_MAGIC):
            from crashtui.dumpfile.elfcore import ElfDumpFile

            return ElfDumpFile(p, src)
        raise DumpFormatError(
            f"not a kdump-compressed, flattened or ELF dump (starts with {head[:8]!r})", p)
    except BaseException:
        src.close()
        raise
