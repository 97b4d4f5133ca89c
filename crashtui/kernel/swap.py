"""Swap devices (swap_info[], nr_swapfiles, struct swap_info_struct), as crash's `swap`
reads them (memory.c dump_swap_info())."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.files import dentry_path

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

SWP_USED = 1
MAX_SWAPFILES = 64  # MAX_SWAPFILES is 32 minus the special types; anything above is damage
S_IFMT, S_IFBLK = 0o170000, 0o060000


@dataclass(frozen=True)
class SwapDevice:
    """One swap area in use: sizes in pages, and its file or partition."""

    address: int  # struct swap_info_struct
    partition: bool  # a block device (crash: PARTITION), else a file
    pages: int
    used: int  # inuse_pages
    prio: int
    filename: str  # "(unknown)" without a swap_file


@dataclass
class SwapTable:
    """The swap areas in use (swap_info[0..nr_swapfiles)) and what could not be read."""

    nr_swapfiles: int
    devices: list[SwapDevice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _int(kernel: Kernel, addr: int, member: str, signed: bool = False) -> int:
    """A swap_info_struct integer member, whatever its declared size."""
    size = kernel.btf.member_type("swap_info_struct", member).resolved().size or 8
    return kernel.member(addr, "swap_info_struct", member, size, signed)


def _mount_devname(kernel: Kernel, vfsmount: int) -> str:
    mount = vfsmount - kernel.offsetof("mount", "mnt")
    return kernel.read_cstr(kernel.read_u64(mount + kernel.offsetof("mount", "mnt_devname")))


def _filename(kernel: Kernel, swap_file: int) -> tuple[str, bool]:
    """The path of a swap_file (struct file) and whether its inode is a block device."""
    mnt = kernel.read_u64(swap_file + kernel.offsetof("file", "f_path")
                          + kernel.offsetof("path", "mnt"))
    dentry = kernel.read_u64(swap_file + kernel.offsetof("file", "f_path")
                             + kernel.offsetof("path", "dentry"))
    inode = kernel.read_u64(swap_file + kernel.offsetof("file", "f_inode"))
    mode = kernel.read_int(inode + kernel.offsetof("inode", "i_mode"), 2)
    path = dentry_path(kernel, mnt, dentry)
    if _mount_devname(kernel, mnt) in ("devtmpfs", "udev") and not path.startswith("/dev/"):
        path = "/dev" + path  # crash: a device node seen from inside devtmpfs
    return path, mode & S_IFMT == S_IFBLK


def swap_table(kernel: Kernel) -> SwapTable:
    """Every swap_info[] entry flagged SWP_USED, in index order."""
    for name in ("nr_swapfiles", "swap_info"):
        if not kernel.has_symbol(name):
            raise KernelReadError(f"{name} doesn't exist in this kernel")
    btf = kernel.btf
    for member in ("flags", "pages", "prio", "inuse_pages", "swap_file"):
        if not btf.has_member("swap_info_struct", member):
            raise KernelReadError(f"struct swap_info_struct has no member {member!r}")
    nr = kernel.read_u32(kernel.symbol("nr_swapfiles"))
    table = SwapTable(nr)
    if nr > MAX_SWAPFILES:
        table.errors.append(f"nr_swapfiles is {nr}: only the first {MAX_SWAPFILES} read")
        nr = MAX_SWAPFILES
    base = kernel.symbol("swap_info")  # struct swap_info_struct *swap_info[MAX_SWAPFILES]
    for i in range(nr):
        try:
            si = kernel.read_u64(base + 8 * i)
            if not si or not _int(kernel, si, "flags") & SWP_USED:
                continue
            swap_file = kernel.pointer(si, "swap_info_struct", "swap_file")
            partition = False
            filename = "(unknown)"
            if swap_file:
                filename, partition = _filename(kernel, swap_file)
            if btf.has_member("swap_info_struct", "old_block_size"):  # before 6.10: set for
                partition = _int(kernel, si, "old_block_size") != 0  # block devices only
            table.devices.append(SwapDevice(
                si, partition, _int(kernel, si, "pages"), _int(kernel, si, "inuse_pages"),
                _int(kernel, si, "prio", signed=True), filename))
        except CrashtuiError as exc:
            table.errors.append(f"swap_info[{i}]: {exc.message}")
    return table
