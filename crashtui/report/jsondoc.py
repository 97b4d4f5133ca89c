"""The --json document: one stable, versioned view of the whole analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

SCHEMA_VERSION = 1


def build_document(session: Session) -> dict[str, Any]:
    """Everything the analysis knows, as plain JSON values."""
    summary = session.summary
    return {
        "schema": SCHEMA_VERSION,
        "summary": {name: summary.fields.get(name) for name in
                    ("KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS",
                     "NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY", "PANIC",
                     "PID", "COMMAND", "TASK", "CPU", "STATE")},
        "log": session.log.lines(),
        "errors": summary.errors,
    }
