"""Writing files atomically, with the mode a plain open() would give (0o666 & ~umask).

tempfile.mkstemp always creates mode 0600, so caches written through it are unreadable to the
group even when the user's umask allows it. atomic_write creates its temporary file with
os.open(..., O_CREAT | O_EXCL, 0o666) under a random name instead: the kernel applies the
umask itself, with no os.umask() read-and-restore (which races with other threads).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], None]
_ATTEMPTS = 100


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty, exclusively created file next to `target` (mode 0o666 & ~umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {target}")


def atomic_write(path: str | Path, data: bytes | Writer,
                 check: Callable[[Path], None] | None = None) -> None:
    """Write `data` (bytes, or a callable writing to the open binary file) to `path` atomically.

    The file is written under a temporary name in the same directory, fsynced, passed to
    `check` (which may raise to reject it) and renamed over `path`; on any error the
    temporary file is removed and `path` is left as it was. The new file's mode is
    0o666 & ~umask, as for open(path, "wb")."""
    target = Path(path)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


__all__ = ["atomic_write"]
