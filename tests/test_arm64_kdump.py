"""arm64 dump saved by the real kdump path (sample-dumps/6.12-arm64-kdump-sysrq: kexec -p, a
capture kernel, its /proc/vmcore kept whole as xz): the registers are the kernel's own
crash_setup_regs() (panic CPU, in __crash_kexec) and crash_save_cpu() (the CPU stopped by the
IPI), not QEMU's live vCPU state; checked against drgn 0.3.0's outputs (drgn/) and the
console."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.arch.arm64 import ARM64
from crashtui.kernel.program import Kernel
from tests import arm64_bt
from tests.conftest import SAMPLES, dump_of, manifest_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli

NAME = "6.12-arm64-kdump-sysrq"
DIR = SAMPLES / NAME
DRGN = DIR / "drgn"
_HEADER = re.compile(r"^PID: (\d+)\s+TASK: ([0-9a-f]+)\s+CPU: (\d+)\s+COMMAND: (\"[^\"]*\")",
                     re.M)
_RUNS: dict[tuple[str, ...], CliResult] = {}


@pytest.fixture(scope="module")
def dump() -> Path:
    return dump_of(NAME)


@pytest.fixture(scope="module")
def vmlinux() -> Path:
    return vmlinux_of(NAME)


@pytest.fixture(scope="module")
def kernel(dump: Path, vmlinux: Path) -> Kernel:
    return Kernel.open(dump, vmlinux)


def run(*args: str | Path) -> CliResult:
    """crashtui's CLI on the sample, once per argument list."""
    key = tuple(str(a) for a in args)
    if key not in _RUNS:
        _RUNS[key] = cli(*args)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key]


def fields(text: str) -> dict[str, str]:
    """`sys`'s KEY: value lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value
    return out


def frames(text: str) -> list[tuple[str, int]]:
    """(function, pc) of each ` #N [sp] function at pc` line (drgn's `(inline)` frames have
    none; a GCC clone suffix, which drgn's DWARF names lack, dropped)."""
    return [(re.sub(r"\.(constprop|isra|part)\.\d+$", "", m.group(1)), int(m.group(2), 16))
            for m in re.finditer(r"^\s*#\d+ \[[0-9a-f?]+\] (\S+) at ([0-9a-f]+)", text, re.M)]


def blocks(text: str) -> dict[int, str]:
    """`bt -a` split by task header: CPU -> its block."""
    out = {}
    for block in re.split(r"\n(?=PID: )", text.strip()):
        m = _HEADER.search(block)
        assert m, block
        out[int(m.group(3))] = block
    return out


def headers(text: str) -> list[tuple[str, ...]]:
    return [m.groups() for m in _HEADER.finditer(text)]


def console() -> str:
    return (DIR / manifest_of(DIR)["dmesg"]).read_text(errors="replace")


def panic_cpu() -> int:
    """The CPU of drgn's `bt` (the panic task)."""
    return int(headers((DRGN / "bt.txt").read_text())[0][2])


# -- the dump is the capture kernel's /proc/vmcore ----------------------------------------------

def test_the_dump_is_proc_vmcore_with_the_kernels_own_notes(kernel: Kernel) -> None:
    """kexec-tools' ELF headers: one NT_PRSTATUS per CPU in CPU order, pr_pid the task's PID
    (crash_save_cpu: current->pid; QEMU writes its CPU number); the panic CPU's pc is in
    __crash_kexec (crash_setup_regs() is inlined there), at EL1h."""
    assert kernel.dump.info.format == "elf" and kernel.arch is ARM64
    assert "/proc/vmcore" in manifest_of(DIR)["dump_made_by"]
    assert "Starting crashdump kernel..." in console()
    cpus = ARM64.prstatus_registers(kernel.dump.notes)
    tasks = {int(cpu): int(pid) for pid, _, cpu, _ in
             headers((DRGN / "bt-a.txt").read_text())}
    assert len(cpus) == len(tasks) == 2
    assert {c.cpu: c.pid for c in cpus} == tasks
    regs = cpus[panic_cpu()].registers
    hit = kernel.symbolize(regs["pc"])
    assert hit is not None and hit[0].name == "__crash_kexec"
    assert regs["pstate"] & 0xF == 0x5 and not ARM64.user_mode(regs)


# -- sys, bt, bt -a, ps, kmem -i, mod, log against drgn and the console -------------------------

@pytest.mark.parametrize("with_vmlinux", [True, False])
def test_sys_equals_drgn(dump: Path, vmlinux: Path, with_vmlinux: bool) -> None:
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    ours = fields(run(*args, "-c", "sys").out)
    ref = fields((DRGN / "sys.txt").read_text())
    for name in ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "NODENAME", "RELEASE", "VERSION",
                 "PANIC"):
        assert ours[name] == ref[name], name
    assert ours["MACHINE"] == ref["MACHINE"] + "  (unknown Mhz)"  # crash's (drgn omits it)
    # drgn leaves out the offline CPU's idle task (test_ps_equals_drgn...) and gives MEMORY as
    # totalram_pages; crash's MEMORY is the machine's RAM (MANIFEST: "..., 1024 MiB, ...")
    offline = re.fullmatch(r"\d+ \[OFFLINE: (\d+)\]", ours["CPUS"])
    mib = re.search(r"(\d+) MiB", manifest_of(DIR)["machine"])
    assert offline and mib
    assert int(ours["TASKS"]) == int(ref["TASKS"]) + int(offline.group(1))
    assert ours["MEMORY"] == f"{int(mib.group(1)) // 1024} GB"


