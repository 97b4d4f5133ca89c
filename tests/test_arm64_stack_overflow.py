"""arm64 kernel stack overflow (sample-dumps/6.12-arm64-stack-overflow: a kthread recurses until
its stack runs into the guard page): bt from the per-CPU overflow stack, through __bad_stack's
pt_regs, into the task stack's recursion, against the console's own trace and drgn 0.3.0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.analysis.backtraces_arm64 import Arm64BacktraceBuilder
from crashtui.analysis.recursion import deepest_recursion
from crashtui.kernel.program import Kernel
from tests import arm64_bt
from tests.conftest import SAMPLES, SampleSessions, dump_of, manifest_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli

NAME = "6.12-arm64-stack-overflow"
DIR = SAMPLES / NAME
DRGN = DIR / "drgn"
MARK = "--- <Overflow stack> ---"
RECURSE = "stack_overflow_recurse"


@pytest.fixture(scope="module")
def dump() -> Path:
    return dump_of(NAME)


@pytest.fixture(scope="module")
def vmlinux() -> Path:
    return vmlinux_of(NAME)


@pytest.fixture(scope="module")
def kernel(dump: Path, vmlinux: Path) -> Kernel:
    return Kernel.open(dump, vmlinux)


_RUNS: dict[tuple[str, ...], CliResult] = {}


def run(*args: str | Path) -> CliResult:
    key = tuple(str(a) for a in args)
    if key not in _RUNS:
        _RUNS[key] = cli(*args)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key]


def console() -> str:
    return (DIR / manifest_of(DIR)["dmesg"]).read_text(errors="replace")


def console_range(label: str) -> tuple[int, int]:
    """[begin, end) of a stack handle_bad_stack printed ("Task stack:", "Overflow stack:")."""
    m = re.search(rf"{label}:\s+\[0x([0-9a-f]+)\.\.0x([0-9a-f]+)\]", console())
    assert m is not None, label
    return int(m.group(1), 16), int(m.group(2), 16)


def console_trace() -> list[str]:
    """The function names of the panic's `Call trace:` (the last one in the log)."""
    text = console().split("Call trace:")[-1]
    return re.findall(r"^\[[ 0-9.]+\]  ([\w.]+)\+0x", text, re.M)


def frames(text: str) -> list[tuple[str, int | None, str]]:
    """(function, pc, sp) of each ` #N [sp] function at pc` line (drgn's inline frames
    dropped)."""
    return [(m.group(2), int(m.group(3), 16), m.group(1)) for m in
            re.finditer(r"^\s*#\d+ \[([0-9a-f?]+)\] (\S+) at ([0-9a-f]+)", text, re.M)]


def same_symbol(kernel: Kernel, a: str, b: str) -> bool:
    """The same name, or two aliases of one address (memset, __memset and __pi_memset are
    one function in arch/arm64/lib/memset.S: crashtui, the console and drgn each pick one)."""
    return a == b or kernel.symbol_or_none(a) == kernel.symbol_or_none(b) is not None


@pytest.mark.parametrize(("command", "ref", "with_vmlinux"), [
    ("bt", "bt.txt", True), ("bt", "bt.txt", False), ("bt -a", "bt-a.txt", True)])
def test_bt_equals_drgn(dump: Path, vmlinux: Path, kernel: Kernel, command: str, ref: str,
                        with_vmlinux: bool) -> None:
    """Every frame's function and pc as drgn's `crash bt` (its port of crash's arm64 bt);
    bt -a: CPU 1, stopped by panic's IPI, too."""
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    out = run(*args, "-c", command).out
    assert out.startswith('PID: 152      TASK: fff00000042e9280  CPU: 0    COMMAND: '
                          '"stack_overflow"'), out[:200]
    ours, theirs = arm64_bt.frames(out), frames((DRGN / ref).read_text())
    # crash's bt, and so crashtui's, ends at kthread (drgn's goes on to ret_from_fork)
    kthread = [n for n, _, _ in theirs].index("kthread")
    assert theirs[kthread + 1][0] == "ret_from_fork"
    theirs = theirs[:kthread + 1] + theirs[kthread + 2:]
    assert len(ours) == len(theirs) > 60
    for (name, pc, _), (ref, ref_pc, _) in zip(ours, theirs, strict=True):
        assert pc == ref_pc and same_symbol(kernel, name, ref), (name, ref)


def test_overflow_stack_then_task_stack(dump: Path, vmlinux: Path) -> None:
    """The panic runs on the overflow stack handle_bad_stack printed, one marker, then the
    interrupted code and the recursion on the task stack (drgn prints `????` there)."""
    out = run(dump, vmlinux, "-c", "bt").out
    lines = out.splitlines()
    assert lines.count(MARK) == 1
    at = lines.index(MARK)
    before, after = arm64_bt.frames("\n".join(lines[:at])), frames("\n".join(lines[at:]))
    overflow, task = console_range("Overflow stack"), console_range("Task stack")
    assert [n for n, _, _ in before][-3:] == ["panic_bad_stack", "handle_bad_stack",
                                             "__bad_stack"]
    assert all(overflow[0] <= int(sp, 16) < overflow[1] for _, _, sp in before), before
    assert all(task[0] <= int(sp, 16) < task[1] for _, _, sp in after), after
    assert after[0][0] == "memset" and after[1][0] == RECURSE
    assert [n for n, _, _ in after[-2:]] == ["stack_overflow_fn", "kthread"]  # as crash
    assert "????" in (DRGN / "bt.txt").read_text()


