"""timer, waitq, tree, search and list's -r/-O/-l/-x against crash 8.0.6 (5.10, 6.1, 6.12).

crash's outputs are recorded by tests/record_crash_timer_tree.py into
tests/crash_outputs/<dump>/ (addresses used in timer-ADDRESSES) and must be equal line by
line, except where crash is wrong (sample-dumps/6.12-sysrq/crash/KNOWN-ERRORS.md: on 6.12
crash shows 2 of the 3 timer bases, and takes HZ to be 1000 for `timer -r`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/timer-ADDRESSES")
                     if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
# (file, command): equal to crash on every recorded dump (where the file was recorded)
COMMANDS = [
    ("waitq-sym.txt", "waitq khugepaged_wait"),
    ("waitq-sym2.txt", "waitq oom_reaper_wait"),
    ("waitq-empty.txt", "waitq log_wait"),
    ("waitq-addr.txt", "waitq {KHUGEWQ}"),
    ("waitq-member.txt", "waitq pglist_data.kswapd_wait {PGDAT}"),
    ("tree-hrtimer.txt", "tree -t rbtree -r hrtimer_clock_base.active -o hrtimer.node {HRBASE}"),
    ("tree-hrtimer-p.txt", "tree -t rbtree -r hrtimer_clock_base.active -o hrtimer.node -p "
                           "{HRBASE}"),
    ("tree-hrtimer-l-s.txt", "tree -t rbtree -l -s hrtimer.function -r "
                             "hrtimer_clock_base.active -o hrtimer.node {HRBASE}"),
    ("tree-hrtimer-N.txt", "tree -t rbtree -o hrtimer.node -N {HRNODE}"),
    ("tree-xarray-p.txt", "tree -t xarray -p {IRQXA}"),
    ("tree-radix.txt", "tree -t radix {IRQXA}"),
    ("tree-xarray-N.txt", "tree -t x -N {XAHEAD} -p"),
    ("tree-xarray-s.txt", "tree -t xarray -s irq_desc.depth,tot_count {IRQXA}"),
    ("tree-mm-rb.txt", "tree -t rbtree -r mm_struct.mm_rb -o vm_area_struct.vm_rb {MMRB}"),
    ("tree-mm-rb-p.txt", "tree -t rbtree -r mm_struct.mm_rb -o vm_area_struct.vm_rb -p {MMRB}"),
    ("tree-mm-rb-l-s.txt", "tree -t rbtree -l -s vm_area_struct.vm_start -r mm_struct.mm_rb "
                           "-o vm_area_struct.vm_rb {MMRB}"),
    ("tree-maple.txt", "tree -t maple -r mm_struct.mm_mt {MMMT}"),
    ("tree-maple-p-s.txt", "tree -t maple -r mm_struct.mm_mt -p -x "
                           "-s vm_area_struct.vm_start,vm_end {MMMT}"),
    ("tree-maple-irq.txt", "tree -t maple -p {IRQMT}"),
    ("list-r-H.txt", "list -r -H modules"),
    ("list-r-h.txt", "list -o task_struct.tasks -r -h init_task"),
    ("list-l-s.txt", "list {TASKSNEXT} -l task_struct.tasks -s task_struct.comm"),
    ("list-O.txt", "list -o task_struct.sibling -O task_struct.children "
                   "-s task_struct.comm -h {KTHREADD}"),
    ("list-x.txt", "list task_struct.tasks -s task_struct.pid -x -h init_task"),
    ("search-k.txt", "search -k {TASK}"),
    ("search-k-range.txt", "search -s {STACK} -l 16384 {TASK}"),
    ("search-p-mask.txt", "search -p -m ffff {TASK}"),
    ("search-u.txt", "search -u -w 464c457f"),
    ("search-p-w.txt", "search -p -w 464c457f"),
]
# where crash 8.0.6 is wrong (KNOWN-ERRORS.md): not compared line by line
WRONG = {("6.12-sysrq", "timer.txt"), ("6.12-sysrq", "timer-C1.txt"),
         ("6.12-sysrq", "timer-r.txt"), ("6.12-sysrq", "timer-r-C2.txt")}
TIMERS = [("timer.txt", "timer"), ("timer-r.txt", "timer -r"), ("timer-C1.txt", "timer -C 1"),
          ("timer-r-C2.txt", "timer -r -C 2")]


def recorded(name: str, file: str) -> list[str] | None:
    path = OUTPUTS / name / file
    if not path.is_file():
        return None
    return path.read_text().rstrip("\n").split("\n")


def addresses(name: str) -> dict[str, str]:
    text = (OUTPUTS / name / "timer-ADDRESSES").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def mine(session: Session, cmd: str) -> list[str]:
    try:
        out = run_command(session, cmd)
    except CommandError as exc:
        out = [str(exc)]
    while out and out[-1] == "":
        out.pop()
    return out or [""]


def first_difference(a: list[str], b: list[str]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    return (f"first difference at line {i}: mine {a[i] if i < len(a) else None!r}, "
            f"crash {b[i] if i < len(b) else None!r}")


def test_recorded_where_expected() -> None:
    assert {"5.10-sysrq", "6.1-sysrq", "6.12-sysrq"} <= set(DUMPS)


@pytest.mark.parametrize("name", DUMPS)
@pytest.mark.parametrize(("file", "cmd"), COMMANDS + TIMERS)
def test_equals_crash(sessions: dict[str, Session], name: str, file: str, cmd: str) -> None:
    theirs = recorded(name, file)
    if theirs is None or (name, file) in WRONG:
        pytest.skip(f"{file} not recorded on {name} (or crash is wrong there)")
    a = mine(sessions[name], cmd.format(**addresses(name)))
    assert a == theirs, f"{name}: {cmd}: " + first_difference(a, theirs)
