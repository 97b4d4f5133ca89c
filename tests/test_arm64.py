"""arm64 (crashtui.arch): the real Debian 6.12 arm64 dump (sample-dumps/6.12-arm64-sysrq, QEMU's
dump-guest-memory) against drgn 0.3.0's outputs (drgn/) and the guest's console."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from crashtui.arch import arch_of_machine
from crashtui.arch.arm64 import ARM64, EM_AARCH64, layout_of
from crashtui.arch.x86_64 import X86_64
from crashtui.kernel.program import Kernel
from crashtui.kernel.tasks import read_tasks
from tests import arm64_bt
from tests.conftest import SAMPLES, dump_of, manifest_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli, one_line_error

NAME = "6.12-arm64-sysrq"
DIR = SAMPLES / NAME
DRGN = DIR / "drgn"


@pytest.fixture(scope="module")
def dump() -> Path:
    return dump_of(NAME)


@pytest.fixture(scope="module")
def vmlinux() -> Path:
    return vmlinux_of(NAME)


@pytest.fixture(scope="module")
def kernel(dump: Path) -> Kernel:
    return Kernel.open(dump)


_RUNS: dict[tuple[str, ...], CliResult] = {}


def run(*args: str | Path) -> CliResult:
    key = tuple(str(a) for a in args)
    if key not in _RUNS:
        _RUNS[key] = cli(*args)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key]


def fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value
    return out


def frames(text: str, ours: bool = False) -> list[tuple[str, int | None]]:
    """(function, pc) of each ` #N [sp] function at pc` line, crashtui's (`ours`) read back
    from crash's pc - 4 into return addresses as drgn prints them; drgn's `(inline)` frames
    and a GCC clone suffix (.constprop.0, which drgn's DWARF names lack) dropped."""
    out: list[tuple[str, int | None]] = []
    if ours:
        return [(re.sub(r"\.(constprop|isra|part)\.\d+$", "", n), pc)
                for n, pc, _ in arm64_bt.frames(text)]
    for line in text.splitlines():
        m = re.match(r"\s*#\d+ \[[0-9a-f?]+\] (\S+) at ([0-9a-f]+)", line)
        if m:
            out.append((re.sub(r"\.(constprop|isra|part)\.\d+$", "", m.group(1)),
                        int(m.group(2), 16)))
    return out


def blocks(text: str) -> dict[int, str]:
    """`bt -a` output split by task header: CPU -> its block."""
    out = {}
    for block in re.split(r"\n(?=PID: )", text.strip()):
        m = re.search(r"CPU: (\d+)", block)
        assert m, block
        out[int(m.group(1))] = block
    return out


# -- the architecture and its address layout ---------------------------------------------------

def test_arch_is_chosen_from_the_dump(kernel: Kernel) -> None:
    """QEMU's kdump header says machine "Unknown": VMCOREINFO's arm64 keys decide."""
    assert kernel.dump.info.utsname is not None
    assert kernel.dump.info.utsname.machine == "Unknown"
    assert kernel.arch is ARM64
    assert arch_of_machine(EM_AARCH64) is ARM64 and arch_of_machine(62) is X86_64
    assert arch_of_machine(243) is None


def test_layout_from_vmcoreinfo(kernel: Kernel) -> None:
    layout = layout_of(kernel.vmcoreinfo)
    # the console: "Kernel Offset: 0x1282e1200000 from 0xffff800080000000", "PHYS_OFFSET:
    # 0x40000000"; QEMU's cpu max has LPA2, so the 52-bit kernel runs with 52 bits, 5 levels
    console = (DIR / manifest_of(DIR)["dmesg"]).read_text()
    assert f"Kernel Offset: {layout.kaslr_offset:#x} from 0xffff800080000000" in console
    assert f"PHYS_OFFSET: {layout.phys_offset:#x}" in console
    assert (layout.va_bits, layout.va_bits_actual, layout.levels) == (52, 52, 5)
    assert layout.page_offset == 0xFFF0000000000000
    assert kernel.kaslr_offset == layout.kaslr_offset


def test_page_tables_agree_with_kimage_voffset_and_the_linear_map(kernel: Kernel) -> None:
    """Walking swapper_pg_dir gives what __kimg_to_phys and __lm_to_phys compute."""
    layout = ARM64.layout(kernel)
    walker = kernel.pagetable
    for name in ("_stext", "init_task", "swapper_pg_dir", "__per_cpu_offset"):
        va = kernel.symbol(name)
        assert walker.walk(va) == (va - layout.kimage_voffset) % (1 << 64), name
    task = kernel.read_u64(kernel.symbol("init_task") + kernel.offsetof("task_struct",
                                                                        "tasks.next"))
    assert task >> 52 == 0xFFF  # a linear-map address
    assert walker.walk(task) == layout.lm_to_phys(task)
    assert walker.direct_map is not None  # verified, so used


def test_return_addresses_carry_a_pac_that_is_stripped(kernel: Kernel) -> None:
    """The panic CPU's first frame record holds a signed return address (QEMU's cpu max has
    pointer authentication): stripped by KERNELPACMASK it is __const_udelay's."""
    regs = ARM64.prstatus_registers(kernel.dump.notes)[1].registers
    _, lr = struct.unpack("<QQ", kernel.read(regs["x29"], 16))
    stripped = ARM64.layout(kernel).strip_pac(lr)
    assert lr != stripped and lr & ARM64.layout(kernel).pac_mask != \
        ARM64.layout(kernel).pac_mask
    hit = kernel.symbolize(stripped - 1)
    assert hit is not None and hit[0].name == "__const_udelay"


def test_prstatus_layout(kernel: Kernel) -> None:
    """x0-x30, sp, pc, pstate; the panic CPU (1) stopped in __delay at EL1h."""
    cpus = ARM64.prstatus_registers(kernel.dump.notes)
    assert len(cpus) == 2
    regs = cpus[1].registers
    assert list(regs)[:3] == ["x0", "x1", "x2"] and list(regs)[-3:] == ["sp", "pc", "pstate"]
    assert regs["pstate"] & 0xF == 0x5 and not ARM64.user_mode(regs)
    hit = kernel.symbolize(regs["pc"])
    assert hit is not None and hit[0].name == "__delay"


# -- sys, log, bt against drgn ------------------------------------------------------------------

@pytest.mark.parametrize("with_vmlinux", [True, False])
def test_sys_equals_drgn(dump: Path, vmlinux: Path, with_vmlinux: bool) -> None:
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    ours = fields(run(*args, "-c", "sys").out)
    ref = fields((DRGN / "sys.txt").read_text())
    for name in ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "NODENAME", "RELEASE", "VERSION",
                 "PANIC"):
        assert ours[name] == ref[name], name
    assert ours["MACHINE"] == ref["MACHINE"] + "  (unknown Mhz)"  # crash's (drgn omits it)
    # drgn: TASKS without the idle task of the offline CPU, MEMORY as totalram_pages
    assert (ours["TASKS"], ref["TASKS"]) == ("64", "63")
    assert (ours["MEMORY"], ref["MEMORY"]) == ("1 GB", "972.8M")


