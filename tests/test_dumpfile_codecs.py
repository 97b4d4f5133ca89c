"""Page codecs: lazy imports, damaged data, and snappy (which no makedumpfile here writes)."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from dumpfile_fixtures import recode_kdump

from crashtui.dumpfile import open_dump
from crashtui.dumpfile.codecs import LZO, SNAPPY, ZLIB, ZSTD, CodecError, decompress_page

PAGE = bytes(range(256)) * 16


def test_snappy_pages(sysrq_dump: Path, tmp_path: Path) -> None:
    """The real dump's pages re-encoded as raw snappy blocks read back byte for byte.

    Debian's makedumpfile 1.7.2 and 1.7.6 are both built without snappy, so this is the
    only snappy evidence; the data is cramjam's (Google snappy's raw block format).
    """
    import cramjam

    path = recode_kdump(sysrq_dump, tmp_path / "snappy",
                        lambda page: bytes(cramjam.snappy.compress_raw(page)), SNAPPY)
    with open_dump(path) as dump, open_dump(sysrq_dump) as ref:
        assert dump.info.compression == frozenset({"snappy"})
        assert dump.vmcoreinfo == ref.vmcoreinfo and dump.notes == ref.notes
        present = [p for p in range(ref.info.max_pfn) if ref.is_present(p)]
        assert present == [p for p in range(dump.info.max_pfn) if dump.is_present(p)]
        for pfn in present[::50]:
            assert dump.read_phys(pfn * 4096, 4096) == ref.read_phys(pfn * 4096, 4096)


def test_each_codec_round_trip() -> None:
    import cramjam
    import zstandard
    from lzallright import LZOCompressor

    encoded = {
        ZLIB: zlib.compress(PAGE),
        LZO: LZOCompressor().compress(PAGE),
        SNAPPY: bytes(cramjam.snappy.compress_raw(PAGE)),
        ZSTD: zstandard.ZstdCompressor().compress(PAGE),
    }
    for flag, data in encoded.items():
        assert decompress_page(flag, data, len(PAGE)) == PAGE


@pytest.mark.parametrize("flag,name", [(ZLIB, "zlib"), (LZO, "lzo"), (SNAPPY, "snappy"),
                                       (ZSTD, "zstd")])
def test_garbage_and_wrong_size(flag: int, name: str) -> None:
    with pytest.raises(CodecError, match=f"{name} data does not decompress"):
        decompress_page(flag, b"\xff" * 40, 4096)
    with pytest.raises(CodecError, match=f"{name} page decompressed to 2048 bytes, not 4096"):
        decompress_page(flag, _encode(flag, PAGE[:2048]), 4096)


def _encode(flag: int, data: bytes) -> bytes:
    import cramjam
    import zstandard
    from lzallright import LZOCompressor

    if flag == ZLIB:
        return zlib.compress(data)
    if flag == LZO:
        return LZOCompressor().compress(data)
    if flag == SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    return zstandard.ZstdCompressor().compress(data)


def test_unknown_and_combined_flags() -> None:
    with pytest.raises(CodecError, match="unknown page compression flags 0x3"):
        decompress_page(ZLIB | LZO, zlib.compress(PAGE), 4096)


def test_missing_codec_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(CodecError, match="zstd support is not installed"):
        decompress_page(ZSTD, b"x", 4096)


def test_codecs_are_imported_lazily(sysrq_dump: Path) -> None:
    code = (
        "import sys\n"
        "from crashtui.dumpfile import open_dump\n"
        f"d = open_dump({str(sysrq_dump)!r})\n"
        "d.read_phys(0x1000, 4096)\n"
        "print(sorted(m for m in ('zstandard', 'lzallright', 'cramjam') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
