"""Page codecs of kdump-compressed dumps (page_desc.flags), imported only when used."""

from __future__ import annotations

import zlib
from collections.abc import Callable

# diskdump_mod.h: DUMP_DH_COMPRESSED_* (also page_desc_t.flags)
ZLIB = 0x1
LZO = 0x2
SNAPPY = 0x4
ZSTD = 0x20
CODEC_FLAGS = {ZLIB: "zlib", LZO: "lzo", SNAPPY: "snappy", ZSTD: "zstd"}
ALL_CODECS = ZLIB | LZO | SNAPPY | ZSTD


class CodecError(Exception):
    """A page could not be decompressed (damaged data or unknown codec)."""


def codec_names(flags: int) -> frozenset[str]:
    """Names of the codecs whose bits are set in `flags`."""
    return frozenset(name for bit, name in CODEC_FLAGS.items() if flags & bit)


def _zlib(data: bytes, size: int) -> bytes:
    """Inflate at most one byte more than a page (a zlib bomb stops there)."""
    inflater = zlib.decompressobj()
    page = inflater.decompress(data, size + 1)
    if len(page) == size and not inflater.eof:
        raise zlib.error("stream does not end after one page (truncated or corrupt)")
    return page


def _lzo(data: bytes, size: int) -> bytes:
    from lzallright import LZOCompressor

    return bytes(LZOCompressor.decompress(data, output_size_hint=size))


def _snappy(data: bytes, size: int) -> bytes:
    import cramjam

    return bytes(cramjam.snappy.decompress_raw(data))


def _zstd(data: bytes, size: int) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)


_DECODERS: dict[int, Callable[[bytes, int], bytes]] = {
    ZLIB: _zlib, LZO: _lzo, SNAPPY: _snappy, ZSTD: _zstd,
}


def decompress_page(flags: int, data: bytes, page_size: int) -> bytes:
    """Decode one page stored with codec `flags`; raises CodecError on any failure."""
    codec = flags
    decode = _DECODERS.get(codec)
    if decode is None:
        raise CodecError(f"unknown page compression flags {flags:#x}")
    try:
        page = decode(data, page_size)
    except ImportError as exc:
        raise CodecError(f"{CODEC_FLAGS[codec]} support is not installed ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - each library raises its own error types
        raise CodecError(f"{CODEC_FLAGS[codec]} data does not decompress ({exc})") from exc
    if len(page) != page_size:
        raise CodecError(
            f"{CODEC_FLAGS[codec]} page decompressed to {len(page)} bytes, not {page_size}")
    return page
