"""Registered character and block device majors (chrdevs[], cdev_map, major_names[],
bdev_map or the block device inodes), as crash's plain `dev` reads them (dev.c
dump_chrdevs(), dump_blkdevs_v3(), search_cdev_map_probes(), search_bdev_map_probes(),
search_blockdev_inodes())."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError
from crashtui.kernel.lists import walk_list

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_DEV = 255  # CHRDEV_MAJOR_HASH_SIZE, BLKDEV_MAJOR_HASH_SIZE: what crash reads
MAX_CHAIN = 10_000  # entries followed on one hash chain or probe list
MAX_INODES = 1_000_000
MINORBITS = 20


@dataclass(frozen=True)
class DeviceMajor:
    """One registered major: its name, the cdev or gendisk found for it and its fops."""

    major: int
    name: str
    holder: int  # struct cdev (char) or struct gendisk (block); 0 if none found
    ops: int  # file_operations / block_device_operations; 0 if none found


@dataclass
class DeviceMajors:
    """The majors in crash's order and what could not be read."""

    majors: list[DeviceMajor] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _array(kernel: Kernel, symbol: str, n: int) -> list[int]:
    raw = kernel.read(kernel.symbol(symbol), 8 * n)
    return [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(n)]


def _probes(kernel: Kernel, map_symbol: str, major: int) -> list[tuple[int, int]]:
    """(dev_t, data) of the probes on kobj_map.probes[major] (cdev_map, bdev_map)."""
    try:
        kmap = kernel.read_u64(kernel.symbol(map_symbol))
        nxt = kernel.read_u64(kmap + kernel.offsetof("kobj_map", "probes") + 8 * major)
        o_next, o_dev = kernel.offsetof("probe", "next"), kernel.offsetof("probe", "dev")
        o_data = kernel.offsetof("probe", "data")
        out: list[tuple[int, int]] = []
        seen: set[int] = set()
        while nxt and nxt not in seen and len(seen) < MAX_CHAIN:
            seen.add(nxt)
            out.append((kernel.read_u32(nxt + o_dev), kernel.read_u64(nxt + o_data)))
            nxt = kernel.read_u64(nxt + o_next)
        return out
    except CrashtuiError:  # crash reads these QUIET|RETURN_ON_ERROR
        return []


def _cdev_probe(kernel: Kernel, major: int, minor: int) -> tuple[int, int]:
    """(cdev, ops) of the cdev_map probe for major:minor, or (0, 0)."""
    if not kernel.has_symbol("cdev_map") or not 0 <= major < MAX_DEV:
        return 0, 0
    for dev, data in _probes(kernel, "cdev_map", major):
        if dev >> MINORBITS == major and dev & ((1 << MINORBITS) - 1) == minor:
            try:
                return data, kernel.pointer(data, "cdev", "ops")
            except CrashtuiError:
                return 0, 0
    return 0, 0


def _char_entry(kernel: Kernel, cd: int) -> tuple[DeviceMajor, int]:
    """A char_device_struct as a DeviceMajor, and its `next`."""
    name_len = kernel.btf.member_type("char_device_struct", "name").resolved().length or 64
    name = kernel.read(cd + kernel.offsetof("char_device_struct", "name"), name_len)
    text = name[:name_len - 1].split(b"\0", 1)[0].decode("utf-8", "replace")
    major = kernel.member(cd, "char_device_struct", "major", 4, signed=True)
    minor = kernel.member(cd, "char_device_struct", "baseminor", 4, signed=True)
    cdev = kernel.pointer(cd, "char_device_struct", "cdev")
    ops = kernel.pointer(cdev, "cdev", "ops") if cdev else 0
    if not ops:
        cdev, ops = _cdev_probe(kernel, major, minor)
    return DeviceMajor(major, text, cdev, ops), kernel.pointer(cd, "char_device_struct", "next")


