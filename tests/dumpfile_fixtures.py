"""Dump variants made by the real tools (makedumpfile 1.7.2 / 1.7.6, QEMU), cached on disk.

Every function raises ToolUnavailable with the reason when a tool cannot be had; the tests
turn that into a skip naming the reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conftest import cache_dir

TRIXIE_SOURCES = Path("/etc/apt/sources.list.d/trixie.sources")
TRIXIE_PIN = Path("/etc/apt/preferences.d/trixie-low-priority")
TRIXIE_SOURCES_TEXT = """\
# Added by crashtui's tests to fetch trixie's makedumpfile (zstd); pinned low, see preferences.d
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
TRIXIE_PIN_TEXT = """\
# Added by crashtui's tests: never install or upgrade anything from trixie by accident
Package: *
Pin: release n=trixie
Pin-Priority: 90
"""


class ToolUnavailable(RuntimeError):
    """A tool needed to make a dump variant cannot be installed or run here."""


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def _apt_candidate_suites(package: str) -> str:
    """`apt-cache policy` output for `package` (empty if apt is missing)."""
    if shutil.which("apt-cache") is None:
        return ""
    return _run(["apt-cache", "policy", package]).stdout


def makedumpfile_version(binary: Path) -> str:
    """The version makedumpfile reports, e.g. "1.7.2"."""
    r = _run([str(binary), "-v"])
    m = re.search(r"version (\S+)", r.stdout + r.stderr)
    if m is None:
        raise ToolUnavailable(f"{binary} -v did not print a version: {r.stderr.strip()}")
    return m.group(1)


def makedumpfile_features(binary: Path) -> set[str]:
    """Codecs a makedumpfile binary was built with ("lzo", "snappy", "zstd")."""
    r = _run([str(binary), "-v"])
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+enabled", r.stdout, re.M)}


@functools.cache
def ensure_makedumpfile() -> Path:
    """Debian bookworm's makedumpfile (1.7.2), installed with apt-get when missing."""
    found = shutil.which("makedumpfile")
    if found is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise ToolUnavailable("makedumpfile is not installed and apt-get cannot install it")
        r = _run(["apt-get", "install", "-y", "makedumpfile"])
        if r.returncode != 0:
            _run(["apt-get", "update"])
            r = _run(["apt-get", "install", "-y", "makedumpfile"])
        found = shutil.which("makedumpfile")
        if found is None:
            raise ToolUnavailable(f"apt-get install makedumpfile failed: {r.stderr.strip()[-300:]}")
    return Path(found)


@functools.cache
def ensure_trixie_makedumpfile() -> Path:
    """Trixie's makedumpfile (1.7.6, has zstd) unpacked into the test cache, not installed."""
    target = cache_dir() / "makedumpfile-trixie"
    binary = target / "usr" / "bin" / "makedumpfile"
    if not binary.exists():
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise ToolUnavailable("apt-get/dpkg-deb not available to fetch trixie's makedumpfile")
        if "trixie" not in _apt_candidate_suites("makedumpfile"):
            if os.geteuid() != 0:
                raise ToolUnavailable("no trixie apt source and not root to add one")
            if not TRIXIE_SOURCES.exists():
                TRIXIE_SOURCES.write_text(TRIXIE_SOURCES_TEXT)
            if not TRIXIE_PIN.exists():
                TRIXIE_PIN.write_text(TRIXIE_PIN_TEXT)
            _run(["apt-get", "update"])
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            r = _run(["apt-get", "download", "makedumpfile/trixie"], cwd=tmp)
            debs = list(Path(tmp).glob("makedumpfile_*.deb"))
            if r.returncode != 0 or not debs:
                raise ToolUnavailable(f"apt-get download makedumpfile/trixie failed: "
                                      f"{r.stderr.strip()[-300:]}")
            unpacked = Path(tmp) / "x"
            r = _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
            if r.returncode != 0:
                raise ToolUnavailable(f"dpkg-deb -x failed: {r.stderr.strip()}")
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    r = _run([str(binary), "-v"])
    if r.returncode != 0 or "version" not in r.stdout:
        missing = _run(["ldd", str(binary)]).stdout
        raise ToolUnavailable(f"trixie's makedumpfile does not run on this system "
                              f"({r.stderr.strip()[-200:]}; ldd: {missing.strip()[-200:]})")
    return binary


@functools.cache
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def makedumpfile_variant(binary: Path, source: Path, options: list[str], *,
                         flattened: bool = False, parts: int = 1) -> list[Path]:
    """Run `makedumpfile OPTIONS SOURCE OUT...` once; cached by input sha, tool and options.

    `flattened` sends the output to stdout (-F); `parts` > 1 uses --split into that many files.
    """
    if "zstd" in " ".join(options) or "-z" in options:
        if "zstd" not in makedumpfile_features(binary):
            raise ToolUnavailable(f"{binary} was built without zstd")
    if "-p" in options and "snappy" not in makedumpfile_features(binary):
        raise ToolUnavailable(f"makedumpfile {makedumpfile_version(binary)} was built without snappy")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", " ".join(options)).strip("_")
    key = f"{_sha256(source)[:16]}-mdf{makedumpfile_version(binary)}-{slug}"
    outdir = cache_dir() / "dumpfile-variants" / key
    outs = [outdir / f"dump.{i}" for i in range(parts)]
    if all(p.exists() for p in outs):
        return outs
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir.parent) as tmp:
        tmp_outs = [Path(tmp) / p.name for p in outs]
        cmd = [str(binary), *options, str(source)]
        if flattened:
            with tmp_outs[0].open("wb") as out:
                r = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        else:
            r = _run(cmd + [str(p) for p in tmp_outs])
        if r.returncode != 0 or not all(p.exists() for p in tmp_outs):
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-500:]}")
        shutil.rmtree(outdir, ignore_errors=True)
        Path(tmp).rename(outdir)
        Path(tmp).mkdir()  # so TemporaryDirectory's cleanup finds something to remove
    return outs