@pytest.mark.parametrize("with_vmlinux", [True, False])
def test_log_equals_drgn_and_the_console(dump: Path, vmlinux: Path, with_vmlinux: bool) -> None:
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    ours = run(*args, "-c", "log").out
    assert ours == (DRGN / "log.txt").read_text()
    console = (DIR / manifest_of(DIR)["dmesg"]).read_text()
    for line in ("Kernel panic - not syncing: sysrq triggered crash",
                 "Hardware name: linux,dummy-virt (DT)", "Call trace:"):
        assert line in ours and line in console


@pytest.mark.parametrize("with_vmlinux", [True, False])
def test_bt_of_the_panic_task_equals_drgn(dump: Path, vmlinux: Path, with_vmlinux: bool) -> None:
    args = (dump, vmlinux) if with_vmlinux else (dump,)
    out = run(*args, "-c", "bt").out
    assert out.startswith('PID: 1        TASK: fff00000025f1280  CPU: 1    COMMAND: "init"')
    ours = frames(out, ours=True)
    assert ours == frames((DRGN / "bt.txt").read_text())
    assert ours[0][0] == "__delay" and ours[-1][0] == "el0t_64_sync"
    # drgn's own unwinder (DWARF CFI) on the crashed thread: the same functions plus inlines
    names = [n for n, _ in ours]
    cfi = re.findall(r"^#\d+\s+([\w.]+)", (DRGN / "crashed-thread.txt").read_text(), re.M)
    assert [n for n in cfi if n in names] == names
    # the entry from user mode: the pt_regs under the final frame record, in user mode
    assert "PSTATE: 80001000" in out and "X29: 0000ffffdb0354e0" in out


def test_bt_a_crosses_the_irq_stack_where_drgn_stops(dump: Path, vmlinux: Path) -> None:
    """CPU 0 was stopped by panic's IPI while in user mode: its trace runs on the IRQ stack
    up to call_on_irq_stack, then on the task stack to el0t_64_irq. drgn's port loses the
    stack addresses after the switch (`[????????????????]`) but names the same frames."""
    ours = blocks(run(dump, vmlinux, "-c", "bt -a").out)
    ref = blocks((DRGN / "bt-a.txt").read_text())
    assert sorted(ours) == sorted(ref) == [0, 1]
    for cpu in (0, 1):
        assert frames(ours[cpu], ours=True) == frames(ref[cpu]), cpu
    assert "????" in ref[0] and "????" not in ours[0]
    assert "--- <IRQ stack> ---" in ours[0]
    lines = ours[0].splitlines()
    switch = lines.index("--- <IRQ stack> ---")
    assert "gic_handle_irq" in lines[switch - 1] and "call_on_irq_stack" in lines[switch + 1]


