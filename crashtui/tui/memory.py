"""The Memory tab: crash's `kmem -i` with a bar per share, the slab caches (`kmem -s`) as a
table sorted largest first, and the zones (`kmem -z`) per node; `v` switches between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from crashtui.kernel.mm import KmemInfo
from crashtui.kernel.system import pages_to_size
from crashtui.tui.lines import TextLines
from crashtui.tui.search import ask, next_match
from crashtui.tui.text import lit, safe

if TYPE_CHECKING:
    from crashtui.kernel.slab import SlabCache, SlabCacheList
    from crashtui.kernel.zones import Zone, ZoneTable

BAR = 20
VIEWS = ("usage", "slabs", "zones")
VIEW_TITLES = {"usage": "usage (kmem -i)", "slabs": "slab caches (kmem -s)",
               "zones": "zones (kmem -z)"}


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
    if info.row("SHARED") is None:
        # crash 9's default: the count reads every struct page, 16 MiB per GiB of RAM
        out.append(lit("SHARED: not counted (reads every struct page): :kmem -i=shared", "dim"))
    out += [lit(f"kmem: {e}", "italic yellow") for e in info.errors]
    return out


class MemoryView(TextLines):
    """`kmem -i` with bars."""

    def show(self, info: KmemInfo) -> None:
        self.set_lines(kmem_lines(info))

    def focus(self, scroll_visible: bool = True) -> Self:
        """Focus the Memory tab's view shown (the app focuses #memory on its tab key)."""
        pane = self.parent
        if isinstance(pane, MemoryPane) and pane.view != "usage":
            pane.widget_of(pane.view).focus(scroll_visible)
            return self
        return super().focus(scroll_visible)


def human(size: int) -> str:
    """Bytes as crash's sizes read: 1.5 MB, 640 KB."""
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size} B"


def cache_bytes(c: SlabCache) -> int:
    """Memory the cache's slabs take (slabs x slab size; 0 where the counts failed)."""
    return (c.slabs or 0) * c.slab_size


# name, key of a row (larger first when sorted), right-justified
# (BYTES second: what a leak shows first, and visible at 80 columns whatever the names)
SLAB_COLUMNS: tuple[tuple[str, Callable[[SlabCache], Any], bool], ...] = (
    ("NAME", lambda c: c.name, False),
    ("BYTES", cache_bytes, True),
    ("OBJSIZE", lambda c: c.object_size, True),
    ("ALLOCATED", lambda c: c.allocated or 0, True),
    ("TOTAL", lambda c: c.total or 0, True),
    ("SLABS", lambda c: c.slabs or 0, True),
    ("SSIZE", lambda c: c.slab_size, True),
)
NAME_WIDTH = 22  # longer cache names (7.x: kmalloc-rnd-NN-...) end in an ellipsis


def short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def fill(table: DataTable[Text], headers: list[tuple[str, Text]],
         rows: list[tuple[str, list[Text]]]) -> None:
    """Columns sized to their widest cell (set, not measured later: a table filled while
    hidden keeps its header widths otherwise), then the rows (key, cells)."""
    table.clear(columns=True)
    for i, (key, label) in enumerate(headers):
        width = max([label.cell_len] + [r[i].cell_len for _k, r in rows])
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)


class _FindTable(DataTable[Text]):
    """A row table with j/k, / (find text in a row), n/N."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
    ]
    PROMPT = "find"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.search_term = ""

    def action_search(self) -> None:
        ask(self, self.PROMPT, self.find)

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def find(self, term: str, forward: bool = True) -> bool:
        """Move to the next row whose cells contain term."""
        self.search_term = term
        found = next_match(self.row_texts(), term, self.cursor_row, forward)
        if found is None:
            return False
        self.move_cursor(row=found)
        return True

    def row_texts(self) -> list[str]:
        """What / searches in, one text per row."""
        return [" ".join(c.plain for c in self.get_row_at(i)) for i in range(self.row_count)]


class SlabTable(_FindTable):
    """Every slab cache; `s` sorts by the next column (largest first), `r` reverses."""

    BINDINGS = [
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
    ]
    PROMPT = "find a slab cache (name)"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.caches: list[SlabCache] = []
        self.sort_column = "BYTES"
        self.reverse = False

    def show(self, table: SlabCacheList) -> None:
        self.caches = table.caches
        self._fill()

    def row_texts(self) -> list[str]:
        """The caches' whole names (a row may show a shortened one)."""
        return [c.name for c in self.sorted_caches()]

    def sorted_caches(self) -> list[SlabCache]:
        """The caches in the table's order: the sort column largest first (NAME: a to z)."""
        key = next(k for n, k, _r in SLAB_COLUMNS if n == self.sort_column)
        descending = self.sort_column != "NAME"
        return sorted(self.caches, key=lambda c: (key(c), c.name),
                      reverse=descending != self.reverse)

    def _fill(self) -> None:
        descending = (self.sort_column != "NAME") != self.reverse
        arrow = " ▼" if descending else " ▲"
        headers = [(name, Text(name + (arrow if name == self.sort_column else ""),
                               justify="right" if numeric else "left"))
                   for name, _key, numeric in SLAB_COLUMNS]
        rows = []
        for c in self.sorted_caches():
            counts = [right("?")] * 3 if c.allocated is None or c.total is None or \
                c.slabs is None else [right(c.allocated), right(c.total), right(c.slabs)]
            rows.append((f"{c.address:x}", [
                lit(short(c.name), "yellow" if c.error else ""), right(human(cache_bytes(c))),
                right(c.object_size), *counts, right(f"{c.slab_size // 1024}k")]))
        fill(self, headers, rows)

    def action_sort(self) -> None:
        names = [n for n, _k, _r in SLAB_COLUMNS]
        self.sort_column = names[(names.index(self.sort_column) + 1) % len(names)]
        self.reverse = False
        self._fill()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._fill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by that column (again: reversed)."""
        event.stop()
        name = str(event.column_key.value)
        if name == self.sort_column:
            self.reverse = not self.reverse
        else:
            self.sort_column, self.reverse = name, False
        self._fill()


ZONE_COLUMNS = ("NODE", "ZONE", "FREE", "MIN", "LOW", "HIGH", "MANAGED", "PRESENT", "SPANNED")


class ZonesTable(_FindTable):
    """Each node's zones: free pages against the watermarks, managed, present, spanned."""

    PROMPT = "find a zone (name)"

    def show(self, table: ZoneTable) -> None:
        headers = [(name, Text(name, justify="left" if name == "ZONE" else "right"))
                   for name in ZONE_COLUMNS]
        fill(self, headers, [(f"{z.address:x}", zone_cells(z)) for z in table.zones])