class _Qmp:
    """A minimal QMP client over a unix socket."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise ToolUnavailable("QEMU's QMP socket never appeared") from None
                time.sleep(0.05)
        self.sock.settimeout(max(1.0, deadline - time.monotonic()))
        self.file = self.sock.makefile("rw")
        self._reply()  # greeting
        self.command("qmp_capabilities")

    def _reply(self) -> dict[str, object]:
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError("QEMU closed the QMP connection")
            msg = json.loads(line)
            if "event" not in msg:
                return msg  # type: ignore[no-any-return]

    def command(self, name: str, **args: object) -> object:
        """Run one QMP command and return its result (RuntimeError on an error reply)."""
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        reply = self._reply()
        if "error" in reply:
            raise RuntimeError(f"QMP {name}: {reply['error']}")
        return reply.get("return")

    def close(self) -> None:
        self.sock.close()


QEMU_FORMATS = ("elf", "kdump-zlib")


def qemu_guest_dumps() -> dict[str, Path]:
    """One stopped QEMU guest (firmware only, 64 MiB) dumped by dump-guest-memory per format."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise ToolUnavailable("qemu-system-x86_64 is not installed")
    version = _run([qemu, "--version"]).stdout.split("\n", 1)[0]
    key = hashlib.sha256(version.encode()).hexdigest()[:12]
    outdir = cache_dir() / "dumpfile-variants" / f"qemu-{key}"
    outs = {fmt: outdir / f"guest.{fmt}" for fmt in QEMU_FORMATS}
    if all(p.exists() for p in outs.values()):
        return outs
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir.parent) as tmp:
        sock = Path(tmp) / "qmp.sock"
        proc = subprocess.Popen(
            [qemu, "-M", "q35", "-m", "64", "-accel", "tcg", "-display", "none",
             "-nodefaults", "-no-user-config", "-S", "-qmp", f"unix:{sock},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            qmp = _Qmp(sock, time.monotonic() + 30)
            qmp.command("cont")
            time.sleep(1.0)  # let the firmware write some memory
            qmp.command("stop")
            for fmt, out in outs.items():
                qmp.command("dump-guest-memory", paging=False,
                            protocol=f"file:{Path(tmp) / out.name}", format=fmt)
            qmp.command("quit")
            qmp.close()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sock.unlink(missing_ok=True)
        shutil.rmtree(outdir, ignore_errors=True)
        Path(tmp).rename(outdir)
        Path(tmp).mkdir()
    return outs


def damaged_copy(source: Path, target: Path, patches: dict[int, bytes] | None = None,
                 size: int | None = None) -> Path:
    """Copy the first `size` bytes of a real dump (all by default) with bytes overwritten."""
    with source.open("rb") as f:
        data = bytearray(f.read() if size is None else f.read(size))
    for offset, raw in (patches or {}).items():
        data[offset:offset + len(raw)] = raw
    target.write_bytes(data)
    return target


def flatten(data: bytes, target: Path, chunk: int = 1 << 16,
            extra: list[tuple[int, bytes]] | None = None, end_marker: bool = True,
            file_type: int = 1) -> Path:
    """Write `data` in makedumpfile's flattened layout (records in chunks, then `extra`)."""
    records = [(off, data[off:off + chunk]) for off in range(0, len(data), chunk)]
    with target.open("wb") as out:
        out.write(b"makedumpfile".ljust(16, b"\0") + file_type.to_bytes(8, "big")
                  + (1).to_bytes(8, "big"))
        out.write(bytes(4096 - 32))
        for off, raw in records[::-1] + (extra or []):  # out of order, like makedumpfile
            out.write(off.to_bytes(8, "big", signed=True)
                      + len(raw).to_bytes(8, "big", signed=True) + raw)
        if end_marker:
            out.write((-1).to_bytes(8, "big", signed=True) * 2)
    return target


def recode_kdump(source: Path, target: Path, compress: Callable[[bytes], bytes],
                 flag: int) -> Path:
    """Rewrite a real kdump file with every dumped page stored by `compress` (codec `flag`).

    Only for codecs no available makedumpfile writes (snappy): header, bitmaps, notes and
    VMCOREINFO are the real ones; each page is the real page re-encoded.
    """
    from crashtui.dumpfile import open_dump

    raw = source.read_bytes()
    status, bs, sub_blocks, bitmap_blocks = struct.unpack_from("<IiiI", raw, 424)
    bitmap_off = bs * (1 + sub_blocks)
    bitmap_len = bs * bitmap_blocks
    desc_off = bitmap_off + bitmap_len
    second = raw[bitmap_off + bitmap_len // 2:desc_off]
    pfns = [i for i in range(len(second) * 8) if second[i >> 3] >> (i & 7) & 1]
    head = bytearray(raw[:desc_off])
    struct.pack_into("<I", head, 424, (status & ~0x27) | flag)
    descs = bytearray()
    data = bytearray()
    data_off = desc_off + 24 * len(pfns)
    with open_dump(source) as dump:
        for pfn in pfns:
            page = dump.read_phys(pfn * bs, bs)
            packed = compress(page)
            stored, flags = (packed, flag) if len(packed) < bs else (page, 0)
            descs += struct.pack("<qIIQ", data_off + len(data), len(stored), flags, 0)
            data += stored
    target.write_bytes(bytes(head) + bytes(descs) + bytes(data))
    return target
