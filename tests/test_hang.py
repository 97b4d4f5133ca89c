"""Hangs on the real dumps: runq, runq -m, ps -m and foreach UN bt against crash 8.0.6, the
blocked tasks with their locks and owners, lock cycles, and the hang kinds of the triage.

crash's outputs come from the dump's own crash/ directory (H1's hang dumps record runq, ps -m
and foreach UN bt) or, for the older samples, from tests/crash_outputs/<dump>/ (recorded with
tests/record_crash_hang.py, crash 8.0.6 run the way sample-dumps/record-crash-output runs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import run_command
from tests.conftest import SAMPLES, vmlinux_of

OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"


def crash_output(name: str, file: str) -> list[str] | None:
    """crash's output for a dump: its crash/ directory first, then tests/crash_outputs/."""
    for d in (SAMPLES / name / "crash", OUTPUTS / name):
        if (d / file).is_file():
            return (d / file).read_text().splitlines()
    return None


def dumps_with(file: str) -> list[str]:
    names = {p.parent.parent.name for p in SAMPLES.glob(f"*/crash/{file}")}
    names |= {p.parent.name for p in OUTPUTS.glob(f"*/{file}")}
    return sorted(n for n in names if (SAMPLES / n / "MANIFEST").is_file())


def open_session(name: str) -> Session:
    s = Session.open(next((SAMPLES / name).glob("dump.*")), vmlinux_of(name))
    for ko_dir in (SAMPLES / name).glob("*/"):
        if any(ko_dir.glob("*.ko")):
            s.load_modules_dir(ko_dir)
    return s


class _Sessions(dict[str, Session]):
    def __missing__(self, name: str) -> Session:
        self[name] = open_session(name)
        return self[name]


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[str, Session]]:
    out = _Sessions()
    yield out
    for s in out.values():
        s.close()


# -- against crash ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", dumps_with("runq.txt"))
def test_runq_is_crash_s(name: str, sessions: dict[str, Session]) -> None:
    expected = crash_output(name, "runq.txt")
    assert run_command(sessions[name], "runq") == expected


@pytest.mark.parametrize(("name", "option"), [(n, o) for o in ("t", "T")
                                              for n in dumps_with(f"runq-{o}.txt")])
def test_runq_t_and_T_are_crash_s(name: str, option: str, sessions: dict[str, Session]) -> None:
    """Each CPU's rq->clock and its current task's last arrival; the clocks' lag."""
    assert run_command(sessions[name], f"runq -{option}") == \
        crash_output(name, f"runq-{option}.txt")


@pytest.mark.parametrize("name", dumps_with("runq-m.txt"))
def test_runq_m_is_crash_s(name: str, sessions: dict[str, Session]) -> None:
    assert run_command(sessions[name], "runq -m") == crash_output(name, "runq-m.txt")


@pytest.mark.parametrize("name", dumps_with("ps-m.txt"))
def test_ps_m_is_crash_s(name: str, sessions: dict[str, Session]) -> None:
    """Every line as crash prints it; the order is crash's (most recent last_arrival first:
    crash's qsort is not stable, so tasks with equal times may come in either order)."""
    expected = crash_output(name, "ps-m.txt")
    assert expected is not None
    got = run_command(sessions[name], "ps -m")
    assert sorted(got) == sorted(expected)
    if got != expected:  # only ties may differ
        from crashtui.kernel.sched import last_runs

        runs, _ = last_runs(sessions[name].kernel, sessions[name].tasks.tasks)
        arrivals = [r.last_arrival for r in runs]
        assert arrivals == sorted(arrivals, reverse=True)


@pytest.mark.parametrize("name", dumps_with("foreach-UN-bt.txt"))
def test_foreach_un_bt_is_crash_s(name: str, sessions: dict[str, Session]) -> None:
    expected = crash_output(name, "foreach-UN-bt.txt")
    assert expected is not None
    expected = [] if expected == [""] else expected
    # crash names a module's init code by its layout marker (KNOWN-ERRORS.md of 6.1-hung-task)
    expected = [line.replace(" _MODULE_INIT_START_hung_task at ", " hung_task_init at ")
                for line in expected]
    assert run_command(sessions[name], "foreach UN bt") == expected


