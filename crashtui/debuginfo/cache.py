"""An on-disk cache of numpy arrays per build-id (npz files, never pickle).

Only for indexes that are slow to rebuild on every start: e.g. the address → unit index of
DWARF without .debug_aranges (clang does not emit it), which needs every unit's top DIE
(~3-4 s on a distro vmlinux). Entries carry a fingerprint of what they were built from and
are rebuilt when it differs or the file is unreadable.

Location: $CRASHTUI_CACHE, else $XDG_CACHE_HOME/crashtui, else ~/.cache/crashtui; one
directory per build-id. Set CRASHTUI_CACHE=off to disable.
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from crashtui.fileio import atomic_write

FORMAT_VERSION = 1
_BUILD_ID_RE = re.compile(r"^[0-9a-f]{8,128}$")
_NAME_RE = re.compile(r"^[a-z0-9_.-]+$")


def cache_root() -> Path | None:
    """The cache directory, or None when caching is disabled."""
    env = os.environ.get("CRASHTUI_CACHE")
    if env:
        return None if env.lower() in ("off", "0", "none", "no") else Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "crashtui"


def entry_path(build_id: str, name: str) -> Path | None:
    """Where entry `name` of build `build_id` lives (None if disabled or ids look odd)."""
    root = cache_root()
    if root is None or not _BUILD_ID_RE.match(build_id) or not _NAME_RE.match(name):
        return None
    return root / build_id / f"{name}.npz"


def load_arrays(build_id: str | None, name: str, fingerprint: Sequence[int],
                keys: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if absent, unreadable, stale or incomplete (a bad file is
    removed so the next save replaces it)."""
    if build_id is None:
        return None
    path = entry_path(build_id, name)
    if path is None or not path.is_file():
        return None
    want = np.array([FORMAT_VERSION, *fingerprint], dtype=np.uint64)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = data["meta"]
            if meta.shape != want.shape or not (meta == want).all():
                raise _Stale
            for k in keys:  # an array larger than its file is damage, not a size to allocate
                _check_size(data.zip, f"{k}.npy")
            out = {k: data[k] for k in keys}
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, the entry is rebuilt
        try:
            path.unlink()
        except OSError:
            pass
        if not isinstance(exc, _Stale):
            reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
            print(f"crashtui: damaged cache file {path} removed, rebuilding it ({reason})",
                  file=sys.stderr)
        return None
    return out


class _Stale(Exception):
    """The entry was built from other input (not damage)."""


def _check_size(archive: zipfile.ZipFile, member: str) -> None:
    """ValueError unless the .npy member's header describes no more data than it holds."""
    info = archive.getinfo(member)
    with archive.open(info) as f:
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) \
            else fmt.read_array_header_2_0  # savez writes 1.0; 2.0 for huge headers
        shape, _fortran, dtype = read(f)
        header = f.tell()
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize > info.file_size - header:
        raise ValueError(f"{member} claims {count} entries of {dtype.itemsize} bytes")


def save_arrays(build_id: str | None, name: str, fingerprint: Sequence[int],
                arrays: Mapping[str, np.ndarray]) -> bool:
    """Write the arrays atomically, mode 0o666 & ~umask (crashtui.fileio.atomic_write); False
    if caching is off or fails."""
    if build_id is None:
        return False
    path = entry_path(build_id, name)
    if path is None:
        return False
    meta = np.array([FORMAT_VERSION, *fingerprint], dtype=np.uint64)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, meta=meta, **arrays))  # type: ignore[arg-type]
    except OSError:
        return False
    return True


__all__ = ["cache_root", "entry_path", "load_arrays", "save_arrays"]
