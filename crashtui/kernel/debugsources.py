"""What debug information the kernel model reads: a debug vmlinux, or the dump's own memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Where a vmlinux came from (DebugSources.origin)
GIVEN, FOUND, FETCHED, MEMORY = "given", "found", "fetched", "memory"


@dataclass(frozen=True)
class DebugSources:
    """One kernel's debug info: each facility names the source it is read from."""

    release: str
    build_id: str | None  # the dump's BUILD-ID (VMCOREINFO), else the vmlinux's
    vmlinux: Path | None
    origin: str  # GIVEN | FOUND (a usual place, by build-id) | FETCHED (debuginfod) | MEMORY
    symbols: str  # e.g. "vmlinux .symtab", "kallsyms in memory (VMCOREINFO)"
    types: str  # "vmlinux .BTF", "BTF in memory", "none"
    unwind: str  # "vmlinux ORC", "ORC in memory", "none"
    source_lines: bool  # DWARF line tables available

    @property
    def in_memory(self) -> bool:
        """True when no vmlinux file is used at all."""
        return self.vmlinux is None

    def describe(self) -> str:
        """One line saying which debug info is used (for stderr and the UI)."""
        if self.vmlinux is not None:
            how = {FOUND: "found by build-id", FETCHED: "fetched from debuginfod"}.get(
                self.origin, "given")
            text = f"debug info: {self.vmlinux} ({how}"
            text += f", build-id {self.build_id})" if self.build_id else ")"
            fallbacks = [s for s in (self.symbols, self.types, self.unwind) if "memory" in s]
            if fallbacks:
                text += "; from memory: " + ", ".join(fallbacks)
            return text
        return (f"no debug vmlinux for {self.release}: using the dump's own {self.symbols}, "
                f"{self.types}, {self.unwind}; no source lines")

    def hint(self) -> str | None:
        """How to get source lines when they are missing, or None."""
        if self.source_lines:
            return None
        ways = []
        package = debian_package(self.release)
        if package is not None:
            ways.append(f"apt-get install {package}")
        ways.append("crashtui --fetch (with DEBUGINFOD_URLS set)")
        ways.append("or give the debug vmlinux as the second argument")
        return "for source lines: " + ", ".join(ways)


def host_distribution() -> set[str]:
    """The host's ID and ID_LIKE from /etc/os-release (lower case), empty if unknown."""
    try:
        text = Path(os.environ.get("CRASHTUI_OS_RELEASE", "/etc/os-release")).read_text()
    except OSError:
        return set()
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip('"').lower().split())
    return ids


def debian_package(release: str) -> str | None:
    """The package holding the debug vmlinux of `release` on this Debian/Ubuntu host, or None.

    Debian ships it as linux-image-<release>-dbg; Ubuntu as
    linux-image-unsigned-<release>-dbgsym from its ddebs archive.
    """
    if not release or release == "unknown" or any(c.isspace() for c in release):
        return None
    ids = host_distribution()
    if "ubuntu" in ids:
        return f"linux-image-unsigned-{release}-dbgsym"
    if "debian" in ids:
        return f"linux-image-{release}-dbg"
    return None
