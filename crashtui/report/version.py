"""crashtui's own version, for the exports."""

from __future__ import annotations

import os
import re
import sys
from functools import cache

# what importlib.metadata's path finder matches for the distribution "crashtui"
_META_DIR = re.compile(r"crashtui(-[^-]+)?\.(dist-info|egg-info)", re.IGNORECASE)


@cache
def tool_version() -> str:
    """The installed distribution's version, or "unknown" when run from a plain checkout."""
    try:
        return _version_on_path()
    except (OSError, UnicodeDecodeError, LookupError):
        pass
    from importlib import metadata  # ~15 ms of imports: only when the quick look fails

    try:
        return metadata.version("crashtui")
    except metadata.PackageNotFoundError:
        return "unknown"


def _version_on_path() -> str:
    """The Version: of the first crashtui dist-info/egg-info on sys.path, as
    importlib.metadata finds it; LookupError if none or it has no Version."""
    for entry in sys.path:
        place = entry or "."
        if not os.path.isdir(place):
            continue
        for name in sorted(os.listdir(place)):
            if not _META_DIR.fullmatch(name):
                continue
            folder = os.path.join(place, name)
            for meta in ("METADATA", "PKG-INFO"):
                path = os.path.join(folder, meta)
                if os.path.isfile(path):
                    return _header_version(path)
    raise LookupError("no crashtui metadata on sys.path")


def _header_version(path: str) -> str:
    """The Version: field of a core metadata file (RFC 822 headers up to the first blank line)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == "version" and value.strip():
                return value.strip()
    raise LookupError(f"no Version in {path}")
