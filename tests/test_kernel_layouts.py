"""A kernel layout crashtui does not know: one clear line names the member, the rest shows.

The real 6.1 sysrq dump is opened with its vmlinux's own BTF, one member name changed in the
BTF string table, as a future kernel renaming that member would look.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import run_command
from crashtui.debuginfo.btf import Btf

pytestmark = pytest.mark.needs_vmlinux


def renamed(dump: Path, vmlinux: Path, member: str) -> Session:
    """A session whose BTF calls `member` something else (same length: the layout holds)."""
    session = Session.open(dump, vmlinux)
    vm = session.kernel.vmlinux
    assert vm is not None
    data = bytes(vm.image.section_data(".BTF"))
    patched = data.replace(b"\0" + member.encode() + b"\0", b"\0" + member[:-1].encode() + b"X\0",
                           1)
    assert patched != data
    session.kernel.__dict__["btf"] = Btf(patched, path="BTF with a renamed member")
    return session


def sys_output(session: Session) -> tuple[dict[str, str], list[str]]:
    lines = run_command(session, "sys")
    fields = {line[:12].strip(): line[14:] for line in lines if "WARNING" not in line[:12]}
    warnings = [line[14:] for line in lines if "WARNING" in line[:12]]
    return fields, warnings


def test_thread_list_member_renamed(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """No task->thread_node: the group leaders are listed, one warning names the member."""
    fields, warnings = sys_output(renamed(sysrq_dump, vmlinux_path, "thread_node"))
    assert fields["TASKS"] == "78  [DAMAGED]"  # every task of this dump leads its group
    assert fields["DATE"] == "Thu Nov 26 10:23:31 UTC 2026"
    assert fields["PANIC"] == '"Kernel panic - not syncing: sysrq triggered crash"'
    assert len(warnings) == 1
    assert "unknown kernel layout" in warnings[0] and "'thread_node'" in warnings[0]


def test_required_task_member_renamed(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """No task_struct.comm: TASKS is unavailable with the member named; every other field
    and the log still show."""
    session = renamed(sysrq_dump, vmlinux_path, "comm")
    fields, warnings = sys_output(session)
    assert fields["TASKS"] == "(unavailable)"
    assert fields["RELEASE"] == "6.1.0-56-cloud-amd64"
    assert fields["UPTIME"] == "00:00:08"
    assert any("unknown kernel layout" in w and "'comm'" in w for w in warnings)
    assert any("sysrq: Trigger a crash" in line for line in run_command(session, "log"))
    ps = run_command(session, "ps")
    assert any("no member 'comm'" in line for line in ps)


def test_runqueue_member_renamed(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """No rq.curr: bt says which member it missed instead of a traceback."""
    session = renamed(sysrq_dump, vmlinux_path, "curr")
    bt = run_command(session, "bt")
    assert any("no member 'curr'" in line for line in bt)
    fields, _ = sys_output(session)
    assert fields["TASKS"] == "78"


# --- what a page was used for (kernel/pageuse.py) ---------------------------------------------

def test_page_use_on_6_1(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """6.1 (PG_slab flag, compound_head pointers): a task_struct lives in a slab page, kernel
    text does not; every excluded page read says nothing more than that it was excluded."""
    from crashtui.kernel.pageuse import page_use

    session = Session.open(sysrq_dump, vmlinux_path)
    k = session.kernel
    init = next(t for t in session.tasks.tasks if t.pid == 1)
    assert page_use(k, k.translate(init.address) >> 12) == "slab"
    assert page_use(k, k.translate(k.symbol("panic")) >> 12) is None


def test_thread_list_head_on_a_missing_page(sysrq_dump: Path, vmlinux_path: Path) -> None:
    """A task's signal_struct on a page the dump lacks (makedumpfile 1.7.8 drops such slab
    pages on 7.1+): its thread list is walked from the leader's own thread_node, so the task
    count holds and no thread group is reported damaged."""
    from test_robustness_support import overlay

    from crashtui.kernel.tasks import TaskReader

    session = Session.open(sysrq_dump, vmlinux_path)
    k = session.kernel
    reader = TaskReader(k)
    init = next(t for t in Session.open(sysrq_dump, vmlinux_path).tasks.tasks if t.pid == 1)
    signal = k.read_u64(init.address + reader.o_signal)
    with overlay(k) as view:
        view.hole(signal + reader.o_thread_head, 16)
        assert reader.threads_of(init.address, errors := []) == [init.address]
        assert errors == []
        fields, warnings = sys_output(session)
    assert fields["TASKS"] == "78" and warnings == []