def test_recursion_depth_as_the_console_and_drgns_unwinder(dump: Path, vmlinux: Path,
                                                          kernel: Kernel) -> None:
    """The console's trace from panic_bad_stack down names the same functions in the same
    order as ours, and so does drgn's DWARF unwinder (crashed-thread). All three miss the
    innermost call, the one in memset (a leaf without a frame record: its caller is only in
    LR): memset's x1 is that call's depth, and depths 0 .. x1-1 are shown."""
    out = run(dump, vmlinux, "-c", "bt").out
    ours = [n for n, _, _ in frames(out)]
    trace = arm64_bt.until_crash_stops(console_trace())
    x1 = re.search(r"X1: ([0-9a-f]{16})", out)
    assert x1 is not None
    assert trace.count(RECURSE) == ours.count(RECURSE) == int(x1.group(1), 16) > 40
    start = ours.index("panic_bad_stack")
    tail = trace[trace.index("panic_bad_stack"):]
    assert len(tail) == len(ours) - start
    assert all(same_symbol(kernel, a, b) for a, b in zip(ours[start:], tail, strict=True))
    cfi = re.findall(r"^#\d+\s+([\w.]+)", (DRGN / "crashed-thread.txt").read_text(), re.M)
    cfi = arm64_bt.until_crash_stops(cfi)
    assert cfi.count(RECURSE) == ours.count(RECURSE)
    kept = [n for n in cfi if any(same_symbol(kernel, n, o) for o in ours)]
    assert len(kept) == len(ours)
    assert all(same_symbol(kernel, a, b) for a, b in zip(kept, ours, strict=True))


def test_bad_stack_registers_are_the_consoles(dump: Path, vmlinux: Path) -> None:
    """The pt_regs __bad_stack saved on the overflow stack are what __show_regs printed:
    x0-x29 and sp of the faulting store below the task stack."""
    out = run(dump, vmlinux, "-c", "bt").out
    ours = {k.lower(): int(v, 16) for k, v in re.findall(r"\b(X\d+|SP): ([0-9a-f]{16})", out)}
    text = console().split("Insufficient stack space")[1].split("Call trace:")[0]
    theirs = {k.strip(): int(v, 16) for k, v in re.findall(r"\b(x\d+\s?|sp) ?: ([0-9a-f]{16})",
                                                           text)}
    assert len(theirs) == 31  # x0-x29, sp
    assert {k: ours[k] for k in theirs} == theirs
    # the store that faulted was below the task stack: the guard page
    assert theirs["sp"] < console_range("Task stack")[0]
    lr = re.search(r"lr : (\w+)\+(0x[0-9a-f]+)/", text)
    assert lr is not None
    assert re.search(rf"LR: [0-9a-f]+  \[{lr.group(1)}\+{int(lr.group(2), 16)}\]", out), out


def test_overflow_stacks_are_the_per_cpu_array(kernel: Kernel) -> None:
    """CPU 0's overflow stack is where handle_bad_stack said (traps.c's overflow_stack)."""
    builder = Arm64BacktraceBuilder(kernel, [])
    stacks = builder.fp_unwinder.overflow_stacks
    assert len(stacks) == kernel.nr_cpu_ids == 2
    assert (stacks[0].begin, stacks[0].end) == console_range("Overflow stack")
    assert stacks[0].label == "Overflow stack" and stacks[0].cpu == 0


def test_triage_is_a_stack_overflow(dump: Path, vmlinux: Path) -> None:
    """The kind from the panic line; no __bad_stack/handle_bad_stack in the culprit or
    signature (exception machinery)."""
    r = run(dump, vmlinux, "--modules", DIR / "stack-overflow", "-c", "triage")
    t = dict(line.split(": ", 1) for line in r.out.splitlines() if ": " in line)
    assert t["KIND"].endswith("(stack-overflow)")
    assert "kernel stack overflow" in t["EVENT"]
    for name in ("__bad_stack", "handle_bad_stack", "panic_bad_stack", "__delay"):
        assert name not in t["CULPRIT"] and name not in t["SIGNATURE"], t
    assert RECURSE in t["SIGNATURE"]


def test_deepest_recursion_is_the_recursing_function(sessions: SampleSessions) -> None:
    """crashtui.analysis.recursion names the function the overflow came from (the faulting pc
    is memset's), as deep as the console's trace; an ordinary oops has no recursion."""
    bt = next(b for b in sessions[NAME].backtraces if b.panic)
    rec = deepest_recursion(bt)
    assert rec is not None and rec.function == RECURSE and rec.module == "stack_overflow"
    assert rec.depth == console_trace().count(RECURSE)
    assert bt.frames[rec.frame.index - 1].function == "memset"
    other = next(b for b in sessions["6.12-arm64-bug-kthread"].backtraces if b.panic)
    assert deepest_recursion(other) is None
