"""The Memory tab: crash's `kmem -i`, each share drawn as a bar."""

from __future__ import annotations

from rich.text import Text

from crashtui.tui.backend import KmemRow
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit

BAR = 20


def bar(percent: int) -> Text:
    """A 20-cell bar (█ filled, ░ empty): readable without colour."""
    filled = max(0, min(BAR, round(percent * BAR / 100)))
    style = "red" if percent >= 90 else "yellow" if percent >= 70 else "green"
    return Text.assemble(("█" * filled, style), ("░" * (BAR - filled), "dim"))


def kmem_lines(rows: list[KmemRow]) -> list[Text]:
    """`kmem -i` columns plus a bar per percentage."""
    out = [Text(f"{'':>13} {'PAGES':>9} {'TOTAL':>11}  PERCENTAGE", "bold")]
    for r in rows:
        t = Text(end="")
        t.append(f"{r.label:>13} ", "bold")
        t.append(f"{r.pages:>9} {r.total:>11}  ")
        if r.percent is None:
            t.append(f"{'----':>4}")
        else:
            t.append(f"{r.percent:>3}% ")
            t.append_text(bar(r.percent))
            t.append(" ")
            t.append_text(lit(r.of, "dim"))
        out.append(t)
        if r.label in ("COMMITTED", "SLAB", "HUGE FREE", "SWAP FREE"):
            out.append(Text(""))
    return out


class MemoryView(TextLines):
    """`kmem -i` with bars."""

    def show(self, rows: list[KmemRow]) -> None:
        self.set_lines(kmem_lines(rows))