# -- a vmlinux of the other architecture --------------------------------------------------------

def test_arm64_dump_with_an_x86_64_vmlinux(dump: Path) -> None:
    x86 = vmlinux_of("6.12-sysrq")
    line = one_line_error(cli(dump, x86, "-c", "sys"))
    assert line.endswith(f"vmlinux is an x86-64 kernel image, but the dump {dump} is of an "
                         "arm64 kernel")


def test_x86_64_dump_with_an_arm64_vmlinux(vmlinux: Path) -> None:
    x86_dump = dump_of("6.12-sysrq")
    line = one_line_error(cli(x86_dump, vmlinux, "-c", "sys"))
    assert line.endswith(f"vmlinux is an aarch64 kernel image, but the dump {x86_dump} is of "
                         "an x86_64 kernel")


# -- ps, kmem -i, mod against drgn --------------------------------------------------------------

def test_ps_equals_drgn_but_the_offline_cpus_idle_task(dump: Path, vmlinux: Path) -> None:
    """Same tasks (PID, PPID, CPU, TASK, COMM) in the same order, except CPU 0's idle task:
    panic's IPI took CPU 0 offline (local_cpu_stop), and drgn's port lists idle tasks of
    online CPUs only (so its TASKS is 63, ours 64: test_sys_equals_drgn)."""
    def rows(text: str) -> list[tuple[str, ...]]:
        out = []
        for line in text.splitlines()[1:]:
            parts = line.lstrip(">").split()
            if len(parts) >= 9 and parts[0].isdigit():
                out.append((*parts[:4], " ".join(parts[8:])))
        return out

    ours = rows(run(dump, vmlinux, "-c", "ps").out)
    theirs = rows((DRGN / "ps.txt").read_text())
    assert ours[0][4] == "[swapper/0]" and ours[1:] == theirs
    assert len(theirs) == 63


def test_kmem_i_equals_drgn(dump: Path, vmlinux: Path) -> None:
    def pages(text: str) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^\s*([A-Z][A-Z ]+?)\s{2,}(\d+)\s", text, re.M)}

    ours, theirs = pages(run(dump, vmlinux, "-c", "kmem -i").out), \
        pages((DRGN / "kmem-i.txt").read_text())
    assert len(theirs) >= 10 and all(ours[k] == v for k, v in theirs.items()), (ours, theirs)


def test_mod_equals_drgn(dump: Path, vmlinux: Path) -> None:
    def rows(text: str) -> set[tuple[str, ...]]:
        return {tuple(line.split()[:4]) for line in text.splitlines()[1:] if line.strip()}

    theirs = rows((DRGN / "mod.txt").read_text())
    assert rows(run(dump, vmlinux, "-c", "mod").out) == theirs
    assert {r[1] for r in theirs} == {"virtio_blk", "qemu_fw_cfg"}


def test_bt_of_a_sleeping_task_starts_at_its_switch(dump: Path, vmlinux: Path) -> None:
    """A task that is not running: from thread.cpu_context (cpu_switch_to's pc), through
    __schedule, to where it slept; the trace ends at kthreadd, as crash's; its #0 is
    cpu_switch_to's return address shown as the `bl`."""
    out = run(dump, vmlinux, "-c", "bt 2").out
    names = [n for n, _, _ in arm64_bt.frames(out, active=False)]
    assert names[0] == "__switch_to" and "__schedule" in names[:3], out
    assert names[-1] == "kthreadd", out
    k = Kernel.open(dump, vmlinux)
    task = next(t for t in read_tasks(k).tasks if t.pid == 2)
    ctx_pc = k.read_u64(task.address + k.offsetof("task_struct", "thread.cpu_context.pc"))
    assert arm64_bt.frames(out, active=False)[0][1] == ARM64.layout(k).strip_pac(ctx_pc)


def test_dis_decodes_a64(dump: Path, vmlinux: Path) -> None:
    """`dis -l` of the arm64 kernel is A64 (capstone's ARM64 mode), not x86-64: the
    frame-record prologue signed with paciasp, and the call to panic named."""
    out = run(dump, vmlinux, "-c", "dis -l sysrq_handle_crash").out
    assert "\tpaciasp" in out and "\tstp\tx29, x30, [sp, #-16]!" in out, out
    call = next(line for line in out.splitlines() if "\tbl\t" in line)
    panic = cli(dump, vmlinux, "-c", "sym panic").out.split()[0]
    assert call.endswith(f"bl\t0x{panic} <panic>"), (call, panic)
    assert "drivers/tty/sysrq.c: 154" in out and "(bad)" not in out


def test_without_vmlinux_the_note_names_frame_pointers(dump: Path) -> None:
    """arm64 needs no unwind tables: the one-line note says what bt uses."""
    err = run(dump, "-c", "sys").err
    assert "using kallsyms in memory, BTF in memory, frame pointers;" in err, err
    assert "unwind tables" not in err
