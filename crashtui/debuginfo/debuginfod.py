"""A small debuginfod client (the protocol of elfutils' debuginfod(8)): fetch by build-id, cache.

GET <url>/buildid/<hex build-id>/debuginfo for each URL of $DEBUGINFOD_URLS (space separated)
in turn; the file is written to a temporary name in the cache, its GNU build-id checked,
then renamed into place, so the cache only ever holds complete, verified files:

    $CRASHTUI_CACHE/debuginfod/<build-id>/debuginfo   (default ~/.cache/crashtui, or
                                                       $XDG_CACHE_HOME/crashtui)

A cached file is used without any request. $DEBUGINFOD_TIMEOUT (seconds, default 90) bounds
each connection attempt and each wait for data, as in elfutils' client.
"""

from __future__ import annotations

import os
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

    def receive(out: BinaryIO) -> None:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        got = 0
        if progress is not None:
            progress(0, total)
        while True:
            try:
                chunk = response.read(CHUNK)
            except TimeoutError:
                raise DebuginfodError(f"timed out after {timeout:g} s while receiving "
                                      f"(got {got} bytes)") from None
            except OSError as exc:
                raise DebuginfodError(f"connection lost after {got} bytes: {exc}") from None
            if not chunk:
                break
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