def char_majors(kernel: Kernel) -> DeviceMajors:
    """Every char_device_struct on the chrdevs[] hash chains, in hash then chain order."""
    for member in ("next", "name", "major", "baseminor", "cdev"):  # the layout, before the walk
        kernel.offsetof("char_device_struct", member)
    kernel.offsetof("cdev", "ops")
    out = DeviceMajors()
    for head in _array(kernel, "chrdevs", MAX_DEV):
        cd = head
        seen: set[int] = set()
        while cd:
            if cd in seen or len(seen) >= MAX_CHAIN:
                out.errors.append(f"chrdevs chain at {head:#x} cycles at {cd:#x}")
                break
            seen.add(cd)
            try:
                entry, cd = _char_entry(kernel, cd)
            except CrashtuiError as exc:
                out.errors.append(f"char_device_struct {cd:#x}: {exc.message}")
                break
            out.majors.append(entry)
    return out


def _bdev_map_gendisk(kernel: Kernel, major: int) -> tuple[int, int]:
    """(gendisk, fops) of the first bdev_map probe of `major` whose gendisk has fops."""
    if not 0 <= major < MAX_DEV:
        return 0, 0
    for dev, data in _probes(kernel, "bdev_map", major):
        if not data or dev >> MINORBITS != major:
            continue
        try:
            fops = kernel.pointer(data, "gendisk", "fops")
        except CrashtuiError:
            break
        if fops:
            return data, fops
    return 0, 0


def _bdev_disks(kernel: Kernel) -> list[int]:
    """The gendisk of each block device inode on blockdev_superblock->s_inodes (5.11+:
    struct bdev_inode { struct block_device bdev; struct inode vfs_inode; })."""
    try:
        sb = kernel.read_u64(kernel.symbol("blockdev_superblock"))
        walk = walk_list(kernel, sb + kernel.offsetof("super_block", "s_inodes"), MAX_INODES)
    except CrashtuiError:
        return []
    o_list = kernel.offsetof("inode", "i_sb_list")
    o_inode = kernel.offsetof("bdev_inode", "vfs_inode") \
        if kernel.btf.has_member("bdev_inode", "vfs_inode") else kernel.sizeof("block_device")
    o_disk = kernel.offsetof("block_device", "bd_disk")
    out: list[int] = []
    for n in walk.nodes:
        try:
            disk = kernel.read_u64(n - o_list - o_inode + o_disk)
        except CrashtuiError:
            continue
        if disk:
            out.append(disk)
    return out


def block_majors(kernel: Kernel) -> DeviceMajors:
    """The first blk_major_name of each major_names[] bucket (crash does not follow ->next),
    with a gendisk of that major found by bdev_map (before 5.11) or the bdev inodes."""
    from crashtui.debuginfo.dwarfvars import variable_type

    for member in ("major", "name"):
        kernel.offsetof("blk_major_name", member)
    kernel.offsetof("gendisk", "fops")
    out = DeviceMajors()
    n = MAX_DEV
    lines = kernel.vmlinux.lines if kernel.vmlinux is not None else None
    t = variable_type(lines, "major_names") if lines is not None else None
    if t is not None and t.dims and t.dims[0]:
        n = t.dims[0]
    use_bdev_map = kernel.has_symbol("bdev_map")
    disks: list[int] | None = None
    name_len = kernel.btf.member_type("blk_major_name", "name").resolved().length or 16
    for i, bmn in enumerate(_array(kernel, "major_names", n)):
        if not bmn:
            continue
        try:
            major = kernel.member(bmn, "blk_major_name", "major", 4)
            raw = kernel.read(bmn + kernel.offsetof("blk_major_name", "name"), min(name_len, 16))
            name = raw.split(b"\0", 1)[0].decode("utf-8", "replace") or "(unknown)"
            if use_bdev_map:
                gendisk, fops = _bdev_map_gendisk(kernel, major if major == i else i)
            else:
                if disks is None:
                    disks = _bdev_disks(kernel)
                gendisk = fops = 0
                for d in disks:
                    try:
                        if kernel.member(d, "gendisk", "major", 4, signed=True) != major:
                            continue
                        fops = kernel.pointer(d, "gendisk", "fops")
                    except CrashtuiError:
                        continue
                    if fops:
                        gendisk = d
                        break
        except CrashtuiError as exc:
            out.errors.append(f"major_names[{i}] {bmn:#x}: {exc.message}")
            continue
        out.majors.append(DeviceMajor(major, name, gendisk, fops))
    return out
