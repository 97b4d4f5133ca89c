"""files [PID|TASK]: a task's root, cwd and open files, as crash prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.commands.sched import task_header
from crashtui.commands.task import select_tasks

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

FILES_HEADER = " FD       FILE            DENTRY           INODE       TYPE PATH"


def files_lines(session: Session, t: Task) -> list[str]:
    """crash's `files` for one task."""
    from crashtui.kernel.files import task_files

    tf = task_files(session.kernel, t.address)
    out = [task_header(t)]
    if tf.root is not None or tf.cwd is not None:
        out.append(f"ROOT: {tf.root or ''}    CWD: {tf.cwd or ''}")
    if not tf.files:
        out.append("No open files")
    else:
        out.append(FILES_HEADER)
        out += [f"{f.fd:3d} {f.file:16x} {f.dentry:16x} {f.inode:16x} {f.type:<4} {f.path}"
                for f in tf.files]
    return out + [f"files: {e}" for e in tf.errors]


@command("files", "a task's root, working directory and open files (default: the panic task)",
         "files [PID | TASK ...]")
def cmd_files(session: Session, args: list[str]) -> list[str]:
    bad = [a for a in args if a.startswith("-")]
    if bad:
        raise CommandError(f"files: unsupported option {bad[0]} (try: files [PID | TASK])")
    out: list[str] = []
    for t in select_tasks(session, args, "files"):
        if out:
            out.append("")
        out += files_lines(session, t)
    return out
