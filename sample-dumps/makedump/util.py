"""Small helpers shared by make-dump and record-crash-output: logging, commands, hashes, ELF."""

from __future__ import annotations

import hashlib
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path


def cache_root() -> Path:
    """Where downloaded .debs, extracted kernels and build chroots are kept."""
    env = os.environ.get("CRASHTUI_MAKEDUMP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "crashtui-makedump"


def tests_cache_root() -> Path:
    """The test suite's cache (tests/conftest.py): vmlinux files live in vmlinux/<build-id>/."""
    env = os.environ.get("CRASHTUI_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "crashtui-tests"


class MakeDumpError(Exception):
    """A step failed; the message says which and why."""


_PROG = "make-dump"


def set_prog(name: str) -> None:
    global _PROG
    _PROG = name


def log(msg: str) -> None:
    print(f"{_PROG}: {msg}", file=sys.stderr, flush=True)


def run(cmd: list, *, cwd: Path | None = None, capture: bool = False, check: bool = True,
        env: dict | None = None, input: str | None = None, quiet: bool = False,
        ) -> subprocess.CompletedProcess:
    """Run a command; with capture, stdout/stderr are returned as text instead of shown."""
    args = [str(c) for c in cmd]
    if not quiet:
        log("$ " + " ".join(shlex.quote(a) for a in args))
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    r = subprocess.run(args, cwd=cwd, env=full_env, text=True, input=input,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        tail = (r.stderr or "")[-3000:] if capture else ""
        raise MakeDumpError(f"command failed with status {r.returncode}: "
                            f"{' '.join(shlex.quote(a) for a in args)}\n{tail}".rstrip())
    return r


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _elf_sections(f) -> list[tuple[str, int, int, int]]:
    """(name, type, offset, size) of each section of a little-endian ELF64 file."""
    ehdr = f.read(64)
    if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2 or ehdr[5] != 1:
        raise MakeDumpError(f"{f.name}: not a little-endian ELF64 file")
    e_shoff = struct.unpack_from("<Q", ehdr, 0x28)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", ehdr, 0x3A)
    f.seek(e_shoff)
    raw = f.read(e_shentsize * e_shnum)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", raw, i * e_shentsize) for i in range(e_shnum)]
    strtab_off, strtab_size = hdrs[e_shstrndx][4], hdrs[e_shstrndx][5]
    f.seek(strtab_off)
    strtab = f.read(strtab_size)
    out = []
    for h in hdrs:
        name = strtab[h[0]:strtab.index(b"\0", h[0])].decode()
        out.append((name, h[1], h[4], h[5]))
    return out


def elf_build_id(path: Path) -> str | None:
    """The GNU build-id (hex) of an ELF64 file, read from its SHT_NOTE sections."""
    with path.open("rb") as f:
        for _name, typ, off, size in _elf_sections(f):
            if typ != 7:  # SHT_NOTE
                continue
            f.seek(off)
            data = f.read(size)
            p = 0
            while p + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from("<III", data, p)
                p += 12
                nm = data[p:p + namesz]
                p += (namesz + 3) & ~3
                desc = data[p:p + descsz]
                p += (descsz + 3) & ~3
                if ntype == 3 and nm.rstrip(b"\0") == b"GNU":
                    return desc.hex()
    return None


def elf_comment(path: Path) -> str:
    """The .comment section of an ELF file (compiler identification), NULs as newlines."""
    with path.open("rb") as f:
        for name, _typ, off, size in _elf_sections(f):
            if name == ".comment":
                f.seek(off)
                parts = [p.decode(errors="replace") for p in f.read(size).split(b"\0") if p]
                return "\n".join(dict.fromkeys(parts))
    return ""
