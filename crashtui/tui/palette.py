"""Command palette providers: jump to a CPU, a task or a symbol; export the report.

Labels built from dump strings are Content (literal): Matcher.highlight would parse markup.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from crashtui.tui.text import safe


def _app(provider: Provider) -> Any:
    return provider.app


class CpuProvider(Provider):
    """`CPU 3: init (panic)` for every CPU."""

    def _items(self) -> list[tuple[str, Any]]:
        app = _app(self)
        out = []
        for bt in app.cpu_backtraces():
            label = f"CPU {bt.cpu}: {safe(bt.command)} (PID {bt.pid})" + (" PANIC" if bt.panic else "")
            out.append((label, partial(app.jump_to_cpu, bt.cpu)))
        return out

    async def discover(self) -> Hits:
        for label, cb in self._items():
            yield DiscoveryHit(Content(label), cb, text=label, help="show this CPU's backtrace")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, cb in self._items():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, Content(label), cb, text=label, help="show this CPU's backtrace")


class TaskProvider(Provider):
    """`task 125 init` for every task."""

    async def search(self, query: str) -> Hits:
        app = _app(self)
        matcher = self.matcher(query)
        for row in app.ps_rows[:5000]:
            t = row.task
            label = f"task {t.pid} {safe(t.comm)}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, Content(label),
                          partial(app.jump_to_task, t.address, t.pid, t.comm), text=label,
                          help="show this task's backtrace")


class SymbolProvider(Provider):
    """`symbol NAME`: the function's source or disassembly in the source pane."""

    async def search(self, query: str) -> Hits:
        app = _app(self)
        word = query.strip().removeprefix("symbol").strip()
        if len(word) < 3:
            return
        matcher = self.matcher(word)
        for name in app.facade.symbol_names(word, 20):
            label = f"symbol {safe(name)}"
            yield Hit(max(matcher.match(name), 0.5), Content(label), partial(app.jump_to_symbol, name),
                      text=label, help="show the function's source / disassembly")


class ActionProvider(Provider):
    """The app's own actions (export, panic, help, tabs)."""

    ACTIONS = (
        ("Show triage", "tab('triage')", "what happened: kind, culprit, bad register"),
        ("Export report (Markdown)", "export", "write crashtui-report-*.md"),
        ("Jump to panic", "panic", "the panic CPU's culprit frame"),
        ("Show full summary (sys)", "tab('summary')", "crash's sys"),
        ("Show log at the panic", "log_panic", "the oops block in the log"),
        ("Command line", "command", "crash-style commands"),
        ("Help: keys", "help", "every key"),
    )

    async def discover(self) -> Hits:
        app = _app(self)
        for label, action, help_text in self.ACTIONS:
            yield DiscoveryHit(label, partial(app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        app = _app(self)
        matcher = self.matcher(query)
        for label, action, help_text in self.ACTIONS:
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.run_action, action),
                          text=label, help=help_text)
