"""Dumps compressed as a whole file (issue 17): the 6.1-sysrq sample's ELF vmcore ships as
.xz; it opens as it is (decompressed once into the cache), and what cannot be is one line."""

from __future__ import annotations

import gzip
import lzma
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard
from conftest import ROOT, SAMPLES, vmlinux_of

from crashtui.dumpfile import open_dump
from crashtui.dumpfile.wholefile import COMPRESSIONS, compression_of, decompressed_copy
from crashtui.errors import DumpFormatError

XZ = next((SAMPLES / "6.1-sysrq").glob("vmcore-d31.elf.*.xz"))


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRASHTUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dumps"


@pytest.fixture(scope="module")
def elf_bytes() -> bytes:
    with lzma.open(XZ) as f:
        return f.read()


def crashtui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})


def test_magic_bytes_name_the_compression() -> None:
    with XZ.open("rb") as f:
        assert compression_of(f.read(16)).name == "xz"  # type: ignore[union-attr]
    assert compression_of(gzip.compress(b"x")).name == "gzip"  # type: ignore[union-attr]
    assert compression_of(zstandard.compress(b"x")).name == "zstd"  # type: ignore[union-attr]
    assert compression_of(b"BZh91AY&SY").name == "bzip2"  # type: ignore[union-attr]
    assert compression_of(b"BZhx") is None and compression_of(b"\x7fELF") is None
    assert {c.name for c in COMPRESSIONS} == {"xz", "gzip", "zstd", "bzip2"}


def test_the_real_xz_vmcore_opens_as_the_elf_it_holds(cache: Path, elf_bytes: bytes) -> None:
    dump = open_dump(XZ)
    try:
        assert dump.info.format.startswith("elf") and dump.path == XZ
        copies = list(cache.iterdir())
        assert len(copies) == 1 and copies[0].read_bytes() == elf_bytes
        assert dump.info.partial and dump.info.nr_cpus in (None, 4)
    finally:
        dump.close()
    inode = copies[0].stat().st_ino
    open_dump(XZ).close()  # the second open reuses the copy (not written again)
    assert list(cache.iterdir()) == copies and copies[0].stat().st_ino == inode


def test_sys_of_the_xz_dump_equals_the_kdump_dump() -> None:
    vmlinux = str(vmlinux_of("6.1-sysrq"))
    kdump = next((SAMPLES / "6.1-sysrq").glob("dump.*"))
    plain = crashtui(str(kdump), vmlinux, "-c", "sys", "-c", "bt")
    # crash's order (vmlinux first) works for a compressed dump too
    xz = crashtui(vmlinux, str(XZ), "-c", "sys", "-c", "bt")
    assert plain.returncode == 0 and xz.returncode == 0, xz.stderr

    def body(out: str) -> list[str]:
        return [ln for ln in out.splitlines() if "DUMPFILE" not in ln]

    assert body(xz.stdout) == body(plain.stdout)
    assert f"DUMPFILE: {XZ}" in xz.stdout  # the file the user named, not the cache copy
    assert "decompressing vmcore-d31.elf" in xz.stderr and "(xz)" in xz.stderr
    again = crashtui(str(XZ), vmlinux, "-c", "sys")
    assert again.returncode == 0 and "decompressing" not in again.stderr
    assert again.stdout and xz.stdout.startswith(again.stdout)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_gzip_and_zstd_copies_of_the_real_vmcore_open(tmp_path: Path, kind: str,
                                                     elf_bytes: bytes) -> None:
    name = tmp_path / ("vmcore.gz" if kind == "gzip" else "vmcore.zst")
    name.write_bytes(gzip.compress(elf_bytes, 1) if kind == "gzip"
                     else zstandard.ZstdCompressor(level=1).compress(elf_bytes))
    dump = open_dump(name)
    try:
        assert dump.info.format.startswith("elf") and dump.path == name
    finally:
        dump.close()


def test_cache_off_names_file_compression_and_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHTUI_CACHE", "off")
    with pytest.raises(DumpFormatError) as err:
        open_dump(XZ)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{XZ}: xz-compressed dump")
    assert f"xz -dc {XZ} > {str(XZ)[:-3]}" in text


