"""Find a kernel's debug vmlinux (and modules' debug .ko files) in the usual places, by build-id.

The places are those distributions install debug packages to and gdb/crash search:
  /usr/lib/debug/.build-id/xx/rest.debug       (GNU build-id link; Debian's -dbg packages)
  /usr/lib/debug/boot/vmlinux-<release>         (Debian linux-image-*-dbg, Ubuntu -dbgsym)
  /usr/lib/debug/lib/modules/<release>/vmlinux  (Fedora/RHEL kernel-debuginfo)
  /boot/vmlinux-<release>                       (some builds keep the unstripped image)
  /lib/modules/<release>/build/vmlinux          (a kernel built in place)
plus crashtui's own debuginfod cache. A candidate is used only if its GNU build-id is the
dump's (or, when the dump has no BUILD-ID, its banner names the same release).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crashtui.debuginfo.elf import ElfImage
from crashtui.errors import CrashtuiError

_BUILD_ID = re.compile(r"^[0-9a-f]{2,128}$")


@dataclass(frozen=True)
class Located:
    """A debug file found for a build-id, and the place it was found in."""

    path: Path
    build_id: str | None
    place: str  # the search-path template it matched, e.g. "/usr/lib/debug/boot/vmlinux-<release>"


def valid_build_id(build_id: str | None) -> str | None:
    """The build-id in lower-case hex, or None if it is not plain hex (never a path)."""
    if build_id is None:
        return None
    b = build_id.strip().lower()
    return b if _BUILD_ID.match(b) else None


def search_roots() -> list[Path]:
    """Filesystem roots searched: $CRASHTUI_DEBUG_ROOT (colon-separated; empty: none), else /."""
    env = os.environ.get("CRASHTUI_DEBUG_ROOT")
    if env is None:
        return [Path("/")]
    return [Path(p) for p in env.split(":") if p]


def vmlinux_candidates(release: str | None, build_id: str | None,
                       roots: Sequence[Path] | None = None) -> Iterator[tuple[Path, str]]:
    """(path, place) of every existing file that could be the debug vmlinux, best first."""
    bid = valid_build_id(build_id)
    templates: list[str] = []
    if bid is not None and len(bid) > 2:
        templates.append("usr/lib/debug/.build-id/{bid2}/{bidrest}.debug")
    if release and "/" not in release and release not in (".", ".."):
        templates += ["usr/lib/debug/boot/vmlinux-{release}",
                      "usr/lib/debug/lib/modules/{release}/vmlinux",
                      "boot/vmlinux-{release}",
                      "lib/modules/{release}/build/vmlinux"]
    seen: set[Path] = set()
    for root in roots if roots is not None else search_roots():
        for template in templates:
            path = root / template.format(release=release, bid2=(bid or "")[:2],
                                          bidrest=(bid or "")[2:])
            try:
                if not path.is_file():
                    continue
                real = path.resolve()
            except OSError:
                continue
            if real in seen:
                continue
            seen.add(real)
            place = "/" + template.replace("{bid2}/{bidrest}", "xx/<build-id>")
            yield path, place.replace("{release}", "<release>")


def elf_build_id(path: Path) -> str | None:
    """The GNU build-id of an ELF file, or None (not ELF, unreadable, no note)."""
    try:
        image = ElfImage(path)
    except (CrashtuiError, OSError, ValueError):
        return None
    try:
        return image.build_id
    except (CrashtuiError, ValueError):
        return None
    finally:
        image.close()


def locate_vmlinux(release: str | None, build_id: str | None,
                   roots: Sequence[Path] | None = None,
                   extra: Iterable[Path] = ()) -> Located | None:
    """The first candidate (extra paths first, e.g. a debuginfod cache) matching the build-id.

    Without a build-id from the dump, a candidate under a release-named path is accepted if
    its banner names that release.
    """
    bid = valid_build_id(build_id)
    found = [(p, "the debuginfod cache") for p in extra if p.is_file()]
    found += list(vmlinux_candidates(release, bid, roots))
    for path, place in found:
        got = elf_build_id(path)
        if bid is not None:
            if got is not None and got.lower() == bid:
                return Located(path, got, place)
            continue
        if release and _release_of(path) == release:
            return Located(path, got, place)
    return None


def _release_of(path: Path) -> str | None:
    """The release in a vmlinux's linux_banner, or None."""
    from crashtui.debuginfo.vmlinux import Vmlinux

    try:
        with Vmlinux(path) as vm:
            return vm.release
    except (CrashtuiError, OSError, ValueError):
        return None


def module_candidates(name: str, release: str, roots: Sequence[Path] | None = None
                      ) -> Iterator[Path]:
    """Debug .ko files that may be module `name` of `release` (names with - and _ alike)."""
    if not name or "/" in name or not release or "/" in release:
        return
    wanted = {name.replace("-", "_")}
    dirs = [f"usr/lib/debug/lib/modules/{release}", f"lib/modules/{release}"]
    for root in roots if roots is not None else search_roots():
        for d in dirs:
            base = root / d
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*.ko*")):
                stem = path.name.split(".ko", 1)[0]
                if stem.replace("-", "_") in wanted and path.name.endswith((".ko", ".ko.debug")):
                    yield path


def module_debug_dirs(release: str, roots: Sequence[Path] | None = None) -> list[Path]:
    """Directories holding modules' debug .ko files for `release` (for --modules)."""
    out: list[Path] = []
    if not release or "/" in release:
        return out
    for root in roots if roots is not None else search_roots():
        d = root / f"usr/lib/debug/lib/modules/{release}"
        if d.is_dir():
            out.append(d)
    return out
