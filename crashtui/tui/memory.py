"""The Memory tab: crash's `kmem -i`, each share drawn as a bar."""

from __future__ import annotations

from rich.text import Text

from crashtui.kernel.mm import KmemInfo
from crashtui.kernel.system import pages_to_size
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit

BAR = 20


def bar(percent: int) -> Text:
    """A 20-cell bar (█ filled, ░ empty): readable without colour."""
    filled = max(0, min(BAR, round(percent * BAR / 100)))
    style = "red" if percent >= 90 else "yellow" if percent >= 70 else "green"
    return Text.assemble(("█" * filled, style), ("░" * (BAR - filled), "dim"))


def kmem_lines(info: KmemInfo) -> list[Text]:
    """`kmem -i` columns plus a bar per percentage, a blank line after each group, then what
    could not be read."""
    out = [Text(f"{'':>13} {'PAGES':>9} {'TOTAL':>11}  PERCENTAGE", "bold")]
    for group in info.groups:
        for r in group:
            t = Text(end="")
            t.append(f"{r.name:>13} ", "bold")
            t.append(f"{r.pages:>9} {pages_to_size(r.pages, info.page_size):>11}  ")
            if r.percent is None or r.of is None:
                t.append(f"{'----':>4}")
            else:
                t.append(f"{r.percent:>3}% ")
                t.append_text(bar(r.percent))
                t.append(" ")
                t.append_text(lit(f"of {r.of}", "dim"))
            out.append(t)
        out.append(Text(""))
    out += [lit(f"kmem: {e}", "italic yellow") for e in info.errors]
    return out


class MemoryView(TextLines):
    """`kmem -i` with bars."""

    def show(self, info: KmemInfo) -> None:
        self.set_lines(kmem_lines(info))
