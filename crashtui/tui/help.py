"""The help screen (`?`): every key, in one place."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen

from crashtui.tui.lines import TextLines

KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k", "move in the focused pane (frames, CPUs, tasks, lines)"),
    ("PgUp PgDn Space", "text panes (log, source, command output, summary): page up / down"),
    ("Home g  End G", "text panes: top / bottom"),
    ("← →  h l", "text panes: scroll sideways (long log lines, wide disassembly)"),
    ("Enter", "frame → its source; CPU or task → its backtrace; Triage tab: the culprit frame"),
    ("Tab  Shift+Tab", "next / previous pane"),
    ("Esc", "back: close help, search or export; from the source pane or command line to the "
            "frames; clear the task filter; cancel the .ko prompt or log search"),
    ("c  t  f  o", "focus CPUs, task filter, frames, source"),
    ("p", "panic: the panic CPU's culprit frame (in the Log tab: the oops)"),
    ("1 … 9", "tabs: Triage Registers Memory Log Tasks Modules Summary Command Variables"),
    ("s", "full summary (crash's sys)"),
    ("/  n  N", "search the focused pane (log, command output, frames, CPUs, Tasks table, "
                "Variables; "
                "in the task list: the filter); next / previous match"),
    (":", "command line: sys, bt, log, ps, kmem -i, mod, dis -l, set PID, help; "
          "pipes: | grep [-i -v -w -c] PAT, | head [-n N], | tail [-n N], > FILE"),
    ("Tab", "command line: complete commands, symbols, structs, modules"),
    ("Ctrl+C", "interrupt a running command (it never quits); else copy the mouse selection"),
    ("y  Y", "copy (OSC 52: over SSH and tmux too). Frames: the selected frame / the whole "
             "backtrace as crash's bt -l; Registers: the value under the cursor / all; "
             "Variables: the value (a pointer's address) / the tree; "
             "Tasks, task list: the task's address / its row; Modules: its base; other panes: "
             "y copies the cursor's line "
             "or the mouse selection"),
    ("mouse drag", "select text in a text pane (log, registers, source, command output)"),
    ("l", "Modules tab: load the selected module's .ko"),
    ("s  r", "Tasks tab, slab caches: sort by the next column, reverse"),
    ("v", "Memory tab: usage, slab caches (largest first), zones; Tasks tab: ps, run queues"),
    ("b", "Triage tab: the backtrace of the blocked (hung) task, else of the crashing one"),
    ("r", "frames: open the Registers tab"),
    (".", "source pane: centre the marked line again"),
    ("e", "export a Markdown report (an existing file: Enter twice to overwrite)"),
    ("z  Ctrl+Z", "zoom the focused pane or the bottom tabs to the whole screen (again: "
                  "back); Ctrl+Z in the command line"),
    ("Ctrl+P", "command palette: jump to a CPU, task or symbol; export"),
    ("?", "this help"),
    ("q  Ctrl+Q", "quit"),
)

MARKS: tuple[tuple[str, str], ...] = (
    ("▶  !", "CPUs: the CPU that panicked (▶ before it, ! after its command)"),
    (">", "task list, Tasks tab: a task running on a CPU when the dump was taken (as crash's ps)"),
    ("#3 f+0x16", "a frame: function+offset of its return address, then [module] and file:line"),
    ("?", "after a frame: found by frame pointer or a stack scan, not by the ORC unwinder: "
          "it may be a stale return address (crash: `bt` lists it, `bt -f` shows the word)"),
    ("⚡", "an exception or interrupt frame: the registers saved when it was taken; "
          "`exception RIP` (arm64: `PC`) is where the CPU was"),
    ("‼", "the backtrace stopped: why"),
    ("▶ (source)", "source / disassembly: the frame's line or instruction"),
    ("bold log", "Log tab: the oops or panic report the triage read"),
)

INDENT = 18


def _rows(table: tuple[tuple[str, str], ...], width: int) -> list[Text]:
    """Key and description, the description wrapped under itself at `width` columns."""
    lines: list[Text] = []
    wrap = max(20, width - INDENT)
    for key, what in table:
        parts = textwrap.wrap(what, wrap) or [""]
        lines.append(Text.assemble((f"  {key:<{INDENT - 2}}", "bold"), parts[0]))
        lines += [Text(" " * INDENT + part) for part in parts[1:]]
    return lines


def help_lines(width: int = 100) -> list[Text]:
    """The key table and the marks' meanings as Text lines, wrapped to `width` columns."""
    lines = [Text("crashtui keys", "bold"), Text(""), *_rows(KEYS, width), Text(""),
             Text("marks", "bold"), Text(""), *_rows(MARKS, width), Text("")]
    for note in ("Source is looked up with --source DIR or CRASHTUI_SOURCE=DIR (a kernel tree "
                 "or a linux-source tarball).", "Esc or ? closes this help."):
        lines += [Text(part, "dim") for part in textwrap.wrap(note, max(20, width))]
    return lines


class HelpScreen(ModalScreen[None]):
    """A modal list of the keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield TextLines(id="help-text", show_cursor=False)

    def on_mount(self) -> None:
        view = self.query_one(TextLines)
        view.border_title = "Help"
        view.set_lines(help_lines())
        view.focus()

    def on_resize(self) -> None:
        view = self.query_one(TextLines)
        width = view.scrollable_content_region.width
        if width:
            view.set_lines(help_lines(width))