def right(value: object, style: str = "") -> Text:
    """A right-justified cell."""
    return Text(str(value), style, justify="right")


def zone_cells(z: Zone) -> list[Text]:
    """A zone's row in pages: FREE red under the min watermark, yellow under low."""
    lo, mid, hi = z.watermarks
    free = z.free_pages
    style = "" if not z.spanned else "red" if free < lo else "yellow" if free < mid else ""
    managed = "-" if z.managed is None else z.managed
    return [right(z.node), lit(z.name), right(free, style), right(lo), right(mid), right(hi),
            right(managed), right(z.present), right(z.spanned)]


class MemoryPane(Vertical):
    """The Memory tab's views; `v` shows the next (usage, slab caches, zones). The slab caches
    and zones are read once, by the facade in a worker, when first shown."""

    BINDINGS = [Binding("v", "next_view", "View")]
    DEFAULT_CSS = """
    MemoryPane { height: 1fr; }
    MemoryPane > #memory-title { height: 1; }
    MemoryPane > DataTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = "usage"
        self.details_loaded = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="memory-title")
        yield MemoryView(id="memory", show_cursor=False)
        yield SlabTable(id="slab-table")
        yield ZonesTable(id="zone-table")

    def on_mount(self) -> None:
        self._switch()

    def _title(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        for name in VIEWS:
            if t:
                t.append("  ")
            t.append(f" {VIEW_TITLES[name]} ", "reverse bold" if name == self.view else "dim")
        t.append("  v: next", "dim")
        return t

    def widget_of(self, view: str) -> Widget:
        return {"usage": self.query_one(MemoryView), "slabs": self.query_one(SlabTable),
                "zones": self.query_one(ZonesTable)}[view]

    def _switch(self) -> None:
        focused = self.app.focused is not None and self in self.app.focused.ancestors
        for name in VIEWS:
            self.widget_of(name).display = name == self.view
        self.query_one("#memory-title", Static).update(self._title())
        if focused:  # once the shown view is laid out (a hidden widget takes no focus)
            self.call_after_refresh(self.widget_of(self.view).focus)

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._switch()
        if self.view != "usage" and not self.details_loaded:
            self.details_loaded = True
            self.load_details()

    @work(thread=True, group="memory-details")
    def load_details(self) -> None:
        """The slab caches and zones from the facade (each may fail on its own)."""
        facade = getattr(self.app, "facade", None)
        if facade is None:
            return
        for table, read in ((SlabTable, facade.slab_caches), (ZonesTable, facade.zones)):
            try:
                data = read()
            except Exception as exc:  # noqa: BLE001 - a kernel without the layout: a toast
                self.app.call_from_thread(self._failed, table, str(exc))
                continue
            self.app.call_from_thread(self._filled, table, data)

    def _filled(self, table: type[SlabTable] | type[ZonesTable], data: Any) -> None:
        widget = self.query_one(table)
        widget.show(data)
        for e in getattr(data, "errors", [])[:3]:
            self.app.notify(safe(f"kmem: {e}"), severity="warning", markup=False)

    def _failed(self, table: type[SlabTable] | type[ZonesTable], message: str) -> None:
        what = "slab caches" if table is SlabTable else "zones"
        self.app.notify(safe(f"{what}: {message}"), severity="warning", markup=False)
