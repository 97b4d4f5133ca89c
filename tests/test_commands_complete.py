"""Tab completion of the command line: command names, symbols, types, modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands.complete import complete

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"


@pytest.fixture(scope="module")
def session(vmlinux_path: Path) -> Iterator[Session]:
    s = Session.open(next((SAMPLES / "6.1-test-module").glob("dump.*")), vmlinux_path)
    yield s
    s.close()


def test_command_names() -> None:
    from crashtui.commands import command_names

    s_names = [n for n in command_names() if n.startswith("s")]
    assert complete(None, "s") == s_names and {"set", "sig", "struct", "sym", "sys"} <= set(s_names)
    assert complete(None, "str") == ["struct "]  # unique: ready for the next word
    assert complete(None, "help b") == ["help bt "]
    assert complete(None, "zz") == []
    assert "triage" in complete(None, "")


def test_symbols_types_and_modules(session: Session) -> None:
    assert complete(session, "sym sysrq_handle_cr") == ["sym sysrq_handle_crash "]
    assert "p jiffies_64" in complete(session, "p jiffi")
    assert complete(session, "p &init_ta") == ["p &init_task "]
    assert complete(session, "dis test_module_i") == ["dis test_module_init "]  # module symbol
    assert complete(session, "struct task_s") == ["struct task_security_struct",
                                                  "struct task_struct"]
    assert complete(session, "struct -o list_h") == ["struct -o list_head "]
    assert complete(session, "union rcu_sp") == ["union rcu_special "]
    assert complete(session, "struct task_struct init_ta") == ["struct task_struct init_task "]
    assert complete(session, "mod -s test") == ["mod -s test_module "]
    assert complete(session, "rd -1") == ["rd -16 "] and complete(session, "log x") == []


def test_many_matches_are_bounded_and_sorted(session: Session) -> None:
    out = complete(session, "sym a")
    assert 1 < len(out) <= 50 and out == sorted(out)


def test_tree_waitq_and_search_complete_their_arguments(session: Session) -> None:
    """tree and waitq take a symbol or a struct.member, search a symbol as -s start."""
    assert complete(session, "tree init_tas") == ["tree init_task "]
    assert complete(session, "waitq init_tas") == ["waitq init_task "]
    assert any(c.startswith("waitq task_struct") for c in complete(session, "waitq task_str"))
    assert complete(session, "search -s init_tas") == ["search -s init_task "]
