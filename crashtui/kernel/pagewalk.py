"""One address's page-table walk, level by level, as `vtop` prints it (any architecture)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableEntry:
    """One level's entry: its name (PGD, P4D, PUD, PMD, PTE), where it is, its value."""

    level: str
    address: int  # where the entry is, as crash prints it (x86-64: physical, arm64: virtual)
    value: int


@dataclass
class PageWalk:
    """The walk of one address: the PGD, each lower entry, and where it ended."""

    vaddr: int
    pgd: int  # the page directory's virtual address (init_top_pgt, swapper_pg_dir, mm->pgd)
    pgd_entry: int
    entries: list[TableEntry] = field(default_factory=list)
    page: int | None = None  # physical page base (None: not mapped)
    page_size: int = 4096
    leaf: int = 0  # the entry mapping the page
    phys: int | None = None
