"""Open a dump file, recognising its format by its first bytes."""

from __future__ import annotations

import os
from pathlib import Path

from crashtui.dumpfile.base import DumpFile, MmapSource
from crashtui.dumpfile.wholefile import Compression, compression_of
from crashtui.errors import DumpFormatError

ELF_MAGIC = b"\x7fELF"
FLATTENED_SIGNATURE = b"makedumpfile"


def open_dump(path: str | os.PathLike[str]) -> DumpFile:
    """Open a kdump-compressed, flattened or ELF dump, also one compressed as a whole file
    (xz, gzip, zstd, bzip2: read from a decompressed copy in the cache); DumpFormatError if
    it is none of them."""
    p = Path(path)
    try:
        return _open_plain(p)
    except _Compressed as exc:
        from crashtui.dumpfile.wholefile import decompressed_copy

        copy = decompressed_copy(p, exc.compression)
    try:
        dump = _open_plain(copy)
    except (DumpFormatError, _Compressed) as exc:
        copy.unlink(missing_ok=True)  # a copy that does not open is not kept
        what = exc.message if isinstance(exc, DumpFormatError) else "compressed twice"
        raise DumpFormatError(f"decompressed into {copy} (now removed), but {what}",
                              p) from None
    dump.path = p  # messages name the file the user gave
    return dump


class _Compressed(Exception):
    """The file is compressed as a whole (raised by _open_plain, handled by open_dump)."""

    def __init__(self, compression: Compression) -> None:
        super().__init__(compression.name)
        self.compression = compression


def _open_plain(p: Path) -> DumpFile:
    from crashtui.dumpfile.kdump import SIGNATURES, KdumpFile

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
        whole = compression_of(head)
        if whole is not None:
            raise _Compressed(whole)
        raise DumpFormatError(
            f"not a kdump-compressed, flattened or ELF dump (starts with {head[:8]!r})", p)
    except BaseException:
        src.close()
        raise
