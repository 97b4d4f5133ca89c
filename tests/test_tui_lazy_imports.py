"""The app's first screen imports only what it draws: the tabs and the footer (Textual's
TabbedContent and Footer), the other tabs' panes, the source highlighter, the disassembler, the
report and the command modules come after (issue 21)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAZY = ("pygments", "rich.syntax", "capstone", "crashtui.report", "crashtui.kernel.framevars",
        "crashtui.kernel.mm", "crashtui.commands.complete", "crashtui.commands.sys",
        "crashtui.tui.variables", "crashtui.tui.memory", "crashtui.tui.registers",
        "crashtui.tui.command", "crashtui.tui.modules", "crashtui.tui.tasks",
        "crashtui.tui.logview", "crashtui.tui.sourceload", "crashtui.tui.help",
        "crashtui.tui.export", "textual.widgets._tabbed_content", "textual.widgets._footer")


def test_importing_the_app_leaves_the_other_panes_unimported() -> None:
    probe = ("import sys\nimport crashtui.tui.app\n"
             f"print(sorted(m for m in {LAZY!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.splitlines()[-1] == "[]"
    # the probe can fail: the Variables pane's module pulls in the frame variables
    probe = probe.replace("import crashtui.tui.app\n", "import crashtui.tui.variables\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert "crashtui.kernel.framevars" in out.splitlines()[-1]


# Runs the app headless on a dump; at the first screen (summary and panic backtrace drawn)
# prints the LAZY modules imported, the widgets on the screen and what the panes show.
FIRST_SCREEN_PROBE = """
import sys
from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp, run_until_quit
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.summary import SummaryBar

LAZY, dump, vmlinux = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
seen = []

class Probe(CrashtuiApp):
    def _first_screen_drawn(self):
        if not seen:
            names = {type(w).__name__ for w in self.screen.walk_children()}
            frames = self.query_one(FramesView)
            seen.append(1)
            print("LAZY", sorted(m for m in LAZY if m in sys.modules))
            print("WIDGETS", sorted(names & {"TabbedContent", "Footer", "Static"}))
            print("SUMMARY", self.query_one(SummaryBar).summary is not None)
            print("FRAMES", [r.symbol for r in frames.rows][:12])
        super()._first_screen_drawn()
        self.exit(0)

app = Probe(SessionFacade(Session.open(dump, vmlinux), auto_source=False))
run_until_quit(app, headless=True, size=(160, 48))
"""


@pytest.mark.needs_vmlinux
def test_first_screen_has_the_backtrace_without_the_tabs(sysrq_dump: Path,
                                                         vmlinux_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", FIRST_SCREEN_PROBE, ",".join(LAZY),
                          str(sysrq_dump), str(vmlinux_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    # the probe quits at once: the tabs' mounting, scheduled then, must end quietly
    assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr, \
        out.stdout[-3000:] + out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines.get("LAZY") == "[]", out.stdout + out.stderr
    assert lines["WIDGETS"] == "['Static']"  # the placeholders, not TabbedContent or Footer
    assert lines["SUMMARY"] == "True"
    assert "sysrq_handle_crash" in lines["FRAMES"]  # the panic frame is drawn
