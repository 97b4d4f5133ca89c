"""arm64 samples against crash itself: sid's crash 9.0.2 built with `make target=ARM64`
(sample-dumps/build-crash-arm64), recorded by sample-dumps/record-crash-output into
<sample>/crash/. It opens 6.12-arm64-kdump-sysrq (48-bit VAs, 4 levels, with
`-m phys_offset=`); the QEMU samples (LPA2: 52-bit VAs, 5 levels) it cannot open
(crash-9.0.2-fails.txt). Differences where crash is wrong: <sample>/crash/KNOWN-ERRORS.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.arch.arm64 import ARM64
from crashtui.kernel.program import Kernel
from tests.conftest import SAMPLES, dump_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli

NAME = "6.12-arm64-kdump-sysrq"
CRASH = SAMPLES / NAME / "crash"
LPA2 = ["6.12-arm64-sysrq", "6.12-arm64-test-module", "6.12-arm64-bug-kthread",
        "6.12-arm64-stack-overflow"]
FRAME = re.compile(r"^\s*#(\d+) \[([0-9a-f]+)\] (\S+) at ([0-9a-f]+)$")
_RUNS: dict[str, CliResult] = {}


def ours(cmd: str, with_vmlinux: bool = True) -> list[str]:
    """crashtui's output of `cmd` on the kdump sample (without the vmlinux: kallsyms and BTF
    from memory)."""
    key = f"{cmd}{'' if with_vmlinux else ' (no vmlinux)'}"
    if key not in _RUNS:
        args = (dump_of(NAME), vmlinux_of(NAME)) if with_vmlinux else (dump_of(NAME),)
        _RUNS[key] = cli(*args, "-c", cmd)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key].out.rstrip("\n").split("\n")


def theirs(file: str) -> list[str]:
    """crash's recorded output, without its `NOTE: setting phys_offset` preamble."""
    lines = (CRASH / file).read_text().rstrip("\n").split("\n")
    if lines[0].startswith("NOTE: setting phys_offset"):
        lines = lines[2:]
    return lines


def fields(lines: list[str]) -> dict[str, str]:
    return {k.strip(): v for k, sep, v in (line.partition(": ") for line in lines) if sep}


def test_crash_needed_the_unadjusted_phys_offset() -> None:
    """VMCOREINFO's PHYS_OFFSET of a 52-bit kernel on a 48-bit CPU is memstart_addr lowered by
    _PAGE_OFFSET(48) - _PAGE_OFFSET(52); crash was given the start of RAM instead."""
    n = Kernel.open(dump_of(NAME), vmlinux_of(NAME)).vmcoreinfo.numbers
    assert (n["VA_BITS"], 64 - n["TCR_EL1_T1SZ"]) == (52, 48)
    phys = (n["PHYS_OFFSET"] + (1 << 52) - (1 << 48)) % (1 << 64)
    assert phys == 0x40000000
    assert f"-m phys_offset={phys:#x} " in (CRASH / "COMMAND").read_text()


@pytest.mark.parametrize("cmd,file", [("log", "log.txt"), ("mod", "mod.txt")])
def test_equals_crash(cmd: str, file: str) -> None:
    assert ours(cmd) == theirs(file)


def test_sys_equals_crash() -> None:
    mine, ref = fields(ours("sys")), fields(theirs("sys.txt"))
    assert list(mine) == list(ref)
    for key in ref:
        if key == "KERNEL":
            assert Path(mine[key]).name == Path(ref[key]).name
        elif key == "DUMPFILE":  # crash read the decompressed copy of the same dump_elf
            assert (Path(mine[key]).name, ref[key]) == (dump_of(NAME).name, f"$ELF/{NAME}.elf")
        elif key == "UPTIME":  # KNOWN-ERRORS.md: crash's is absurd
            assert "days" in ref[key] and mine[key] == "00:00:11"
        else:
            assert mine[key] == ref[key], key


def test_ps_equals_crash() -> None:
    """%MEM too: RSS * 100 / the pfn of high_memory (crash's vt->total_pages, 524288 here:
    RAM is 1 GiB from 0x40000000), through the linear map."""
    assert ours("ps") == theirs("ps.txt")
    assert any(line.split()[5] == "0.1" for line in theirs("ps.txt")[1:])


