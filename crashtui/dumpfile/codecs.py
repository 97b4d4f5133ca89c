"""Page codecs of kdump-compressed dumps (page_desc.flags), imported only when used, and
the batch decoder that inflates many pages on a thread pool (each codec library here lets
other threads run while it decodes)."""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# diskdump_mod.h: DUMP_DH_COMPRESSED_* (also page_desc_t.flags)
ZLIB = 0x1
LZO = 0x2
SNAPPY = 0x4
ZSTD = 0x20
CODEC_FLAGS = {ZLIB: "zlib", LZO: "lzo", SNAPPY: "snappy", ZSTD: "zstd"}
ALL_CODECS = ZLIB | LZO | SNAPPY | ZSTD

THREADS_ENV = "CRASHTUI_THREADS"  # decoder threads (default: the CPUs this process may use)
MAX_THREADS = 16
MIN_BATCH = 64  # pages a thread is given at least: fewer are decoded in the caller

_state: dict[str, Any] = {}
_state_lock = threading.Lock()
_local = threading.local()


class CodecError(Exception):
    """A page could not be decompressed (damaged data or unknown codec)."""


def codec_names(flags: int) -> frozenset[str]:
    """Names of the codecs whose bits are set in `flags`."""
    return frozenset(name for bit, name in CODEC_FLAGS.items() if flags & bit)


def zlib_module() -> Any:
    """The module pages are inflated with: python-isal's isal_zlib (ISA-L, about a third
    less CPU per page) when installed, else the standard zlib."""
    mod = _state.get("zlib")
    if mod is None:
        try:
            from isal import isal_zlib as mod
        except ImportError:
            mod = zlib
        _state["zlib"] = mod
    return mod


def _zlib(data: bytes | memoryview, size: int) -> bytes:
    """Inflate at most one byte more than a page (a zlib bomb stops there)."""
    inflater = zlib_module().decompressobj()
    page = inflater.decompress(data, size + 1)
    if len(page) == size and not inflater.eof:
        raise zlib.error("stream does not end after one page (truncated or corrupt)")
    return bytes(page)


def _lzo(data: bytes | memoryview, size: int) -> bytes:
    from lzallright import LZOCompressor

    return bytes(LZOCompressor.decompress(data, output_size_hint=size))


def _snappy(data: bytes | memoryview, size: int) -> bytes:
    import cramjam

    return bytes(cramjam.snappy.decompress_raw(data))


def _zstd(data: bytes | memoryview, size: int) -> bytes:
    import zstandard

    dctx = getattr(_local, "zstd", None)
    if dctx is None:  # a context costs more to make than a page to decode: one per thread
        dctx = _local.zstd = zstandard.ZstdDecompressor()
    return bytes(dctx.decompress(data, max_output_size=size))


_DECODERS: dict[int, Callable[[bytes | memoryview, int], bytes]] = {
    ZLIB: _zlib, LZO: _lzo, SNAPPY: _snappy, ZSTD: _zstd,
}


def decompress_page(flags: int, data: bytes | memoryview, page_size: int) -> bytes:
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


def decoder_threads() -> int:
    """How many threads decode pages: $CRASHTUI_THREADS, else the CPUs this process may
    run on (at most MAX_THREADS)."""
    raw = os.environ.get(THREADS_ENV, "")
    if raw.strip().isdigit() and int(raw) > 0:
        return min(int(raw), MAX_THREADS)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_THREADS))


def _pool(threads: int) -> ThreadPoolExecutor:
    """The shared decoder pool (made on first use, remade if the thread count changes)."""
    with _state_lock:
        pool = _state.get("pool")
        if pool is None or _state.get("pool_threads") != threads:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = _state["pool"] = ThreadPoolExecutor(threads, "crashtui-inflate",
                                                       initializer=_mark_decoder_thread)
            _state["pool_threads"] = threads
        return pool


def _mark_decoder_thread() -> None:
    _local.decoder = True


def on_decoder_thread() -> bool:
    """True on one of the pool's threads (work there is not handed to the pool again)."""
    return getattr(_local, "decoder", False)


def map_on_decoder_threads(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], the items spread over the decoder threads (a scan of
    many large reads, each decoding its own pages inline); in the caller alone when there is
    one thread or it is a decoder thread itself."""
    todo = list(items)
    threads = decoder_threads()
    if threads < 2 or len(todo) < 2 or on_decoder_thread():
        return [fn(item) for item in todo]
    return list(_pool(threads).map(fn, todo))


def decompress_into(out: bytearray, pages: Sequence[tuple[int, int, int, int]],
                    data: bytes | bytearray, page_size: int) -> int:
    """Decode each (position in out, position in data, size, flags) page into `out`, on
    the decoder threads when there are many; a page that does not decode stays zeros
    (callers pass only descriptors that look valid). Returns how many did not decode."""
    threads = decoder_threads()
    if threads < 2 or len(pages) < 2 * MIN_BATCH or on_decoder_thread():
        return _decode_run(out, pages, data, page_size)
    per = max(MIN_BATCH, -(-len(pages) // threads))
    runs = [pages[i:i + per] for i in range(0, len(pages), per)]
    pool = _pool(threads)
    futures = [pool.submit(_decode_run, out, run, data, page_size) for run in runs[1:]]
    bad = _decode_run(out, runs[0], data, page_size)  # the caller decodes a share too
    return bad + sum(f.result() for f in futures)


def _decode_run(out: bytearray, pages: Sequence[tuple[int, int, int, int]],
                data: bytes | bytearray, page_size: int) -> int:
    """decompress_into's work on one thread: the pages it is given, in order (zlib pages
    inflated inline: the per-page calls of decompress_page cost a fifth of the time)."""
    bad = 0
    new_inflater = zlib_module().decompressobj
    limit = page_size + 1  # a zlib bomb stops one byte past the page
    with memoryview(data) as view:
        for at, offset, size, flags in pages:
            chunk = view[offset:offset + size]
            if flags == ZLIB:
                inflater = new_inflater()
                try:
                    page = inflater.decompress(chunk, limit)
                except Exception:  # noqa: BLE001 - zlib.error, isal's IsalError
                    bad += 1
                    continue
                if len(page) != page_size or not inflater.eof:
                    bad += 1
                    continue
                out[at:at + page_size] = page
                continue
            try:
                out[at:at + page_size] = decompress_page(flags, chunk, page_size)
            except CodecError:
                bad += 1
    return bad
