"""The `ps`, `kmem -i` and `mod` tables of an export, read from the Session's model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

Note = Callable[[str], None]  # records one problem of the section being read


@dataclass(frozen=True)
class TaskRow:
    """One task as `ps` shows it (vsz/rss/mem None when they could not be read)."""

    pid: int
    ppid: int
    cpu: int
    task: int
    state: str
    comm: str
    kthread: bool
    active: bool = False  # running on its CPU (crash's `>` mark)
    vsz: int | None = None  # KiB
    rss: int | None = None  # KiB
    mem_percent: float | None = None


@dataclass(frozen=True)
class ModuleRow:
    """One loaded module and the taint letters it carries."""

    name: str
    address: int | None
    base: int | None
    size: int | None
    taint: str
    object_file: str | None = None


def task_rows(session: Session, note: Note) -> list[TaskRow]:
    """Every task as `ps` lists it; what `ps` could not read goes to note()."""
    table = session.ps
    for err in table.errors:
        note(err)
    kib = table.page_size // 1024
    return [TaskRow(r.task.pid, r.ppid, r.task.cpu, r.task.address, r.task.state_code,
                    r.task.comm, r.kernel_thread, r.active, r.memory.total_vm * kib,
                    r.memory.rss * kib, round(r.memory.percent, 1))
            for r in table.rows]


def kmem_table(session: Session, note: Note) -> dict[str, dict[str, int | float | None]]:
    """`kmem -i` rows: {"TOTAL MEM": {"pages": .., "bytes": .., "percent": ..}, ...}; what
    `kmem -i` could not read goes to note()."""
    info = session.kmem
    for err in info.errors:
        note(err)
    return {r.name: {"pages": r.pages, "bytes": r.pages * info.page_size, "percent": r.percent}
            for r in info.rows}


def module_table(session: Session, note: Note) -> list[ModuleRow]:
    """The loaded modules with their taint letters (O out-of-tree, E unsigned, P proprietary);
    why the list may be incomplete goes to note()."""
    table = session.modules
    mods = table.modules
    for err in table.errors:
        note(err)
    return [ModuleRow(m.name, m.address, m.base, m.size, m.taint_flags,
                      str(table.debuginfo[m.name].path) if m.name in table.debuginfo else None)
            for m in mods]