@pytest.mark.parametrize("with_vmlinux", [True, False])
def test_panic_bt_starts_in_crash_kexec(dump: Path, vmlinux: Path, with_vmlinux: bool) -> None:
    """The panic task's trace from crash_setup_regs()'s registers: __crash_kexec, vpanic,
    panic, then the console's own call trace from sysrq_handle_crash to el0t_64_sync; the
    same functions and pcs as drgn's bt, and as drgn's DWARF unwinder but its inlines."""
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    out = run(*args, "-c", "bt").out
    ref = (DRGN / "bt.txt").read_text()
    assert headers(out) == headers(ref)
    ours = [(re.sub(r"\.(constprop|isra|part)\.\d+$", "", n), pc)
            for n, pc, _ in arm64_bt.frames(out)]
    assert ours == frames(ref)
    names = [n for n, _ in ours]
    assert names[:3] == ["__crash_kexec", "vpanic", "panic"]
    text = console()
    trace = text[text.index("Call trace:", text.index("Kernel panic - not syncing")):]
    logged = re.findall(r"^\[[\d. ]+\]\s+([\w.]+)\+0x", trace, re.M)
    logged = [re.sub(r"\.(constprop|isra|part)\.\d+$", "", n) for n in logged]
    start = logged.index("sysrq_handle_crash")
    end = logged.index("el0t_64_sync") + 1
    assert names[names.index("sysrq_handle_crash"):] == logged[start:end]
    cfi = re.findall(r"^#\d+\s+([\w.]+)", (DRGN / "crashed-thread.txt").read_text(), re.M)
    assert [n for n in cfi if n in names] == names
    # the entry from user mode: the pt_regs under the last frame record, at EL0
    m = re.search(r"PSTATE: ([0-9a-f]+)", out)
    assert m and int(m.group(1), 16) & 0xF == 0


def test_bt_a_the_stopped_cpu_shows_the_registers_the_ipi_saved(dump: Path, vmlinux: Path,
                                                               kernel: Kernel) -> None:
    """crash_save_cpu() in the stop IPI saved the interrupted context: same tasks and frames
    as drgn's bt -a; where it was in user mode, no kernel frames, its EL0 registers."""
    ours = blocks(run(dump, vmlinux, "-c", "bt -a").out)
    ref = blocks((DRGN / "bt-a.txt").read_text())
    assert sorted(ours) == sorted(ref) == [0, 1]
    for cpu in ours:
        assert headers(ours[cpu]) == headers(ref[cpu]), cpu
        mine = [(re.sub(r"\.(constprop|isra|part)\.\d+$", "", n), pc)
                for n, pc, _ in arm64_bt.frames(ours[cpu])]
        assert mine == frames(ref[cpu]), cpu
    other = 1 - panic_cpu()
    regs = ARM64.prstatus_registers(kernel.dump.notes)[other].registers
    if ARM64.user_mode(regs):
        # crash prints the pt_regs at the stack's top (the note's registers, which the IRQ
        # entry from EL0 stored there) with syscallno NO_SYSCALL: an IRQ, not a syscall
        assert frames(ours[other]) == []
        assert f"PC: {regs['pc']:016x}" in ours[other]
        assert f"X29: {regs['x29']:016x}" in ours[other]
        assert f"SYSCALLNO: ffffffff  PSTATE: {regs['pstate']:08x}" in ours[other]
    else:
        assert frames(ours[other]), ours[other]


def test_ps_equals_drgn_but_the_offline_cpus_idle_task(dump: Path, vmlinux: Path) -> None:
    """Same tasks (PID, PPID, CPU, TASK, COMM) in the same order, but the idle task of the CPU
    panic's IPI took offline, which drgn's port does not list."""
    def rows(text: str) -> list[tuple[str, ...]]:
        out = []
        for line in text.splitlines()[1:]:
            parts = line.lstrip(">").split()
            if len(parts) >= 9 and parts[0].isdigit():
                out.append((*parts[:4], " ".join(parts[8:])))
        return out

    ours = rows(run(dump, vmlinux, "-c", "ps").out)
    theirs = rows((DRGN / "ps.txt").read_text())
    offline = 1 - panic_cpu()
    missing = [r for r in ours if r not in theirs]
    assert [r for r in ours if r in theirs] == theirs
    assert [(r[0], r[2], r[4]) for r in missing] == [("0", str(offline), f"[swapper/{offline}]")]


def test_kmem_i_equals_drgn(dump: Path, vmlinux: Path) -> None:
    def pages(text: str) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^\s*([A-Z][A-Z ]+?)\s{2,}(\d+)\s", text, re.M)}

    ours = pages(run(dump, vmlinux, "-c", "kmem -i").out)
    theirs = pages((DRGN / "kmem-i.txt").read_text())
    assert len(theirs) >= 10 and all(ours[k] == v for k, v in theirs.items()), (ours, theirs)


def test_mod_and_log_equal_drgn(dump: Path, vmlinux: Path) -> None:
    def rows(text: str) -> set[tuple[str, ...]]:
        return {tuple(line.split()[:4]) for line in text.splitlines()[1:] if line.strip()}

    assert rows(run(dump, vmlinux, "-c", "mod").out) == rows((DRGN / "mod.txt").read_text())
    log = run(dump, vmlinux, "-c", "log").out
    assert log == (DRGN / "log.txt").read_text()
    assert "Starting crashdump kernel..." in log


def test_triage_names_sysrq_handle_crash(dump: Path, vmlinux: Path) -> None:
    """The culprit is the frame that called panic(), at the offset the console's trace shows."""
    t = dict(line.split(": ", 1) for line in run(dump, vmlinux, "-c", "triage").out.splitlines()
             if ": " in line)
    m = re.search(r"\s(sysrq_handle_crash\+0x[0-9a-f]+)/0x[0-9a-f]+$", console(), re.M)
    assert m is not None
    assert t["CULPRIT"].startswith(m.group(1) + " ")
