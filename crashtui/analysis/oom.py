"""An out-of-memory panic: who asked for memory, who holds it, and where it went.

From the kernel's own OOM report in the log (`X invoked oom-killer: gfp_mask=..., order=N`,
the `CPU: .. PID: .. Comm: ..` line after it, `Unreclaimable slab info:` when the kernel
prints it) and from memory: the largest tasks by RSS (crash's `ps`) and `kmem -i`'s totals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

TOP_CONSUMERS = 5
SLAB_SHARE = 0.2  # unreclaimable slab above this share of RAM is called out
_INVOKED = re.compile(r"^\s*(\S.*) invoked oom-killer: gfp_mask=(0x[0-9a-f]+)(?:\(([^)]*)\))?,"
                      r" order=(-?\d+)")
_WHO = re.compile(r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)")
_SLAB_ROW = re.compile(r"^\s*(\S+)\s+(\d+)KB\s+(\d+)KB\s*$")


@dataclass(frozen=True)
class Consumer:
    """A task by resident memory."""

    pid: int
    comm: str
    rss_kb: int
    percent: float


@dataclass
class OomReport:
    """What the OOM panic says about memory."""

    trigger: str | None = None  # the comm that invoked the OOM killer
    trigger_pid: int | None = None
    gfp_mask: str | None = None  # "0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO)"
    order: int | None = None
    consumers: list[Consumer] = field(default_factory=list)  # largest RSS first
    total_kb: int | None = None  # kmem -i TOTAL MEM
    free_kb: int | None = None
    slab_kb: int | None = None  # kmem -i SLAB
    # name, used KB, total KB (the log's `Unreclaimable slab info:` table)
    unreclaimable_slab: list[tuple[str, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The OOM facts as text lines (the triage command, the app, the report)."""
        out: list[str] = []
        if self.trigger:
            out.append(f"trigger {self.trigger}"
                       + (f" (PID {self.trigger_pid})" if self.trigger_pid else "")
                       + (f", gfp_mask={self.gfp_mask}" if self.gfp_mask else "")
                       + (f", order={self.order}" if self.order is not None else ""))
        if self.total_kb:
            out.append(f"memory {self.total_kb // 1024} MiB, "
                       f"free {(self.free_kb or 0) // 1024} MiB, "
                       f"slab {(self.slab_kb or 0) // 1024} MiB")
        out += [f"largest PID {c.pid} ({c.comm}) RSS {c.rss_kb} KiB ({c.percent:g}%)"
                for c in self.consumers]
        if self.slab_heavy:
            out += [f"unreclaimable slab {name} {total} KiB" for name, _, total in
                    self.unreclaimable_slab[:5]]
        return out

    @property
    def slab_heavy(self) -> bool:
        """Slab holds a large share of RAM: a kernel leak rather than a user task."""
        return bool(self.slab_kb and self.total_kb and self.slab_kb > SLAB_SHARE * self.total_kb)


def read_oom_log(lines: Sequence[str], report: OomReport) -> None:
    """The trigger, its allocation and the unreclaimable slab table from the log's report."""
    start = None
    for i in range(len(lines) - 1, -1, -1):
        m = _INVOKED.search(lines[i][:1024])
        if m:
            start = i
            report.trigger = m.group(1)
            report.gfp_mask = m.group(2) + (f"({m.group(3)})" if m.group(3) else "")
            report.order = int(m.group(4))
            break
    if start is None:
        return
    for line in lines[start + 1:start + 4]:
        w = _WHO.search(line)
        if w:
            report.trigger_pid = int(w.group(2))
            break
    in_slab = False
    for line in lines[start:]:
        if "Unreclaimable slab info:" in line:
            in_slab = True
            continue
        if in_slab:
            row = _SLAB_ROW.match(line)
            if row:
                report.unreclaimable_slab.append((row.group(1), int(row.group(2)),
                                                  int(row.group(3))))
            elif not line.strip().startswith("Name"):
                in_slab = False
    report.unreclaimable_slab.sort(key=lambda r: -r[2])


def oom_report(session: Session, lines: Sequence[str]) -> OomReport:
    """The OOM facts of the dump: from the log lines and from memory."""
    rep = OomReport()
    read_oom_log(lines, rep)
    try:
        table = session.ps
        kb = table.page_size // 1024
        rows = sorted(table.rows, key=lambda r: -r.memory.rss)
        rep.consumers = [Consumer(r.task.pid, r.task.comm, r.memory.rss * kb,
                                  round(r.memory.percent, 1))
                         for r in rows[:TOP_CONSUMERS] if r.memory.rss]
    except CrashtuiError as exc:
        rep.errors.append(f"ps: {exc.message}")
    try:
        kmem = session.kmem
        kb = kmem.page_size // 1024

        def pages(name: str) -> int | None:
            row = kmem.row(name)
            return row.pages * kb if row is not None else None

        rep.total_kb, rep.free_kb, rep.slab_kb = pages("TOTAL MEM"), pages("FREE"), pages("SLAB")
    except CrashtuiError as exc:
        rep.errors.append(f"kmem -i: {exc.message}")
    return rep
