"""The Triage pane: what happened, who is to blame, and the crash's signature.

Self-contained: `TriageView().show(triage)` with a crashtui.analysis.triage.Triage, or
`TriageView().load(session)` to build it in a worker thread. Every string from the dump
(function and module names, log lines, paths) is shown as literal rich Text, never markup.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from crashtui.tui.text import append_module_where, lit, safe

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.analysis.triage import Triage

LABEL_WIDTH = 13


def _row(label: str, value: Text | str, style: str = "", action: str | None = None) -> Text:
    """One `Label  value` row; `action` (an app action) runs when the row is clicked."""
    t = Text(end="")
    t.append(f"{label:<{LABEL_WIDTH}}", "bold")
    t.append_text(value if isinstance(value, Text) else lit(value, style))
    if action is not None:
        t.stylize(Style(meta={"@click": action}))
    return t


def triage_text(t: Triage) -> Text:
    """The whole triage as one rich Text (literal dump strings, a row per fact)."""
    rows: list[Text] = [Text(safe(t.title[:1].upper() + t.title[1:]), "bold red"),
                        Text(safe(t.summary)), Text("")]
    c = t.culprit
    if c is not None:
        where = Text(end="")
        where.append_text(lit(c.symbol, "bold"))
        append_module_where(where, c.module, c.location)
        if c.pid is not None and c.pid != t.pid:  # a hang's culprit is another task's
            where.append_text(lit(f"  PID {c.pid} ({c.command})", "dim"))
        rows.append(_row("Culprit", where, action="app.go_to_culprit"))
        if c.module:
            taint = Text(end="")
            taint.append_text(lit(c.module))
            taint.append_text(lit(f"  taints {c.module_taints or 'none'}"))
            if c.out_of_tree:
                taint.append("  (out-of-tree)", "yellow")
            rows.append(_row("Module", taint))
    else:
        rows.append(_row("Culprit", "not found", "italic"))
    if t.page_fault is not None:
        rows.append(_row("Page fault", t.page_fault.text()))
    if t.fault_address is not None:
        rows.append(_row("Address", f"{t.fault_address:#x}"))
    if t.bug is not None:
        b = t.bug
        rows.append(_row("WARN site" if b.warning else "BUG site",
                         f"{b.file}:{b.line}" if b.file else f"{b.address:#x}"))
    o = t.origin
    if o is not None:
        rows.append(_row("Instruction", f"{o.address:x}: {o.instruction}"))
        if o.explanation:
            rows.append(_row("Origin", o.explanation))
    if t.bad_register is not None:
        r = t.bad_register
        rows.append(_row("Bad register", f"{r.name.upper()} = {r.value:#x}", "bold yellow"))
    elif o is not None and o.absolute:
        rows.append(_row("Bad register", "none: the address is in the instruction", "dim"))
    if t.hung_pid is not None:
        since = f", not run for {t.hung_since / 1e9:.1f} s" if t.hung_since is not None else ""
        rows.append(_row("Blocked task", f"PID {t.hung_pid} ({t.hung_command}){since}",
                         action=f"app.show_pid({t.hung_pid})"))
    for w in t.cycle:
        rows.append(_row("Lock cycle", w, "bold yellow"))
    for w in t.waits:
        if w not in t.cycle:
            rows.append(_row("Waits", w))
    if t.blocked:
        rows.append(_row("Blocked", f"{t.blocked} task(s) in D state (command `hang`)"))
    if t.oom is not None:
        rows += [_row("Memory", line) for line in t.oom.lines()]
    if t.event:
        rows.append(_row("Log", t.event))
    if t.panic_message:
        rows.append(_row("Panic", t.panic_message))
    if t.pid is not None:
        rows.append(_row("Task", f"PID {t.pid} ({t.command}) on CPU {t.cpu}",
                         action=f"app.show_pid({t.pid})"))
    sig = Text(end="")
    sig.append(t.signature, "bold")
    if t.signature_frames:
        sig.append("  ")
        sig.append_text(lit(" / ".join(t.signature_frames), "dim"))
    rows.append(_row("Signature", sig))
    for note in t.notes:
        rows.append(_row("Note", note, "italic"))
    return Text("\n").join(rows)


def triage_headline(t: Triage, width: int = 0) -> Text:
    """What happened, in one line fitting `width`: kind and culprit, then as room allows its
    file:line, the bad register (or address), an out-of-tree module, the signature."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(" ")
    text.append_text(lit(t.title[:1].upper() + t.title[1:], "bold red"))
    c = t.culprit
    if c is not None:
        text.append(" in ")
        text.append_text(lit(c.symbol, "bold"))
        if c.module:
            text.append(" [")
            text.append_text(lit(c.module))
            text.append("]")
    extras: list[Text] = []
    file, line = (c.file, c.line) if c is not None else (None, None)
    if not (file and line) and t.bug is not None:
        file, line = t.bug.file, t.bug.line
    if file and line:
        extras.append(lit(f"{posixpath.basename(file)}:{line}", "cyan"))
    if t.bad_register is not None:
        r = t.bad_register
        extras.append(Text.assemble(("bad ", "yellow"),
                                    (f"{r.name.upper()} = {r.value:#x}", "bold yellow")))
    elif t.fault_address is not None:
        extras.append(Text.assemble("address ", (f"{t.fault_address:#x}", "bold")))
    if c is not None and c.module and c.out_of_tree:
        extras.append(Text("out-of-tree module", "yellow"))
    if t.signature:
        extras.append(Text.assemble(("sig ", "dim"), (t.signature, "dim")))
    for extra in extras:
        if width and text.cell_len + 2 + extra.cell_len > width:
            continue
        text.append("  ")
        text.append_text(extra)
    return text


