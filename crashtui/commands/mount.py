"""mount [-n PID|TASK]: the mounts of a mount namespace, as crash prints them (filesys.c
show_mounts(); the data is crashtui.kernel.mounts')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemzone import center
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.mounts import Mount
    from crashtui.kernel.tasks import Task

DEVLEN = len("DEVNAME") + 2
MOUNT_HEADER = (f"{center('MOUNT', 16)} {center('SUPERBLK', 16)} {'TYPE':<6} "
                f"{'DEVNAME':<{DEVLEN}} DIRNAME")


def mount_line(m: Mount) -> str:
    """One row: addresses, then TYPE and DEVNAME padded as crash pads them (show_mounts())."""
    kind = f"{m.fstype:<6} " if m.fstype is not None else "unknown "
    dev = f"{m.devname if m.devname is not None else '(unknown)':<{DEVLEN}} "
    middle = kind + dev
    while len(middle) > 17 and middle[-2] == " ":  # crash strips the padding past 17
        middle = middle[:-1]
    return f"{m.mount:16x} {m.superblock:16x} {middle}{m.dirname:<10}"


def namespace_task(session: Session, arg: str | None) -> Task:
    """crash's namespace context: the task of -n, else the lowest PID above 0."""
    from crashtui.commands.task import select_tasks

    if arg is not None:
        return select_tasks(session, [arg], "mount")[0]
    tasks = sorted((t for t in session.tasks.tasks if t.pid > 0), key=lambda t: t.pid)
    if not tasks:
        raise CommandError("mount: no task with a PID above 0 to take a mount namespace from")
    return tasks[0]


@command("mount", "mounted file systems of a mount namespace (default: PID 1's)",
         "mount [-n PID | TASK]")
def cmd_mount(session: Session, args: list[str]) -> list[str]:
    from crashtui.kernel.mounts import mount_table

    ns_arg: str | None = None
    rest = list(args)
    btf = session.kernel.btf
    while rest:
        a = rest.pop(0)
        if a == "-n" and rest:
            ns_arg = rest.pop(0)
        elif a.startswith("-n") and len(a) > 2:
            ns_arg = a[2:]
        elif a == "-i" and not btf.has_member("super_block", "s_dirty"):
            raise CommandError("mount: the super_block.s_dirty linked list does not exist in "
                               "this kernel (-i is not applicable)")
        elif (a == "-f" or not a.startswith("-")) and not btf.has_member("super_block",
                                                                         "s_files"):
            # crash lists each mount's open files to search for an argument
            raise CommandError("mount: the super_block.s_files linked list does not exist in "
                               "this kernel (-f and searches are not applicable)")
        else:
            raise CommandError(f"mount: unsupported argument {a} (try: mount [-n PID | TASK])")
    task = namespace_task(session, ns_arg)
    try:
        table = mount_table(session.kernel, task.address)
    except CrashtuiError as exc:
        raise CommandError(f"mount: {exc.message}") from None
    return ([MOUNT_HEADER] + [mount_line(m) for m in table.mounts]
            + [f"mount: {e}" for e in table.errors])
