"""Print how long DWARF line/function lookups take on a vmlinux (not a test).

    python benchmarks/dwarf_lines.py [VMLINUX] [N_RANDOM]

Cold = first lookup in a compilation unit (decodes its line program / walks its top-level
DIEs); warm = the same unit again (cached numpy rows / function index).
"""

from __future__ import annotations

import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crashtui.debuginfo.dwarf import DwarfLines  # noqa: E402
from crashtui.debuginfo.elf import ElfImage  # noqa: E402
from crashtui.debuginfo.symbols import SymbolTable  # noqa: E402

T = TypeVar("T")

DEFAULT = (Path.home() / ".cache/crashtui-tests/vmlinux/3b43fad5034874490492495d552c0af6a5fab235"
           / "vmlinux-6.1.0-56-cloud-amd64")

FUNCTIONS = ["sysrq_handle_crash", "machine_kexec", "do_one_initcall", "page_fault_oops",
             "copy_process", "__schedule", "ext4_fill_super", "tcp_sendmsg_locked"]


def ms(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's result and wall time in milliseconds."""
    t0 = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - t0) * 1000


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    n_random = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    image = ElfImage(path)
    symbols = SymbolTable.from_elf(image)
    dl, t = ms(lambda: DwarfLines(image))
    print(f"{'open (section views, no decoding)':<46} {t:8.1f} ms")
    _, t = ms(lambda: dl.unit_index)
    print(f"{'.debug_aranges -> sorted numpy index':<46} {t:8.1f} ms  ({len(dl.unit_index)} ranges)")
    print()
    print(f"{'function':<24} {'rows':>6} {'line cold':>10} {'line warm':>10} {'func cold':>10}"
          f" {'func warm':>10}")
    for name in FUNCTIONS:
        addr = symbols.address_of(name)
        if addr is None:
            continue
        addr += 0x10
        _, lc = ms(lambda a=addr: dl.source_line(a))
        _, lw = ms(lambda a=addr: dl.source_line(a))
        _, fc = ms(lambda a=addr: dl.function_at(a))
        _, fw = ms(lambda a=addr: dl.function_at(a))
        unit = dl.unit_for(addr)
        hr = dl._line_rows(unit) if unit is not None else None
        rows = len(hr[1]) if hr else 0
        print(f"{name:<24} {rows:>6} {lc:>8.1f}ms {lw:>8.1f}ms {fc:>8.1f}ms {fw:>8.1f}ms")

    # random addresses inside random functions, each with a cold cache
    funcs = [s for s in symbols if s.kind == "func" and s.size > 8]
    rng = random.Random(1)
    lines_t: list[float] = []
    funcs_t: list[float] = []
    for sym in rng.sample(funcs, min(n_random, len(funcs))):
        fresh = DwarfLines(image)
        fresh._index = dl.unit_index  # share the aranges index: measure the per-CU work
        addr = sym.address + rng.randrange(sym.size)
        _, t = ms(lambda a=addr, f=fresh: f.source_line(a))
        lines_t.append(t)
        _, t = ms(lambda a=addr, f=fresh: f.function_at(a))
        funcs_t.append(t)
    for label, ts in (("source_line, cold CU", lines_t), ("function_at, cold CU", funcs_t)):
        ts.sort()
        print(f"{label:<24} {len(ts)} random addresses: median {statistics.median(ts):.1f} ms,"
              f" p90 {ts[int(len(ts) * 0.9)]:.1f} ms, max {ts[-1]:.1f} ms")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
