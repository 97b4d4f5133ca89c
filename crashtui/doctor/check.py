"""A doctor check's result, and the machine it reads: every path relative to one root."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was found, and for a problem the command that fixes it."""

    id: str  # stable name, e.g. "crashkernel"
    area: str  # "capture", "service", "panic", "analysis", "test"
    status: str  # OK | WARNING | PROBLEM
    text: str  # what was found, one line
    fix: str | None = None  # the exact command (run as root) that fixes it
    needs_root: bool = False  # the check reads what only root may read (or acts as root)
    detail: tuple[str, ...] = ()  # further lines: what a setting means


@dataclass
class Machine:
    """The machine to check, read under `root` (/ or a recorded tree); reads never raise."""

    root: Path = Path("/")
    free_space: Callable[[Path], int | None] | None = None  # injected by tests; else statvfs
    denied: list[str] = field(default_factory=list)  # paths root alone may read

    def path(self, path: str) -> Path:
        """`path` (absolute, as on the machine) under the root."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str | None:
        """A text file's contents, None if absent or unreadable (unreadable: noted in denied)."""
        try:
            return self.path(path).read_text(errors="replace")
        except PermissionError:
            self.denied.append(path)
            return None
        except OSError:
            return None

    def read_bytes(self, path: str) -> bytes | None:
        try:
            return self.path(path).read_bytes()
        except PermissionError:
            self.denied.append(path)
            return None
        except OSError:
            return None

    def value(self, path: str) -> str | None:
        """A one-line file (sysfs, sysctl) stripped, None if absent."""
        text = self.read(path)
        return None if text is None else text.strip()

    def number(self, path: str) -> int | None:
        """A sysfs/sysctl integer, None if absent or not a number."""
        text = self.value(path)
        try:
            return None if text is None else int(text.split()[0])
        except (ValueError, IndexError):
            return None

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.path(path))

    def is_file(self, path: str) -> bool:
        return self.path(path).is_file()

    def listdir(self, path: str) -> list[str]:
        """Names in a directory, sorted; empty if absent (unreadable: noted in denied)."""
        try:
            return sorted(os.listdir(self.path(path)))
        except PermissionError:
            self.denied.append(path)
            return []
        except OSError:
            return []

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(self.path(path))
        except OSError:
            return None

    def resolve(self, path: str) -> str | None:
        """Where a symlink chain under the root ends, as a machine path (absolute links are
        taken relative to the root); None if it does not end in an existing file."""
        current = path
        for _ in range(16):
            target = self.readlink(current)
            if target is None:
                return current if self.exists(current) else None
            current = target if target.startswith("/") else \
                os.path.normpath(os.path.join(os.path.dirname(current), target))
        return None

    def free_bytes(self, path: str) -> int | None:
        """Free space (for an unprivileged writer too: f_bavail) of the file system holding
        `path`, or of its nearest existing parent; None if unknown."""
        p = self.path(path)
        while not p.exists() and p != self.root and p.parent != p:
            p = p.parent
        if self.free_space is not None:
            return self.free_space(p)
        try:
            return shutil.disk_usage(p).free
        except OSError as exc:
            if exc.errno == errno.EACCES:
                self.denied.append(path)
            return None


def size_text(n: int) -> str:
    """Bytes in the largest binary unit that keeps a number >= 1 (e.g. 256 MiB, 1.5 GiB)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if value == int(value) or unit == "B" else \
                f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def parse_size(text: str) -> int | None:
    """A kernel size ("256M", "1G", "512K", "4096") in bytes (memparse), None if malformed."""
    text = text.strip()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
    mult = 1
    if text and text[-1].upper() in units:
        mult = units[text[-1].upper()]
        text = text[:-1]
    try:
        return int(text, 0) * mult
    except ValueError:
        return None


def meminfo(machine: Machine) -> dict[str, int]:
    """/proc/meminfo as bytes by field name (MemTotal, MemFree, ...)."""
    out: dict[str, int] = {}
    for line in (machine.read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return out


def os_ids(machine: Machine) -> set[str]:
    """ID and ID_LIKE of the machine's /etc/os-release, lower case."""
    ids: set[str] = set()
    for line in (machine.read("/etc/os-release") or "").splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip('"').lower().split())
    return ids


def os_name(machine: Machine) -> str | None:
    """PRETTY_NAME of the machine's /etc/os-release."""
    for line in (machine.read("/etc/os-release") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return None


def release(machine: Machine) -> str | None:
    """The running kernel's release (`uname -r`) from /proc/sys/kernel/osrelease."""
    return machine.value("/proc/sys/kernel/osrelease") or None


def kernel_config(machine: Machine) -> dict[str, str] | None:
    """The running kernel's /boot/config-<release> (else /proc/config.gz) as
    {CONFIG_X: value}, with "n" for `# CONFIG_X is not set`; None if neither is there."""
    rel = release(machine)
    text = machine.read(f"/boot/config-{rel}") if rel and "/" not in rel else None
    if text is None:  # CONFIG_IKCONFIG_PROC
        import gzip

        packed = machine.read_bytes("/proc/config.gz")
        try:
            text = gzip.decompress(packed).decode(errors="replace") if packed else None
        except (OSError, EOFError):
            text = None
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            out[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:].split()[0]] = "n"
    return out
