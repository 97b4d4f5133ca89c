"""The app's first screen imports only what it draws: the other tabs' panes, the source
highlighter, the disassembler, the report and the command modules come after (issue 21)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAZY = ("pygments", "rich.syntax", "capstone", "crashtui.report", "crashtui.kernel.framevars",
        "crashtui.kernel.mm", "crashtui.commands.complete", "crashtui.commands.sys",
        "crashtui.tui.variables", "crashtui.tui.memory", "crashtui.tui.registers",
        "crashtui.tui.command", "crashtui.tui.modules", "crashtui.tui.tasks",
        "crashtui.tui.logview", "crashtui.tui.sourceload", "crashtui.tui.help",
        "crashtui.tui.export")


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
