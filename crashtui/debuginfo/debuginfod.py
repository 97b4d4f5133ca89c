"""A small debuginfod client (the protocol of elfutils' debuginfod(8)): fetch by build-id, cache.

GET <url>/buildid/<hex build-id>/debuginfo for each URL of $DEBUGINFOD_URLS (space separated)
in turn; the file is written to a temporary name in the cache, its GNU build-id checked,
then renamed into place, so the cache only ever holds complete, verified files:

    $CRASHTUI_CACHE/debuginfod/<build-id>/debuginfo   (default ~/.cache/crashtui, or
                                                       $XDG_CACHE_HOME/crashtui)

A cached file is used without any request. $DEBUGINFOD_TIMEOUT (seconds, default 90) bounds
each connection attempt and each wait for data, $DEBUGINFOD_MAXTIME (default 1 hour) the
whole download and $DEBUGINFOD_MAXSIZE (default 4 GiB) its size, as in elfutils' client; a
download also stops at the size the server announced and at the size the ELF header gives
(its section header table ends the file). Temporary files of downloads that were killed are
removed by the next fetch.
"""

from __future__ import annotations

import os
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from crashtui.debuginfo.locate import elf_build_id, valid_build_id
from crashtui.errors import CrashtuiError
from crashtui.fileio import atomic_write

Progress = Callable[[int, int | None], None]  # (bytes received, total or None)
CHUNK = 1 << 20
DEFAULT_TIMEOUT = 90.0
DEFAULT_MAXSIZE = 4 << 30
DEFAULT_MAXTIME = 3600.0


class DebuginfodError(CrashtuiError):
    """No server could provide the file (each server's reason is in the message)."""


@dataclass(frozen=True)
class Fetched:
    """A debug file in the cache, and where it came from (None: it was already cached)."""

    path: Path
    build_id: str
    url: str | None


