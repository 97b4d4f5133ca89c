"""dev [-d | -D]: character and block device majors, and disks with their requests in flight,
as crash prints them (dev.c; the data is crashtui.kernel.devices' and .blockdev')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemzone import center
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.blockdev import Disk, DiskTable
    from crashtui.kernel.devices import DeviceMajor

USAGE = "dev [-d | -D]"


def diskio_header(table: DiskTable) -> str:
    """crash's display_all_diskio() header (ASYNC/SYNC where enum BLK_RW_SYNC exists)."""
    first, second = ("ASYNC", "SYNC") if table.sync_count else ("READ", "WRITE")
    return (f"MAJOR {'GENDISK':<18} NAME       {'REQUEST_QUEUE':<18} TOTAL {first:>5} "
            f"{second:>5} " + ("  DRV" if table.driver_column else ""))


def diskio_line(table: DiskTable, d: Disk) -> str:
    """crash's display_one_diskio() row."""
    total = (d.read + d.write + (1 << 31)) % (1 << 32) - (1 << 31)  # C int
    row = (f"{d.major:5d} {d.gendisk:<16x}   {d.name:<10} {d.queue:<16x}   {total:5d} "
           f"{d.read & 0xFFFFFFFF:5d} {d.write & 0xFFFFFFFF:5d} ")
    if table.driver_column:
        row += "N/A(MQ)" if d.mq else f"{d.driver or 0:5d}"
    return row


def diskio_lines(session: Session, nonzero: bool) -> list[str]:
    """crash's `dev -d` (every disk but ram* and loop*) or `dev -D` (those with requests)."""
    from crashtui.kernel.blockdev import disk_table

    try:
        table = disk_table(session.kernel)
    except CrashtuiError as exc:
        raise CommandError(f"dev: {exc.message}") from None
    return ([diskio_header(table)]
            + [diskio_line(table, d) for d in table.disks if not nonzero or d.read + d.write]
            + [f"dev: {e}" for e in table.errors])


def _symbol(session: Session, addr: int) -> str:
    """crash's value_to_symstr(): name+offset, or the hex address when no symbol holds it."""
    from crashtui.kernel.modules import module_symbolize

    in_module = module_symbolize(session.kernel, addr)
    if in_module is not None:
        name, off, _module = in_module
    else:
        found = session.kernel.symbolize(addr)
        if found is None:
            return f"{addr:x}"
        name, off = found[0].name, found[1]
    return name + (f"+{off}" if off else "")


def major_line(session: Session, m: DeviceMajor) -> str:
    """One CHRDEV or BLKDEV row: major, name, cdev/gendisk and operations' symbol."""
    head = f" {m.major:3d}      {m.name:<13} "
    if not m.ops:
        return head + " " + center("(none)", 16)
    return head + f" {m.holder:16x}  " + _symbol(session, m.ops)


def devices_lines(session: Session) -> list[str]:
    """crash's plain `dev`: character device majors, a blank line, block device majors."""
    from crashtui.kernel.devices import block_majors, char_majors

    k = session.kernel
    try:
        chars, blocks = char_majors(k), block_majors(k)
    except CrashtuiError as exc:
        raise CommandError(f"dev: {exc.message}") from None
    out = [f"CHRDEV    NAME           {center('CDEV', 16)}  {'OPERATIONS':<16}"]
    out += [major_line(session, m) for m in chars.majors]
    out += [f"dev: {e}" for e in chars.errors]
    out += ["", f"BLKDEV    NAME           {center('GENDISK', 16, rjust=True)}  "
                f"{'OPERATIONS':<16}"]
    out += [major_line(session, m) for m in blocks.majors]
    return out + [f"dev: {e}" for e in blocks.errors]


@command("dev", "character/block device majors; -d: disks and their requests in flight "
         "(-D: only disks with some)", USAGE)
def cmd_dev(session: Session, args: list[str]) -> list[str]:
    if not args:
        return devices_lines(session)
    if args in (["-d"], ["-D"]):
        return diskio_lines(session, nonzero=args[0] == "-D")
    raise CommandError(f"dev: unsupported argument {' '.join(args)} (try: {USAGE})")