def test_bzip2_without_cache_names_bzip2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHTUI_CACHE", "off")
    f = tmp_path / "vmcore"
    f.write_bytes(b"BZh91AY&SY" + bytes(100))
    with pytest.raises(DumpFormatError, match=r"bzip2-compressed dump .*bzip2 -dc \S+vmcore "
                       r"> \S+vmcore\.vmcore"):
        open_dump(f)


def test_a_truncated_xz_is_damaged_and_nothing_is_kept(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "vmcore.xz"
    bad.write_bytes(XZ.read_bytes()[: 3 << 20])
    with pytest.raises(DumpFormatError, match=r"xz-compressed dump is damaged .* nothing kept"):
        open_dump(bad)
    assert list(cache.iterdir()) == []


def test_a_compressed_file_that_is_no_dump(tmp_path: Path, cache: Path) -> None:
    bad = tmp_path / "notes.txt.xz"
    bad.write_bytes(lzma.compress(b"hello, not a vmcore\n" * 100))
    with pytest.raises(DumpFormatError, match=r"xz-compressed, but what it holds is no dump"):
        open_dump(bad)
    assert list(cache.iterdir()) == []


def test_free_space_is_checked_before(tmp_path: Path, cache: Path) -> None:
    c = compression_of(b"\xfd7zXZ\x00")
    assert c is not None
    with pytest.raises(DumpFormatError, match=r"dump of 126 MiB, and .* has 100 MiB free; "
                       r"decompress it with: xz -dc"):
        decompressed_copy(XZ, c, free_space=lambda _p: 100 << 20)
    assert list(cache.iterdir()) == []


def test_free_space_is_checked_while_writing(tmp_path: Path, cache: Path,
                                             elf_bytes: bytes) -> None:
    """gzip does not record the size: the copy stops when the file system fills."""
    gz = tmp_path / "vmcore.gz"
    gz.write_bytes(gzip.compress(elf_bytes[: 64 << 20], 1))
    c = compression_of(gz.read_bytes()[:4])
    assert c is not None
    calls: list[Any] = []

    def free(_p: Path) -> int:
        calls.append(_p)
        return (1 << 40) if len(calls) == 1 else (1 << 20)

    with pytest.raises(DumpFormatError, match=r"ran out of free space after \d+ MiB"):
        decompressed_copy(gz, c, free_space=free)
    assert list(cache.iterdir()) == []


def test_a_changed_file_replaces_its_old_copy(tmp_path: Path, cache: Path) -> None:
    mine = tmp_path / "vmcore.xz"
    mine.write_bytes(XZ.read_bytes())
    open_dump(mine).close()
    first = list(cache.iterdir())
    os.utime(mine, ns=(1_000_000_000, 1_000_000_000))
    open_dump(mine).close()
    second = list(cache.iterdir())
    assert len(first) == len(second) == 1 and first != second


def test_the_cache_keeps_the_three_most_recently_used(tmp_path: Path, cache: Path,
                                                      elf_bytes: bytes) -> None:
    head = gzip.compress(elf_bytes[: 1 << 20], 1)  # the vmcore's first MiB: still an ELF
    c = compression_of(head)
    assert c is not None
    copies = []
    for n in range(4):
        mine = tmp_path / f"vmcore{n}.gz"
        mine.write_bytes(head)
        copies.append(decompressed_copy(mine, c))
        os.utime(copies[-1], ns=((n + 1) * 10**9, (n + 1) * 10**9))  # an older use
        if n == 1:  # the first is used again: the most recent now
            assert decompressed_copy(tmp_path / "vmcore0.gz", c) == copies[0]
    assert sorted(cache.iterdir()) == sorted([copies[0], copies[2], copies[3]])
    # a partial copy a killed run left is removed an hour later, a fresh one kept
    old, fresh = cache / ".vmcore.1234.part", cache / ".vmcore.5678.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (1, 1))
    (tmp_path / "vmcore9.gz").write_bytes(head)
    decompressed_copy(tmp_path / "vmcore9.gz", c)
    assert not old.exists() and fresh.exists()
