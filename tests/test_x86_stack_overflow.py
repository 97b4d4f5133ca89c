"""x86-64 kernel stack overflow (sample-dumps/6.12-stack-overflow: a kthread recurses until its
stack runs into the guard page, the #DF handler's handle_stack_overflow oopses): bt from the
DOUBLEFAULT IST stack into the guard page and up the task stack, against crash 8.0.6."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.analysis.recursion import deepest_recursion
from crashtui.kernel.program import Kernel
from tests.conftest import SAMPLES, SampleSessions, dump_of, manifest_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli

NAME = "6.12-stack-overflow"
DIR = SAMPLES / NAME
CRASH = DIR / "crash"
MARK = "--- <DOUBLEFAULT exception stack> ---"
RECURSE = "stack_overflow_recurse"


@pytest.fixture(scope="module")
def dump() -> Path:
    return dump_of(NAME)


@pytest.fixture(scope="module")
def vmlinux() -> Path:
    return vmlinux_of(NAME)


_RUNS: dict[tuple[str, ...], CliResult] = {}


def run(*args: str | Path) -> CliResult:
    key = tuple(str(a) for a in args)
    if key not in _RUNS:
        _RUNS[key] = cli(*args)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key]


def frames(text: str) -> list[tuple[str, int, int]]:
    """(function, pc, sp) of each ` #N [sp] function at pc` line."""
    return [(m.group(2), int(m.group(3), 16), int(m.group(1), 16)) for m in
            re.finditer(r"^\s*#\d+ \[([0-9a-f]+)\] (\S+) at ([0-9a-f]+)", text, re.M)]


@pytest.mark.parametrize(("command", "ref"), [("bt", "bt.txt"), ("bt -a", "bt-a.txt"),
                                              ("foreach bt", "foreach-bt.txt")])
def test_bt_equals_crash(dump: Path, vmlinux: Path, command: str, ref: str) -> None:
    """Line for line crash's output: the #DF stack, the exception frame, then all the
    recursion up the task stack (not an error at the guard page)."""
    out = run(dump, vmlinux, "-c", command).out
    assert out == (CRASH / ref).read_text()
    assert MARK in out and "bt: " not in out


def test_bt_without_the_vmlinux(dump: Path) -> None:
    """kallsyms and the in-memory ORC give the same trace."""
    assert run(dump, "-c", "bt").out == (CRASH / "bt.txt").read_text()


def test_first_frame_after_the_double_fault_is_in_the_guard_page(dump: Path,
                                                                 vmlinux: Path) -> None:
    """The interrupted RSP is just below the task stack (the guard page the kernel's
    "BUG: TASK stack guard page was hit" reports); the frames above it are on the stack, as
    many recursions as the kernel's own Call Trace shows (plus the faulting one)."""
    out = run(dump, vmlinux, "-c", "bt").out
    lines = out.splitlines()
    after = frames("\n".join(lines[lines.index(MARK):]))
    k = Kernel.open(dump, vmlinux)
    task = int(re.search(r"TASK: ([0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    base = k.read_u64(task + k.offsetof("task_struct", "stack"))
    size = 16 * 1024
    assert after[0][0] == RECURSE and base - 4096 <= after[0][2] < base
    assert all(base <= sp < base + size for _, _, sp in after[1:])
    console = (DIR / manifest_of(DIR)["dmesg"]).read_text(errors="replace")
    assert "BUG: TASK stack guard page was hit" in console
    trace = console.split("Call Trace:")[1].split("</TASK>")[0]
    assert trace.count(f" {RECURSE}+") + 1 == [n for n, _, _ in after].count(RECURSE) > 40
    rip = re.search(r"RIP: 0010:(\w+)\+(0x[0-9a-f]+)/", console)
    assert rip is not None and f"[exception RIP: {rip.group(1)}+{int(rip.group(2), 16)}]" in out


def test_triage_blames_the_recursion(dump: Path, vmlinux: Path) -> None:
    r = run(dump, vmlinux, "--modules", DIR / "stack-overflow", "-c", "triage")
    t = dict(line.split(": ", 1) for line in r.out.splitlines() if ": " in line)
    assert t["CULPRIT"].startswith(f"{RECURSE}+0x3f [stack_overflow]"), t
    assert "stack-overflow.c:" in t["CULPRIT"]
    # 6.x names the stack: "BUG: TASK stack guard page was hit at ..." (traps.c)
    assert t["KIND"].endswith("(stack-overflow)") and "TASK stack guard page" in t["EVENT"]
    # the guard-page line prints %p (hashed): the address is the oops's CR2
    cr2 = re.search(r"CR2: ([0-9a-f]{16})", next(DIR.glob("dmesg.*")).read_text())
    assert cr2 is not None and int(t["ADDRESS"], 16) == int(cr2.group(1), 16)


def test_deepest_recursion(sessions: SampleSessions) -> None:
    """The recursion from the guard-page frame up: crash's count of stack_overflow_recurse
    frames; no recursion in the other 6.12 x86 panics."""
    bt = next(b for b in sessions[NAME].backtraces if b.panic)
    rec = deepest_recursion(bt)
    assert rec is not None and rec.function == RECURSE and rec.module == "stack_overflow"
    assert rec.depth == [n for n, _, _ in frames((CRASH / "bt.txt").read_text())].count(RECURSE)
    assert rec.frame.exception is None and bt.frames[rec.frame.index - 1].exception is not None
    for other in ("6.12-sysrq", "6.12-test-module"):
        assert deepest_recursion(next(b for b in sessions[other].backtraces if b.panic)) is None
