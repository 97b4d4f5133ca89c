"""kmem -i against crash 8.0.6's output on the real dumps, and on damaged memory.

crash 8.0.6 always prints SHARED; crash 9 only for `kmem -i=shared` (it reads every struct
page). crashtui follows crash 9: `kmem -i=shared` is crash 8.0.6's table, `kmem -i` the same
without the SHARED line, and without the scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, dump_of

from crashtui.analysis.session import Session
from crashtui.commands.kmem import kmem_lines
from crashtui.errors import KernelReadError, PageExcludedError

DUMPS = ["6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module", "5.10-sysrq",
         "6.1-bug-kthread", "6.1-softlockup", "6.1-hung-task"]
ROWS = ["TOTAL MEM", "FREE", "USED", "SHARED", "BUFFERS", "CACHED", "SLAB", "TOTAL HUGE",
        "HUGE FREE", "TOTAL SWAP", "SWAP USED", "SWAP FREE", "COMMIT LIMIT", "COMMITTED"]



def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


def crash_pages(name: str) -> dict[str, int]:
    """PAGES of every row of crash's kmem-i.txt."""
    out = {}
    for line in (SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines()[1:]:
        if line.strip():
            label = line[:13].strip()
            out[label] = int(line[13:].split()[0])
    return out


def without(lines: list[str], *labels: str) -> list[str]:
    """`lines` less the rows named `labels`."""
    return [line for line in lines if line[:13].strip() not in labels]


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_i_text_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    """Every line as crash prints it but COMMITTED, where crash is wrong (next test):
    `kmem -i=shared` as crash 8.0.6's `kmem -i`, `kmem -i` as crash 9's (no SHARED)."""
    r = crashtui(str(dump_of(name)), str(vmlinux_for[name]), "-c", "kmem -i=shared",
                 "-c", "kmem -i")
    assert r.returncode == 0, r.stderr
    crash = (SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines()
    ours = r.stdout.splitlines()
    assert len(ours) == 2 * len(crash) - 1
    with_shared, plain = ours[:len(crash)], ours[len(crash):]
    assert without(with_shared, "COMMITTED") == without(crash, "COMMITTED")
    assert without(plain, "COMMITTED") == without(crash, "COMMITTED", "SHARED")


def test_kmem_i_reads_no_struct_page(vmlinux_for: dict[str, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`kmem -i` without =shared never scans the mem_map: flat in the machine's RAM."""
    from crashtui.kernel import mm

    def scan(self: object) -> tuple[int, int]:
        raise AssertionError("kmem -i scanned the mem_map")

    monkeypatch.setattr(mm._Kmem, "shared_pages", scan)
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_for["6.1-sysrq"])
    assert session.kmem.row("SHARED") is None and session.kmem.errors == []
    with pytest.raises(AssertionError, match="scanned"):
        _ = session.kmem_shared


@pytest.mark.parametrize("name", DUMPS + ["5.10-softlockup", "6.1-deadlock", "6.1-oom",
                                  "6.12-softlockup"])
def test_committed_is_what_meminfo_says(name: str, vmlinux_for: dict[str, Path]) -> None:
    """COMMITTED is /proc/meminfo's Committed_AS: vm_memory_committed() (mm/util.c) =
    percpu_counter_sum_positive(&vm_committed_as), the central count plus each online CPU's
    delta. crash 8.0.6 prints the central count alone (64 pages on 6.1-sysrq for 8273 in
    use; drgn's kmem -i agrees with the sum on every 7.3 dump, sample-dumps/7.3-*/drgn/)."""
    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    counter = k.symbol("vm_committed_as")
    central = k.read_s64(counter + k.offsetof("percpu_counter", "count"))
    deltas = k.read_u64(counter + k.offsetof("percpu_counter", "counters"))
    total = central + sum(k.read_s32(deltas + k.per_cpu_offsets[cpu])
                          for cpu in k.cpumask("__cpu_online_mask"))
    row = session.kmem.row("COMMITTED")
    assert row is not None and row.pages == max(total, 0)
    assert crash_pages(name)["COMMITTED"] == max(central, 0) != row.pages


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_rows_json(name: str, vmlinux_for: dict[str, Path]) -> None:
    from crashtui.commands.kmem import kmem_rows

    session = Session.open(dump_of(name), vmlinux_for[name])
    rows = kmem_rows(session)
    assert list(rows) == [r for r in ROWS if r != "SHARED"]  # crash 9's default rows
    theirs = crash_pages(name)
    for label, row in rows.items():
        if label != "COMMITTED":  # crash is wrong there (test_committed_is_what_meminfo_says)
            assert row["pages"] == theirs[label], label
        assert row["bytes"] == row["pages"] * 4096
    assert rows["TOTAL MEM"]["percent"] is None
    assert rows["FREE"]["percent"] == theirs["FREE"] * 100 // theirs["TOTAL MEM"]
    assert session.kmem.errors == []


def test_kmem_survives_unreadable_mem_map(vmlinux_for: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """vmemmap pages missing from the dump: SHARED is what could be read, never a crash."""
    name = "6.1-sysrq"
    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    real = k.read

    def read(addr: int, size: int) -> bytes:
        if 0xFFFFEA0000000000 <= addr < 0xFFFFFC0000000000:  # vmemmap (any KASLR base)
            raise KernelReadError(f"page at {addr:#x} excluded", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    # the mem_map scan reads by large pages straight from the dump: the frames vmemmap maps
    # are excluded there too
    vmemmap_frames: list[tuple[int, int]] = []
    real_run = k.pagetable.translate_run
    real_phys = k.dump.read_phys

    def translate_run(addr: int) -> tuple[int, int]:
        paddr, run = real_run(addr)
        if 0xFFFFEA0000000000 <= addr < 0xFFFFFC0000000000:
            vmemmap_frames.append((paddr, paddr + run))
        return paddr, run

    def read_phys(paddr: int, size: int) -> bytes:
        if any(lo <= paddr < hi for lo, hi in vmemmap_frames):
            raise PageExcludedError(paddr, k.dump.path)
        return real_phys(paddr, size)

    real_pages = k.dump.read_pages

    def read_pages(pfn: int, count: int) -> bytes:
        ps = k.dump.info.page_size
        return b"".join(bytes(ps) if any(lo <= p * ps < hi for lo, hi in vmemmap_frames)
                        else real_pages(p, 1) for p in range(pfn, pfn + count))

    monkeypatch.setattr(k.pagetable, "translate_run", translate_run)
    monkeypatch.setattr(k.dump, "read_phys", read_phys)
    monkeypatch.setattr(k.dump, "read_pages", read_pages)
    info = session.kmem_shared
    lines = kmem_lines(info)
    assert len(lines) == len((SAMPLES / name / "crash" / "kmem-i.txt").read_text().splitlines())
    assert info.row("SHARED").pages == 0  # type: ignore[union-attr]
    assert info.row("FREE").pages == crash_pages(name)["FREE"]  # type: ignore[union-attr]


def test_kmem_reports_what_it_cannot_read(vmlinux_for: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter that cannot be read is 0 with a `kmem:` line saying why."""
    name = "6.1-test-module"
    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    real = k.read
    committed = k.symbol("vm_committed_as")

    def read(addr: int, size: int) -> bytes:
        if committed <= addr < committed + 64:
            raise KernelReadError(f"cannot read {addr:#x}", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    from crashtui.commands import run_command

    out = run_command(session, "kmem -i")
    assert out[-1].startswith("kmem: COMMIT LIMIT:")
    assert "COMMITTED" not in "\n".join(out[:-1])


def test_kmem_needs_i() -> None:
    from crashtui.commands import CommandError, run_command

    with pytest.raises(CommandError):
        run_command(None, "kmem -Q")  # type: ignore[arg-type]
