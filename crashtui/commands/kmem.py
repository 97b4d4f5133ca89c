"""kmem -i: system memory usage like /proc/meminfo, as crash prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session


def kmem_rows(session: Session) -> dict[str, dict[str, int | None]]:
    """`kmem -i` as plain JSON values: {row name: {pages, bytes, percent}} in crash's order."""
    from crashtui.kernel.mm import kmem_dict

    return kmem_dict(session.kmem)


@command("kmem", "kernel memory: -i shows memory usage like crash's kmem -i", "kmem -i")
def cmd_kmem(session: Session, args: list[str]) -> list[str]:
    if args != ["-i"]:
        raise CommandError("kmem: only -i is supported (memory usage summary)")
    info = session.kmem
    return info.lines() + [f"kmem: {e}" for e in info.errors]
