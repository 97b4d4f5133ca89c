"""arm64 commands against crash 9.0.2 (make target=ARM64) on the kdump sample: vtop, ptov,
kmem, search, vm, files, task, sig, runq, timer, irq, net, dev, mount, foreach, whatis,
struct, p, rd, sym, list, dis, bt -f/-l, log, mod -S; recorded by tests/record_crash_arm64.py
(one crash session per command) into tests/crash_outputs/arm64/<dump>/. Where crash is wrong
(sample-dumps/<dump>/crash/KNOWN-ERRORS.md) the test says how."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.arch.arm64 import ARM64
from crashtui.kernel.program import Kernel
from tests.conftest import dump_of, vmlinux_of
from tests.test_robustness_support import cli

NAME = "6.12-arm64-kdump-sysrq"
OUT = Path(__file__).parent / "crash_outputs" / "arm64" / NAME
FILES = sorted(p.name for p in OUT.glob("*.txt"))
# crash is wrong in these (KNOWN-ERRORS.md); each has its own test below
SPECIAL = {"search-k.txt", "timer.txt", "timer-r.txt", "bt-f.txt", "bt-l.txt"}


def recorded(fname: str) -> tuple[str, list[str]]:
    """(the command, crash's lines) of one recording."""
    first, _, rest = (OUT / fname).read_text().partition("\n")
    return first.removeprefix("crash> "), rest.rstrip("\n").split("\n")


def ours(cmd: str) -> list[str]:
    """crashtui's lines for a recorded command (` ; ` separates commands)."""
    args = [a for c in cmd.split(" ; ") for a in ("-c", c)]
    r = cli(dump_of(NAME), vmlinux_of(NAME), *args)
    assert r.status == 0, r.err
    return r.out.rstrip("\n").split("\n")


def test_recorded() -> None:
    assert len(FILES) >= 40 and SPECIAL <= set(FILES)


@pytest.mark.parametrize("fname", [f for f in FILES if f not in SPECIAL])
def test_equals_crash(fname: str) -> None:
    """Line for line; in `dis`, gdb leaves the <symbol> off an adrp to some symbols' very
    start (reserved_pg_dir, __pi___start_rodata: a rule not found), crashtui names it."""
    cmd, theirs = recorded(fname)
    mine = ours(cmd)
    if fname.startswith("dis-"):
        assert len(mine) == len(theirs)
        start = re.compile(r" <[\w.]+>$")  # a symbol's start: no +offset
        unnamed = [b for a, b in zip(mine, theirs, strict=True)
                   if a != b and "\tadrp\t" in b and start.sub("", a) == b]
        assert len(unnamed) <= 2
        mine = [b if b in unnamed else a for a, b in zip(mine, theirs, strict=True)]
    assert mine == theirs


def test_search_k_but_crash_doubled_hits() -> None:
    """crash lists the kernel image's hits twice (KNOWN-ERRORS.md)."""
    cmd, theirs = recorded("search-k.txt")
    twice = [line for i, line in enumerate(theirs) if line in theirs[:i]]
    assert len(twice) == 6 and all(line.startswith("ffffd72e07") for line in twice)
    assert ours(cmd) == list(dict.fromkeys(theirs))


@pytest.mark.parametrize("fname", ["bt-f.txt", "bt-l.txt"])
def test_bt_f_l_but_frame_0_pc(fname: str) -> None:
    """All lines but frame #0's pc, crash_setup_regs()'s exact pc where crash prints pc - 4."""
    cmd, theirs = recorded(fname)
    mine = ours(cmd)
    pc = {c.pid: c.registers["pc"]
          for c in ARM64.prstatus_registers(Kernel.open(dump_of(NAME)).dump.notes)}
    pid = int(theirs[0].split()[1])
    assert mine[1] == theirs[1].replace(f"{pc[pid] - 4:x}", f"{pc[pid]:x}")
    assert mine[:1] + mine[2:] == theirs[:1] + theirs[2:]


def _timer_blocks(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = ""
    for line in lines:
        if line.startswith("TIMER_BASES["):
            key = line
            out[key] = []
        elif line.startswith("CPU:"):
            key = ""
        elif key and line:
            out[key].append(line)
    return out


def test_timer_but_crash_misses_base_def() -> None:
    """6.9+ has BASE_LOCAL, BASE_GLOBAL, BASE_DEF; crash 9.0.2 shows two, named BASE_STD and
    BASE_DEF (6.12-sysrq/crash/KNOWN-ERRORS.md): those are crashtui's first two, line for
    line; the third holds the delayed work and tcp_orphan_update timers crash never shows."""
    cmd, theirs = recorded("timer.txt")
    mine, ref = _timer_blocks(ours(cmd)), _timer_blocks(theirs)
    rename = {"BASE_STD": "BASE_LOCAL", "BASE_DEF": "BASE_GLOBAL"}
    renamed = {re.sub(r"BASE_(STD|DEF)", lambda m: rename[m.group(0)], k): v
               for k, v in ref.items()}
    assert all(mine[k] == v for k, v in renamed.items()) and len(mine) == 3 * len(ref) // 2
    assert any("<tcp_orphan_update>" in line for k, v in mine.items()
               if "BASE_DEF" in k for line in v)


def test_timer_r_but_crash_current_time() -> None:
    """The same hrtimers (softexpires, expires, address, function); crash's CURRENT is
    negative and so every TTE wrong (jiffies at the wrong HZ, KNOWN-ERRORS.md): crashtui's
    CURRENT is the 11.75 s the kernel had run."""
    cmd, theirs = recorded("timer-r.txt")
    mine = ours(cmd)

    def rows(lines: list[str]) -> list[tuple[str, ...]]:
        return [(f[0], f[1], f[3], f[4], f[5]) if len(f) == 6 else (line,)
                for line in lines if (f := line.split()) and not re.fullmatch(r"-?\d+", line.strip())
                and "TTE" not in line]

    assert rows(mine) == rows(theirs)
    current = [line.strip() for line in theirs if re.fullmatch(r"\s*-?\d+", line)]
    assert current and all(c.startswith("-") for c in current)
    assert all(0 < int(c) < 13 * 10**9 for c in
               (line.strip() for line in mine if re.fullmatch(r"\s*\d+", line)))


def test_a_2mb_block_and_the_user_flags_are_named() -> None:
    """The kernel image is mapped by 2 MiB blocks (PMD level); a user page is USER|NG."""
    assert "  PAGE: 40e00000  (2MB)" in recorded("vtop-text.txt")[1]
    flags = recorded("vtop-user-sp.txt")[1]
    assert any("(VALID|USER|SHARED|AF|NG|PXN|UXN|DIRTY)" in line for line in flags)


def test_lpa2_dump_walks_five_levels() -> None:
    """A 52-bit VA kernel (LPA2, which crash cannot open): PGD, P4D, PUD, PMD, PTE, and the
    physical address the page tables give is the linear map's."""
    dump, vmlinux = dump_of("6.12-arm64-sysrq"), vmlinux_of("6.12-arm64-sysrq")
    task = cli(dump, vmlinux, "-c", "bt").out.split("TASK: ")[1].split()[0]
    out = cli(dump, vmlinux, "-c", f"vtop {task}").out.split("\n")
    levels = [line.split(":")[0].strip() for line in out if line.startswith("   ") and " => " in line]
    assert levels == ["PGD", "P4D", "PUD", "PMD", "PTE"]
    phys = int(out[1].split()[1], 16)
    ptov = cli(dump, vmlinux, "-c", f"ptov {phys:x}").out.split("\n")[1].split()
    assert ptov[0] == task
