"""kmem -i: system memory usage like /proc/meminfo, as crash prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.kernel.system import pages_to_size

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.mm import KmemInfo, KmemRow

KMEM_HEADER = "                 PAGES        TOTAL      PERCENTAGE"


def kmem_line(row: KmemRow, page_size: int) -> str:
    """One row as crash prints it (`----` where no share is computed)."""
    size = pages_to_size(row.pages, page_size)
    if row.of is None or row.percent is None:
        return f"{row.name:>13}  {row.pages:7d}  {size:>11}         ----"
    return f"{row.name:>13}  {row.pages:7d}  {size:>11}  {row.percent:3d}% of {row.of}"


def kmem_lines(info: KmemInfo) -> list[str]:
    """The table crash's `kmem -i` prints (a blank line between groups)."""
    out = [KMEM_HEADER]
    for i, group in enumerate(info.groups):
        if i:
            out.append("")
        out += [kmem_line(r, info.page_size) for r in group]
    return out


def kmem_rows(session: Session) -> dict[str, dict[str, int | None]]:
    """`kmem -i` as plain JSON values: {row name: {pages, bytes, percent}} in crash's order."""
    info = session.kmem
    return {r.name: {"pages": r.pages, "bytes": r.pages * info.page_size, "percent": r.percent}
            for r in info.rows}


@command("kmem", "kernel memory: -i usage, -s slab caches, -z zones, -f/-F free lists, "
         "-p pages, -g page flags, ADDRESS what an address is",
         "kmem -i[=shared] | -s [CACHE] | -z | -f [ADDRESS] | -F | -p [ADDRESS] | -g [FLAGS] | ADDRESS")
def cmd_kmem(session: Session, args: list[str]) -> list[str]:
    if args[:1] in (["-g"], ["-p"], ["-F"]) or (args[:1] == ["-f"] and args[1:]):
        from crashtui.commands.kmempage import kmem_page_command

        return kmem_page_command(session, args[0], args[1:])
    if args[:1] in (["-z"], ["-f"]):
        from crashtui.commands.kmemzone import kmem_zone_command

        return kmem_zone_command(session, args[0], args[1:])
    if args[:1] == ["-s"]:
        from crashtui.commands.kmemslab import kmem_s_lines

        return kmem_s_lines(session, args[1:])
    if len(args) == 1 and not args[0].startswith("-"):
        from crashtui.commands.kmemaddr import kmem_address_lines

        return kmem_address_lines(session, args[0])
    if args not in (["-i"], ["-i=shared"]):
        raise CommandError("kmem: supported: -i (memory usage), -s [CACHE] (slab caches), "
                           "-z (zones), -f [ADDRESS] / -F (free lists), -p [ADDRESS] "
                           "(pages), -g [FLAGS] (page flags), ADDRESS")
    # SHARED reads every struct page: only when asked, as crash 9 (crash 8 always printed it)
    info = session.kmem_shared if args == ["-i=shared"] else session.kmem
    return kmem_lines(info) + [f"kmem: {e}" for e in info.errors]
