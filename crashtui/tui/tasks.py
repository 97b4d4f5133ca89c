"""The Tasks tab: crash's `ps` as a sortable table, or (`v`) each CPU's run queue as crash's
`runq` shows it (current task, then the queued RT and CFS tasks with their priority); Enter
shows the task's backtrace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import DataTable

from crashtui.kernel.ps import PsRow, PsTable
from crashtui.tui.messages import ShowTask
from crashtui.tui.search import ask, next_match
from crashtui.tui.text import lit, safe

if TYPE_CHECKING:
    from crashtui.kernel.sched import RunQueue

# crash's ps columns, COMM moved before the numbers and TASK last: at 80 columns the name is
# whole (`[swapper/0]`), the task address is what a narrow terminal cuts.
COLUMNS = ("PID", "PPID", "CPU", "ST", "COMM", "%MEM", "VSZ", "RSS", "TASK")
SORTS: dict[str, Any] = {
    "PID": lambda r: (r.task.pid, r.task.cpu, r.task.address),  # the swappers by CPU
    "PPID": lambda r: (r.ppid, r.task.pid),
    "CPU": lambda r: (r.task.cpu, r.task.pid),
    "ST": lambda r: (r.task.state_code, r.task.pid),
    "%MEM": lambda r: (r.memory.percent, r.task.pid),
    "RSS": lambda r: (r.memory.rss, r.task.pid),
    "COMM": lambda r: (r.task.comm, r.task.pid),
}
RUNQ_COLUMNS = ("CPU", "QUEUE", "PRIO", "PID", "COMM", "TASK")


class TasksTable(DataTable[Text]):
    """Every task; `s` sorts by the next column, `r` reverses, Enter shows its backtrace."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Backtrace"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
        Binding("y", "copy_task", "Copy address", show=False),
        Binding("Y", "copy_row", "Copy row", show=False),
        Binding("v", "toggle_view", "Run queues"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.rows_data: list[PsRow] = []
        self.page_size = 4096
        self.sort_column = "PID"
        self.sort_reverse = False
        self.search_term = ""
        self.view = "ps"  # or "runq"
        self.run_queues: list[RunQueue] | None = None
        self.runq_tasks: dict[str, int] = {}  # row key -> task address

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        """The headers, the sorted one with its arrow (the table has no border for a label)."""
        arrow = " ▼" if self.sort_reverse else " ▲"
        for name in COLUMNS:
            label = name + (arrow if name == self.sort_column else "")
            self.add_column(Text(label, justify="right" if name not in ("TASK", "ST", "COMM")
                                 else "left"), key=name)

    def show(self, table: PsTable) -> None:
        self.rows_data = table.rows
        self.page_size = table.page_size
        self._fill()

    def _fill(self) -> None:
        if self.view == "runq":
            self._fill_runq()
            return
        self.clear(columns=True)
        self._add_columns()
        rows = sorted(self.rows_data, key=SORTS[self.sort_column], reverse=self.sort_reverse)
        kib = self.page_size // 1024
        for r in rows:
            t, m = r.task, r.memory
            style = "bold" if r.active else ""
            name = f"[{t.comm}]" if r.kernel_thread else t.comm
            self.add_row(Text(f"{'>' if r.active else ' '}{t.pid:>6}", style),
                         Text(f"{r.ppid:>6}"), Text(f"{t.cpu:>3}"),
                         Text(t.state_code, "red" if t.state_code in ("UN", "ZO") else ""),
                         lit(name, style), Text(f"{m.percent:>5.1f}"),
                         Text(f"{m.total_vm * kib:>8}"), Text(f"{m.rss * kib:>8}"),
                         Text(f"{t.address:016x}"), key=f"{t.address:x}")

    # -- run queues -------------------------------------------------------------------------

    def action_toggle_view(self) -> None:
        """ps <-> run queues (read once, by the facade in a worker, when first shown)."""
        self.view = "runq" if self.view == "ps" else "ps"
        if self.view == "runq" and self.run_queues is None:
            self.run_queues = []
            self.load_run_queues()
        self._fill()
        self.notify("run queues (runq): v for ps" if self.view == "runq" else
                    "tasks (ps): v for run queues", timeout=2)

    @work(thread=True, group="run-queues")
    def load_run_queues(self) -> None:
        facade = getattr(self.app, "facade", None)
        if facade is None:
            return
        try:
            rqs = facade.run_queues()
        except Exception as exc:  # noqa: BLE001 - a kernel without the layout: a toast
            self.app.call_from_thread(self.notify, safe(f"runq: {exc}"), severity="warning",
                                      markup=False)
            return
        self.app.call_from_thread(self._got_run_queues, rqs)

    def _got_run_queues(self, rqs: list[RunQueue]) -> None:
        self.run_queues = rqs
        if self.view == "runq":
            self._fill()

    def runq_rows(self) -> list[tuple[str, str, str, int]]:
        """(CPU, queue, priority, task address) rows: per CPU its current task, then its
        RT tasks by priority and CFS tasks in vruntime order, as crash's `runq` lists them."""
        out: list[tuple[str, str, str, int]] = []
        for rq in self.run_queues or []:
            out.append((str(rq.cpu), "current", "", rq.current))
            out += [("", "RT", f"[{q.prio}]", q.task) for q in rq.rt]
            out += [("", "CFS", f"[{q.prio}]", q.task) for q in rq.cfs]
        return out

    def _fill_runq(self) -> None:
        from crashtui.tui.memory import fill

        headers = [(name, Text(name, justify="right" if name in ("CPU", "PID") else "left"))
                   for name in RUNQ_COLUMNS]
        by_addr = {r.task.address: r for r in self.rows_data}
        self.runq_tasks = {}
        rows = []
        for i, (cpu, queue, prio, addr) in enumerate(self.runq_rows()):
            row = by_addr.get(addr)
            pid = f"{row.task.pid:>6}" if row is not None else "?"
            name = "?" if row is None else f"[{row.task.comm}]" if row.kernel_thread \
                else row.task.comm
            current = queue == "current"
            rows.append((f"rq{i}", [Text(cpu, "bold", justify="right"),
                                    Text(queue, "bold" if current else "dim"), Text(prio),
                                    Text(pid, "bold" if current else "", justify="right"),
                                    lit(name, "bold" if current else ""),
                                    Text(f"{addr:016x}")]))
            self.runq_tasks[f"rq{i}"] = addr
        fill(self, headers, rows)

    def _cursor_cells(self) -> list[str]:
        if not self.row_count:
            return []
        return [c.plain.strip() for c in self.get_row_at(self.cursor_row)]

    def action_copy_task(self) -> None:
        """The selected task's address (TASK, the last column) to the clipboard (OSC 52)."""
        cells = self._cursor_cells()
        if cells:
            self.app.copy_to_clipboard(cells[-1])
            self.notify(f"copied {cells[-1]} (OSC 52)", timeout=2)

    def action_copy_row(self) -> None:
        """The selected row, its columns two spaces apart, to the clipboard (OSC 52)."""
        cells = self._cursor_cells()
        if cells:
            self.app.copy_to_clipboard("  ".join(cells) + "\n")
            self.notify("copied the row (OSC 52)", timeout=2)

    def action_sort(self) -> None:
        if self.view == "runq":  # crash's order is the information
            return
        keys = list(SORTS)
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self._fill()

    def action_reverse(self) -> None:
        if self.view == "runq":
            return
        self.sort_reverse = not self.sort_reverse
        self._fill()

    def action_search(self) -> None:
        ask(self, "find a task (PID, command or task address)", self.find)

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def find(self, term: str, forward: bool = True) -> bool:
        """Move to the next row whose PID is term, or whose COMM or TASK contains it."""
        self.search_term = term
        texts = []
        at = (3, 4) if self.view == "runq" else (0, 4)  # PID and COMM columns
        for i in range(self.row_count):
            cells = [c.plain for c in self.get_row_at(i)]
            pid, comm, task = cells[at[0]].strip(" >"), cells[at[1]], cells[-1]
            texts.append(f"\0{pid}\0 {task} {comm}")
        key = f"\0{term}\0" if term.isdigit() else term
        found = next_match(texts, key, self.cursor_row, forward)
        if found is None and term.isdigit():
            found = next_match(texts, term, self.cursor_row, forward)
        if found is None:
            return False
        self.move_cursor(row=found)
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if self.view == "runq" and key in self.runq_tasks:
            key = f"{self.runq_tasks[key]:x}"
        for r in self.rows_data:
            if f"{r.task.address:x}" == key:
                self.post_message(ShowTask(r.task.address, r.task.pid, r.task.comm))
                return