def test_kmem_i_shared_as_crash_9_spells_it() -> None:
    """crash 9 prints SHARED only for `kmem -i=shared` (it reads every struct page), and so
    does crashtui: otherwise the same table."""
    shared = ours("kmem -i=shared")
    assert [line for line in shared if not line.lstrip().startswith("SHARED")] == \
        ours("kmem -i")
    assert sum(line.lstrip().startswith("SHARED") for line in shared) == 1


def test_kmem_i_equals_crash_but_committed() -> None:
    """crash 9.0.2's COMMITTED misses the per-CPU deltas (KNOWN-ERRORS.md): crashtui's 425
    is drgn's."""
    mine = ours("kmem -i")
    ref = theirs("kmem-i.txt")
    assert len(mine) == len(ref)
    for a, b in zip(mine, ref, strict=True):
        if "COMMITTED" in a:
            assert a.split()[1] == "425" and b.split()[1] == "96"
        else:
            assert a == b


def _same_trace(mine: list[str], ref: list[str], kernel: Kernel) -> None:
    """Lines equal, in crash's arm64 conventions (frame record in brackets, a return
    address shown as its `bl`, pc - 4), but where crash is wrong (KNOWN-ERRORS.md): frame #0
    of a task stopped by crash_setup_regs() is its exact NT_PRSTATUS pc, not pc - 4; crash's
    bt errors on a user address are dropped."""
    ref = [line for line in ref if not line.startswith("bt: invalid kernel virtual address")]
    assert len(mine) == len(ref)
    regs = {c.pid: c.registers for c in ARM64.prstatus_registers(kernel.dump.notes)}
    pid, exact = 0, 0
    for a, b in zip(mine, ref, strict=True):
        if a.startswith("PID: "):
            pid = int(a.split()[1])
        ma, mb = FRAME.match(a), FRAME.match(b)
        if ma and mb and ma.group(1) == "0" and pid in regs \
                and int(ma.group(4), 16) == regs[pid]["pc"]:
            assert int(mb.group(4), 16) == regs[pid]["pc"] - 4
            assert a.replace(ma.group(4), mb.group(4)) == b
            exact += 1
        else:
            assert a == b
    assert exact >= 1


@pytest.mark.parametrize("with_vmlinux", [True, False])
@pytest.mark.parametrize("cmd,file", [("bt", "bt.txt"), ("bt -a", "bt-a.txt"),
                                      ("foreach bt", "foreach-bt.txt")])
def test_bt_equals_crash_but_its_errors(cmd: str, file: str, with_vmlinux: bool) -> None:
    _same_trace(ours(cmd, with_vmlinux), theirs(file),
                Kernel.open(dump_of(NAME), vmlinux_of(NAME)))


@pytest.mark.parametrize("cmd,file", [("log", "log.txt"), ("mod", "mod.txt"), ("ps", "ps.txt")])
def test_without_vmlinux_equals_crash(cmd: str, file: str) -> None:
    assert ours(cmd, with_vmlinux=False) == theirs(file)


def test_bt_stops_where_crash_stops_and_swapper_has_no_user_regs() -> None:
    """crash's BACKTRACE_COMPLETE_KERNEL: kthread, kthreadd, start_kernel and
    secondary_start_kernel end a trace; the idle tasks' zeroed pt_regs are no user entry."""
    lines = ours("foreach bt")
    names = [m.group(3) for line in lines if (m := FRAME.match(line))]
    assert "kthread" in names and "start_kernel" in names
    assert not {"ret_from_fork", "__primary_switched", "__secondary_switched"} & set(names)
    assert not any(line.strip().startswith("PC: 0000000000000000") for line in lines)


@pytest.mark.parametrize("name", LPA2)
def test_crash_cannot_open_the_lpa2_dumps_crashtui_reads_the_address(name: str) -> None:
    """crash 9.0.2 walks at most 4 levels with 4 KiB pages (arm64.c: VM_L4_4K); these
    kernels run 52-bit VAs with 5 (TCR_EL1_T1SZ 12). The vmalloc address crash stopped at
    translates through swapper_pg_dir, to a page of RAM."""
    text = (SAMPLES / name / "crash" / "crash-9.0.2-fails.txt").read_text()
    m = re.search(r"crash: invalid kernel virtual address: ([0-9a-f]+)", text)
    assert m, text
    kernel = Kernel.open(dump_of(name), vmlinux_of(name))
    layout = ARM64.layout(kernel)
    assert (layout.va_bits_actual, layout.levels) == (52, 5)
    phys = kernel.pagetable.walk(int(m.group(1), 16))
    assert 0x40000000 <= phys < 0x40000000 + (1 << 30)