def test_runq_shows_queued_tasks(sessions: dict[str, Session]) -> None:
    """6.1-softlockup: CPU 1 spins, so its CFS queue holds the two tasks waiting to run."""
    out = run_command(sessions["6.1-softlockup"], "runq")
    i = out.index("CPU 1 RUNQUEUE: ffff8f12becb1980")
    assert out[i + 5:i + 7] == [
        '     [120] PID: 56     TASK: ffff8f128217a0c0  COMMAND: "kworker/1:1"',
        '     [120] PID: 21     TASK: ffff8f12812c4180  COMMAND: "ksoftirqd/1"']


# -- blocked tasks, locks, owners -------------------------------------------------------------

def test_hung_task_waits_on_a_completion(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-hung-task"]
    hang = s.hang
    assert [b.task.pid for b in hang.blocked] == [121]
    b = hang.blocked[0]
    assert b.culprit is not None and b.culprit.function == "hung_task_init"
    assert b.wait is not None and b.wait.kind == "completion"
    assert b.lock_symbol == "never_completed [hung_task]"
    assert b.wait.waiters == (b.task.address,) and b.wait.owner is None
    assert b.since is not None and 10.4e9 < b.since < 10.5e9  # ps -m: 0 00:00:10.407
    assert hang.cycles == [] and len(hang.groups) == 1
    t = s.triage
    assert t.kind == "hung-task" and t.hung_pid == 121
    assert "waits for completion never_completed [hung_task]" in t.summary
    assert t.culprit is not None and t.culprit.pid == 121 and t.culprit.task == b.task.address
    assert t.culprit.file is not None and t.culprit.file.endswith("/hung-task.c")
    assert t.culprit.line == 13


def test_softlockup_blocked_tasks_grouped(sessions: dict[str, Session]) -> None:
    hang = sessions["6.1-softlockup"].hang
    assert sorted(b.task.pid for b in hang.blocked) == [41, 47]
    assert [len(g.tasks) for g in hang.groups] == [1, 1]
    waits = {b.task.pid: b.waits_in for b in hang.blocked}
    assert waits == {41: "synchronize_rcu", 47: "flush_work"}
    # their completions are on their own stacks: no lock to name, nothing made up
    assert all(b.wait is None for b in hang.blocked)


def test_find_cycles() -> None:
    from crashtui.analysis.hang import WaitEdge, find_cycles

    a, b, c, d = 0x100, 0x200, 0x300, 0x400
    edges = [WaitEdge(b, 2, "mutex", a), WaitEdge(a, 1, "mutex", b), WaitEdge(c, 1, "mutex", a),
             WaitEdge(d, 3, "rwsem", 0x999)]
    cycles = find_cycles(edges)
    assert [[e.waiter for e in cyc] for cyc in cycles] == [[a, b]]
    assert find_cycles([WaitEdge(a, 1, "mutex", a)])[0][0].owner == a  # self-deadlock


# -- the one culprit: triage, report, JSON agree --------------------------------------------

CULPRITS = {  # dump: (culprit function, task pid, exception RIP?, file:line)
    "6.1-sysrq": ("sysrq_handle_crash", 1, False, "drivers/tty/sysrq.c:155"),
    "6.1-test-module": ("test_module_init", 526, True, "test-module.c:9"),
    "6.1-bug-kthread": ("bug_kthread_fn", None, True, "bug-kthread.c:13"),
    "6.1-hung-task": ("hung_task_init", 121, False, "hung-task.c:13"),
    "6.1-softlockup": ("softlockup_spin_fn", 121, True, "softlockup.c:18"),
    "6.12-sysrq": ("sysrq_handle_crash", None, False, None),
    "6.12-test-module": ("test_module_init", None, True, None),
    "5.10-sysrq": ("sysrq_handle_crash", 1, False, "drivers/tty/sysrq.c:154"),
    "7.3-sysrq": ("sysrq_handle_crash", 1, False, "drivers/tty/sysrq.c:154"),
    "7.3-softlockup": ("softlockup_spin_fn", 134, True, "softlockup.c:18"),
    "7.3-bug-kthread": ("bug_kthread_fn", 135, True, "bug-kthread.c:13"),
    "7.3-test-module": ("test_module_init", 135, True, "test-module.c:9"),
    "6.1-deadlock": ("take_both.cold", 124, False, "deadlock.c:25"),
    "6.1-oom": ("__handle_mm_fault", 121, False, "mm/memory.c:5172"),
    "5.10-softlockup": ("softlockup_spin_fn", 112, True, "softlockup.c:18"),
    "6.12-softlockup": ("softlockup_spin_fn", 172, True, "softlockup.c:18"),
    "7.3-deadlock": ("take_both.cold", 135, False, "deadlock.c:25"),
    "7.3-hung-task": ("hung_task_init", 134, False, "hung-task.c:13"),
}


@pytest.mark.parametrize("name", sorted(CULPRITS))
def test_one_culprit_in_every_view(name: str, sessions: dict[str, Session]) -> None:
    from crashtui.report.gather import gather
    from crashtui.report.jsondoc import build_document
    from crashtui.report.markdown import ReportOptions, render

    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    s = sessions[name]
    function, pid, exception, location = CULPRITS[name]
    c = s.triage.culprit
    assert c is not None and c.function == function and c.exception == exception
    if pid is not None:
        assert c.pid == pid
    if location is not None:
        assert c.location is not None and c.location.endswith(location)
    a = gather(s, excerpt=False)
    assert a.fault is not None and (a.fault.symbol, a.fault.address) == (c.symbol, c.address)
    report = render(a, ReportOptions())
    fault = report.split("## Faulting frame\n\n", 1)[1].split("\n", 1)[0]
    assert fault.startswith(f"`{c.symbol}`")
    if c.location:
        assert f"at `{c.location}`" in fault
        triage = report.split("**Culprit:** ", 1)[1].split("\n", 1)[0]
        assert f"`{c.symbol}`" in triage and f"at `{c.location}`" in triage
    doc = build_document(s)
    jc = doc["triage"]["culprit"]
    assert (jc["function"], jc["offset"], jc["address"]) == (c.function, c.offset,
                                                              f"{c.address:#x}")
    assert jc["task"] == f"{c.task:#x}" and jc["exception"] == c.exception
    landed, after_p = app_landing(s)
    assert landed == after_p == (c.task, c.frame, c.exception, c.address)


def app_landing(session: Session) -> tuple[tuple[int, int | None, bool, int], ...]:
    """(task, frame number, exception row?, pc) of the frames pane's highlighted row when the
    app has loaded, and again after moving to another CPU and pressing `p`."""
    import asyncio
    import tempfile

    from crashtui.tui.app import CrashtuiApp
    from crashtui.tui.facade import SessionFacade
    from crashtui.tui.frames import FramesView

    def where(app: CrashtuiApp) -> tuple[int, int | None, bool, int]:
        ref = app.query_one(FramesView).current
        assert ref is not None and ref.frame is not None
        return (ref.backtrace.task, ref.frame.index, ref.exception is not None, ref.pc)

    async def main(cache: str) -> tuple[tuple[int, int | None, bool, int], ...]:
        app = CrashtuiApp(SessionFacade(session, cache_root=Path(cache), auto_source=False))
        async with app.run_test(size=(160, 48)) as pilot:
            await app.settle()
            await pilot.pause()
            first = where(app)
            other = next(bt for bt in app.backtraces if bt.task != first[0])
            app.jump_to_cpu(other.cpu)
            await pilot.pause()
            await app.settle()
            moved = app.query_one(FramesView).backtrace
            assert moved is not None and moved.task == other.task
            await pilot.press("p")
            await app.settle()
            await pilot.pause()
            return first, where(app)

    with tempfile.TemporaryDirectory() as cache:
        return asyncio.run(main(cache))


def test_hung_task_report_has_the_blocked_backtrace(sessions: dict[str, Session]) -> None:
    from crashtui.report.markdown import build_report

    text = build_report(sessions["6.1-hung-task"])
    assert "## Blocked tasks (1," in text
    section = text.split("## Blocked tasks", 1)[1].split("\n## ", 1)[0]
    assert "| 121 | `insmod` | 0 00:00:10.407 | `hung_task_init+0x1d` |" in section
    assert "completion never_completed \\[hung_task\\]" in section
    assert 'PID: 121      TASK: ffff8d07bf994180  CPU: 3    COMMAND: "insmod"' in section
    assert "#4 [ffffd3ef403b3d08] hung_task_init at ffffffffc05a401d [hung_task]" in section
    fault = text.split("## Faulting frame\n\n", 1)[1].split("\n", 1)[0]
    assert "of PID 121 `insmod`" in fault and "hung-task.c:13`" in fault


@pytest.mark.parametrize("name", sorted(CULPRITS))
def test_one_oops_block(name: str, sessions: dict[str, Session]) -> None:
    """The Log tab marks, the report shows and the triage reads the same report block."""
    from crashtui.report.gather import gather
    from crashtui.tui.logview import oops_block

    s = sessions[name]
    lines = s.log.lines()
    span = oops_block(lines)
    assert span is not None
    start, end = span
    assert gather(s, excerpt=False).log_block == lines[start:end]
    t = s.triage
    assert t.event and any(t.event in line for line in lines[start:end])
    first = lines[start].split("] ", 1)[1]
    assert first.startswith(("BUG: ", "sysrq: ", "watchdog: ", "INFO: task",
                             "------------[ cut here", "kernel BUG")) or \
        " invoked oom-killer: " in first


def test_hang_command(sessions: dict[str, Session]) -> None:
    out = run_command(sessions["6.1-softlockup"], "hang")
    assert out[0] == "BLOCKED TASKS: 2 (D state, longest since it last ran first)"
    assert out[1].startswith('  [0 00:00:13.964] PID: 41      TASK: ffff8f12813e20c0  '
                             'COMMAND: "kworker/2:1"  IN: do_free_init+0x15')
    assert out[1].endswith("WAITS IN: synchronize_rcu")
    assert out.count("STACK shared by 1 task(s): PID 41") == 1
    assert " #6 [ffffd1e0c0177e78] do_free_init at ffffffffb9539db5" in out
    assert run_command(sessions["6.1-softlockup"], "hang -n") == out[:3]
    hung = run_command(sessions["6.1-hung-task"], "hang -n")
    assert hung[1].endswith("WAITS FOR: completion never_completed [hung_task] "
                            f"({sessions['6.1-hung-task'].hang.blocked[0].wait.lock:x})")
    assert run_command(sessions["6.1-sysrq"], "hang") == [
        "no task is in uninterruptible sleep (D state)"]


def test_triage_tab_goes_to_the_tasks(sessions: dict[str, Session]) -> None:
    """On the hung-task dump: the Triage tab names the blocked task; b shows its backtrace,
    Enter the culprit frame in it, after the user went to another CPU."""
    import asyncio
    import tempfile

    from crashtui.tui.app import CrashtuiApp
    from crashtui.tui.facade import SessionFacade
    from crashtui.tui.frames import FramesView

    s = sessions["6.1-hung-task"]
    insmod = s.hang.blocked[0].task.address

    async def main(cache: str) -> None:
        app = CrashtuiApp(SessionFacade(s, cache_root=Path(cache), auto_source=False))
        async with app.run_test(size=(160, 48)) as pilot:
            await app.settle()
            body = str(app.query_one("#triage-body").render())
            assert "Blocked task PID 121 (insmod), not run for 10.4 s" in body
            assert "Waits        PID 121 (insmod) waits for completion never_completed" in body
            assert "Culprit      hung_task_init+0x1d [hung_task]" in body
            frames = app.query_one(FramesView)
            app.jump_to_cpu(0)
            await pilot.pause()
            await app.settle()
            assert frames.backtrace is not None and frames.backtrace.task != insmod
            await pilot.press("1", "b")
            await app.settle()
            assert frames.backtrace is not None and frames.backtrace.task == insmod
            app.jump_to_cpu(0)
            await pilot.pause()
            await app.settle()
            await pilot.press("1", "enter")
            await app.settle()
            ref = frames.current
            assert ref is not None and ref.backtrace.task == insmod
            assert ref.frame is not None and ref.frame.function == "hung_task_init"

    with tempfile.TemporaryDirectory() as cache:
        asyncio.run(main(cache))


def test_deadlock_cycle_names_every_task_and_lock(sessions: dict[str, Session]) -> None:
    """6.1-deadlock: kthreads deadlock_ab (123) and deadlock_ba (124) take mutexes lock_a and
    lock_b in opposite order. The owners are crash's `struct mutex` owner counters with the
    flag bits masked; each waiter is the node crash's wait_list points at."""
    import re

    if not (SAMPLES / "6.1-deadlock" / "MANIFEST").is_file():
        pytest.skip("no sample dump 6.1-deadlock")
    s = sessions["6.1-deadlock"]
    hang = s.hang
    by_pid = {b.task.pid: b for b in hang.blocked}
    assert sorted(by_pid) == [123, 124]
    for name in ("a", "b"):
        text = "\n".join(crash_output("6.1-deadlock", f"struct-mutex-lock-{name}.txt") or [])
        owner = int(re.search(r"owner = \{\s*counter = (-?\d+)", text).group(1)) % (1 << 64)
        head_next = int(re.search(r"wait_list = \{\s*next = (0x[0-9a-f]+)", text).group(1), 16)
        waiter = next(b for b in hang.blocked if b.lock_symbol == f"lock_{name} [deadlock]")
        assert waiter.wait is not None and waiter.wait.kind == "mutex"
        assert waiter.wait.owner == owner & ~0x7
        assert waiter.wait.waiter == head_next  # struct mutex_waiter's list is its first member
        assert waiter.wait.waiters == (waiter.task.address,)
    assert by_pid[124].wait is not None and by_pid[124].wait.owner == by_pid[123].task.address
    assert by_pid[123].wait is not None and by_pid[123].wait.owner == by_pid[124].task.address
    assert len(hang.cycles) == 1 and {e.waiter for e in hang.cycles[0]} == \
        {by_pid[123].task.address, by_pid[124].task.address}
    t = s.triage
    assert t.kind == "deadlock" and t.hung_pid == 124  # the task the hung-task line names
    assert t.cycle == [
        "PID 124 (deadlock_ba) waits for mutex lock_a [deadlock] held by PID 123 "
        "(deadlock_ab), in take_both.cold+0x3e",
        "PID 123 (deadlock_ab) waits for mutex lock_b [deadlock] held by PID 124 "
        "(deadlock_ba), in take_both.cold+0x3e"]
    assert t.summary.startswith("Deadlock: 2 tasks wait on each other in a lock cycle: ")
    # the cycle's signature does not depend on which of its tasks the watchdog named
    assert t.signature_frames == ["take_both/deadlock_ab_fn", "take_both/deadlock_ba_fn"]
    out = run_command(s, "hang -n")
    assert out[-3:] == [
        "DEADLOCK 1: a cycle of 2 task(s)",
        "  PID 123 (deadlock_ab) waits for mutex lock_b [deadlock] (ffffffffc028d000), held by "
        "PID 124 (deadlock_ba)",
        "  PID 124 (deadlock_ba) waits for mutex lock_a [deadlock] (ffffffffc028d020), held by "
        "PID 123 (deadlock_ab)"]


def test_deadlock_report_holds_both_backtraces(sessions: dict[str, Session]) -> None:
    from crashtui.report.markdown import build_report

    if not (SAMPLES / "6.1-deadlock" / "MANIFEST").is_file():
        pytest.skip("no sample dump 6.1-deadlock")
    text = build_report(sessions["6.1-deadlock"])
    assert text.startswith("# Kernel panic - not syncing: hung_task: blocked tasks")
    assert "## Triage: Deadlock (lock cycle)" in text
    section = text.split("## Blocked tasks (2,", 1)[1].split("\n## ", 1)[0]
    assert "**1 lock cycle(s): a deadlock.**" in section
    for pid, comm in ((123, "deadlock_ab"), (124, "deadlock_ba")):
        assert f'PID: {pid}      TASK: ' in section and f'COMMAND: "{comm}"' in section
    assert section.count("take_both.cold at ") == 2


def test_oom_names_the_trigger_and_the_largest_task(sessions: dict[str, Session]) -> None:
    """6.1-oom: awk doubles a string until memory runs out, vm.panic_on_oom=1. The trigger
    and its allocation come from the kernel's report; RSS and totals are crash's ps / kmem -i."""
    import re

    if not (SAMPLES / "6.1-oom" / "MANIFEST").is_file():
        pytest.skip("no sample dump 6.1-oom")
    t = sessions["6.1-oom"].triage
    assert t.kind == "out-of-memory" and t.oom is not None
    o = t.oom
    assert (o.trigger, o.trigger_pid, o.order) == ("awk", 121, 0)
    assert o.gfp_mask == "0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO)"
    ps = {int(m.group(1)): (int(m.group(3)), float(m.group(2)))
          for m in (re.match(r"^[> ]\s+(\d+)\s+\d+\s+\d+\s+[0-9a-f]+\s+\S+\s+([\d.]+)\s+\d+"
                             r"\s+(\d+)", line) for line in crash_output("6.1-oom", "ps.txt") or [])
          if m}
    big = o.consumers[0]
    assert (big.pid, big.comm, big.rss_kb, big.percent) == (121, "awk", *ps[121])
    assert [c.rss_kb for c in o.consumers] == sorted((r for r, _ in ps.values()),
                                                     reverse=True)[:len(o.consumers)]
    kmem = {m.group(1): int(m.group(2)) for m in (
        re.match(r"^\s*([A-Z][A-Z ]+?)\s+(\d+)\s", line)
        for line in crash_output("6.1-oom", "kmem-i.txt") or []) if m}
    assert (o.total_kb, o.free_kb, o.slab_kb) == (kmem["TOTAL MEM"] * 4, kmem["FREE"] * 4,
                                                  kmem["SLAB"] * 4)
    assert not o.slab_heavy
    assert "the largest task is PID 121 (awk), 621 MiB resident (60.7% of RAM)" in t.summary
    assert t.summary.startswith("Out of memory: awk invoked the OOM killer for an order-0 "
                                "allocation")


def test_510_irq_stack_switch_is_not_the_culprit(sessions: dict[str, Session]) -> None:
    """5.10 runs a timer interrupt on the IRQ stack through asm_call_sysvec_on_stack. On the
    real 5.10-sysrq dump CPU 0 was in its timer interrupt: below the NMI, the frames from
    __hrtimer_run_queues on are what a 5.10 soft lockup's watchdog_timer_fn sits on, and the
    culprit there is the interrupted code (the exception RIP), not the stack switch."""
    import dataclasses

    from crashtui.analysis.culprit import culprit_at, locate

    s = sessions["5.10-sysrq"]
    bt = next(b for b in s.backtraces if b.cpu == 0)
    names = [f.function for f in bt.frames]
    assert "asm_call_sysvec_on_stack" in names
    below = names.index("__hrtimer_run_queues")
    timer = dataclasses.replace(bt, frames=bt.frames[below:])
    at = locate(timer)
    assert at is not None and at.exception
    assert at.frame.function == "asm_sysvec_apic_timer_interrupt"
    c = culprit_at(s, timer, at, "")
    assert (c.function, c.offset) == ("apparmor_file_permission", 75)


def test_deadlock_json(sessions: dict[str, Session]) -> None:
    import json

    import jsonschema

    from crashtui.report.jsondoc import build_document

    if not (SAMPLES / "6.1-deadlock" / "MANIFEST").is_file():
        pytest.skip("no sample dump 6.1-deadlock")
    doc = build_document(sessions["6.1-deadlock"])
    schema = json.loads((SAMPLES.parent / "docs" / "crashtui.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["triage"]["kind"] == "deadlock" and len(doc["triage"]["cycle"]) == 2
    blocked = doc["blocked"]
    assert sorted(t["pid"] for t in blocked["tasks"]) == [123, 124]
    locks = {t["pid"]: t["lock"] for t in blocked["tasks"]}
    assert locks[123]["kind"] == "mutex" and locks[123]["symbol"] == "lock_b [deadlock]"
    assert locks[123]["address"] == "0xffffffffc028d000"
    assert locks[124]["address"] == "0xffffffffc028d020"
    assert [len(c) for c in blocked["cycles"]] == [2]


def test_readme_shows_the_real_hang_output(sessions: dict[str, Session]) -> None:
    if not (SAMPLES / "6.1-deadlock" / "MANIFEST").is_file():
        pytest.skip("no sample dump 6.1-deadlock")
    readme = (SAMPLES.parent / "README.md").read_text()
    block = readme.split("`-c 'hang -n'`:\n\n```text\n", 1)[1].split("\n```", 1)[0]
    assert block.splitlines() == run_command(sessions["6.1-deadlock"], "hang -n")


# -- 7.x: no crash; the dump's dmesg and drgn 0.3.0 (sample-dumps/7.3-*/drgn/blocked.txt) ------

def drgn_blocked(name: str) -> dict[int, dict[str, object]]:
    """drgn's record of each D-state task: its stack trace's functions, the lock its wait
    frame holds and, for a mutex, the owner drgn's recorder read (owner & ~0x7)."""
    path = SAMPLES / name / "drgn" / "blocked.txt"
    if not path.is_file():
        pytest.skip(f"no drgn record of {name}'s blocked tasks")
    import re

    out: dict[int, dict[str, object]] = {}
    cur: dict[str, object] = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^PID (\d+) TASK (0x[0-9a-f]+) COMMAND '(.*)'$", line):
            cur = out.setdefault(int(m.group(1)), {"task": int(m.group(2), 16),
                                                   "comm": m.group(3), "functions": []})
        elif m := re.match(r"^  #\d+\s+(\w+)", line):
            cur["functions"].append(m.group(1))  # type: ignore[attr-defined]
        elif m := re.match(r"^  waits in (\w+): \w+ = (0x[0-9a-f]+)", line):
            cur["lock"] = int(m.group(2), 16)
        elif m := re.match(r"^  mutex owner = \S+ & ~0x7 = (0x[0-9a-f]+)", line):
            cur["owner"] = int(m.group(1), 16)
    return out


def _in_order(ours: list[str], theirs: list[str]) -> bool:
    """Our backtrace's functions (.cold/.constprop suffixes dropped) appear in drgn's, in
    order (drgn also lists the inlined ones: context_switch, __mutex_lock_common, ...)."""
    it = iter(theirs)
    # entry_SYSCALL_64_after_hwframe is a label in entry_SYSCALL_64, drgn's name for it
    names = [f.split(".", 1)[0].removesuffix("_after_hwframe") for f in ours]
    return all(any(t == f for t in it) for f in names)


@pytest.mark.parametrize("name", ["7.3-deadlock", "7.3-hung-task"])
def test_7x_blocked_tasks_equal_drgn(name: str, sessions: dict[str, Session]) -> None:
    """Same D-state tasks as drgn, the same lock as the wait frame's DWARF variable, the
    mutex owner drgn's recorder read, and a backtrace drgn's unwinder agrees with."""
    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    theirs = drgn_blocked(name)
    hang = sessions[name].hang
    assert sorted(b.task.pid for b in hang.blocked) == sorted(theirs)
    for b in hang.blocked:
        d = theirs[b.task.pid]
        assert (b.task.address, b.task.comm) == (d["task"], d["comm"])
        assert b.wait is not None and b.wait.lock == d["lock"]
        assert b.wait.owner == d.get("owner")
        assert b.backtrace is not None
        functions = [f.function or "?" for f in b.backtrace.frames]
        assert _in_order(functions, d["functions"]), (functions, d["functions"])  # type: ignore[arg-type]


def test_7x_deadlock_cycle(sessions: dict[str, Session]) -> None:
    """7.3-deadlock: 7.x's struct mutex has no wait_list (first_waiter, a ring of waiters on
    the tasks' stacks): both tasks, both mutexes and both owners are still found, as the
    module printed the locks' addresses and the kernel's hung-task report named the owners."""
    import re

    name = "7.3-deadlock"
    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    s = sessions[name]
    dmesg = (SAMPLES / name / next((SAMPLES / name).glob("dmesg.*")).name).read_text()
    addr = {n: int(a, 16) for n, a in re.findall(r"(lock_[ab])=([0-9a-f]+)", dmesg)}
    owned = {int(w): int(o) for w, o in re.findall(
        r"INFO: task \S+:(\d+) is blocked on a mutex likely owned by task \S+:(\d+)\.", dmesg)}
    assert len(addr) == 2 and len(owned) == 2
    hang = s.hang
    by_pid = {b.task.pid: b for b in hang.blocked}
    pid_of = {t.address: t.pid for t in s.tasks.tasks}
    for pid, b in by_pid.items():
        assert b.wait is not None and b.wait.kind == "mutex" and b.wait.owner is not None
        assert pid_of[b.wait.owner] == owned[pid]
        lock = next(n for n, a in addr.items() if a == b.wait.lock)
        assert b.lock_symbol == f"{lock} [deadlock]"
        assert b.wait.waiters == (b.task.address,)
    assert len(hang.cycles) == 1
    cycle = hang.cycles[0]
    assert {e.waiter for e in cycle} == {b.task.address for b in by_pid.values()}
    assert {e.lock for e in cycle} == set(addr.values())
    t = s.triage
    assert t.kind == "deadlock" and len(t.cycle) == 2
    out = run_command(s, "hang -n")
    assert out[-3] == "DEADLOCK 1: a cycle of 2 task(s)"
    assert sorted(out[-2:]) == sorted(
        f"  PID {p} ({by_pid[p].task.comm}) waits for mutex {by_pid[p].lock_symbol} "
        f"({by_pid[p].wait.lock:x}), held by PID {owned[p]} ({by_pid[owned[p]].task.comm})"
        for p in owned)


def test_7x_hung_task(sessions: dict[str, Session]) -> None:
    """7.3-hung-task: the task dmesg names, blocked for as long as dmesg says (from the
    module's message before its wait to the watchdog's report), waiting on the completion."""
    import re

    name = "7.3-hung-task"
    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    s = sessions[name]
    dmesg = next((SAMPLES / name).glob("dmesg.*")).read_text()
    m = re.search(r"\[\s*([\d.]+)\] \[\s*T\d+\] INFO: task (\S+):(\d+) blocked for more than "
                  r"(\d+) seconds", dmesg)
    start = re.search(r"\[\s*([\d.]+)\] \[\s*T\d+\] hung_task: waiting uninterruptibly", dmesg)
    assert m is not None and start is not None
    hang = s.hang
    assert [(b.task.pid, b.task.comm) for b in hang.blocked] == [(int(m.group(3)), m.group(2))]
    b = hang.blocked[0]
    waited = float(m.group(1)) - float(start.group(1))
    assert b.since is not None and b.since > int(m.group(4)) * 10**9
    assert abs(b.since / 1e9 - waited) < 0.5, (b.since, waited)
    assert b.wait is not None and b.wait.kind == "completion"
    assert b.lock_symbol == "never_completed [hung_task]"
    t = s.triage
    assert t.kind == "hung-task" and t.hung_pid == b.task.pid
    assert "waits for completion never_completed [hung_task]" in t.summary
    ps = [line for line in run_command(s, "ps -m") if "[UN]" in line]
    assert len(ps) == 1 and f"PID: {b.task.pid} " in ps[0]


def test_7x_lock_found_from_the_stack_alone(sessions: dict[str, Session],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """7.x's rw_semaphore and semaphore have first_waiter but no task_struct.blocked_on: their
    lock is the stack pointer whose first_waiter is in the task's waiter ring. The same search
    without blocked_on finds 7.3-deadlock's mutexes (the rwsem/semaphore path on a real dump)."""
    import dataclasses

    from crashtui.kernel import locks

    name = "7.3-deadlock"
    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    s = sessions[name]
    expected = {b.task.address: b.wait for b in s.hang.blocked}
    monkeypatch.setitem(locks.KINDS, "mutex",
                        dataclasses.replace(locks.KINDS["mutex"], blocked_on=None))
    stacks = locks.StackRanges([t.stack for t in s.tasks.tasks])
    for b in s.hang.blocked:
        assert locks.find_wait(s.kernel, b.task.address, b.task.stack, "mutex",
                               stacks) == expected[b.task.address]
