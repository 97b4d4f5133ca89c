"""What debug information the kernel model reads: a debug vmlinux, or the dump's own memory."""

from __future__ import annotations

import os
from collections.abc import Callable
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
    place: str | None = None  # where a FOUND vmlinux was, e.g. "/usr/lib/debug/boot/vmlinux-<release>"

    @property
    def in_memory(self) -> bool:
        """True when no vmlinux file is used at all."""
        return self.vmlinux is None

    def describe(self) -> str:
        """One line saying which debug info is used and, without source lines, how to get
        them (for stderr and the UI)."""
        if self.vmlinux is not None:
            how = {FOUND: f"found by build-id in {self.place or 'the usual places'}",
                   FETCHED: "fetched from debuginfod"}.get(self.origin, "given")
            text = f"debug info: {self.vmlinux} ({how}"
            text += f", build-id {self.build_id})" if self.build_id else ")"
            fallbacks = [s for s in (self.symbols, self.types, self.unwind) if "memory" in s]
            if fallbacks:
                text += "; from memory: " + ", ".join(fallbacks)
        else:
            bid = f" (build-id {self.build_id})" if self.build_id else ""
            parts = (self.symbols, self.types, self.unwind)
            used = ", ".join(s for s in parts if s != "none")
            if parts == ("kallsyms in memory", "BTF in memory", "ORC in memory"):
                used = "the kernel's own kallsyms, BTF and ORC from the dump"
            missing = [what for what, s in (("symbols", self.symbols), ("types", self.types),
                                            ("unwind tables", self.unwind)) if s == "none"]
            text = f"no debug vmlinux for {self.release}{bid}: using {used or 'nothing'}"
            if missing:
                text += " (no " + ", no ".join(missing) + ")"
        hint = self.hint()
        return f"{text}; {hint}" if hint else text

    def hint(self) -> str | None:
        """How to get source lines when they are missing, or None."""
        if self.source_lines:
            return None
        ways = []
        package = debian_package(self.release)
        if package is not None:
            ways.append(f"apt-get install {package}")
        ways.append("--fetch (debuginfod, DEBUGINFOD_URLS)")
        ways.append("or give the debug vmlinux")
        return "no source lines: " + ", ".join(ways)


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


def debian_package(release: str, ids: set[str] | None = None) -> str | None:
    """The package holding the debug vmlinux of `release` on this Debian/Ubuntu host (or the
    one whose os-release `ids` are given), or None.

    Debian ships it as linux-image-<release>-dbg; Ubuntu as
    linux-image-unsigned-<release>-dbgsym from its ddebs archive.
    """
    if not release or release == "unknown" or any(c.isspace() for c in release):
        return None
    ids = host_distribution() if ids is None else ids
    if "ubuntu" in ids:
        return f"linux-image-unsigned-{release}-dbgsym"
    if "debian" in ids:
        return f"linux-image-{release}-dbg"
    return None


@dataclass(frozen=True)
class DebugChoice:
    """The vmlinux to open for a dump (None: in memory), where it came from, and problems."""

    vmlinux: Path | None
    origin: str
    problems: tuple[str, ...] = ()
    place: str | None = None


def choose_vmlinux(dump_path: str | os.PathLike[str], fetch: bool = False,
                   progress: Callable[[int, int | None], None] | None = None) -> DebugChoice:
    """Find the dump's debug vmlinux by build-id (usual places, the debuginfod cache), else
    fetch it (fetch=True, $DEBUGINFOD_URLS); else in memory. Raises CrashtuiError only for
    an unreadable dump."""
    from crashtui.debuginfo.debuginfod import DebuginfodError, cached_path, fetch_debuginfo
    from crashtui.debuginfo.locate import locate_vmlinux, valid_build_id
    from crashtui.dumpfile import open_dump
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

    dump = open_dump(dump_path)
    try:
        info = VmcoreInfo.parse(dump.vmcoreinfo or "")
        release = info.osrelease or (dump.info.utsname.release if dump.info.utsname else None)
    finally:
        dump.close()
    bid = valid_build_id(info.build_id)
    extra = [cached_path(bid)] if bid is not None else []
    found = locate_vmlinux(release, bid, extra=extra)
    if found is not None:
        return DebugChoice(found.path, FOUND, place=found.place)
    if not fetch:
        return DebugChoice(None, MEMORY)
    if bid is None:
        return DebugChoice(None, MEMORY, ("--fetch: the dump's VMCOREINFO has no BUILD-ID "
                                          "(kernels before 5.9) to ask debuginfod for",))
    try:
        got = fetch_debuginfo(bid, progress=progress)
    except DebuginfodError as exc:
        return DebugChoice(None, MEMORY, (f"--fetch: {exc.message}",))
    return DebugChoice(got.path, FETCHED)
