"""Time `kmem -i`'s mem_map scan (SHARED/slab pages) per GiB of guest RAM.

    python benchmarks/kmem_scan.py [--runs 3] [--threads 1,4] [--old] DUMP VMLINUX [...]

Each run is a fresh process (the dump's page cache and the page-table cache start empty);
the BTF lookups the scan needs are made before the clock starts. Per dump it prints the
format, the page codec (and the zlib inflater: isal or zlib), the guest's RAM (totalram),
CPU time (every thread's) and wall time, per GiB and projected to 1 TiB, for each decoder
thread count (CRASHTUI_THREADS). `--old` also times the former scan (Kernel.read of each
section, page by page) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from crashtui.dumpfile.codecs import decoder_threads, zlib_module
from crashtui.errors import CrashtuiError
from crashtui.kernel.mm import _Kmem
from crashtui.kernel.program import Kernel

def old_fields(m, mem_map, count, page_size, o_flags, o_count):
    size = count * page_size
    try:
        buf = bytearray(m.k.read(mem_map, size))
    except CrashtuiError:
        buf = bytearray(size)
        for pos in range(0, size, 0x1000):
            try:
                buf[pos:pos + 0x1000] = m.k.read(mem_map + pos, min(0x1000, size - pos))
            except CrashtuiError:
                continue
    rows = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(count, page_size)
    return (rows[:, o_flags:o_flags + 8].copy().view("<u8").ravel(),
            rows[:, o_count:o_count + 4].copy().view("<i4").ravel())

k = Kernel.open(sys.argv[1], sys.argv[2])
m = _Kmem(k)
if sys.argv[3] == "old":
    m._page_fields = lambda *a: old_fields(m, *a)
for name in ("PG_reserved", "PG_slab", "SECTION_MAP_LAST_BIT"):  # BTF enum index, untimed
    try:
        k.btf.enumerator(name)
    except CrashtuiError:
        pass
k.sizeof("struct page"), k.offsetof("page", "flags")
codecs = sorted(k.dump.info.compression)
t0 = time.process_time(); w0 = time.perf_counter()
res = m.shared_pages()
print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "ram": m.totalram() * k.vmcoreinfo.page_size, "result": res,
                  "format": k.dump.info.format,
                  "codec": ",".join(codecs) or "none",
                  "inflater": zlib_module().__name__.split(".")[-1] if "zlib" in codecs
                  else "", "threads": decoder_threads()}))
"""


def run(dump: str, vmlinux: str, mode: str, python: str = sys.executable,
        threads: int | None = None) -> dict:
    """One fresh process timing the scan ("new") or the former one ("old"), with `threads`
    decoder threads (None: the default, the CPUs the process may use)."""
    env = dict(os.environ)
    if threads is not None:
        env["CRASHTUI_THREADS"] = str(threads)
    out = subprocess.run([python, "-c", CHILD, dump, vmlinux, mode],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(rs: list[dict]) -> dict:
    """Medians of some runs of one dump and mode: per GiB and projected to 1 TiB."""
    gib = rs[0]["ram"] / 2**30
    cpu = statistics.median(r["cpu"] for r in rs)
    wall = statistics.median(r["wall"] for r in rs)
    codec = rs[0]["codec"] + (f" ({rs[0]['inflater']})" if rs[0].get("inflater") else "")
    return {"format": rs[0]["format"], "codec": codec, "gib": gib, "cpu": cpu, "wall": wall,
            "threads": rs[0]["threads"], "cpu_gib": cpu / gib if gib else None,
            "wall_gib": wall / gib if gib else None, "result": rs[0]["result"]}


HEADER = ["| dump | format | codec | RAM (GiB) | scan | threads | CPU ms | wall ms "
          "| CPU ms/GiB | wall ms/GiB | 1 TiB: CPU s | 1 TiB: wall s |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def row(name: str, mode: str, s: dict) -> str:
    """One table line of `summary`'s figures."""
    cg, wg = s["cpu_gib"] or 0, s["wall_gib"] or 0
    return (f"| {name} | {s['format']} | {s['codec']} | {s['gib']:.2f} | {mode} | "
            f"{s['threads']} | {s['cpu'] * 1000:.0f} | {s['wall'] * 1000:.0f} | "
            f"{cg * 1000:.1f} | {wg * 1000:.1f} | {cg * 1024:.1f} | {wg * 1024:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="",
                    help="decoder thread counts to time, e.g. 1,4 (default: the default)")
    ap.add_argument("--old", action="store_true", help="also time the former scan")
    ap.add_argument("pairs", nargs="+", metavar="DUMP VMLINUX")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give DUMP VMLINUX pairs")
    counts: list[int | None] = [int(t) for t in a.threads.split(",") if t] or [None]
    print("\n".join(HEADER))
    for dump, vml in zip(a.pairs[::2], a.pairs[1::2], strict=True):
        name = dump.split("/")[-2] if "/" in dump else dump
        for mode in (["new", "old"] if a.old else ["new"]):
            for threads in counts if mode == "new" else [1]:
                rs = [run(dump, vml, mode, threads=threads) for _ in range(a.runs)]
                print(row(name, mode, summary(rs)), flush=True)


if __name__ == "__main__":
    main()
