"""Pipes (`| grep`, `| head`, `| tail`) and the current context (`set`) in the shared command
layer (so `crashtui -c` and the app's command line both have them), on the 6.1-sysrq dump."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command
from crashtui.commands.pipes import split_pipes

pytestmark = pytest.mark.needs_vmlinux
CRASH = SAMPLES / "6.1-sysrq" / "crash"


@pytest.fixture
def session(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(sysrq_dump, vmlinux_path)
    yield s
    s.close()


def test_split_pipes_keeps_c_or_and_quoted_bars() -> None:
    assert split_pipes("log | grep -i panic") == ("log ", [["grep", "-i", "panic"]])
    assert split_pipes("bt -a|head -n 3| tail -1") == ("bt -a", [["head", "-n", "3"],
                                                                ["tail", "-1"]])
    assert split_pipes("p jiffies|1") == ("p jiffies|1", [])
    assert split_pipes("log | grep 'a|b'") == ("log ", [["grep", "a|b"]])


def test_grep_head_tail_filter_crash_output(session: Session) -> None:
    log = run_command(session, "log")
    assert run_command(session, "log | grep -i panic") == [s for s in log if "panic" in s.lower()]
    assert run_command(session, "log | grep -i panic")  # the dump has them
    assert run_command(session, "log | grep -v -i panic") == [
        s for s in log if "panic" not in s.lower()]
    assert run_command(session, "log | grep -ic panic") == [
        str(sum("panic" in s.lower() for s in log))]
    bt_a = (CRASH / "bt-a.txt").read_text().splitlines()
    assert run_command(session, "bt -a | head -n 3") == bt_a[:3]
    assert run_command(session, "bt -a | head") == bt_a[:10]
    ps = (CRASH / "ps.txt").read_text().splitlines()
    assert run_command(session, "ps | tail -2") == ps[-2:]
    assert run_command(session, "ps | grep kworker | head -1") == [
        next(s for s in ps if "kworker" in s)]
    assert len(run_command(session, "ps | grep rcu")) == 6  # [rcu_gp], [rcu_par_gp], ...
    assert run_command(session, "ps | grep -w rcu") == []  # `rcu` alone is no word of theirs
    assert run_command(session, "ps | grep -w rcu_gp") == [s for s in ps if s.endswith("[rcu_gp]")]


@pytest.mark.parametrize("line, message", [
    ("log | grep", "grep: no pattern"),
    ("log | grep -z x", "grep: unsupported option -z"),
    ("log | head -n x", "head: invalid number of lines: x"),
    ("log | grep x | sort", "sort: unsupported pipe command"),
])
def test_bad_pipes_say_what_is_wrong(session: Session, line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run_command(session, line)


def test_set_moves_the_context_bt_and_task_use(session: Session) -> None:
    crash_bt = (CRASH / "bt.txt").read_text().splitlines()
    assert run_command(session, "bt") == crash_bt  # the panic task, as crash starts
    assert run_command(session, "set") == [
        "    PID: 1", 'COMMAND: "init"',
        "   TASK: ffff8af3c1204180  [THREAD_INFO: ffff8af3c1204180]",
        "    CPU: 3", "  STATE: TASK_RUNNING (PANIC)"]
    out = run_command(session, "set 2")
    assert out[:2] == ["    PID: 2", 'COMMAND: "kthreadd"'] and out[-1].startswith("  STATE: ")
    assert run_command(session, "bt") == run_command(session, "bt 2")
    assert run_command(session, "bt")[0].startswith("PID: 2 ")
    assert run_command(session, "task | head -1") == run_command(session, "task 2 | head -1")
    assert run_command(session, "set -p")[0] == "    PID: 1"
    assert run_command(session, "bt") == crash_bt
    assert run_command(session, "set -c 0")[0] == "    PID: 0"
    assert run_command(session, "set ffff8af3c1204180")[0] == "    PID: 1"
    with pytest.raises(CommandError, match="set: invalid task or pid value: 99999"):
        run_command(session, "set 99999")


def test_redirection_writes_the_output_to_a_file(session: Session, tmp_path: Path) -> None:
    out = tmp_path / "bt.txt"
    assert run_command(session, f"bt > {out}") == []
    assert out.read_text().splitlines() == (CRASH / "bt.txt").read_text().splitlines()
    assert run_command(session, f"ps | grep kworker | head -2 >> {out}") == []
    ps_kworkers = [s for s in (CRASH / "ps.txt").read_text().splitlines() if "kworker" in s]
    assert out.read_text().splitlines()[-2:] == ps_kworkers[:2]
    # `->` is a member access, not a redirection
    p_arrow = (CRASH / "p-arrow.txt").read_text().splitlines()
    assert run_command(session, "p init_task.real_parent->pid")[-1].split("=")[1] == \
        p_arrow[-1].split("=")[1]
    with pytest.raises(CommandError, match="cannot write .*no-such-dir/x: No such file"):
        run_command(session, f"bt > {tmp_path}/no-such-dir/x")