class TriageBar(Static):
    """The triage's headline under the summary bar (the Triage tab has the rest)."""

    def on_mount(self) -> None:
        self.update(Text(" triage: working it out…", "dim", no_wrap=True))

    triage: Triage | None = None

    def show(self, triage: Triage) -> None:
        self.triage = triage
        self.update(triage_headline(triage, self.size.width))

    def on_resize(self) -> None:
        if self.triage is not None:
            self.update(triage_headline(self.triage, self.size.width))

    def show_error(self, message: str) -> None:
        self.update(Text.assemble((" triage unavailable: ", "italic"), lit(message, "italic")))


class TriageView(VerticalScroll):
    """A scrollable pane showing one Triage; Enter (or a click on Culprit) shows the culprit's
    frame, b (or a click on Blocked task / Task) that task's backtrace."""

    BINDINGS = [
        Binding("enter", "culprit", "Culprit frame"),
        Binding("b", "blocked", "Blocked task", show=False),
    ]
    triage: Triage | None = None

    async def action_culprit(self) -> None:
        await self.app.run_action("app.go_to_culprit")

    async def action_blocked(self) -> None:
        t = self.triage
        pid = t.hung_pid if t is not None and t.hung_pid is not None else \
            (t.pid if t is not None else None)
        if pid is not None:
            await self.app.run_action(f"app.show_pid({pid})")

    DEFAULT_CSS = """
    TriageView { padding: 0 1; }
    TriageView > Static { width: 100%; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Text("Triage: working it out…", "dim"), id="triage-body")

    def show(self, triage: Triage) -> None:
        """Display a built Triage."""
        self.triage = triage
        self.query_one("#triage-body", Static).update(triage_text(triage))

    def show_error(self, message: str) -> None:
        """Say why there is no triage."""
        self.query_one("#triage-body", Static).update(
            Text.assemble(("Triage unavailable: ", "bold red"), lit(message)))

    @work(thread=True, group="triage", exclusive=True)
    def load(self, session: Session) -> None:
        """Build the session's triage in a worker thread, then show it."""
        from crashtui.commands.triage import session_triage
        from crashtui.errors import CrashtuiError

        try:
            t = session_triage(session)
        except CrashtuiError as exc:
            self.app.call_from_thread(self.show_error, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - a failing triage must not end the app
            self.app.call_from_thread(self.show_error, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self.show, t)
