"""crashtui's own version, for the exports."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def tool_version() -> str:
    """The installed distribution's version, or "unknown" when run from a plain checkout."""
    try:
        return metadata.version("crashtui")
    except metadata.PackageNotFoundError:
        return "unknown"
