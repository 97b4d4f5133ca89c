"""Timers (kernel/time/timer.c, kernel/time/hrtimer.c): each CPU's timer wheel bases and
hrtimer clock bases, read as crash's `timer` and `timer -r` read them.

Layouts come from the types and symbols: the per-CPU `timer_bases` array's length is its
symbol size over sizeof(struct timer_base) (NR_BASES: 1, 2, or 3 from 6.9's BASE_LOCAL/
BASE_GLOBAL/BASE_DEF), the wheel's depth from timer_base.vectors[]; hrtimer clock bases
from hrtimer_cpu_base.clock_base[]'s size, each a timerqueue_head (an rb_root_cached, or an
rb_root and `next` before 4.20).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_TIMERS_PER_BUCKET = 1 << 16
ULONG = (1 << 64) - 1
BASE_NAMES = {1: ("BASE_STD",), 2: ("BASE_STD", "BASE_DEF"),
              3: ("BASE_LOCAL", "BASE_GLOBAL", "BASE_DEF")}


@dataclass(frozen=True)
class WheelTimer:
    """One pending timer_list."""

    address: int
    expires: int
    function: int


@dataclass
class TimerBase:
    """One struct timer_base of one CPU, its timers in crash's order (by expiry, stable)."""

    cpu: int
    name: str
    address: int
    timers: list[WheelTimer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class TimerWheel:
    jiffies: int
    bases: list[TimerBase]


@dataclass(frozen=True)
class HrTimer:
    address: int
    softexpires: int | None  # None before hrtimer._softexpires (2.6.28)
    expires: int
    function: int | None  # None: unreadable
    readable: bool = True  # False: crash's "(destroyed timer)"


@dataclass
class ClockBase:
    """One hrtimer_clock_base: its get_time function and `now` in its clock."""

    index: int
    address: int
    get_time: int | None  # None: 7.x clock bases have no get_time (only a clockid)
    now: int
    timers: list[HrTimer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class HrCpuBase:
    cpu: int
    address: int
    clocks: list[ClockBase]


def _hlist_entries(kernel: Kernel, first: int, o_entry: int) -> tuple[list[int], str | None]:
    """timer_list addresses on one hlist (NULL-terminated), bounded and cycle-checked."""
    out: list[int] = []
    seen: set[int] = set()
    node = first
    while node:
        if node in seen or len(out) >= MAX_TIMERS_PER_BUCKET:
            return out, f"timer list at {first:x} loops or is too long"
        seen.add(node)
        out.append(node - o_entry)
        try:
            node = kernel.read_u64(node)  # hlist_node.next
        except CrashtuiError as exc:
            return out, f"timer list node {node:x}: {exc.message}"
    return out, None


def nr_timer_bases(kernel: Kernel) -> int:
    """NR_BASES: the per-CPU timer_bases[] symbol's size over sizeof(struct timer_base)."""
    size = kernel.sizeof("struct timer_base")
    sym = kernel.symbols.lookup("timer_bases")
    if sym is not None and sym.size and size:
        return max(1, min(3, sym.size // size))
    return 2


def timer_wheel(kernel: Kernel, cpus: list[int] | None = None) -> TimerWheel:
    """Each CPU's timer bases with their pending timers (crash's dump_timer_data_timer_bases)."""
    base_sym = kernel.symbol_or_none("timer_bases")
    if base_sym is None or not kernel.btf.has_member("timer_base", "vectors"):
        raise KernelReadError("no per-CPU timer_bases with timer_base.vectors[] in this kernel "
                              "(a pre-4.8 tvec_base timer wheel is not supported)")
    jiffies = kernel.read_u64(kernel.symbol("jiffies"))
    nvec = kernel.btf.member_type("timer_base", "vectors").resolved().length or 0
    o_vec = kernel.offsetof("timer_base", "vectors")
    o_entry = kernel.offsetof("timer_list", "entry")
    o_expires = kernel.offsetof("timer_list", "expires")
    o_function = kernel.offsetof("timer_list", "function")
    size = kernel.sizeof("struct timer_base")
    names = BASE_NAMES[nr_timer_bases(kernel)]
    out = TimerWheel(jiffies, [])
    for cpu in range(kernel.nr_cpu_ids) if cpus is None else cpus:
        first = kernel.per_cpu(base_sym, cpu) & ULONG  # 6.15+: per-CPU symbols are not 0-based
        for i, name in enumerate(names):
            base = TimerBase(cpu, name, first + i * size)
            out.bases.append(base)
            try:
                raw = kernel.read(base.address + o_vec, 8 * nvec)
            except CrashtuiError as exc:
                base.errors.append(f"timer_base {base.address:x}: {exc.message}")
                continue
            for v in range(nvec):
                head = int.from_bytes(raw[8 * v:8 * v + 8], "little")
                if not head:
                    continue
                addrs, error = _hlist_entries(kernel, head, o_entry)
                if error:  # crash ignores a bucket whose list is faulty
                    base.errors.append(f"vectors[{v}]: {error}")
                    continue
                for t in addrs:
                    try:
                        base.timers.append(WheelTimer(t, kernel.read_u64(t + o_expires),
                                                      kernel.read_u64(t + o_function)))
                    except CrashtuiError:
                        continue
            base.timers.sort(key=lambda t: t.expires)
    return out


def _ktime(kernel: Kernel, addr: int) -> int:
    return kernel.read_s64(addr)


def hrtimer_now_jiffies(kernel: Kernel) -> int:
    """crash's get_uptime(): jiffies_64 with INITIAL_JIFFIES (-300*HZ) taken off."""
    from crashtui.kernel.system import hz

    h = hz(kernel)
    j = kernel.read_u64(kernel.symbol("jiffies_64"))
    wrapped = j & 0xFFFFFFFF00000000
    if wrapped:
        wrapped -= 0x100000000
        return ((j & 0xFFFFFFFF) | wrapped) + 300 * h
    return (j - ((-300 * h) & 0xFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF


def hrtimer_bases(kernel: Kernel, cpus: list[int] | None = None) -> list[HrCpuBase]:
    """Each CPU's hrtimer_cpu_base and its clock bases' queued hrtimers, earliest first."""
    from crashtui.kernel.system import hz
    from crashtui.kernel.trees import rbtree_walk

    btf = kernel.btf
    sym = kernel.symbol_or_none("hrtimer_bases")
    if sym is None or not btf.has_member("hrtimer_cpu_base", "clock_base"):
        raise KernelReadError("no per-CPU hrtimer_bases with hrtimer_cpu_base.clock_base[]")
    off = kernel.offsetof
    clock_size = kernel.sizeof("struct hrtimer_clock_base")
    nclocks = (btf.member_type("hrtimer_cpu_base", "clock_base").resolved().length or 0)
    o_clock = off("hrtimer_cpu_base", "clock_base")
    o_get_time = off("hrtimer_clock_base", "get_time") \
        if btf.has_member("hrtimer_clock_base", "get_time") else None
    o_offset = off("hrtimer_clock_base", "offset") \
        if btf.has_member("hrtimer_clock_base", "offset") else None
    # the queue's rb_root: timerqueue_head.rb_root (rb_root_cached, 4.20+) or 7.x's
    # timerqueue_linked_head.rb_root (rb_root_linked), both .rb_root; else timerqueue_head.head
    if btf.has_member("hrtimer_clock_base", "active.rb_root.rb_root"):
        o_root = off("hrtimer_clock_base", "active.rb_root.rb_root")
    else:
        o_root = off("hrtimer_clock_base", "active.head")
    # hrtimer.node: a timerqueue_node {rb_node node; expires}, or 7.x's timerqueue_linked_node
    # whose node is an rb_node_linked {rb_node node; prev; next}
    o_node = off("hrtimer", "node.node.node") if btf.has_member("hrtimer", "node.node.node") \
        else off("hrtimer", "node.node")
    o_expires = off("hrtimer", "node.expires")
    o_soft = off("hrtimer", "_softexpires") if btf.has_member("hrtimer", "_softexpires") \
        else None
    o_function = off("hrtimer", "function")
    ns_per_jiffy = 1_000_000_000 // hz(kernel)
    uptime = hrtimer_now_jiffies(kernel)
    out: list[HrCpuBase] = []
    for cpu in range(kernel.nr_cpu_ids) if cpus is None else cpus:
        cpu_base = kernel.per_cpu(sym, cpu) & ULONG
        clocks: list[ClockBase] = []
        for j in range(nclocks):
            base = cpu_base + o_clock + j * clock_size
            get_time = kernel.read_u64(base + o_get_time) if o_get_time is not None else None
            offset = _ktime(kernel, base + o_offset) if o_offset is not None else 0
            clock = ClockBase(j, base, get_time,
                              (uptime * ns_per_jiffy + offset) & 0xFFFFFFFFFFFFFFFF)
            clocks.append(clock)
            try:
                walk = rbtree_walk(kernel, kernel.read_u64(base + o_root), o_node, linear=True)
            except CrashtuiError as exc:
                clock.errors.append(f"hrtimer_clock_base {base:x}: {exc.message}")
                continue
            if walk.error:
                clock.errors.append(walk.error)
            for e in walk.entries:
                t = e.address
                try:
                    expires = _ktime(kernel, t + o_expires)
                    soft = _ktime(kernel, t + o_soft) if o_soft is not None else None
                except CrashtuiError:
                    clock.timers.append(HrTimer(t, None, 0, None, False))
                    continue
                try:
                    fn: int | None = kernel.read_u64(t + o_function)
                except CrashtuiError:
                    fn = None
                clock.timers.append(HrTimer(t, soft, expires, fn))
        out.append(HrCpuBase(cpu, cpu_base, clocks))
    return out
