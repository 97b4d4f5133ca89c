"""A task's root, working directory and open files (fs_struct, files_struct, dentry paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_PATH_DEPTH = 256  # dentries and mounts followed for one path
MAX_FDS = 1 << 20
MAX_NAME = 256
S_IFMT = 0o170000
FILE_TYPES = {0o100000: "REG", 0o120000: "LNK", 0o040000: "DIR", 0o020000: "CHR",
              0o060000: "BLK", 0o010000: "FIFO", 0o140000: "SOCK"}


@dataclass(frozen=True)
class OpenFile:
    """One open file descriptor."""

    fd: int
    file: int
    dentry: int
    inode: int
    type: str  # REG, DIR, CHR, BLK, LNK, FIFO, PIPE, SOCK or UNKN
    path: str


@dataclass
class TaskFiles:
    """A task's root and cwd paths and its open files ([] when it has none)."""

    root: str | None
    cwd: str | None
    files: list[OpenFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def dentry_path(kernel: Kernel, vfsmount: int, dentry: int) -> str:
    """The absolute path of a dentry on a mount (the kernel's d_path(), across mounts)."""
    off = kernel.offsetof
    o_parent, o_name = off("dentry", "d_parent"), off("dentry", "d_name.name")
    o_mnt_root = off("vfsmount", "mnt_root")
    o_mnt = off("mount", "mnt")
    o_mnt_parent, o_mountpoint = off("mount", "mnt_parent"), off("mount", "mnt_mountpoint")
    parts: list[str] = []
    mount = vfsmount - o_mnt if vfsmount else 0
    for _ in range(MAX_PATH_DEPTH):
        if mount and dentry == kernel.read_u64(mount + o_mnt + o_mnt_root):
            parent = kernel.read_u64(mount + o_mnt_parent)
            if parent == mount or not parent:
                break
            dentry = kernel.read_u64(mount + o_mountpoint)
            mount = parent
            continue
        up = kernel.read_u64(dentry + o_parent)
        if up == dentry or not up:
            name = kernel.read_cstr(kernel.read_u64(dentry + o_name), MAX_NAME)
            if name != "/":
                # a pseudo filesystem's own dentry (sockfs "UNIX", pipefs ""): crash's
                # get_pathname() writes its name without a leading "/", nothing for ""
                return "/".join(reversed(parts + [name] if name else parts))
            break
        parts.append(kernel.read_cstr(kernel.read_u64(dentry + o_name), MAX_NAME))
        dentry = up
    return "/" + "/".join(reversed(parts))


def _path(kernel: Kernel, path_addr: int) -> tuple[int, int]:
    """(vfsmount, dentry) of a struct path."""
    return (kernel.read_u64(path_addr + kernel.offsetof("path", "mnt")),
            kernel.read_u64(path_addr + kernel.offsetof("path", "dentry")))


def file_type(kernel: Kernel, inode: int) -> str:
    """crash's inode_type(): the S_IFMT name, PIPE for a pipe's FIFO."""
    mode = kernel.read_int(inode + kernel.offsetof("inode", "i_mode"), 2)
    kind = FILE_TYPES.get(mode & S_IFMT, "UNKN")
    if kind == "FIFO":
        pipe_ops = kernel.symbol_or_none("pipe_inode_operations")
        if pipe_ops is not None and \
                kernel.read_u64(inode + kernel.offsetof("inode", "i_op")) == pipe_ops:
            return "PIPE"
    return kind


def task_files(kernel: Kernel, task: int) -> TaskFiles:
    """The root, cwd and open files of a task (errors say what could not be read)."""
    off = kernel.offsetof
    out = TaskFiles(None, None)
    try:
        fs = kernel.read_u64(task + off("task_struct", "fs"))
        if fs:
            mnt, dentry = _path(kernel, fs + off("fs_struct", "root"))
            out.root = dentry_path(kernel, mnt, dentry) if dentry else None
            mnt, dentry = _path(kernel, fs + off("fs_struct", "pwd"))
            out.cwd = dentry_path(kernel, mnt, dentry) if dentry else None
    except CrashtuiError as exc:
        out.errors.append(f"fs_struct: {exc.message}")
    try:
        files = kernel.read_u64(task + off("task_struct", "files"))
        if not files:
            return out
        fdt = kernel.read_u64(files + off("files_struct", "fdt"))
        if not fdt:
            return out
        max_fds = min(kernel.read_u32(fdt + off("fdtable", "max_fds")), MAX_FDS)
        fd_array = kernel.read_u64(fdt + off("fdtable", "fd"))
        open_fds = kernel.read_u64(fdt + off("fdtable", "open_fds"))
        bits = int.from_bytes(kernel.read(open_fds, (max_fds + 63) // 64 * 8), "little")
        pointers = kernel.read(fd_array, 8 * max_fds)
    except CrashtuiError as exc:
        out.errors.append(f"files_struct: {exc.message}")
        return out
    o_path = off("file", "f_path")
    for fd in range(max_fds):
        if not bits >> fd & 1:
            continue
        f = int.from_bytes(pointers[8 * fd:8 * fd + 8], "little")
        if not f:
            continue
        try:
            mnt, dentry = _path(kernel, f + o_path)
            inode = kernel.read_u64(dentry + off("dentry", "d_inode")) if dentry else 0
            kind = file_type(kernel, inode) if inode else "UNKN"
            path = dentry_path(kernel, mnt, dentry) if dentry else ""
            if kind == "PIPE" or (kind == "SOCK" and path == "/"):
                path = ""
            out.files.append(OpenFile(fd, f, dentry, inode, kind, path))
        except CrashtuiError as exc:
            out.errors.append(f"fd {fd} (file {f:#x}): {exc.message}")
    return out
