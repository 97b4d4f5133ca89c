"""Print how long the debuginfo layer takes to open a vmlinux and load its tables (not a test).

    python benchmarks/debuginfo_load.py [VMLINUX]
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crashtui.debuginfo.vmlinux import Vmlinux  # noqa: E402

T = TypeVar("T")

DEFAULT = (Path.home() / ".cache/crashtui-tests/vmlinux/3b43fad5034874490492495d552c0af6a5fab235"
           / "vmlinux-6.1.0-56-cloud-amd64")


def timed(label: str, fn: Callable[[], T]) -> T:
    """Run fn, print its wall time, return its result."""
    t0 = time.perf_counter()
    result = fn()
    print(f"{label:<44} {(time.perf_counter() - t0) * 1000:8.1f} ms")
    return result


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    vm = timed("open (mmap + ELF headers)", lambda: Vmlinux(path))
    timed("build-id", lambda: vm.build_id)
    syms = timed("symbols (.symtab -> numpy, sorted)", lambda: vm.symbols)
    timed("symbol name index (first address_of)", lambda: vm.symbols.address_of("init_task"))
    timed("release (linux_banner)", lambda: vm.release)
    btf = timed("BTF header + index pass", lambda: vm.btf)
    timed("BTF struct task_struct (first lookup)", lambda: vm.btf and vm.btf.struct("task_struct"))
    timed("BTF enumerator index", lambda: vm.btf and vm.btf.enumerator("NR_FILE_PAGES"))
    orc = timed("ORC tables -> numpy", lambda: vm.orc)
    addr = vm.symbols.address_of("__schedule") or 0
    timed("1000 x symbols.nearest", lambda: [vm.symbols.nearest(addr + i) for i in range(1000)])
    timed("1000 x orc.lookup", lambda: [vm.orc and vm.orc.lookup(addr + i) for i in range(1000)])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{syms!r}, {len(btf) if btf else 0} BTF types, {orc!r}; peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
