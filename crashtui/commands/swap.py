"""swap: the swap areas in use, as crash prints them (memory.c dump_swap_info(); the data is
crashtui.kernel.swap')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemzone import center
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.swap import SwapDevice

SWAP_HEADER = "SWAP_INFO_STRUCT    TYPE       SIZE       USED     PCT  PRI  FILENAME"
PAGE_KB_SHIFT = 2  # PAGE_SHIFT 12 - 10: pages to kilobytes


def swap_line(d: SwapDevice) -> str:
    """One row of crash's swap table."""
    size, used = d.pages << PAGE_KB_SHIFT, d.used << PAGE_KB_SHIFT
    pct = used * 100 // size if size else 0
    return (f"{center(f'{d.address:x}', 16)}  {'PARTITION' if d.partition else '  FILE   '} "
            f"{center(f'{size}k', 10, rjust=True)} {center(f'{used}k', 10, rjust=True)} "
            f"{center(f'{pct:2d}%', 4, rjust=True)} {d.prio:>4}  {d.filename}")


@command("swap", "swap devices and files in use: size, used, priority", "swap")
def cmd_swap(session: Session, args: list[str]) -> list[str]:
    from crashtui.kernel.swap import swap_table

    if args:
        raise CommandError(f"swap: takes no argument ({args[0]})")
    try:
        table = swap_table(session.kernel)
    except CrashtuiError as exc:
        raise CommandError(f"swap: {exc.message}") from None
    return ([SWAP_HEADER] + [swap_line(d) for d in table.devices]
            + [f"swap: {e}" for e in table.errors])
