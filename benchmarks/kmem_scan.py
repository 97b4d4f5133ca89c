"""Time `kmem -i`'s mem_map scan (SHARED/slab pages) in ms per GiB of guest RAM.

    python benchmarks/kmem_scan.py [--runs 3] [--old] DUMP VMLINUX [DUMP VMLINUX ...]

Each run is a fresh process (the dump's page cache and the page-table cache start empty);
the BTF lookups the scan needs are made before the clock starts. `--old` also times the
former scan (Kernel.read of each section, page by page) for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
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
t0 = time.process_time(); w0 = time.perf_counter()
res = m.shared_pages()
print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "ram": m.totalram() * k.vmcoreinfo.page_size, "result": res}))
"""


def run(dump: str, vmlinux: str, mode: str, python: str = sys.executable) -> dict:
    """One fresh process timing the scan ("new") or the former one ("old")."""
    out = subprocess.run([python, "-c", CHILD, dump, vmlinux, mode],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--old", action="store_true", help="also time the former scan")
    ap.add_argument("pairs", nargs="+", metavar="DUMP VMLINUX")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give DUMP VMLINUX pairs")
    print("| dump | RAM (GiB) | scan | CPU ms (median) | wall ms | CPU ms/GiB | 1 TiB projected |")
    print("|---|---|---|---|---|---|---|")
    for dump, vml in zip(a.pairs[::2], a.pairs[1::2], strict=True):
        for mode in (["new", "old"] if a.old else ["new"]):
            rs = [run(dump, vml, mode) for _ in range(a.runs)]
            gib = rs[0]["ram"] / 2**30
            cpu = statistics.median(r["cpu"] for r in rs) * 1000
            wall = statistics.median(r["wall"] for r in rs) * 1000
            per = cpu / gib
            print(f"| {dump.split('/')[-2] if '/' in dump else dump} | {gib:.2f} | {mode} | "
                  f"{cpu:.0f} | {wall:.0f} | {per:.1f} | {per * 1024 / 1000:.1f} s |")


if __name__ == "__main__":
    main()
