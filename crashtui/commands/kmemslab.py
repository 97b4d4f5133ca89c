"""kmem -s [NAME]: slab caches as crash prints them (the data is crashtui.kernel.slab's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.slab import SlabCache

SLAB_HEADER = "CACHE             OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE  NAME"


def slab_cache_line(c: SlabCache) -> str:
    """One cache as crash's dump_kmem_cache_info() prints it (`?` where counts failed)."""
    if c.allocated is None or c.total is None or c.slabs is None:
        counts = f"{'?':>9}  {'?':>8}  {'?':>5}  "
    else:
        counts = f"{c.allocated:9d}  {c.total:8d}  {c.slabs:5d}  "
    return f"{c.address:<16x} {c.object_size:8d}  {counts}{c.slab_size // 1024:4d}k  {c.name}"


def kmem_s_lines(session: Session, names: list[str]) -> list[str]:
    """crash's `kmem -s` (every cache) or `kmem -s NAME` (one cache)."""
    from crashtui.kernel.slab import slab_caches

    if len(names) > 1:
        raise CommandError("kmem: only one kmem_cache reference is allowed")
    table = slab_caches(session.kernel, set(names) if names else None)
    if names and not table.caches:
        raise CommandError(f"kmem: invalid argument: {names[0]}")
    out = [SLAB_HEADER]
    for c in table.caches:
        if c.error:
            out.append(f"kmem: {c.error}")
        out.append(slab_cache_line(c))
    return out + [f"kmem: {e}" for e in table.errors]
