"""Memory corruption inside a valid dump: list walks and the printk ring meet bad pointers.

The real sysrq dump is read through an overlay (tests/test_robustness_support.py) that lays
bytes over kernel virtual addresses or makes them unreadable, as memory corrupted before the
crash would be. Every walk must end, bounded, with the damage marked and the rest shown.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_robustness_support import Overlay, overlay

from crashtui.analysis.session import Session
from crashtui.commands import run_command
from crashtui.kernel.lists import ListWalkError, list_for_each, walk_list
from crashtui.kernel.printk import read_log
from crashtui.kernel.tasks import TaskReader

pytestmark = pytest.mark.needs_vmlinux

GARBAGE = 0xDEAD000000000100  # LIST_POISON1: never mapped


@pytest.fixture(scope="module")
def reference(sysrq_dump: Path, vmlinux_path: Path) -> Session:
    """The undamaged session (read once)."""
    session = Session.open(sysrq_dump, vmlinux_path)
    _ = (session.summary, session.log)
    return session


@pytest.fixture
def damaged(sysrq_dump: Path, vmlinux_path: Path) -> Iterator[tuple[Session, Overlay]]:
    """A fresh session whose memory the test may patch before asking for anything."""
    session = Session.open(sysrq_dump, vmlinux_path)
    with overlay(session.kernel) as view:
        yield session, view
    session.close()


def task_nodes(session: Session) -> list[int]:
    """Addresses of the `tasks` list_heads of the undamaged task list, in order."""
    k = session.kernel
    head = k.symbol("init_task") + TaskReader(k).o_tasks
    return list(list_for_each(k, head))


def sys_fields(session: Session) -> dict[str, str]:
    return {line[:12].strip(): line[14:] for line in run_command(session, "sys")
            if not line.strip().startswith("WARNING")}


def warnings(session: Session) -> list[str]:
    return [line.partition(": ")[2] for line in run_command(session, "sys")
            if line.strip().startswith("WARNING")]


# --- the task list ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["garbage", "earlier_node", "self"])
def test_task_list_next_pointer_bad(damaged: tuple[Session, Overlay], reference: Session,
                                    target: str) -> None:
    """tasks.next of a task mid-list is garbage / points back into the list / at itself:
    the walk stops there, the tasks after it are found walking back from the end."""
    session, view = damaged
    nodes = task_nodes(session)
    victim = nodes[30]
    value = {"garbage": GARBAGE, "earlier_node": nodes[5], "self": victim}[target]
    view.set_u64(victim, value)
    started = time.monotonic()
    fields = sys_fields(session)
    assert time.monotonic() - started < 10
    assert fields["TASKS"] == "78  [DAMAGED]"
    assert {t.address for t in session.tasks.tasks} == {t.address
                                                        for t in reference.tasks.tasks}
    (problem,) = [w for w in warnings(session) if w.startswith("TASKS: task list: ")]
    reason = {"garbage": f"list node {GARBAGE:#x} (after {victim:#x}) unreadable",
              "earlier_node": f"list at {session.kernel.symbol('init_task') + 2192:#x} has a "
                              f"cycle at {nodes[5]:#x}",
              "self": f"list at {session.kernel.symbol('init_task') + 2192:#x} has a cycle at "
                      f"{victim:#x}"}[target]
    assert reason in problem and problem.endswith("found walking back from the end)")
    assert fields["PANIC"] == reference.summary.fields["PANIC"]


def test_task_list_broken_both_ways(damaged: tuple[Session, Overlay],
                                    reference: Session) -> None:
    """next and prev both broken: the tasks between the two breaks are found in the pid IDR
    and the run queues (crashtui/kernel/pid.py), and the damage is said."""
    session, view = damaged
    nodes = task_nodes(session)
    view.set_u64(nodes[20], GARBAGE).set_u64(nodes[50] + 8, GARBAGE)
    fields = sys_fields(session)
    assert fields["TASKS"] == "78  [DAMAGED]"
    assert {t.address for t in session.tasks.tasks} == {t.address
                                                        for t in reference.tasks.tasks}
    assert any(w.startswith("TASKS: ") and w.endswith(" more task(s) found in the pid IDR and "
                                                      "the run queues")
               and int(w.split()[1]) > 20 for w in warnings(session))
    assert fields["RELEASE"] == "6.1.0-56-cloud-amd64"


def test_cycle_detected_without_back_pointers(damaged: tuple[Session, Overlay]) -> None:
    """list_for_each (next only) stops at a cycle that never returns to the head."""
    session, view = damaged
    k = session.kernel
    nodes = task_nodes(session)
    view.set_u64(nodes[40], nodes[10])
    head = k.symbol("init_task") + TaskReader(k).o_tasks
    seen = []
    with pytest.raises(ListWalkError, match=f"has a cycle at {nodes[10]:#x}"):
        for node in list_for_each(k, head):
            seen.append(node)
    assert seen == nodes[:41]


def test_walk_is_bounded(damaged: tuple[Session, Overlay]) -> None:
    session, _view = damaged
    k = session.kernel
    head = k.symbol("init_task") + TaskReader(k).o_tasks
    walk = walk_list(k, head, limit=10)
    assert len(walk.nodes) == 10 and walk.error == f"list at {head:#x} longer than 10 entries"
    with pytest.raises(ListWalkError, match="longer than 10 entries"):
        list(list_for_each(k, head, limit=10))


def test_list_head_unreadable(damaged: tuple[Session, Overlay]) -> None:
    session, view = damaged
    k = session.kernel
    head = k.symbol("init_task") + TaskReader(k).o_tasks
    view.hole(head, 16)
    walk = walk_list(k, head)
    assert walk.nodes == [] and walk.error is not None and "unreadable" in walk.error
    fields = sys_fields(session)
    assert fields["TASKS"].endswith("[DAMAGED]")  # idle tasks only; init_task itself is gone


def test_task_struct_unreadable(damaged: tuple[Session, Overlay], reference: Session) -> None:
    """One task_struct's memory is gone: that task is missing and named, the rest shown."""
    session, view = damaged
    victim = reference.tasks.tasks[10]
    view.hole(victim.address, 64)
    fields = sys_fields(session)
    assert fields["TASKS"] == "77  [DAMAGED]"
    assert any(f"{victim.address:#x}" in w for w in warnings(session))
    ps = run_command(session, "ps")
    assert f"[{victim.comm}]" not in "\n".join(ps)
    full = run_command(reference, "ps")
    assert [line for line in full if f"[{victim.comm}]" not in line] == ps[:len(full) - 1]


