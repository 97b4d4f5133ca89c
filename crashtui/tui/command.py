"""The command line (`:`): crash-style commands, their output, history and Tab completion."""

from __future__ import annotations

import os
from collections.abc import Callable

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input
from textual.worker import get_current_worker

from crashtui.commands.complete import MAX_CANDIDATES
from crashtui.errors import CrashtuiError
from crashtui.tui.lines import TextLines
from crashtui.tui.text import lit, safe


def apply_completion(text: str, lines: list[str]) -> tuple[str, list[str]]:
    """The input after Tab and the candidates to list, from crashtui.commands.complete's
    completed lines: a unique line as it is; several, their common prefix and last words."""
    if not lines:
        return text, []
    if len(lines) == 1:
        return lines[0], []
    common = os.path.commonprefix(lines)
    # listed from the last word or member boundary: `p init_task.mm->mmap_` lists `mmap_base`,
    # not `init_task.mm->mmap_base` (nor `*)0xffff...)->comm` after a cast)
    cut = max(common.rfind(c) for c in " .>)*&(") + 1
    return (common if len(common) > len(text) else text), [
        line[cut:] or line for line in lines]


class CommandInput(Input):
    """One command line; ↑/↓ walk the history, Tab completes commands, symbols, structs and
    modules (crashtui.commands.complete, in a worker)."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=False),
        Binding("escape", "leave", "Back", show=False),
        Binding("ctrl+z", "app.zoom", "Zoom", show=False),  # `z` is typed here
    ]

    def __init__(self, completer: Callable[[str], list[str]], *, id: str | None = None) -> None:
        super().__init__(placeholder="crash> command (Tab completes, ↑ history, `help`)", id=id)
        self.completer = completer
        self.history: list[str] = []
        self.position = 0

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self.position = len(self.history)

    def on_key(self, event: events.Key) -> None:
        """`:` opens the command line; typed again at its start (a habit from vi, or the key
        pressed twice) it is not part of any command, so it is not inserted."""
        if (event.character == ":" and self.selection.is_empty
                and not self.value[: self.cursor_position].strip()):
            event.stop()
            event.prevent_default()

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
        """Complete the text before the cursor (symbols and types may take a moment)."""
        self._complete(self.value[: self.cursor_position], self.value)

    @work(thread=True, group="complete", exclusive=True)
    def _complete(self, before: str, value: str) -> None:
        try:
            lines = self.completer(before)
        except Exception:  # noqa: BLE001 - completion is a convenience
            lines = []
        self.app.call_from_thread(self._completed, before, value, lines)

    def _completed(self, before: str, value: str, lines: list[str]) -> None:
        if self.value != value:  # typed on meanwhile
            return
        done, cands = apply_completion(before, lines)
        if safe(done) == done:  # a name with control characters is listed, never typed in
            self.value = done + value[len(before):]
            self.cursor_position = len(done)
        if cands:
            more = f" (the first {MAX_CANDIDATES})" if len(cands) >= MAX_CANDIDATES else ""
            self.notify("  ".join(cands), title=f"{len(cands)} completions{more}", markup=False)


class CommandView(Vertical):
    """Output above, the command line below."""

    def compose(self) -> ComposeResult:
        yield TextLines(id="command-output")
        yield CommandInput(self._complete, id="command-input")

    def on_mount(self) -> None:
        self.query_one("#command-output", TextLines).set_lines(
            [Text("Type a crash command (sys, log, bt, ps, kmem -i, mod, dis -l FUNC, help) "
                  "and press Enter.", "dim")])
        self.output: list[Text] = []

    def _complete(self, text: str) -> list[str]:
        return self.app.facade.complete(text)  # type: ignore[attr-defined,no-any-return]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value.strip().lstrip(":").lstrip()  # a pasted ":struct ..." too
        box = self.query_one(CommandInput)
        box.remember(line)
        box.value = ""
        # Tab's list of completions (a toast) would cover the output, half of it at 80 columns
        self.app.clear_notifications()
        if line:
            self.run_line(line)

    def interrupt(self) -> bool:
        """Ctrl+C: drop the output of the commands still running (a thread cannot be stopped:
        the command ends in the background, its output is not shown); False if none ran."""
        running = [w for w in self.workers if w.group == "command" and w.is_running]
        for worker in running:
            worker.cancel()
            self._append(worker.description or "", [lit("interrupted", "yellow")])
        return bool(running)

    @work(thread=True, group="command", description="")
    def run_line(self, line: str) -> None:
        """Run one command in a worker and append its output (unless interrupted)."""
        get_current_worker().description = line
        try:
            out = [lit(s) for s in self.app.facade.run(line)]  # type: ignore[attr-defined]
        except CrashtuiError as exc:
            name, message = line.split()[0], str(exc)
            out = [lit(message if message.startswith(f"{name}:") else f"{name}: {message}", "red")]
        except Exception as exc:  # noqa: BLE001 - a failing command must not end the app
            out = [lit(f"internal error: {type(exc).__name__}: {exc}", "red")]
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._append, line, out)
        if line.split()[0] == "set":
            try:
                label = self.app.facade.context_label()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the prompt keeps its label
                return
            self.app.call_from_thread(self.show_context, label)

    def show_context(self, label: str) -> None:
        """The current task (crash's context) in the command line's prompt."""
        self.query_one(CommandInput).placeholder = (
            f"crash [{safe(label)}]> command (Tab completes, ↑ history, `help`)")

    def _append(self, line: str, out: list[Text]) -> None:
        start = len(self.output)
        self.output += [Text.assemble(("crash> ", "bold"), lit(line)), *out, Text("")]
        view = self.query_one("#command-output", TextLines)
        view.set_lines(self.output, cursor=start)
        view.scroll_to(0, start, animate=False, force=True)  # the new output from its top
