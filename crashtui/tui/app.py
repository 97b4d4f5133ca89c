"""The crashtui Textual app: summary bar, CPUs/tasks, frames, source, and the tabs below."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.widget import MountError, Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from crashtui.analysis.backtrace import Backtrace
from crashtui.tui.cpus import CpuList
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frameref import FrameRef
from crashtui.tui.frames import FrameRow, FramesView, build_rows
from crashtui.tui.messages import FrameSelected, ShowBacktrace, ShowTask
from crashtui.tui.palette import ActionProvider, CpuProvider, SymbolProvider, TaskProvider
from crashtui.tui.source import SourceView
from crashtui.tui.summary import SummaryBar
from crashtui.tui.taskpick import TaskPicker
from crashtui.tui.text import error_text, lit, safe
from crashtui.tui.triage_view import TriageBar, TriageView

# Workers taking a Backtrace or FrameRef have a fixed description: Textual's default is the
# arguments' repr, and a Frame's repr reads its file:line (DWARF) on the UI thread.
#
# The first screen (summary, triage line, CPUs, the panic backtrace and the source pane) needs
# only the modules above; the tabs below it and the footer (Textual's TabbedContent and Footer:
# a third of the screen's widgets) are mounted once it is drawn (_mount_tabs), their panes'
# contents (and their imports: the kernel's frame variables, kmem, modules, the command layer,
# ...) after that (_fill_tabs), the help and export screens and the source loader on first use.
if TYPE_CHECKING:
    from crashtui.analysis.culprit import Culprit
    from crashtui.analysis.session import Session
    from crashtui.analysis.summary import Summary
    from crashtui.analysis.triage import Triage
    from crashtui.kernel.ps import PsRow
    from crashtui.tui.modules import ModulesView
    from crashtui.tui.sourceload import SourceRequest


def stylesheet() -> Path | None:
    """crashtui.tcss: in the installed package (crashtui/styles/, pyproject maps styles/ there),
    else in the source tree's top-level styles/ (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    for styles in (package / "styles", package.parent / "styles"):
        if (styles / "crashtui.tcss").is_file():
            return styles / "crashtui.tcss"
    return None


STYLESHEET = stylesheet()
FIRST_PAINT_WAIT = 0.3  # s: the longest the first paint waits for the summary and backtrace


@dataclass
class FirstFacts:
    """What the first screen shows: the summary (or why not), the panic CPU's backtrace (or
    every CPU's, or placeholders saying why none) and the --modules problems to tell."""

    summary: Summary | None
    summary_error: str
    backtraces: list[Backtrace]
    first: Backtrace | None  # the one shown: the panic CPU's
    problems: list[str]
TABS = ("triage", "registers", "memory", "log", "tasks", "modules", "summary", "command",
        "variables")


def tabs_placeholder() -> Text:
    """The tab bar as TabbedContent draws it, shown until the tabs are mounted."""
    text = Text(no_wrap=True, overflow="crop", end="")
    for name in TABS:
        text.append(f" {name.title()} ", "bold" if name == "triage" else "dim")
    text.append("\n")
    text.append("━" * (len("triage") + 2), "bold")
    return text


def tab_content(name: str) -> Widget:
    """The pane of a tab other than Triage (imported here: mounted after the first paint)."""
    if name == "registers":
        from crashtui.tui.registers import RegistersView

        return RegistersView(id="registers")
    if name == "memory":
        from crashtui.tui.memory import MemoryPane

        return MemoryPane(id="memory-pane")
    if name == "log":
        from crashtui.tui.logview import LogView

        return LogView(id="log")
    if name == "tasks":
        from crashtui.tui.tasks import TasksTable

        return TasksTable(id="tasks")
    if name == "modules":
        from crashtui.tui.modules import ModulesView

        return ModulesView(id="modules")
    if name == "summary":
        from crashtui.tui.summary import SummaryView

        return SummaryView(id="summary", show_cursor=False)
    if name == "command":
        from crashtui.tui.command import CommandView

        return CommandView(id="command")
    if name == "variables":
        from crashtui.tui.variables import VariablesView

        return VariablesView(id="variables")
    raise ValueError(name)


