"""Helpers for the robustness tests (damaged copies of real dumps, memory overlays), tested.

- `KdumpLayout` finds the parts of a real kdump file with struct alone;
- `rewrite_pages` stores new contents for some pages of a real dump (appended, zlib), so
  a test can plant a corrupt or hostile page and run the real CLI on the file;
- `overlay` patches (or makes unreadable) kernel virtual memory of an open Kernel;
- `cli` runs `crashtui ...` in this process and returns the exit status and output.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crashtui.errors import KernelReadError
from crashtui.kernel.program import Kernel

ZLIB = 1


@dataclass(frozen=True)
class KdumpLayout:
    """Where the parts of a kdump-compressed file are, read with struct (not crashtui)."""

    size: int
    block_size: int
    bitmap_off: int
    bitmap_len: int
    desc_off: int
    nr_dumped: int
    note_off: int
    note_size: int
    vmcoreinfo_off: int
    vmcoreinfo_size: int
    bitmap2: bytes

    @classmethod
    def of(cls, path: Path) -> KdumpLayout:
        with path.open("rb") as f:
            head = f.read(2 * 4096)
            _status, bs, sub_blocks, bitmap_blocks = struct.unpack_from("<IiiI", head, 424)
            off_vmci, size_vmci, off_note, size_note = struct.unpack_from("<qQqQ", head, bs + 32)
            bitmap_off = bs * (1 + sub_blocks)
            bitmap_len = bs * bitmap_blocks
            f.seek(bitmap_off + bitmap_len // 2)
            bitmap2 = f.read(bitmap_len // 2)
            f.seek(0, 2)
            size = f.tell()
        nr = sum(bin(b).count("1") for b in bitmap2)
        return cls(size, bs, bitmap_off, bitmap_len, bitmap_off + bitmap_len, nr, off_note,
                   size_note, off_vmci, size_vmci, bitmap2)

    def desc_index(self, pfn: int) -> int:
        """The index of pfn's page descriptor (dumped pages before it in bitmap 2)."""
        assert self.bitmap2[pfn >> 3] >> (pfn & 7) & 1, f"pfn {pfn:#x} is not dumped"
        whole = sum(bin(b).count("1") for b in self.bitmap2[:pfn >> 3])
        return whole + bin(self.bitmap2[pfn >> 3] & ((1 << (pfn & 7)) - 1)).count("1")

    def desc_pos(self, pfn: int) -> int:
        """File offset of pfn's page descriptor."""
        return self.desc_off + 24 * self.desc_index(pfn)

    def descriptor(self, path: Path, pfn: int) -> tuple[int, int, int]:
        """(offset, size, flags) of pfn's page data."""
        with path.open("rb") as f:
            f.seek(self.desc_pos(pfn))
            offset, size, flags, _ = struct.unpack("<qIIQ", f.read(24))
        return offset, size, flags


def copy_with(source: Path, target: Path, patches: dict[int, bytes] | None = None,
              size: int | None = None) -> Path:
    """Copy `source` (its first `size` bytes) to `target` and overwrite bytes in place."""
    if size is None:
        shutil.copyfile(source, target)
    else:
        with source.open("rb") as fin, target.open("wb") as fout:
            fout.write(fin.read(size))
    with target.open("r+b") as f:
        for offset, raw in (patches or {}).items():
            f.seek(offset)
            f.write(raw)
    return target


def rewrite_pages(path: Path, pages: dict[int, bytes]) -> None:
    """Store new 4 KiB contents for dumped pfns of a kdump file: zlib data appended at the end,
    each descriptor pointed at it (the rest of the file is untouched)."""
    layout = KdumpLayout.of(path)
    with path.open("r+b") as f:
        for pfn, page in pages.items():
            assert len(page) == layout.block_size
            packed = zlib.compress(page)
            end = f.seek(0, 2)
            f.write(packed)
            f.seek(layout.desc_pos(pfn))
            f.write(struct.pack("<qII", end, len(packed), ZLIB))


def page_of(path: Path, pfn: int) -> bytes:
    """The decoded contents of a dumped page (read with crashtui's reader)."""
    from crashtui.dumpfile import open_dump

    with open_dump(path) as dump:
        return dump.read_phys(pfn * 4096, 4096)


