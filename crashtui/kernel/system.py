"""System identity and clocks: utsname, wall time, uptime, load average, memory size, CPUs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

_UTS_LEN = 65  # struct new_utsname: six char[__NEW_UTS_LEN + 1] fields
FSHIFT = 11  # include/linux/sched/loadavg.h
FIXED_1 = 1 << FSHIFT
MAX_WALL_CLOCK = 253_402_300_799  # 9999-12-31T23:59:59Z, the last time strftime can show


@dataclass(frozen=True)
class Utsname:
    sysname: str
    nodename: str
    release: str
    version: str
    machine: str
    domainname: str


def read_utsname(kernel: Kernel) -> Utsname:
    """init_uts_ns.name: what `uname -a` said on the crashed machine."""
    base = kernel.symbol("init_uts_ns")
    try:
        base += kernel.offsetof("uts_namespace", "name")
    except CrashtuiError:
        pass  # without types: name is the first member of struct uts_namespace
    raw = kernel.read(base, _UTS_LEN * 6)
    fields = [raw[i * _UTS_LEN:(i + 1) * _UTS_LEN].split(b"\0", 1)[0].decode("utf-8", "replace")
              for i in range(6)]
    return Utsname(*fields)


def xtime_sec(kernel: Kernel) -> int:
    """Wall-clock seconds at the crash (tk_core.timekeeper.xtime_sec)."""
    base = _tk_core(kernel)
    try:
        o = kernel.offsetof("tk_data", "timekeeper.xtime_sec")
    except CrashtuiError:
        o = 8 + kernel.offsetof("timekeeper", "xtime_sec")  # struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }
    sec = kernel.read_s64(base + o)
    if not 0 <= sec <= MAX_WALL_CLOCK:
        raise KernelReadError(f"implausible wall clock: xtime_sec {sec}")
    return sec


def _tk_core(kernel: Kernel) -> int:
    """Address of the core timekeeper's struct tk_data: the variable `tk_core` up to 6.16,
    then `timekeeper_data[TIMEKEEPER_CORE]` (kernel/time/timekeeping.c: `#define tk_core`)."""
    base = kernel.symbol_or_none("tk_core")
    if base is not None:
        return base
    array = kernel.symbol_or_none("timekeeper_data")
    if array is None:
        raise KernelReadError("neither tk_core nor timekeeper_data is in the symbol table")
    index = 0  # TIMEKEEPER_CORE, the first of enum timekeeper_ids
    try:
        index = kernel.btf.enum("timekeeper_ids").get("TIMEKEEPER_CORE", 0)
    except CrashtuiError:
        pass
    return array + index * kernel.sizeof("struct tk_data")


def hz(kernel: Kernel) -> int:
    """The kernel's HZ, derived from tick_nsec = (NSEC_PER_SEC + HZ/2) / HZ."""
    try:
        tick = kernel.read_u64(kernel.symbol("tick_nsec"))
    except CrashtuiError:
        return 250
    value = round(1_000_000_000 / tick) if tick else 0
    if not 10 <= value <= 100_000:
        raise KernelReadError(f"implausible tick_nsec {tick} (HZ {value})")
    return value


def uptime_seconds(kernel: Kernel) -> int:
    """Seconds since boot from jiffies_64 (INITIAL_JIFFIES is -300*HZ, as crash does)."""
    h = hz(kernel)
    jiffies = kernel.read_u64(kernel.symbol("jiffies_64"))
    initial = (-300 * h) & 0xFFFFFFFF
    return ((jiffies - initial) & 0xFFFFFFFFFFFFFFFF) // h


def format_uptime(seconds: int) -> str:
    """crash's convert_time(): `HH:MM:SS`, with `N days, ` in front past a day."""
    days, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    hms = f"{h:02d}:{m:02d}:{s:02d}"
    if days:
        return f"{days} day{'s' if days > 1 else ''}, {hms}"
    return hms


def load_average(kernel: Kernel) -> tuple[str, str, str]:
    """avenrun[] as crash prints it (rounded by FIXED_1/200, `%d.%02d`)."""
    raw = kernel.read(kernel.symbol("avenrun"), 24)
    out = []
    for i in range(3):
        a = int.from_bytes(raw[i * 8:i * 8 + 8], "little") + FIXED_1 // 200
        out.append(f"{a >> FSHIFT}.{((a & (FIXED_1 - 1)) * 100) >> FSHIFT:02d}")
    return out[0], out[1], out[2]


def cpu_mhz(kernel: Kernel) -> int | None:
    try:
        return kernel.read_u32(kernel.symbol("cpu_khz")) // 1000
    except CrashtuiError:
        return None


def online_nodes(kernel: Kernel) -> list[int]:
    raw = kernel.read(kernel.symbol("node_online_map"), 8)
    bits = int.from_bytes(raw, "little")
    return [n for n in range(64) if bits >> n & 1] or [0]


def present_pages(kernel: Kernel) -> int:
    """Sum of node_present_pages over online nodes (the kernel's get_num_physpages())."""
    node_data = kernel.symbol("node_data")
    o = kernel.offsetof("pglist_data", "node_present_pages")
    total = 0
    for nid in online_nodes(kernel):
        pgdat = kernel.read_u64(node_data + 8 * nid)
        if pgdat:
            total += kernel.read_u64(pgdat + o)
    return total


def memory_size(kernel: Kernel) -> int:
    """Bytes of RAM as crash's get_memory_size(): rounded up to a GiB when within 64 MiB."""
    total = present_pages(kernel) * kernel.vmcoreinfo.page_size
    gig = 1 << 30
    next_gig = (total + gig - 1) // gig * gig
    if next_gig and next_gig - total <= 64 << 20:
        total = next_gig
    return total


def pages_to_size(pages: int, page_size: int = 4096) -> str:
    """crash's pages_to_size(): `716.5 MB`, `1 GB`, `384 KB`, `0`."""
    if pages == 0:
        return "0"
    total = pages * page_size
    if total >= 1 << 30:
        s = f"{total / (1 << 30):.1f} GB"
    elif total >= 1 << 20:
        s = f"{total / (1 << 20):.1f} MB"
    else:
        s = f"{total // 1024} KB"
    return s.replace(".0 ", " ")


def bytes_to_size(nbytes: int) -> str:
    """pages_to_size for a byte count."""
    return pages_to_size(nbytes // 4096) if nbytes % 4096 == 0 else f"{nbytes} bytes"


def panic_cpu(kernel: Kernel) -> int | None:
    """The CPU that panicked (panic_cpu, or crashing_cpu), or None if not recorded."""
    for name in ("panic_cpu", "crashing_cpu"):
        addr = kernel.symbol_or_none(name)
        if addr is None:
            continue
        try:
            cpu = kernel.read_s32(addr)
        except CrashtuiError:
            continue
        if 0 <= cpu < kernel.nr_cpu_ids:
            return cpu
    return None


def tainted_mask(kernel: Kernel) -> int:
    try:
        return kernel.read_u64(kernel.symbol("tainted_mask"))
    except CrashtuiError:
        return 0