def test_thread_list_damaged(damaged: tuple[Session, Overlay], reference: Session) -> None:
    session, view = damaged
    k = session.kernel
    reader = TaskReader(k)
    init = next(t for t in reference.tasks.tasks if t.pid == 1)
    signal = k.read_u64(init.address + reader.o_signal)
    view.set_u64(signal + reader.o_thread_head, GARBAGE)
    fields = sys_fields(session)
    assert fields["TASKS"] == "78  [DAMAGED]"
    assert any(w.startswith(f"TASKS: threads of task {init.address:#x}: ")
               for w in warnings(session))


# --- the printk ring --------------------------------------------------------------------------

def ring(session: Session) -> dict[str, int]:
    """Addresses of the printk ring's parts (from VMCOREINFO, read independently)."""
    k = session.kernel
    prb = k.read_u64(k.vmcoreinfo.symbols["prb"])
    return {"prb": prb, "count_bits": k.read_u32(prb), "descs": k.read_u64(prb + 8),
            "infos": k.read_u64(prb + 16), "head_id": prb + 24, "tail_id": prb + 32,
            "data": k.read_u64(prb + 48 + 8), "size_bits": k.read_u32(prb + 48)}


def slot_of(session: Session, seq: int) -> int:
    return seq & ((1 << ring(session)["count_bits"]) - 1)


@pytest.mark.parametrize("damage", ["lpos", "seq", "block_id"])
def test_one_corrupt_log_record(damaged: tuple[Session, Overlay], reference: Session,
                                damage: str) -> None:
    """One record's descriptor, info or text block is damaged: marked in place, the other
    records printed, the panic message still found."""
    session, view = damaged
    r = ring(session)
    victim = reference.log.records[100]
    idx = slot_of(session, victim.seq)
    if damage == "lpos":
        view.set(r["descs"] + idx * 24 + 8, struct.pack("<QQ", 0x100, 0x10))
    elif damage == "seq":
        view.set_u64(r["infos"] + idx * 88, victim.seq + 5)
    else:
        begin = session.kernel.read_u64(r["descs"] + idx * 24 + 8)
        size = 1 << r["size_bits"]
        view.set_u64(r["data"] + (begin & (size - 1)), 0x1234)
    lines = run_command(session, "log")
    expected = reference.log.lines()
    assert len(lines) == len(expected) - len(victim.lines()) + 1
    at = expected.index(victim.lines()[0])
    assert lines[:at] == expected[:at]
    assert lines[at].startswith(victim.timestamp if damage != "seq" else "[")
    assert "<damaged log record: " in lines[at]
    assert lines[at + 1:] == expected[at + len(victim.lines()):]
    assert sys_fields(session)["PANIC"] == reference.summary.fields["PANIC"]
    assert "log: 1 damaged record(s), marked in place" in warnings(session)


