"""The floor under `kmem -i=shared` on a compressed kdump: decompressing its mem_map alone.

    python benchmarks/inflate_floor.py [--runs 5] DUMP VMLINUX

Collects the compressed blocks of every page of struct pages the scan reads (through the
scan itself, so exactly those pages), then times decompressing them, one call per page, with
each library that is importable here (isal, zlib, zlib-ng, libdeflate's `deflate`, cramjam,
zstandard, pyzstd, backports.zstd), best of `--runs`, single thread. Prints microseconds per
page and milliseconds per GiB of the guest's RAM: no scan of this dump can go below the
fastest, short of not reading the mem_map.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

from crashtui.dumpfile import kdump
from crashtui.kernel.mm import _Kmem
from crashtui.kernel.program import Kernel


def blocks(dump: str, vmlinux: str) -> tuple[list[bytes], int, float, str]:
    """(compressed blocks of the mem_map, page size, guest RAM in GiB, codec name)."""
    k = Kernel.open(dump, vmlinux)
    found: list[bytes] = []
    decode = kdump.decompress_into

    def grab(out: bytearray, pages: list[tuple[int, int, int, int]], data: bytes,
             page_size: int) -> int:
        found.extend(bytes(data[off:off + size]) for _, off, size, _ in pages)
        return decode(out, pages, data, page_size)

    kdump.decompress_into = grab  # type: ignore[assignment]
    try:
        m = _Kmem(k)
        m.shared_pages()
        gib = m.totalram() * k.vmcoreinfo.page_size / 2**30
    finally:
        kdump.decompress_into = decode
    return found, k.dump.info.page_size, gib, ",".join(sorted(k.dump.info.compression))


def decoders(codec: str, page_size: int) -> dict[str, Callable[[bytes], object]]:
    """One call per page for each importable library of `codec`."""
    out: dict[str, Callable[[bytes], object]] = {}

    def have(name: str) -> object | None:
        try:
            return importlib.import_module(name)
        except ImportError:
            return None

    if codec == "zlib":
        if isal := have("isal.isal_zlib"):
            out["isal_zlib.decompress"] = isal.decompress  # type: ignore[attr-defined]
        out["zlib.decompress"] = importlib.import_module("zlib").decompress
        if zng := have("zlib_ng.zlib_ng"):
            out["zlib_ng.decompress"] = zng.decompress  # type: ignore[attr-defined]
        if dfl := have("deflate"):
            out["libdeflate (deflate.zlib_decompress)"] = (
                lambda b: dfl.zlib_decompress(b, page_size))  # type: ignore[attr-defined]
        if cj := have("cramjam"):
            out["cramjam.zlib.decompress"] = cj.zlib.decompress  # type: ignore[attr-defined]
    elif codec == "zstd":
        if zs := have("zstandard"):
            dctx = zs.ZstdDecompressor()  # type: ignore[attr-defined]
            out["zstandard"] = dctx.decompress
        if pz := have("pyzstd"):
            out["pyzstd.decompress"] = pz.decompress  # type: ignore[attr-defined]
        if bz := have("backports.zstd"):
            out["backports.zstd.decompress"] = bz.decompress  # type: ignore[attr-defined]
        if cj := have("cramjam"):
            out["cramjam.zstd.decompress"] = cj.zstd.decompress  # type: ignore[attr-defined]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("dump")
    ap.add_argument("vmlinux")
    a = ap.parse_args()
    found, page_size, gib, codec = blocks(a.dump, a.vmlinux)
    print(f"{a.dump}: {len(found)} compressed mem_map pages ({codec}, mean "
          f"{sum(map(len, found)) / max(len(found), 1):.0f} bytes), guest RAM {gib:.2f} GiB")
    print("| library | µs per page | ms per GiB of RAM | 1 TiB |")
    print("|---|---|---|---|")
    for name, fn in decoders(codec, page_size).items():
        best = float("inf")
        for _ in range(a.runs):
            t0 = time.perf_counter()
            for b in found:
                fn(b)
            best = min(best, time.perf_counter() - t0)
        print(f"| {name} | {best * 1e6 / len(found):.2f} | {best * 1e3 / gib:.1f} | "
              f"{best * 1024 / gib:.1f} s |")


if __name__ == "__main__":
    main()