class CrashtuiApp(App[int]):
    """Explore one crash dump with the keyboard."""

    TITLE = "crashtui"
    CSS_PATH = [STYLESHEET] if STYLESHEET is not None else []
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-medium"), (180, "-wide")]
    COMMANDS = App.COMMANDS | {CpuProvider, TaskProvider, SymbolProvider, ActionProvider}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "interrupt", "Interrupt", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("colon", "command", "Command"),
        Binding("c", "focus('cpus')", "CPUs"),
        Binding("t", "focus('task-filter')", "Tasks"),
        Binding("f", "focus('frames')", "Frames", show=False),
        Binding("o", "focus('source')", "Source", show=False),
        Binding("p", "panic", "Panic"),
        Binding("s", "tab('summary')", "Summary", show=False),
        Binding("e", "export", "Export"),
        Binding("z", "zoom", "Zoom", show=False),
        *(Binding(str(i + 1), f"tab('{name}')", name.title(), show=False)
          for i, name in enumerate(TABS)),
    ]

    def __init__(self, facade: SessionFacade) -> None:
        super().__init__()
        self.facade = facade
        self.backtraces: list[Backtrace] = []
        self.rows_cache: dict[int, list[FrameRow]] = {}
        self.ps_rows: list[PsRow] = []
        self.panic_cpu: int | None = None
        self.current_bt: Backtrace | None = None
        self.current_ref: FrameRef | None = None
        self.loaded = False
        self.tasks_loaded = False
        self.summary: Summary | None = None
        self.first_screen = threading.Event()  # the summary and panic backtrace are drawn
        self.tabbed = False  # the tabs (TabbedContent, Triage pane) and footer are mounted
        self.tabs_mounted = False  # the other tabs' panes (mounted after the first screen)
        self.triage: Triage | None = None
        self.triage_error: str | None = None
        self._pending_tab: tuple[str, bool] | None = None  # asked for before the tabs were there
        self._tabs_lock: asyncio.Lock | None = None
        self._first: FirstFacts | None = None  # read by the thread started in on_load
        self._first_ready = threading.Event()
        self._facts_shown = False
        self._context_label: str | None = None  # for the Command tab, once it is mounted

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast (the app's and its widgets') as literal, terminal-safe text: messages
        carry module names, symbols and errors from the dump."""
        super().notify(safe(message), title=safe(title), severity=severity, timeout=timeout,
                       markup=False)

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SummaryBar(id="summary-bar")
        yield TriageBar(id="triage-bar")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield CpuList(id="cpus")
                yield TaskPicker(id="taskpick")
            yield FramesView(id="frames")
            yield SourceView(id="source")
        # the tabs and the footer take their place once the first screen is drawn
        yield Static(tabs_placeholder(), id="tabs-placeholder")
        yield Static(id="footer-placeholder")

    def on_mount(self) -> None:
        if self.no_color:
            self.add_class("-nocolor")  # the focused pane's heavy border: styles/crashtui.tcss
        self.query_one(CpuList).border_title = "CPUs"
        self.query_one(FramesView).border_title = "Backtrace"
        self.query_one(FramesView).show_message("loading backtraces…")
        self.query_one(SourceView).show_loading("Source", "select a frame to see its source")
        self.query_one(FramesView).focus()
        for problem in self.facade.finder.problems:  # --source / CRASHTUI_SOURCE unusable
            self.notify(problem, title="source", severity="warning", markup=False, timeout=10)
        # The first paint shows the summary and the panic backtrace if they are read by now
        # (one paint, not a "loading…" screen painted first and then again), else the load
        # worker shows them when they are.
        if self._first_ready.wait(FIRST_PAINT_WAIT) and self._first is not None:
            self._show_facts(self._first)
        self.load()

    def on_load(self) -> None:
        """Start reading the first screen's facts while Textual starts (composes, mounts)."""
        threading.Thread(target=self._read_first, name="crashtui-first", daemon=True).start()

    def tab_view(self, view_id: str) -> Any | None:
        """The pane of a tab by id (#registers, #log, ...), None until the tabs are mounted."""
        try:
            return self.query_one(f"#{view_id}")
        except NoMatches:
            return None

    async def _mount_tabs(self) -> None:
        """Mount the tabs (the Triage pane and the other tabs' empty panes) and the footer in
        place of their placeholders: right after the first screen is drawn."""
        if self._tabs_lock is None:
            self._tabs_lock = asyncio.Lock()
        async with self._tabs_lock:  # _fill_tabs may ask while the first call mounts them
            if self.tabbed:
                return
            from textual.widgets import Footer, TabbedContent, TabPane

            tabs = TabbedContent(id="tabs", initial="tab-triage")
            triage_pane = TabPane("Triage", id="tab-triage")
            triage_pane.compose_add_child(TriageView(id="triage"))
            tabs.compose_add_child(triage_pane)
            for name in TABS[1:]:  # filled by _fill_tabs
                tabs.compose_add_child(TabPane(name.title(), id=f"tab-{name}"))
            try:
                with self.batch_update():
                    placeholders = self.query("#tabs-placeholder, #footer-placeholder")
                    await self.mount_all([tabs, Footer(compact=True)],
                                         before="#tabs-placeholder")
                    await placeholders.remove()
            except MountError:  # the app is quitting (q pressed at once)
                return
            self.tabbed = True
        self.refresh_bindings()  # the Footer draws its keys on this signal (focus moves send it)
        if self.triage is not None:
            self.query_one(TriageView).show(self.triage)
        elif self.triage_error is not None:
            self.query_one(TriageView).show_error(self.triage_error)
        if self._pending_tab is not None:
            self.select_tab(*self._pending_tab)

    async def _fill_tabs(self) -> None:
        """Mount the other tabs' panes (their modules were imported by the load worker)."""
        if self.tabs_mounted:
            return
        await self._mount_tabs()
        if not self.tabbed:  # the app is quitting
            return
        from textual.widgets import TabPane

        for name in TABS[1:]:
            await self.query_one(f"#tab-{name}", TabPane).mount(tab_content(name))
        self.tabs_mounted = True
        for view_id in ("registers", "memory", "summary"):
            self.query_one(f"#{view_id}").set_lines([Text("loading…", "italic")])  # type: ignore[attr-defined]
        if self._context_label is not None:
            from crashtui.tui.command import CommandView

            self.query_one(CommandView).show_context(self._context_label)
        if self.current_ref is not None:  # the frame selected before they were there
            self._frame_views(self.current_ref)
        if self._pending_tab is not None:  # a tab key pressed before the panes were there
            self.select_tab(*self._pending_tab)

    def _first_screen_drawn(self) -> None:
        """The first screen is on the terminal: the frame selected gets its source, and the
        load worker goes on with the rest."""
        if self.first_screen.is_set():
            return
        self.first_screen.set()
        self.call_later(self._mount_tabs)
        if self.current_ref is not None:
            self._frame_source(self.current_ref)

    # -- loading (a worker; each fact shows as soon as it is known) -------------------------

    def _ui(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run fn on the UI thread (from a worker), unless the worker was cancelled."""
        if get_current_worker().is_cancelled:
            return
        try:
            self.call_from_thread(fn, *args, **kwargs)
        except RuntimeError:  # the app is shutting down
            pass

    @work(thread=True, group="load")
    def load(self) -> None:
        """Read the session's facts in the order a person needs them: the summary and the
        panic CPU's frames first (read by the thread on_load starts, drawn before anything else
        is read or imported), then the
        other tabs' panes, the frames' file:line, the other CPUs, the triage, modules, tasks,
        log and memory."""
        be = self.facade
        ready = self._first_ready
        worker = get_current_worker()
        while not ready.wait(0.05):  # the thread started in on_load
            if worker.is_cancelled:
                return
        facts = self._first or self._first_facts()  # None: it failed, then fail here
        if not self._facts_shown:
            self._ui(self._show_facts, facts)
        summary_error, bts, first = facts.summary_error, facts.backtraces, facts.first
        self._wait_first_screen()
        self._load_triage()  # first after it: the culprit lands before the user moves
        self._import_tabs()
        self._ui(self._fill_tabs)
        if not self.tabs_mounted:  # the app is quitting
            return
        if self.summary is not None:
            self._ui(self.query_one("#summary").show, self.summary, self._debug_line())  # type: ignore[attr-defined]
        else:
            self._ui(self._message, "summary", summary_error)
        if first is not None and first.frames:
            try:
                rows = build_rows(be, be.with_sources(first))
                self.rows_cache[id(first)] = rows
                self._ui(self._lines_ready, first, rows)
            except Exception:  # noqa: BLE001 - the rows without file:line stay
                pass
        if len(bts) == 1 and bts[0] is first and first is not None and first.error is None:
            try:  # the other CPUs' backtraces
                self.backtraces = be.backtraces()
                self._ui(self.query_one(CpuList).show, self.backtraces, False)
            except Exception as exc:  # noqa: BLE001 - the panic CPU's stays
                self._ui(self.notify, f"backtraces: {error_text(exc)}", severity="warning",
                         markup=False)
        self._show_modules()
        self._load_tasks()
        from crashtui.tui.logview import LogLines, LogView
        from crashtui.tui.memory import MemoryView

        try:
            self._ui(self.query_one(LogView).show, be.log_lines())
        except Exception as exc:  # noqa: BLE001
            self._ui(self.query_one(LogLines).set_lines, [lit(error_text(exc), "italic")])
        try:
            self._ui(self.query_one(MemoryView).show, be.kmem())
        except Exception as exc:  # noqa: BLE001
            self._ui(self._message, "memory", error_text(exc))
        self.loaded = True

    def _read_first(self) -> None:
        """The first screen's facts (in the thread started by on_load)."""
        try:
            self._first = self._first_facts()
        except Exception:  # noqa: BLE001 - a bug: the load worker reads them again and fails
            pass  # there, as Textual reports it (not printed over the screen from this thread)
        finally:
            self._first_ready.set()

    def _first_facts(self) -> FirstFacts:
        """Read the summary, the --modules .ko files and the panic CPU's backtrace with its
        rows (without file:line): each fact fails on its own."""
        be = self.facade
        summary, summary_error = None, ""
        try:
            summary = be.summary()
            self.summary = summary
            self.panic_cpu = summary.panic_cpu
        except Exception as exc:  # noqa: BLE001 - every fact fails on its own
            summary_error = error_text(exc)
        problems: list[str] = []
        if be.module_dirs:  # before the backtraces: their module frames get the .ko's lines
            try:
                problems = be.load_module_dirs()
            except Exception as exc:  # noqa: BLE001
                problems = [f"--modules: {error_text(exc)}"]
        try:
            panic = be.panic_backtrace()
            bts = [panic] if panic is not None else be.backtraces()
        except Exception as exc:  # noqa: BLE001
            try:
                self.ps_rows = be.ps().rows
            except Exception:  # noqa: BLE001 - said again when the Tasks tab is filled
                pass
            bts = self._placeholder_backtraces(error_text(exc))
        first = next((bt for bt in bts if bt.panic), bts[0] if bts else None)
        if first is not None:  # its rows ready (file:line follow), the CPU list shows them
            try:
                self.rows_cache[id(first)] = build_rows(be, first, lines=False)
            except Exception:  # noqa: BLE001 - built again (and the error shown) on display
                pass
        self.backtraces = bts
        return FirstFacts(summary, summary_error, bts, first, problems)

    def _show_facts(self, facts: FirstFacts) -> None:
        """The first screen's facts on the screen (once: from on_mount, or the load worker)."""
        if self._facts_shown:
            return
        self._facts_shown = True
        if facts.summary is not None:
            self.query_one(SummaryBar).show(facts.summary)
        else:
            self.query_one(SummaryBar).show_error(facts.summary_error)
        for problem in facts.problems:
            self.notify(problem, severity="warning", markup=False)
        self._show_first(facts.backtraces, facts.first)

    def _show_first(self, bts: list[Backtrace], first: Backtrace | None) -> None:
        """The CPU list and the panic backtrace (from its cached rows), drawn at once; the
        load worker goes on once they are on the screen."""
        self.query_one(CpuList).show(bts, False)
        if first is not None:
            self.show_backtrace(first)
        self.call_after_refresh(self._first_screen_drawn)

    def _wait_first_screen(self) -> None:
        """Block the load worker until the first screen is drawn (or the app ends)."""
        worker = get_current_worker()
        while not self.first_screen.wait(0.05):
            if worker.is_cancelled or not self.is_running:
                return

    @staticmethod
    def _import_tabs() -> None:
        """Import the other tabs' modules (in the load worker, off the UI thread)."""
        import crashtui.tui.command
        import crashtui.tui.logview
        import crashtui.tui.memory
        import crashtui.tui.modules
        import crashtui.tui.registers
        import crashtui.tui.tasks
        import crashtui.tui.variables  # noqa: F401

    def _lines_ready(self, bt: Backtrace, rows: list[FrameRow]) -> None:
        """The panic backtrace's rows again, with file:line (the highlight stays)."""
        frames = self.query_one(FramesView)
        if frames.backtrace is bt:
            frames.update_rows(rows)

    def _load_tasks(self) -> None:
        from crashtui.tui.tasks import TasksTable

        self.tasks_loaded = True
        try:
            table = self.facade.ps()
            self.ps_rows = table.rows
            self._ui(self.query_one(TaskPicker).show, self.ps_rows)
            self._ui(self.query_one(TasksTable).show, table)
        except Exception as exc:  # noqa: BLE001
            self._ui(self.notify, f"tasks: {error_text(exc)}", severity="warning", markup=False)

    def _debug_line(self) -> str:
        try:
            return self.facade.debug_info()[0]
        except Exception as exc:  # noqa: BLE001 - only a line in the Summary tab
            return f"debug info: {error_text(exc)}"

    def _debug_hint(self) -> str | None:
        try:
            return self.facade.debug_info()[1]
        except Exception:  # noqa: BLE001 - the generic hint then
            return None

    def _load_triage(self, refresh: bool = False) -> None:
        try:
            t = self.facade.triage(refresh)
        except Exception as exc:  # noqa: BLE001 - a failing triage must not end the app
            self._ui(self._triage_error, error_text(exc))
            return
        self._ui(self._show_triage, t)
        self._ui(self._land_on_culprit, t.culprit)

    def _show_triage(self, triage: Triage) -> None:
        """The triage line, and the Triage tab once it is mounted (_mount_tabs shows it)."""
        self.triage, self.triage_error = triage, None
        self.query_one(TriageBar).show(triage)
        if self.tabbed:
            self.query_one(TriageView).show(triage)

    def _triage_error(self, message: str) -> None:
        """Why there is no triage: on the triage line and the Triage tab (once mounted)."""
        self.triage_error = message
        self.query_one(TriageBar).show_error(message)
        if self.tabbed:
            self.query_one(TriageView).show_error(message)

    def _land_on_culprit(self, culprit: Culprit | None) -> None:
        """Remember the triage's culprit (FramesView lands on it) and show its task, unless
        the pane already shows it there."""
        frames = self.query_one(FramesView)
        frames.culprit = culprit
        if culprit is None:
            return
        ref = frames.current
        if ref is None:  # rows still being built: they land on it if it is a CPU's task
            if any(bt.task == culprit.task for bt in self.backtraces):
                return
        elif (ref.backtrace.task, ref.frame.index if ref.frame else None,
              ref.exception is not None) == (culprit.task, culprit.frame, culprit.exception):
            return
        self.go_to_culprit(focus=self.focused is frames)

    def go_to_culprit(self, focus: bool = True) -> None:
        """The culprit's task and frame: a CPU's backtrace, or a blocked task's (a hang)."""
        frames = self.query_one(FramesView)
        c = frames.culprit
        on_cpu = next((bt for bt in self.backtraces if c is not None and bt.task == c.task),
                      None)
        cpu = on_cpu.cpu if on_cpu is not None else self.panic_cpu
        if c is not None and c.task is not None and on_cpu is None:
            self.jump_to_task(c.task, c.pid or 0, c.command or "")
            return
        if cpu is not None and self.query_one(CpuList).select_cpu(cpu):
            if frames.backtrace is not None and frames.backtrace.cpu == cpu and frames.rows:
                frames.show(frames.backtrace, frames.rows)
            if focus:
                frames.focus()

    def _show_modules(self) -> None:
        from crashtui.tui.modules import ModulesView

        try:
            self._ui(self.query_one(ModulesView).show, self.facade.modules())
        except Exception as exc:  # noqa: BLE001
            self._ui(self.query_one(ModulesView).show_error, error_text(exc))

    def _placeholder_backtraces(self, reason: str) -> list[Backtrace]:
        """One frameless row per running task from ps, so the CPU list still works."""
        out = []
        for r in self.ps_rows:
            if r.active:
                t = r.task
                out.append(Backtrace(t.pid, t.comm, t.address, t.cpu, [], error=reason,
                                     active=True, panic=t.cpu == self.panic_cpu))
        if not out and self.panic_cpu is not None:
            out.append(Backtrace(0, "?", 0, self.panic_cpu, [], error=reason, panic=True))
        return out

    def _message(self, view_id: str, message: str) -> None:
        self.query_one(f"#{view_id}").set_lines([lit(message, "italic")])  # type: ignore[attr-defined]

    # -- backtraces and frames ---------------------------------------------------------------

    @on(ShowBacktrace)
    def _show_backtrace(self, event: ShowBacktrace) -> None:
        self.show_backtrace(event.backtrace)

    def show_backtrace(self, bt: Backtrace, focus: bool = False) -> None:
        self.current_bt = bt
        self.set_context(bt)
        rows = self.rows_cache.get(id(bt))
        if rows is not None:
            self.query_one(FramesView).show(bt, rows)
            self._after_show(bt, focus)
        else:
            self.build_rows(bt, focus)

    @work(thread=True, group="rows", exclusive=True, description="build_rows")
    def build_rows(self, bt: Backtrace, focus: bool) -> None:
        try:
            rows = build_rows(self.facade, bt)
        except Exception as exc:  # noqa: BLE001
            self._ui(self.query_one(FramesView).show_message, error_text(exc))
            return
        self.rows_cache[id(bt)] = rows
        self._ui(self._rows_ready, bt, rows, focus)

    def _rows_ready(self, bt: Backtrace, rows: list[FrameRow], focus: bool) -> None:
        if self.current_bt is bt:
            self.query_one(FramesView).show(bt, rows)
            self._after_show(bt, focus)

    def _after_show(self, bt: Backtrace, focus: bool) -> None:
        frames = self.query_one(FramesView)
        if not any(r.ref for r in frames.rows):
            registers = self.tab_view("registers")
            if registers is not None:
                registers.show(bt, None)
                self.load_registers(bt, None)
            self.query_one(SourceView).show_message("Source", [lit("no frames", "italic")])
        if focus:
            frames.focus()

    @on(ShowTask)
    def _show_task(self, event: ShowTask) -> None:
        self.jump_to_task(event.task, event.pid, event.comm)

    def jump_to_task(self, task: int, pid: int, comm: str) -> None:
        """Show a task's backtrace (from the task list, the Tasks tab or the palette)."""
        for bt in self.backtraces:
            if bt.task == task and bt.frames:
                self.show_backtrace(bt, focus=True)
                return
        self.query_one(FramesView).show_message(f"loading the backtrace of PID {pid}…")
        self.load_task(task, pid, comm)

    @work(thread=True, group="rows", exclusive=True, description="load_task")
    def load_task(self, task: int, pid: int, comm: str) -> None:
        try:
            bt = self.facade.backtrace_of(task)
            rows = build_rows(self.facade, bt)
        except Exception as exc:  # noqa: BLE001
            self._ui(self.query_one(FramesView).show_message, f"PID {pid} {comm}: {error_text(exc)}")
            return
        self.rows_cache[id(bt)] = rows
        self.current_bt = bt
        self._ui(self.set_context, bt)
        self._ui(self._rows_ready, bt, rows, True)

    def set_context(self, bt: Backtrace) -> None:
        """The command line's current task follows the backtrace shown (crash's `set PID`)."""
        if bt.task:
            self.facade.set_context(None if bt.panic else bt.task)
            self._context_label = f"PID {bt.pid} {bt.command}"
            command = self.tab_view("command")
            if command is not None:
                command.show_context(self._context_label)

    def jump_to_cpu(self, cpu: int) -> None:
        if self.query_one(CpuList).select_cpu(cpu):
            self.query_one(FramesView).focus()

    def cpu_backtraces(self) -> list[Backtrace]:
        return self.query_one(CpuList).backtraces

    @on(FrameSelected)
    def _frame_selected(self, event: FrameSelected) -> None:
        ref = event.ref
        self.current_ref = ref
        if ref.backtrace is self.current_bt:  # `:locals` follows the selection
            user = ref.exception is not None and ref.exception.user_mode
            self.facade.set_frame(None if ref.frame is None or user else ref.frame.index,
                                  ref.exception is not None)
        if self.tabs_mounted:  # else _mount_tabs fills them for the frame selected then
            self._frame_views(ref)
        if self.first_screen.is_set():  # else once the first screen is drawn
            self._frame_source(ref)

    def _frame_views(self, ref: FrameRef) -> None:
        """The Registers and Variables tabs for a selected frame."""
        from crashtui.tui.registers import RegistersView
        from crashtui.tui.variables import VariablesView

        self.query_one(RegistersView).show(ref.backtrace, ref)
        self.load_registers(ref.backtrace, ref)
        self.query_one(VariablesView).load(ref)

    def _frame_source(self, ref: FrameRef) -> None:
        """The source pane for a selected frame (found in a worker)."""
        from crashtui.tui.sourceload import SourceRequest

        exc = ref.exception
        fn = ref.frame.function if ref.frame is not None and exc is None else None
        title = (f"#{ref.frame.index} {ref.frame.symbol}" if ref.frame is not None and exc is None
                 else f"exception {exc.pc_name if exc else 'RIP'} {ref.pc:#x}")
        self.show_source(SourceRequest(title, None, None, fn, ref.pc if ref.exact else ref.pc - 1,
                                       user_mode=bool(exc and exc.user_mode)), ref)

    @work(thread=True, group="registers", exclusive=True, description="load_registers")
    def load_registers(self, bt: Backtrace, ref: FrameRef | None) -> None:
        """The Registers tab for a frame: its known registers, annotated (dump reads)."""
        try:
            data = self.facade.frame_registers(bt, ref)
        except Exception:  # noqa: BLE001 - crash's block (already shown) stays
            return
        if data is not None:
            self._ui(self._registers_ready, bt, ref, data)

    def _registers_ready(self, bt: Backtrace, ref: FrameRef | None, data: Any) -> None:
        if ref is self.current_ref or (ref is None and self.current_bt is bt):
            self.query_one("#registers").show_frame(bt, ref, data)  # type: ignore[attr-defined]

    # -- the source pane -------------------------------------------------------------------

    @work(thread=True, group="source", exclusive=True, description="show_source")
    def show_source(self, req: SourceRequest, ref: FrameRef | None = None) -> None:
        """Find and show a location's source; else the disassembly with a hint."""
        from crashtui.tui.sourceload import SourceLoader

        SourceLoader(self).show(req, ref)

    def jump_to_symbol(self, name: str) -> None:
        """Show a function's source (or disassembly) in the source pane."""
        self.show_symbol(name)

    @work(thread=True, group="source", exclusive=True)
    def show_symbol(self, name: str) -> None:
        from crashtui.tui.sourceload import SourceLoader

        SourceLoader(self).show_symbol(name)

    # -- modules ---------------------------------------------------------------------------

    def on_modules_view_load_module(self, event: ModulesView.LoadModule) -> None:
        """The Modules tab's .ko path was entered (ModulesView.LoadModule)."""
        self.load_module(event.name, event.path)

    @work(thread=True, group="modules")
    def load_module(self, name: str, path: Path) -> None:
        try:
            self.facade.load_module(name, path)
        except Exception as exc:  # noqa: BLE001
            self._ui(self.notify, f"{path}: {error_text(exc)}", severity="error", markup=False)
            return
        self._ui(self.notify, f"loaded {path} for {name}", markup=False)
        self.rows_cache.clear()
        self._load_triage(refresh=True)
        try:
            self._ui(self.query_one("#modules").show, self.facade.modules())  # type: ignore[attr-defined]
            self.backtraces = self.facade.backtraces()
            self._ui(self.query_one(CpuList).show, self.backtraces)
        except Exception:  # noqa: BLE001 - the old lists stay
            pass

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        from crashtui.tui.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_tab(self, name: str) -> None:
        self.select_tab(name, focus=True)

    def select_tab(self, name: str, focus: bool = False) -> None:
        """Show a bottom tab (and give its pane the keys); a tab asked for before the tabs
        are mounted is shown when they are, the keys given when its pane is."""
        if not self.tabbed or (focus and not self.tabs_mounted):  # its pane comes later
            self._pending_tab = (name, focus)
            if not self.tabbed:
                return
        else:
            self._pending_tab = None
        from textual.widgets import TabbedContent, TabPane

        self.query_one(TabbedContent).active = f"tab-{name}"
        if not focus:
            return
        pane = self.query_one(f"#tab-{name}", TabPane)
        target = {"log": "#log-lines", "command": "#command-input", "modules": "#modules-table"}
        try:
            pane.query_one(target.get(name, f"#{name}")).focus()
        except Exception:  # noqa: BLE001
            pass

    def action_command(self) -> None:
        self.action_tab("command")
        command_input = self.tab_view("command-input")
        if command_input is not None:
            command_input.focus()

    def action_go_to_culprit(self) -> None:
        self.go_to_culprit()

    def action_show_pid(self, pid: int) -> None:
        """A task's backtrace by PID (the Triage tab's task rows)."""
        for t in self.ps_rows:
            if t.task.pid == pid:
                self.jump_to_task(t.task.address, pid, t.task.comm)
                return

    def action_panic(self) -> None:
        """The culprit's backtrace (the panic CPU's, or a hung task's), on the culprit frame."""
        self.go_to_culprit()

    def action_log_panic(self) -> None:
        self.action_tab("log")
        log_lines = self.tab_view("log-lines")
        if log_lines is not None:
            log_lines.action_panic()

    def action_interrupt(self) -> None:
        """Ctrl+C as in crash and gdb: interrupt the running command, never quit (q does)."""
        command = self.tab_view("command")
        if command is not None and command.interrupt():
            return
        selected = self.screen.get_selected_text()
        if selected:  # Ctrl+C with text selected by the mouse copies it, as in a terminal
            self.copy_to_clipboard(selected)
            self.screen.clear_selection()
            self.notify("copied the selection (OSC 52)", timeout=2)
        else:
            self.notify("Ctrl+C interrupts a running command; q (or Ctrl+Q) quits", timeout=4)

    def action_zoom(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.focused is not None:
            self.screen.maximize(self.focused)

    def action_export(self) -> None:
        name = f"crashtui-report-{Path(str(self.facade.session.dump_path)).name}.md"

        def done(path: str | None) -> None:
            if path:
                self.export(path)

        from crashtui.tui.export import ExportScreen

        self.push_screen(ExportScreen(name), done)

    @work(thread=True, group="export")
    def export(self, path: str) -> None:
        try:
            written = self.facade.export(path)
        except OSError as exc:  # a missing directory, no permission, a full disk: one line
            reason = exc.strerror or str(exc)
            self._ui(self.notify, f"export: cannot write {path}: {reason}", severity="warning",
                     markup=False)
            return
        except Exception as exc:  # noqa: BLE001
            self._ui(self.notify, f"export: {error_text(exc)}", severity="warning", markup=False)
            return
        self._ui(self.notify, f"report written to {written}", markup=False)

    async def settle(self) -> None:
        """Wait until every worker has finished (for tests and captures)."""
        for _ in range(200):
            await self.workers.wait_for_complete()
            await self.animator.wait_for_idle()
            if not any(w.is_running for w in self.workers):
                break


def make_app(session: Session, source: str | None = None,
             modules: Sequence[str] = ()) -> CrashtuiApp:
    """The app on an open Session (it loads the .ko files of `modules` itself, in a worker)."""
    return CrashtuiApp(SessionFacade(session, source=source, modules=modules))


def run_app(session: Session, source: str | None = None, modules: Sequence[str] = ()) -> int:
    """Start the app on an open Session; returns the exit status."""
    return run_until_quit(make_app(session, source, modules))


def run_until_quit(app: CrashtuiApp, **options: Any) -> int:
    """Run the app; when it quits while a fact is still being computed in a worker thread
    (which Python cannot stop), end the process at once instead of waiting for it."""
    loop = asyncio.new_event_loop()
    result = app.run(loop=loop, **options)  # not asyncio.run: it would join the workers
    status = result if isinstance(result, int) else 0
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.current_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    loop.close()
    return status
