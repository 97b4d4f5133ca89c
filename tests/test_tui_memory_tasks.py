"""The Memory tab's slab caches and zones and the Tasks tab's run queues, driven with Pilot at
80x24 on the 6.1-sysrq and 7.3-sysrq dumps: the tables hold what `kmem -s`, `kmem -z` and
`runq` print (those commands are compared with crash 8.0.6 and drgn elsewhere), largest
caches first, and j/k, /, s and Enter work in them."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import dump_of, vmlinux_of
from test_tui import drive, press, screen_text

from crashtui.analysis.session import Session
from crashtui.commands import run_command
from crashtui.tui.app import CrashtuiApp
from crashtui.tui.facade import SessionFacade
from crashtui.tui.frames import FramesView
from crashtui.tui.memory import MemoryView, SlabTable, ZonesTable
from crashtui.tui.tasks import TasksTable

pytestmark = pytest.mark.needs_vmlinux
SMALL = (80, 24)
DUMPS = ("6.1-sysrq", "7.3-sysrq")
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[str, Session]]:
    out: dict[str, Session] = {}
    yield out
    for s in out.values():
        s.close()


def session_of(sessions: dict[str, Session], name: str) -> Session:
    if name not in sessions:
        sessions[name] = Session.open(dump_of(name), vmlinux_of(name))
    return sessions[name]


def make(session: Session) -> CrashtuiApp:
    return CrashtuiApp(SessionFacade(session, cache_root=Path(tempfile.mkdtemp()),
                                     auto_source=False))


def cells(table: Any, row: int) -> list[str]:
    return [c.plain.strip() for c in table.get_row_at(row)]


def kmem_s(session: Session) -> dict[str, list[str]]:
    """`kmem -s` rows by cache name: OBJSIZE, ALLOCATED, TOTAL, SLABS, SSIZE."""
    out = {}
    for line in run_command(session, "kmem -s")[1:]:
        f = line.split()
        if len(f) == 7 and re.fullmatch(r"[0-9a-f]{16}", f[0]):
            out[f[6]] = f[1:6]
    return out


@pytest.mark.parametrize("name", DUMPS)
def test_memory_tab_slab_caches_and_zones(sessions: dict[str, Session], name: str) -> None:
    session = session_of(sessions, name)
    caches = kmem_s(session)
    zones = run_command(session, "kmem -z")
    app = make(session)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "3")
        assert isinstance(app.focused, MemoryView)
        assert "TOTAL MEM" in screen_text(app) and "slab caches (kmem -s)" in screen_text(app)
        await press(app, pilot, "v")
        table = app.query_one(SlabTable)
        assert app.focused is table and table.row_count == len(caches) > 50
        # every row is kmem -s's, largest (slabs x slab size) first
        rows = [cells(table, i) for i in range(table.row_count)]
        full = {name.removesuffix("…") if len(name) <= 22 else name[:21]: name
                for name in caches}
        for r in rows:
            assert r[2:7] == caches[full.get(r[0].removesuffix("…"), r[0])], r[0]
        sizes = [int(r[5]) * int(r[6].rstrip("k")) for r in rows]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
        await pilot.pause(0.2)  # the filled table drawn
        text = screen_text(app)  # legible at 80 columns: every header and the top cache whole
        header = next(line for line in text.splitlines() if "OBJSIZE" in line)
        for col in ("NAME", "OBJSIZE", "ALLOCATED", "TOTAL", "SLABS", "SSIZE", "BYTES"):
            assert col in header
        assert rows[0][0] in text and rows[0][1] in text and rows[0][1].endswith("B")
        # j/k, / and n, s (next column: NAME, a to z), r (reversed)
        await press(app, pilot, "j", "j", "k")
        assert table.cursor_row == 1
        await press(app, pilot, "slash")
        await pilot.press(*"task_struct")
        await press(app, pilot, "enter")
        assert app.focused is table and cells(table, table.cursor_row)[0] == "task_struct"
        await press(app, pilot, "s")  # the next column, OBJSIZE: largest first
        sizes = [int(cells(table, i)[2]) for i in range(table.row_count)]
        assert table.sort_column == "OBJSIZE" and sizes == sorted(sizes, reverse=True)
        await press(app, pilot, "r")
        sizes = [int(cells(table, i)[2]) for i in range(table.row_count)]
        assert sizes == sorted(sizes)
        await press(app, pilot, "s", "s", "s", "s", "s")  # ... NAME: a to z
        names = [table.sorted_caches()[i].name for i in range(table.row_count)]
        assert table.sort_column == "NAME" and names == sorted(names)
        assert cells(table, 0)[0] == names[0][:22] or cells(table, 0)[0].endswith("…")
        # zones: kmem -z's free pages, watermarks, present and spanned pages
        await press(app, pilot, "v")
        ztable = app.query_one(ZonesTable)
        assert app.focused is ztable and ztable.row_count >= 4
        heads = [line for line in zones if line.startswith("NODE:")]
        assert len(heads) == ztable.row_count
        for i, head in enumerate(heads):
            row = cells(ztable, i)
            assert head.startswith(f"NODE: {row[0]}  ZONE: ") and f'NAME: "{row[1]}"' in head
        dma32 = next(i for i in range(ztable.row_count) if cells(ztable, i)[1] == "DMA32")
        row = cells(ztable, dma32)
        block = "\n".join(zones[zones.index(heads[dma32]):])
        assert f"MIN/LOW/HIGH: {row[3]}/{row[4]}/{row[5]}" in block
        assert re.search(rf"NR_FREE_PAGES: {row[2]}\n", block) and int(row[2]) > 1000
        assert int(row[6]) <= int(row[7]) <= int(row[8])  # managed <= present <= spanned
        await press(app, pilot, "j")
        assert ztable.cursor_row == 1
        await press(app, pilot, "v")  # back to the usage view
        assert isinstance(app.focused, MemoryView)

    drive(app, steps, size=SMALL)


def runq_tasks(session: Session) -> list[tuple[str, str, str]]:
    """(CPU or "", priority or "", PID) of each task `runq` lists, in its order."""
    out = []
    cpu = ""
    for line in run_command(session, "runq"):
        if m := re.match(r"CPU (\d+) RUNQUEUE", line):
            cpu = m.group(1)
        elif m := re.match(r"\s+CURRENT: PID: (\d+)", line):
            out.append((cpu, "", m.group(1)))
        elif m := re.match(r"\s+(\[\d+\]) PID: (\d+)", line):
            out.append(("", m.group(1), m.group(2)))
    return out


@pytest.mark.parametrize("name", DUMPS)
def test_tasks_tab_run_queues(sessions: dict[str, Session], name: str) -> None:
    session = session_of(sessions, name)
    expected = runq_tasks(session)
    if name == "6.1-sysrq":  # what crash 8.0.6 printed
        assert [e[2] for e in expected] == re.findall(
            r"PID: (\d+)", (OUTPUTS / name / "runq.txt").read_text())
    app = make(session)

    async def steps(pilot: Any) -> None:
        await press(app, pilot, "5")
        table = app.query_one(TasksTable)
        assert app.focused is table and cells(table, 0)[0].split() == [">", "0"]
        await press(app, pilot, "v")
        assert table.view == "runq"
        rows = [cells(table, i) for i in range(table.row_count)]
        assert [(r[0], r[2], r[3]) for r in rows] == expected
        assert [r[1] for r in rows if r[0]] == ["current"] * len([e for e in expected if e[0]])
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "QUEUE" in text and "PRIO" in text and "COMM" in text
        queued = next((i for i, r in enumerate(rows) if not r[0]), None)
        # j/k move, / finds a PID, Enter shows that task's backtrace
        await press(app, pilot, "j", "j", "k")
        assert table.cursor_row == 1
        target = rows[queued if queued is not None else 1]
        await press(app, pilot, "slash")
        await pilot.press(*target[3])
        await press(app, pilot, "enter")
        assert cells(table, table.cursor_row)[3] == target[3]
        await press(app, pilot, "s")  # no sorting here: crash's order is the information
        assert [(r[0], r[2], r[3]) for r in (cells(table, i) for i in range(table.row_count))] \
            == expected
        await press(app, pilot, "enter")
        frames = app.query_one(FramesView)
        assert frames.backtrace is not None
        assert str(frames.backtrace.pid) == target[3]
        await press(app, pilot, "5", "v")  # back to ps
        assert table.view == "ps" and cells(table, 0)[0].split() == [">", "0"]

    drive(app, steps, size=SMALL)
