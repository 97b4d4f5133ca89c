"""The Tasks tab: crash's `ps` as a sortable table; Enter shows the task's backtrace."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from crashtui.tui.backend import PsRow
from crashtui.tui.messages import ShowTask
from crashtui.tui.text import lit

COLUMNS = ("PID", "PPID", "CPU", "TASK", "ST", "%MEM", "VSZ", "RSS", "COMM")
SORTS: dict[str, Any] = {
    "PID": lambda r: (r.pid, r.task),
    "PPID": lambda r: (r.ppid, r.pid),
    "CPU": lambda r: (r.cpu, r.pid),
    "ST": lambda r: (r.state, r.pid),
    "%MEM": lambda r: (float(r.mem or 0), r.pid),
    "RSS": lambda r: (int(r.rss or 0), r.pid),
    "COMM": lambda r: (r.comm, r.pid),
}


class TasksTable(DataTable[Text]):
    """Every task; `s` sorts by the next column, `r` reverses, Enter shows its backtrace."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Backtrace"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.rows_data: list[PsRow] = []
        self.sort_column = "PID"
        self.sort_reverse = False

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(Text(name, justify="right" if name not in ("TASK", "ST", "COMM")
                                 else "left"), key=name)

    def show(self, rows: list[PsRow]) -> None:
        self.rows_data = rows
        self._fill()

    def _fill(self) -> None:
        self.clear()
        rows = sorted(self.rows_data, key=SORTS[self.sort_column], reverse=self.sort_reverse)
        for r in rows:
            style = "bold" if r.active else ""
            name = f"[{r.comm}]" if r.kthread else r.comm
            self.add_row(Text(f"{'>' if r.active else ' '}{r.pid:>6}", style),
                         Text(f"{r.ppid:>6}"), Text(f"{r.cpu:>3}"), Text(f"{r.task:016x}"),
                         Text(r.state, "red" if r.state in ("UN", "ZO") else ""),
                         Text(f"{r.mem:>5}"), Text(f"{r.vsz:>8}"), Text(f"{r.rss:>8}"),
                         lit(name, style), key=f"{r.task:x}")
        arrow = "▼" if self.sort_reverse else "▲"
        self.border_subtitle = Text(f"sorted by {self.sort_column} {arrow}")  # type: ignore[assignment]

    def action_sort(self) -> None:
        keys = list(SORTS)
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self._fill()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._fill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        for r in self.rows_data:
            if f"{r.task:x}" == key:
                self.post_message(ShowTask(r.task, r.pid, r.comm))
                return
