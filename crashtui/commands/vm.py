"""vm [PID|TASK]: a task's mm, page directory, memory use and VMAs, as crash prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.sched import task_header
from crashtui.commands.task import select_tasks

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

MM_HEADER = "       MM               PGD          RSS    TOTAL_VM"
VMA_HEADER = "      VMA           START       END     FLAGS FILE"


def _centered(text: str, width: int) -> str:
    """crash's mkstring(CENTER|LJUST)."""
    return (" " * ((width - len(text)) // 2) + text).ljust(width)


def vm_lines(session: Session, t: Task) -> list[str]:
    """crash's `vm` for one task."""
    from crashtui.kernel.vm import task_vm

    tv = task_vm(session.kernel, t.address)
    row = next((r for r in session.ps.rows if r.task.address == t.address), None)
    kb = session.ps.page_size // 1024
    rss = row.memory.rss * kb if row is not None and tv.mm else 0
    total = row.memory.total_vm * kb if row is not None and tv.mm else 0
    out = [task_header(t), MM_HEADER,
           f"{_centered(f'{tv.mm:x}', 16)}  {_centered(f'{tv.pgd:x}', 16)}  "
           f"{_centered(f'{rss}k', 6)}  {_centered(f'{total}k', 8)}"]
    if tv.mm:
        out.append(VMA_HEADER)
        out += [f"{a.address:x} {a.start:10x} {a.end:10x} {a.flags:6x} {a.file}"
                for a in tv.areas]
    return out + [f"vm: {e}" for e in tv.errors]


@command("vm", "a task's mm, page directory, RSS and virtual memory areas "
         "(default: the panic task)", "vm [PID | TASK ...]")
def cmd_vm(session: Session, args: list[str]) -> list[str]:
    bad = [a for a in args if a.startswith("-")]
    if bad:
        raise CommandError(f"vm: unsupported option {bad[0]} (try: vm [PID | TASK])")
    out: list[str] = []
    for t in select_tasks(session, args, "vm"):
        if out:
            out.append("")
        out += vm_lines(session, t)
    return out