def plant(path: Path, kernel: Kernel, vaddr: int, raw: bytes) -> None:
    """Write `raw` at kernel virtual address `vaddr` into a copy of a kdump file."""
    pages: dict[int, bytearray] = {}
    for i, byte in enumerate(raw):
        paddr = kernel.translate(vaddr + i)
        pfn, off = divmod(paddr, 4096)
        if pfn not in pages:
            pages[pfn] = bytearray(page_of(path, pfn))
        pages[pfn][off] = byte
    rewrite_pages(path, {pfn: bytes(page) for pfn, page in pages.items()})


class Overlay:
    """Patched view of a Kernel's virtual memory: bytes laid over it, ranges made unreadable."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.patches: list[tuple[int, bytes]] = []
        self.holes: list[tuple[int, int]] = []
        self._read = kernel.read

    def set(self, vaddr: int, raw: bytes) -> Overlay:
        self.patches.append((vaddr, raw))
        return self

    def set_u64(self, vaddr: int, value: int) -> Overlay:
        return self.set(vaddr, struct.pack("<Q", value & (1 << 64) - 1))

    def hole(self, vaddr: int, size: int) -> Overlay:
        self.holes.append((vaddr, vaddr + size))
        return self

    def read(self, vaddr: int, size: int) -> bytes:
        for lo, hi in self.holes:
            if vaddr < hi and lo < vaddr + size:
                raise KernelReadError(f"cannot read {max(lo, vaddr):#x}: corrupted by the test",
                                      max(lo, vaddr))
        out = bytearray(self._read(vaddr, size))
        for at, raw in self.patches:
            lo, hi = max(at, vaddr), min(at + len(raw), vaddr + size)
            if lo < hi:
                out[lo - vaddr:hi - vaddr] = raw[lo - at:hi - at]
        return bytes(out)


@contextlib.contextmanager
def overlay(kernel: Kernel) -> Iterator[Overlay]:
    """Route every read of `kernel` through an Overlay for the duration of the block."""
    view = Overlay(kernel)
    kernel.read = view.read  # type: ignore[method-assign]
    try:
        yield view
    finally:
        del kernel.read


@dataclass(frozen=True)
class CliResult:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def field(self, name: str) -> str:
        """The value of a `sys` line `NAME: value`."""
        for line in self.lines:
            key, sep, value = line.partition(": ")
            if sep and key.strip() == name:
                return value
        raise KeyError(name)

    @property
    def warnings(self) -> list[str]:
        return [line.partition(": ")[2] for line in self.lines
                if line.strip().startswith("WARNING:")]


def cli(*args: str | Path) -> CliResult:
    """Run crashtui's CLI in this process (as `crashtui ARGS`)."""
    from crashtui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return CliResult(status, out.getvalue(), err.getvalue())


def one_line_error(result: CliResult, status: int = 2) -> str:
    """Assert the run failed with exactly one `crashtui: ...` line and no traceback."""
    assert result.status == status, (result.status, result.err, result.out[:500])
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crashtui: "), result.err
    assert "Traceback" not in result.err and result.out == ""
    return lines[0]


# --- the helpers themselves -----------------------------------------------------------------


def test_layout_matches_crashtui(sysrq_dump: Path) -> None:
    from crashtui.dumpfile import open_dump

    layout = KdumpLayout.of(sysrq_dump)
    with open_dump(sysrq_dump) as dump:
        pfns = [p for p in range(4096) if dump.is_present(p)][:5]
        assert layout.desc_index(pfns[3]) == 3
        assert layout.vmcoreinfo_size > 0 and dump.vmcoreinfo


def test_rewrite_pages_and_overlay(sysrq_dump: Path, tmp_path: Path) -> None:
    path = copy_with(sysrq_dump, tmp_path / "dump")
    layout = KdumpLayout.of(path)
    pfn = next(p for p in range(0x1000, 0x2000) if layout.bitmap2[p >> 3] >> (p & 7) & 1)
    rewrite_pages(path, {pfn: b"\xab" * 4096})
    assert page_of(path, pfn) == b"\xab" * 4096
    kernel = Kernel.open(sysrq_dump)
    try:
        addr = kernel.vmcoreinfo.symbols["init_uts_ns"]
        before = kernel.read(addr, 16)
        with overlay(kernel) as view:
            view.set(addr + 4, b"XY")
            assert kernel.read(addr, 8)[4:6] == b"XY"
            view.hole(addr + 8, 1)
            with pytest.raises(KernelReadError):
                kernel.read_u64(addr + 8)
        assert kernel.read(addr, 16) == before
    finally:
        kernel.close()
