"""timer [-r] [-C CPUS]: the timer wheel of each CPU, or its hrtimers with -r, as crash
prints them (kernel.c dump_timer_data_timer_bases(), dump_hrtimer_data())."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemzone import center
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.timers import ClockBase, HrCpuBase, TimerBase

USAGE = "timer [-r] [-C CPU[,CPU|-CPU...]]"


def _signed(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v


def _abs_int(v: int) -> int:
    """C's abs() of a long passed as int (crash's highest_tte): the low 32 bits, signed."""
    v &= 0xFFFFFFFF
    return abs(v - (1 << 32) if v >> 31 else v)


def _symstr(session: Session, value: int) -> str:
    """crash's value_to_symstr(): `name` or `name+off`, "" when no symbol covers it."""
    from crashtui.commands.rd import value_symbol

    return value_symbol(session, value) or ""


def parse_cpus(text: str, nr: int) -> list[int]:
    """crash's cpu list `1,3,5-7`."""
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise CommandError(f"timer: invalid cpu specification: {text}") from None
        if not 0 <= a <= b < nr:
            raise CommandError(f"timer: invalid cpu specification: {text}")
        out.update(range(a, b + 1))
    return sorted(out)


def wheel_lines(session: Session, cpus: list[int] | None) -> list[str]:
    from crashtui.kernel.timers import timer_wheel

    wheel = timer_wheel(session.kernel, cpus)
    jiffies = str(wheel.jiffies)
    flen = max(len(jiffies), len("JIFFIES"))
    out = ["JIFFIES".ljust(flen), jiffies.rjust(flen), ""]
    last_cpu = None
    for base in wheel.bases:
        if last_cpu is not None and base.cpu != last_cpu:
            out.append("")
        last_cpu = base.cpu
        out += _base_lines(session, base, wheel.jiffies, flen)
    return out


def _base_lines(session: Session, base: TimerBase, jiffies: int, flen: int) -> list[str]:
    out = [f"TIMER_BASES[{base.cpu}][{base.name}]: {base.address:x}"]
    ttes = [_signed(t.expires - jiffies) for t in base.timers]
    highest = max((_abs_int(v) for v in ttes), default=0)
    tlen = max(len(str(highest)) + 1, len("TTE"))
    out.append(f"  {'EXPIRES'.ljust(flen)}     {'TTE'.ljust(tlen)}     TIMER_LIST     FUNCTION")
    for t, tte in zip(base.timers, ttes, strict=True):
        out.append(f"  {str(t.expires).rjust(flen)}  {str(tte).rjust(tlen)}  "
                   f"{center(f'{t.address:x}', 16)}  {t.function:16x}  "
                   f"<{_symstr(session, t.function)}>")
    if not base.timers:
        out.append("  (none)")
    return out + [f"timer: {e}" for e in base.errors]


def hrtimer_lines(session: Session, cpus: list[int] | None) -> list[str]:
    from crashtui.kernel.timers import hrtimer_bases

    out: list[str] = []
    for cpu_base in hrtimer_bases(session.kernel, cpus):
        if out:
            out.append("")
        out += _cpu_lines(session, cpu_base)
    return out


def _cpu_lines(session: Session, cb: HrCpuBase) -> list[str]:
    out = [f"CPU: {cb.cpu}  HRTIMER_CPU_BASE: {cb.address:x}"]
    for j, clock in enumerate(cb.clocks):
        if j:
            out.append("")
        out += _clock_lines(session, clock)
    return out


def _clock_lines(session: Session, clock: ClockBase) -> list[str]:
    name = "" if clock.get_time is None else f"  [{_symstr(session, clock.get_time)}]"
    out = [f"  CLOCK: {clock.index}  HRTIMER_CLOCK_BASE: {clock.address:x}{name}"]
    timers = clock.timers
    if not timers:
        return out + ["  (empty)"] + [f"timer: {e}" for e in clock.errors]
    now = clock.now
    last = timers[-1]  # crash sizes the columns by the last timer's values
    exp_len = max(len(str(last.expires)), 7)
    tte_len = len(str(_signed(last.expires - now)))
    if last.softexpires is not None or not last.readable:
        soft_len = max(len(str(last.softexpires or 0)), 11)
        out.append("  " + center("CURRENT", soft_len, rjust=True))
        out.append("  " + center(str(now), soft_len, rjust=True))
        out.append(f"  {center('SOFTEXPIRES', soft_len, True)}  {center('EXPIRES', exp_len, True)}"
                   f"  {center('TTE', tte_len, True)}  {center('HRTIMER', 16)}  "
                   f"{center('FUNCTION', 16)}")
    else:
        soft_len = 0
        out.append("  " + center("CURRENT", exp_len, rjust=True))
        out.append("  " + center(str(now), exp_len, rjust=True))
        out.append(f"  {center('EXPIRES', exp_len, True)}  {center('TTE', tte_len, True)}  "
                   f"{center('HRTIMER', 16)}  {center('FUNCTION', 16)}")
    for t in timers:
        if not t.readable:
            out.append("  (destroyed timer)")
            continue
        line = "  "
        if t.softexpires is not None:
            line += center(str(t.softexpires), soft_len, True) + "  "
        line += center(str(t.expires), exp_len, True) + "  "
        line += str(_signed(t.expires - now)).rjust(tte_len) + "  "
        line += f"{t.address:x}  "
        if t.function is not None:
            line += f"{t.function:x}  <{_symstr(session, t.function)}>"
        out.append(line)
    return out + [f"timer: {e}" for e in clock.errors]


@command("timer", "each CPU's timer wheel (-r: hrtimers), soonest first", USAGE)
def cmd_timer(session: Session, args: list[str]) -> list[str]:
    hr = False
    cpus: list[int] | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-r":
            hr = True
        elif a == "-C" or a.startswith("-C"):
            value = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
            if not a[2:]:
                i += 1
            if not value:
                raise CommandError(f"timer: -C needs a CPU list ({USAGE})")
            cpus = parse_cpus(value, session.kernel.nr_cpu_ids)
        else:
            raise CommandError(f"timer: unsupported argument {a} ({USAGE})")
        i += 1
    try:
        return hrtimer_lines(session, cpus) if hr else wheel_lines(session, cpus)
    except CrashtuiError as exc:
        raise CommandError(f"timer: {exc.message}") from None
