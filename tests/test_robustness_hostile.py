"""Hostile dumps (issue 14): values an attacker controls in a real dump stay bounded.

Each case patches a copy of a real sample dump (tests/test_robustness_support.py) the way a
compromised machine could have left it, then runs crashtui on it: every run ends within a
time and memory budget, with a clear one-line message or a correct partial result, and never
with "internal error".
"""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import pytest
from test_robustness_support import CliResult, cli, copy_with, plant

from crashtui.kernel.program import Kernel

pytestmark = pytest.mark.needs_vmlinux

BUDGET = 60.0  # seconds per run (the bound)


def timed_cli(*args: str | Path) -> tuple[float, CliResult]:
    started = time.monotonic()
    result = cli(*args)
    return time.monotonic() - started, result


def assert_sane(result: CliResult) -> None:
    """Exit 0 or 2, no traceback, no internal error anywhere."""
    assert result.status in (0, 1, 2), result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.out + result.err, (result.out + result.err)[-2000:]


# --- the log: one huge record of "BUG: stack " ----------------------------------------------

def plant_log_record(path: Path, kernel: Kernel, seq: int, text: bytes) -> None:
    """Make printk record `seq` of the dump at `path` hold `text` (up to 64 KiB): its text
    block moves to the free ring space after the newest record (overwriting the oldest
    records, which then read as damaged) and its info's text_len is set."""
    vi = kernel.vmcoreinfo
    prb = kernel.read_u64(vi.symbols["prb"])
    count_bits, descs, infos = kernel.read_u32(prb), kernel.read_u64(prb + 8), \
        kernel.read_u64(prb + 16)
    size_bits, data = kernel.read_u32(prb + 48), kernel.read_u64(prb + 56)
    size, mask = 1 << size_bits, (1 << count_bits) - 1
    head = kernel.read_u64(prb + 24) & mask
    free = kernel.read_u64(descs + head * 24 + 16)  # the newest block's end
    idx = seq & mask
    id_ = kernel.read_u64(descs + idx * 24) & ((1 << 62) - 1)
    length = 8 + (len(text) + 7) // 8 * 8
    assert length <= size // 2
    if (free & (size - 1)) + length <= size:
        start, begin, nxt = free & (size - 1), free, free + length
    else:  # would wrap: the block goes to the start of the ring
        start, begin, nxt = 0, free, (free | (size - 1)) + 1 + length
    plant(path, kernel, descs + idx * 24 + 8, struct.pack("<QQ", begin, nxt))
    plant(path, kernel, infos + idx * 88 + 16, struct.pack("<H", len(text)))
    plant(path, kernel, data + start, struct.pack("<Q", id_) + text)


def panic_seq(kernel: Kernel) -> int:
    from crashtui.kernel.printk import read_log

    return next(r.seq for r in read_log(kernel).records
                if r.text.startswith("Kernel panic - not syncing"))


@pytest.fixture(scope="module")
def bug_stack_dump(sysrq_dump: Path, vmlinux_path: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sysrq dump whose last log record is 64 KiB of `BUG: stack ` (no "overflow")."""
    path = copy_with(sysrq_dump, tmp_path_factory.mktemp("bugstack") / "dump")
    kernel = Kernel.open(sysrq_dump, vmlinux_path)
    try:
        text = (b"BUG: stack " * 6000)[:65528]
        plant_log_record(path, kernel, panic_seq(kernel) - 1, text)
    finally:
        kernel.close()
    return path


def test_log_regexes_linear_on_a_64k_record(bug_stack_dump: Path, vmlinux_path: Path) -> None:
    """The triage regexes over a 64 KiB record of `BUG: stack `: seconds, not minutes."""
    elapsed, result = timed_cli(bug_stack_dump, vmlinux_path, "-c", "log", "-c", "triage")
    assert_sane(result)
    assert result.status == 0 and elapsed < 20, elapsed
    assert any(line.startswith("[") and "BUG: stack BUG: stack" in line
               for line in result.lines)
    assert re.search(r"^KIND: ", result.out, re.M), result.out[-3000:]
