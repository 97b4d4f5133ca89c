"""The doctor's report: one line per check (ok / warning / problem) and the same as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crashtui.doctor.check import OK, PROBLEM, WARNING, Check

AREAS = {"capture": "crash kernel memory and capture kernel",
         "service": "kdump service and configuration",
         "panic": "panic policy (which crashes are captured)",
         "analysis": "analysis side (crashtui reading the dump)",
         "test": "test crash"}
JSON_VERSION = 1


@dataclass(frozen=True)
class DoctorReport:
    """Every check made on one machine, and what it adds up to."""

    root: str
    machine: str  # e.g. "Debian GNU/Linux 12 (bookworm), kernel 6.1.0-56-cloud-amd64"
    tool: str | None  # the kdump service found
    checks: tuple[Check, ...]
    as_root: bool | None  # None: a recorded tree, not this machine

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == PROBLEM]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARNING]

    @property
    def ready(self) -> bool:
        """A panic now would leave a dump crashtui reads (no problem; warnings allowed)."""
        return not self.problems

    def verdict(self) -> str:
        if self.ready:
            return "ready: a panic now leaves a dump crashtui can read" + \
                (f" ({len(self.warnings)} warning{'s' * (len(self.warnings) != 1)})"
                 if self.warnings else "")
        n = len(self.problems)
        return f"not ready: {n} problem{'s' * (n != 1)} to fix (commands above, as root)"


def text_lines(report: DoctorReport) -> list[str]:
    """The report as text: a header, the checks by area, the verdict."""
    lines = [f"crashtui doctor: {report.machine}" +
             (f" (root {report.root})" if report.root != "/" else "")]
    if report.as_root is False:
        lines.append("  not run as root: checks marked [root] could not be completed")
    last_fix = None
    for area, title in AREAS.items():
        checks = [c for c in report.checks if c.area == area]
        if not checks:
            continue
        lines.append("")
        lines.append(title)
        for c in checks:
            mark = {OK: "ok", WARNING: "warning", PROBLEM: "PROBLEM"}[c.status]
            root = " [root]" if c.needs_root else ""
            lines.append(f"  {mark:<8} {c.text}{root}")
            if c.fix and c.status != OK:
                lines.append("           fix: " + ("the same" if c.fix == last_fix else c.fix))
                last_fix = c.fix
            if area == "test":  # elsewhere details are for --json
                lines += [f"           {d}" for d in c.detail]
    lines.append("")
    lines.append(report.verdict())
    return lines


def json_document(report: DoctorReport) -> dict[str, Any]:
    """The report as one JSON object (version 1)."""
    return {
        "version": JSON_VERSION,
        "root": report.root,
        "machine": report.machine,
        "kdump_service": report.tool,
        "as_root": report.as_root,
        "ready": report.ready,
        "verdict": report.verdict(),
        "checks": [{"id": c.id, "area": c.area, "status": c.status, "text": c.text,
                    "fix": c.fix, "needs_root": c.needs_root, "detail": list(c.detail)}
                   for c in report.checks],
    }
