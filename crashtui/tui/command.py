"""The command line (`:`): crash-style commands, their output, history and Tab completion."""

from __future__ import annotations

import os
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input

from crashtui.errors import CrashtuiError
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit


def complete(prefix: str, names: list[str]) -> tuple[str, list[str]]:
    """The completed first word and the candidates it could still be."""
    cands = [n for n in names if n.startswith(prefix)]
    if not cands:
        return prefix, []
    common = os.path.commonprefix(cands)
    return (common + " " if len(cands) == 1 else common), cands


class CommandInput(Input):
    """One command line; ↑/↓ walk the history, Tab completes the command name."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=False),
        Binding("escape", "leave", "Back", show=False),
    ]

    def __init__(self, names: Callable[[], list[str]], *, id: str | None = None) -> None:
        super().__init__(placeholder="crash> command (Tab completes, ↑ history, `help`)", id=id)
        self.names = names
        self.history: list[str] = []
        self.position = 0

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self.position = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self.position = max(0, min(len(self.history), self.position + step))
        self.value = self.history[self.position] if self.position < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_leave(self) -> None:
        """Back to the frames pane."""
        self.app.query_one("#frames").focus()

    def action_complete(self) -> None:
        if " " in self.value.strip():
            return
        done, cands = complete(self.value.strip(), self.names())
        self.value = done
        self.cursor_position = len(done)
        if len(cands) > 1:
            self.notify("  ".join(cands), title="commands", markup=False)


class CommandView(Vertical):
    """Output above, the command line below."""

    def compose(self) -> ComposeResult:
        yield TextLines(id="command-output")
        yield CommandInput(self._names, id="command-input")

    def on_mount(self) -> None:
        self.query_one("#command-output", TextLines).set_lines(
            [Text("Type a crash command (sys, log, bt, ps, kmem -i, mod, dis -l FUNC, help) "
                  "and press Enter.", "dim")])
        self.output: list[Text] = []

    def _names(self) -> list[str]:
        try:
            return self.app.backend.command_names()  # type: ignore[attr-defined,no-any-return]
        except Exception:  # noqa: BLE001 - completion is a convenience
            return []

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value.strip()
        box = self.query_one(CommandInput)
        box.remember(line)
        box.value = ""
        if line:
            self.run_line(line)

    @work(thread=True, group="command")
    def run_line(self, line: str) -> None:
        """Run one command in a worker and append its output."""
        try:
            out = [lit(s) for s in self.app.backend.run(line)]  # type: ignore[attr-defined]
        except CrashtuiError as exc:
            out = [lit(f"{line.split()[0]}: {exc}", "red")]
        except Exception as exc:  # noqa: BLE001 - a failing command must not end the app
            out = [lit(f"internal error: {type(exc).__name__}: {exc}", "red")]
        self.app.call_from_thread(self._append, line, out)

    def _append(self, line: str, out: list[Text]) -> None:
        start = len(self.output)
        self.output += [Text.assemble(("crash> ", "bold"), lit(line)), *out, Text("")]
        view = self.query_one("#command-output", TextLines)
        view.set_lines(self.output, cursor=start)
        view.scroll_to(0, start, animate=False, force=True)  # the new output from its top