def cache_root() -> Path:
    """crashtui's cache directory ($CRASHTUI_CACHE, else $XDG_CACHE_HOME/crashtui, ~/.cache)."""
    env = os.environ.get("CRASHTUI_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "crashtui"


def cached_path(build_id: str, root: Path | None = None) -> Path:
    """Where the debuginfo of `build_id` is (or would be) cached."""
    bid = valid_build_id(build_id)
    if bid is None:
        raise DebuginfodError(f"not a build-id: {build_id!r}")
    return (root or cache_root()) / "debuginfod" / bid / "debuginfo"


def server_urls() -> list[str]:
    """The servers of $DEBUGINFOD_URLS (http/https only), in order."""
    out = []
    for url in os.environ.get("DEBUGINFOD_URLS", "").split():
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme in ("http", "https"):
            out.append(url.rstrip("/"))
    return out


def _timeout() -> float:
    try:
        value = float(os.environ.get("DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def elf_file_size(head: bytes) -> int | None:
    """The size an ELF64 file must have by its header (the section header table's end)."""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
        return None
    fmt = "<" if head[5] == 1 else ">"
    shoff = struct.unpack_from(fmt + "Q", head, 0x28)[0]
    shentsize, shnum = struct.unpack_from(fmt + "HH", head, 0x3A)
    return shoff + shentsize * shnum if shoff else None


def _remove_stale_parts(directory: Path, older_than: float) -> None:
    """Delete temporary files of downloads killed before they could clean up."""
    if not directory.is_dir():
        return
    now = time.time()
    for part in directory.glob(".debuginfo.*.part"):
        try:
            if now - part.stat().st_mtime > older_than:
                part.unlink()
        except OSError:
            continue


def fetch_debuginfo(build_id: str, urls: Sequence[str] | None = None,
                    progress: Progress | None = None, cache: Path | None = None,
                    timeout: float | None = None) -> Fetched:
    """The debuginfo file of `build_id`: from the cache, else downloaded (DebuginfodError)."""
    bid = valid_build_id(build_id)
    if bid is None:
        raise DebuginfodError(f"not a build-id: {build_id!r}")
    target = cached_path(bid, cache)
    if target.is_file() and (elf_build_id(target) or "").lower() == bid:
        return Fetched(target, bid, None)
    servers = list(urls) if urls is not None else server_urls()
    if not servers:
        raise DebuginfodError("no debuginfod server: set DEBUGINFOD_URLS (e.g. "
                              "DEBUGINFOD_URLS=https://debuginfod.debian.net)")
    _remove_stale_parts(target.parent, timeout if timeout is not None else _timeout())
    problems = []
    for server in servers:
        try:
            _download(f"{server}/buildid/{bid}/debuginfo", target, bid, progress,
                      timeout if timeout is not None else _timeout())
            return Fetched(target, bid, server)
        except DebuginfodError as exc:
            problems.append(f"{server}: {exc.message}")
    raise DebuginfodError(f"build-id {bid} not fetched: " + "; ".join(problems))


def _download(url: str, target: Path, bid: str, progress: Progress | None,
              timeout: float) -> None:
    """Stream `url` into a temporary file next to `target`, verify, rename (atomic)."""
    request = urllib.request.Request(url, headers={"User-Agent": "crashtui"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise DebuginfodError("not found (404)") from None
        raise DebuginfodError(f"HTTP error {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise DebuginfodError("connection refused (server down?)") from None
        if isinstance(reason, TimeoutError):
            raise DebuginfodError(f"timed out after {timeout:g} s") from None
        raise DebuginfodError(f"cannot connect: {reason}") from None
    except TimeoutError:
        raise DebuginfodError(f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise DebuginfodError(f"cannot connect: {exc}") from None

    maxsize = int(_env_number("DEBUGINFOD_MAXSIZE", DEFAULT_MAXSIZE))
    deadline = time.monotonic() + _env_number("DEBUGINFOD_MAXTIME", DEFAULT_MAXTIME)

    def receive(out: BinaryIO) -> None:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > maxsize:
            raise DebuginfodError(f"the server announces {total} bytes, more than the "
                                  f"{maxsize} allowed (DEBUGINFOD_MAXSIZE)")
        limit = min(total, maxsize) if total is not None else maxsize
        head = b""
        got = 0
        if progress is not None:
            progress(0, total)
        while True:
            if time.monotonic() > deadline:
                raise DebuginfodError(f"download took longer than allowed (DEBUGINFOD_MAXTIME; "
                                      f"got {got} bytes)")
            try:
                chunk = response.read1(CHUNK)
            except TimeoutError:
                raise DebuginfodError(f"timed out after {timeout:g} s while receiving "
                                      f"(got {got} bytes)") from None
            except OSError as exc:
                raise DebuginfodError(f"connection lost after {got} bytes: {exc}") from None
            if not chunk:
                break
            if len(head) < 64:
                head += chunk[:64 - len(head)]
                size = elf_file_size(head)
                if size is not None and size < limit:
                    limit = size
            if got + len(chunk) > limit:
                raise DebuginfodError(f"the server sent more than the {limit} bytes "
                                      + ("it announced" if limit == total else
                                         "the ELF header gives" if limit < maxsize else
                                         "allowed (DEBUGINFOD_MAXSIZE)"))
            out.write(chunk)
            got += len(chunk)
            if progress is not None:
                progress(got, total)
        if total is not None and got != total:
            raise DebuginfodError(f"truncated download: {got} of {total} bytes")

    def verify(tmp: Path) -> None:
        arrived = elf_build_id(tmp)
        if arrived is None or arrived.lower() != bid:
            raise DebuginfodError(f"the server sent a file with build-id {arrived} "
                                  f"instead of {bid}" if arrived else
                                  "the server sent a file that is not an ELF with a build-id")

    with response:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, receive, check=verify)  # mode 0o666 & ~umask


def progress_bar(out: TextIO, label: str) -> Progress:
    """A Progress printing a one-line bar on `out` (a TTY: redrawn in place; else every 10%)."""
    tty = out.isatty()
    last = [-1]

    def show(got: int, total: int | None) -> None:
        if total:
            pct = min(100, got * 100 // total)
            if tty:
                bar = "#" * (pct // 4)
                out.write(f"\r{label}: [{bar:<25}] {pct:3d}% {got >> 20}/{total >> 20} MiB")
            elif pct // 10 != last[0]:
                last[0] = pct // 10
                out.write(f"{label}: {pct}% ({got >> 20}/{total >> 20} MiB)\n")
        elif tty:
            out.write(f"\r{label}: {got >> 20} MiB")
        if tty and total and got >= total:
            out.write("\n")
        out.flush()

    return show
