"""Dumps compressed as a whole file (xz, gzip, zstd, bzip2), recognised by their magic bytes.

A vmcore is read at random offsets, which a compressed stream does not allow: the dump is
decompressed once into a cache file (`$CRASHTUI_CACHE/dumps`, else `$XDG_CACHE_HOME/crashtui/dumps`
or `~/.cache/crashtui/dumps`) keyed by the compressed file's path, size and mtime, and that copy
is opened. Bounded: the free space is checked before (when the size is known: xz's index,
zstd's frame header) and while writing, at most MAX_KEPT copies are kept (least recently used
removed first); a damaged stream or a result that is no dump leaves nothing behind. With CRASHTUI_CACHE=off the user is told the command that decompresses it.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import lzma
import os
import shlex
import shutil
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from crashtui.errors import DumpFormatError
from crashtui.fileio import atomic_write

_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
CHUNK = 1 << 20
SPACE_CHECK_EVERY = 32 << 20
STALE_PART = 3600  # seconds without a write after which a partial copy is a leftover
MAX_KEPT = 3  # decompressed dumps kept in the cache (the least recently used go first)
FREE_MARGIN = 256 << 20  # left free on the cache's file system, whatever the dump's size
DUMP_MAGICS = (b"\x7fELF", b"KDUMP   ", b"makedumpfile", b"DISKDUMP")


@dataclass(frozen=True)
class Compression:
    """One whole-file compression: its name, magic, and the shell tool that undoes it."""

    name: str
    magic: bytes
    tool: str
    suffix: str


COMPRESSIONS = (
    Compression("xz", b"\xfd7zXZ\x00", "xz", ".xz"),
    Compression("gzip", b"\x1f\x8b", "gzip", ".gz"),
    Compression("zstd", b"\x28\xb5\x2f\xfd", "zstd", ".zst"),
    Compression("bzip2", b"BZh", "bzip2", ".bz2"),
)


def compression_of(head: bytes) -> Compression | None:
    """The whole-file compression whose magic `head` starts with, if any."""
    for c in COMPRESSIONS:
        if head.startswith(c.magic) and (c.name != "bzip2" or head[3:4] in b"123456789"):
            return c
    return None


def decompress_command(path: Path, c: Compression) -> str:
    """The shell command that writes the decompressed dump next to the compressed one."""
    out = path.name[:-len(c.suffix)] if path.name.endswith(c.suffix) else path.name + ".vmcore"
    out_path = path.with_name(out) if out else path.with_name("vmcore")
    return f"{c.tool} -dc {shlex.quote(str(path))} > {shlex.quote(str(out_path))}"


def cache_dir() -> Path | None:
    """Where decompressed dumps are kept (None: caching disabled with CRASHTUI_CACHE=off)."""
    env = os.environ.get("CRASHTUI_CACHE")
    if env:
        return None if env.lower() in ("off", "0", "none", "no") else Path(env) / "dumps"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "crashtui" / "dumps"


def xz_uncompressed_size(f: BinaryIO, size: int) -> int | None:
    """The uncompressed size an .xz file's index records (one stream), else None."""
    try:
        f.seek(size - 12)
        footer = f.read(12)
        if len(footer) != 12 or footer[10:] != b"YZ":
            return None
        index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
        if index_size > min(size, 64 << 20):
            return None
        f.seek(size - 12 - index_size)
        index = f.read(index_size)
    except OSError:
        return None
    if not index or index[0] != 0:
        return None
    pos = 1

    def vli() -> int:
        nonlocal pos
        value = shift = 0
        while pos < len(index) and shift < 63:
            b = index[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ValueError("bad xz index")

    try:
        total = 0
        for _ in range(min(vli(), index_size)):
            vli()  # unpadded size
            total += vli()
    except ValueError:
        return None
    return total


def _known_size(path: Path, c: Compression, size: int) -> int | None:
    with path.open("rb") as f:
        if c.name == "xz":
            return xz_uncompressed_size(f, size)
        if c.name == "zstd":
            import zstandard

            n = zstandard.frame_content_size(f.read(18))
            return n if n >= 0 else None
    return None


def _reader(c: Compression, raw: BinaryIO) -> IO[bytes]:
    reader: Any
    if c.name == "xz":
        reader = lzma.open(raw, "rb")
    elif c.name == "gzip":
        reader = gzip.GzipFile(fileobj=raw, mode="rb")
    elif c.name == "bzip2":
        reader = bz2.BZ2File(raw, "rb")
    else:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return cast(IO[bytes], reader)


class _Progress:
    """`crashtui: decompressing NAME (xz) … 42%` on stderr: rewritten in place on a terminal,
    a first and a last line otherwise."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        if not self.tty:
            print(f"crashtui: {label}…", file=sys.stderr, flush=True)

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.tty or now - self.last < 0.2:
            return
        self.last = now
        amount = (f"{done * 100 // self.total}%" if self.total
                  else f"{done >> 20} MiB")
        print(f"\rcrashtui: {self.label}… {amount}\x1b[K", end="", file=sys.stderr, flush=True)

    def end(self, done: int) -> None:
        text = f"crashtui: {self.label}: {done >> 20} MiB"
        print(("\r" + text + "\x1b[K") if self.tty else text, file=sys.stderr, flush=True)


def decompressed_copy(path: Path, c: Compression,
                      free_space: Callable[[Path], int] | None = None) -> Path:
    """The cached decompressed copy of `path` (made now if need be); DumpFormatError naming
    the file, the compression and the command that decompresses it when it cannot be."""
    how = f"decompress it with: {decompress_command(path, c)}"
    root = cache_dir()
    if root is None:
        raise DumpFormatError(f"{c.name}-compressed dump (CRASHTUI_CACHE=off: not decompressed "
                              f"into the cache); {how}", path)
    st = path.stat()
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    stem = path.name[:-len(c.suffix)] if path.name.endswith(c.suffix) else path.name
    target = root / f"{stem[:80]}-{key}-{st.st_size}-{st.st_mtime_ns}"
    if target.is_file():
        try:
            os.utime(target)  # the least recently used copies are the ones pruned
        except OSError:
            pass
        return target
    free = free_space or (lambda p: shutil.disk_usage(p).free)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for old in root.glob(f"*-{key}-*"):  # the same file's copy from before it changed
            old.unlink(missing_ok=True)
        total = _known_size(path, c, st.st_size)
        avail = free(root)
    except OSError as exc:
        raise DumpFormatError(f"{c.name}-compressed dump; cannot use the cache {root} "
                              f"({exc.strerror or exc}); {how}", path) from None
    if total is not None and total + FREE_MARGIN > avail:
        raise DumpFormatError(f"{c.name}-compressed dump of {total >> 20} MiB, and {root} has "
                              f"{avail >> 20} MiB free; {how}", path)
    progress = _Progress(f"decompressing {path.name} ({c.name}) into {root}", total)
    written = 0

    def write(out: BinaryIO) -> None:
        nonlocal written
        next_check = SPACE_CHECK_EVERY
        with path.open("rb") as raw, _reader(c, raw) as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
                progress.update(written)
                if written >= next_check:
                    next_check = written + SPACE_CHECK_EVERY
                    if free(root) < FREE_MARGIN:
                        raise _NoSpace()

    def check(p: Path) -> None:
        with p.open("rb") as f:
            head = f.read(16)
        if not any(head.startswith(m) for m in DUMP_MAGICS):
            raise _NotDump(head[:8])

    try:
        atomic_write(target, write, check)
    except _NoSpace:
        raise DumpFormatError(f"{c.name}-compressed dump; {root} ran out of free space after "
                              f"{written >> 20} MiB; {how}", path) from None
    except _NotDump as exc:
        raise DumpFormatError(f"{c.name}-compressed, but what it holds is no dump (starts "
                              f"with {exc.head!r})", path) from None
    except (lzma.LZMAError, OSError, EOFError, zlib.error, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise DumpFormatError(f"{c.name}-compressed dump; cannot write the decompressed "
                                  f"copy ({exc.strerror or exc}); {how}", path) from None
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DumpFormatError(f"{c.name}-compressed dump is damaged ({reason}) after "
                              f"{written >> 20} MiB; nothing kept", path) from None
    except Exception as exc:  # zstandard.ZstdError
        if type(exc).__name__ != "ZstdError":
            raise
        raise DumpFormatError(f"{c.name}-compressed dump is damaged ({exc}) after "
                              f"{written >> 20} MiB; nothing kept", path) from None
    progress.end(written)
    prune(root, keep=target)
    return target


def prune(root: Path, keep: Path, most: int | None = None) -> None:
    """Remove the least recently used decompressed dumps beyond the `most` newest."""
    most = MAX_KEPT if most is None else most
    try:
        entries = [p for p in root.iterdir() if p.is_file() and p != keep]
        copies = sorted((p for p in entries if not p.name.startswith(".")),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for part in (p for p in entries if p.name.startswith(".") and p.name.endswith(".part")):
            if time.time() - part.stat().st_mtime > STALE_PART:  # a killed run's leftover
                part.unlink(missing_ok=True)
    except OSError:
        return
    for old in copies[max(0, most - 1):]:
        old.unlink(missing_ok=True)


class _NoSpace(Exception):
    """The cache's file system is nearly full."""


class _NotDump(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__(head)
        self.head = head
