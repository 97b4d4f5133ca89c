"""crash's `log -c` (caller id) and `log -t` (no timestamp), against crash 8.0.6's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command

pytestmark = pytest.mark.needs_vmlinux


@pytest.fixture(scope="module")
def session_612(vmlinux_for: dict[str, Path]) -> Session:
    return Session.open(next((SAMPLES / "6.12-sysrq").glob("dump.*")), vmlinux_for["6.12-sysrq"])


@pytest.mark.parametrize("args, recorded", [("-c", "log-c.txt"), ("-t -c", "log-t-c.txt")])
def test_log_caller_id_like_crash(session_612: Session, args: str, recorded: str) -> None:
    """`[    T1]` for a task, `[    C0]` for a CPU; continuation lines indented past it."""
    expected = (SAMPLES / "6.12-sysrq" / "crash" / recorded).read_text().splitlines()
    assert run_command(session_612, f"log {args}") == expected


def test_log_combined_flags_and_bad_flag(session_612: Session) -> None:
    assert run_command(session_612, "log -tc") == run_command(session_612, "log -t -c")
    with pytest.raises(CommandError, match="unsupported argument -x"):
        run_command(session_612, "log -x")