def test_log_head_id_garbage(damaged: tuple[Session, Overlay], reference: Session) -> None:
    """head_id never reached: the walk stops after one lap of the ring, with a marker."""
    session, view = damaged
    view.set_u64(ring(session)["head_id"], 0x3FFFFFFFFFFFFFF0)
    started = time.monotonic()
    log = read_log(session.kernel)
    assert time.monotonic() - started < 10
    assert log.error == "descriptor walk did not reach head_id"
    assert [r.text for r in log.records] == [r.text for r in reference.log.records]
    assert run_command(session, "log")[-1] == "<log incomplete: descriptor walk did not reach " \
                                              "head_id>"


@pytest.mark.parametrize("field,value,match", [
    ("count_bits", 60, "implausible printk ring sizes"),
    ("descs", GARBAGE, f"address {GARBAGE:#x} is not mapped"),
])
def test_log_ring_unusable(damaged: tuple[Session, Overlay], reference: Session, field: str,
                           value: int, match: str) -> None:
    session, view = damaged
    r = ring(session)
    at = {"count_bits": r["prb"], "descs": r["prb"] + 8}[field]
    view.set(at, struct.pack("<I", value) if field == "count_bits" else struct.pack("<Q", value))
    lines = run_command(session, "log")
    assert len(lines) == 1 and lines[0].startswith("<log incomplete: ") and match in lines[0]
    fields = sys_fields(session)
    assert fields["PANIC"] == '""  [DAMAGED]'
    assert fields["TASKS"] == reference.summary.fields["TASKS"]


# --- other walks and reads ----------------------------------------------------------------------

def test_module_list_damaged(testmod_dump: Path, vmlinux_path: Path) -> None:
    session = Session.open(testmod_dump, vmlinux_path)
    k = session.kernel
    head = k.symbol("modules")
    with overlay(k) as view:
        second = k.read_u64(k.read_u64(head))
        view.set_u64(second, GARBAGE)
        lines = run_command(session, "mod")
    assert len([line for line in lines if line.startswith("ffff")]) == 2
    assert lines[-1].startswith("mod: module list: ")
    session.close()


def test_utsname_unreadable(damaged: tuple[Session, Overlay], reference: Session) -> None:
    session, view = damaged
    view.hole(session.kernel.symbol("init_uts_ns"), 8)
    fields = sys_fields(session)
    for name in ("NODENAME", "RELEASE", "VERSION", "MACHINE"):
        assert fields[name] == "(unavailable)"
    assert fields["TASKS"] == reference.summary.fields["TASKS"]
    assert any(w.startswith("utsname: cannot read") for w in warnings(session))


def test_a_bug_in_one_field_spares_the_others(damaged: tuple[Session, Overlay],
                                              reference: Session,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A field whose code fails on strange data is `(unavailable)` with the error named;
    CRASHTUI_DEBUG=1 makes it raise instead (as the fuzz harness sets it)."""
    from crashtui.kernel import system

    session, _view = damaged

    def broken(kernel: object) -> tuple[str, str, str]:
        raise TypeError("unexpected data")

    monkeypatch.setattr(system, "load_average", broken)
    monkeypatch.delenv("CRASHTUI_DEBUG", raising=False)
    fields = sys_fields(session)
    assert fields["LOAD AVERAGE"] == "(unavailable)"
    assert fields["TASKS"] == reference.summary.fields["TASKS"]
    assert "LOAD AVERAGE: internal error: TypeError: unexpected data" in warnings(session)
    monkeypatch.setenv("CRASHTUI_DEBUG", "1")
    del session.summary
    with pytest.raises(TypeError):
        run_command(session, "sys")


def test_nr_cpu_ids_smaller_than_the_cpus_with_registers(damaged: tuple[Session, Overlay],
                                                         reference: Session) -> None:
    """nr_cpu_ids damaged to 2 while the dump has registers of 4 CPUs: per-CPU reads of CPUs
    2 and 3 are read errors, not IndexError (found by the memory fuzz target)."""
    from crashtui.errors import KernelReadError

    session, view = damaged
    k = session.kernel
    view.set(k.symbol("nr_cpu_ids"), struct.pack("<I", 2))
    with pytest.raises(KernelReadError, match="CPU 3 is not one of the kernel's 2 possible"):
        k.per_cpu(k.symbol("runqueues"), 3)
    assert run_command(session, "bt -a")
    assert sys_fields(session)["TASKS"].split()[0].isdigit()
