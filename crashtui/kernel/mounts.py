"""The mounts of a mount namespace (struct mnt_namespace, struct mount), as crash's `mount`
lists them (filesys.c get_mount_list(), show_mounts())."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.files import dentry_path
from crashtui.kernel.lists import walk_list
from crashtui.kernel.sched import rb_inorder

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_MOUNTS = 100_000
MAX_NAME = 256


@dataclass(frozen=True)
class Mount:
    """One mount: its struct mount, super_block, file system type, device and mount point."""

    mount: int
    superblock: int
    fstype: str | None  # None: the name could not be read (crash: "unknown")
    devname: str | None  # None: unreadable (crash: "(unknown)")
    dirname: str


@dataclass
class MountTable:
    """The mounts of one namespace in crash's order, and what could not be read."""

    namespace: int
    mounts: list[Mount] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def namespace_mount_list(kernel: Kernel, mnt_ns: int) -> tuple[list[int], str | None]:
    """The struct mount addresses of a namespace and why the walk stopped early, if it did.

    6.8+ keeps them in an rbtree (mnt_namespace.mounts, mount.mnt_node; the count is then
    nr_mounts); before, a list from mnt_namespace.root's mnt_list to the head
    mnt_namespace.list (crash starts at the root mount, so it is first).
    """
    btf = kernel.btf
    if btf.has_member("mnt_namespace", "nr_mounts"):
        root = kernel.read_u64(mnt_ns + kernel.offsetof("mnt_namespace", "mounts")
                               + kernel.offsetof("rb_root", "rb_node"))
        o_node = kernel.offsetof("mount", "mnt_node")
        try:
            return [n - o_node for n in rb_inorder(kernel, root, MAX_MOUNTS)], None
        except CrashtuiError as exc:
            return [], exc.message
    o_list = kernel.offsetof("mount", "mnt_list")
    head = mnt_ns + kernel.offsetof("mnt_namespace", "list")
    root = kernel.read_u64(mnt_ns + kernel.offsetof("mnt_namespace", "root"))
    walk = walk_list(kernel, head, MAX_MOUNTS)
    nodes = walk.nodes
    start = root + o_list
    if start in nodes:  # crash's walk starts at the root mount and ends at the head
        nodes = nodes[nodes.index(start):]
    return [n - o_list for n in nodes], walk.error


def task_mnt_ns(kernel: Kernel, task: int) -> int:
    """task->nsproxy->mnt_ns."""
    nsproxy = kernel.read_u64(task + kernel.offsetof("task_struct", "nsproxy"))
    if not nsproxy:
        raise KernelReadError(f"task {task:#x} has no nsproxy (it is exiting)")
    return kernel.read_u64(nsproxy + kernel.offsetof("nsproxy", "mnt_ns"))


def _string(kernel: Kernel, addr: int) -> str | None:
    if not addr:
        return None
    try:
        return kernel.read_cstr(addr, MAX_NAME)
    except CrashtuiError:
        return None


def mount_table(kernel: Kernel, task: int) -> MountTable:
    """The mounts of `task`'s mount namespace (crash: PID 1's unless -n names a task)."""
    off = kernel.offsetof
    o_mnt = off("mount", "mnt")
    o_sb = o_mnt + off("vfsmount", "mnt_sb")
    o_devname = off("mount", "mnt_devname")
    o_parent, o_mountpoint = off("mount", "mnt_parent"), off("mount", "mnt_mountpoint")
    o_type, o_name = off("super_block", "s_type"), off("file_system_type", "name")
    mnt_ns = task_mnt_ns(kernel, task)
    table = MountTable(mnt_ns)
    mounts, error = namespace_mount_list(kernel, mnt_ns)
    if error:
        table.errors.append(f"mount list of namespace {mnt_ns:#x}: {error}")
    for m in mounts:
        try:
            sb = kernel.read_u64(m + o_sb)
            if not sb:
                table.errors.append(f"cannot get super_block from vfsmnt: {m:#x}")
                continue
            devname = _string(kernel, kernel.read_u64(m + o_devname))
            fstype = None
            try:
                fstype = _string(kernel, kernel.read_u64(kernel.read_u64(sb + o_type) + o_name))
            except CrashtuiError:
                pass
            parent = kernel.read_u64(m + o_parent)
            mountpoint = kernel.read_u64(m + o_mountpoint)
            dirname = dentry_path(kernel, parent + o_mnt, mountpoint)
        except CrashtuiError as exc:
            table.errors.append(f"mount {m:#x}: {exc.message}")
            continue
        table.mounts.append(Mount(m, sb, fstype, devname, dirname))
    return table
