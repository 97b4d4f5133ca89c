"""The kdump-compressed reader on the committed real dumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashtui.dumpfile import DumpFile, ElfNote, UtsName, open_dump
from crashtui.errors import PageExcludedError, PageMissingError

RELEASE = "6.1.0-56-cloud-amd64"


@pytest.fixture(scope="module")
def sysrq(sysrq_dump: Path):
    with open_dump(sysrq_dump) as dump:
        yield dump


def _excluded_pfn(dump: DumpFile) -> int:
    """A RAM page that -d 31 filtered out (below 1 GiB, present in the 1st bitmap)."""
    for pfn in range(0x100, dump.info.max_pfn):
        if not dump.is_present(pfn):
            try:
                dump.read_phys(pfn * dump.info.page_size, 1)
            except PageExcludedError:
                return pfn
            except PageMissingError:
                continue
    raise AssertionError("no excluded page")


def test_info(sysrq: DumpFile) -> None:
    info = sysrq.info
    assert info.format == "kdump-compressed"
    assert info.signature == "KDUMP"
    assert info.compression == frozenset({"zlib"})
    assert info.dump_level == 31 and info.partial and not info.incomplete
    assert info.page_size == 4096 and info.nr_cpus == 4 and info.header_version == 6
    assert isinstance(info.utsname, UtsName)
    assert info.utsname.release == RELEASE and info.utsname.machine == "x86_64"
    assert info.timestamp is not None and info.timestamp > 1.6e9
    assert info.phys_base is not None and info.phys_base % 0x200000 == 0
    assert info.max_pfn == 262109


def test_vmcoreinfo_and_notes(sysrq: DumpFile) -> None:
    assert sysrq.vmcoreinfo is not None
    assert f"OSRELEASE={RELEASE}\n" in sysrq.vmcoreinfo
    prstatus = [n for n in sysrq.notes if n.type == 1 and n.name == "CORE"]
    assert len(prstatus) == 4 and all(len(n.desc) == 336 for n in prstatus)
    assert all(isinstance(n, ElfNote) for n in sysrq.notes)


def test_read_phys(sysrq: DumpFile) -> None:
    ps = sysrq.info.page_size
    present = [pfn for pfn in range(0x1000) if sysrq.is_present(pfn)]
    assert len(present) > 100
    a, b = next((p, p + 1) for p in present if sysrq.is_present(p + 1))
    both = sysrq.read_phys(a * ps + ps - 8, 16)
    assert both == sysrq.read_phys(a * ps, ps)[-8:] + sysrq.read_phys(b * ps, 8)
    assert sysrq.read_phys(a * ps, 0) == b""


def test_excluded_and_missing(sysrq: DumpFile) -> None:
    pfn = _excluded_pfn(sysrq)
    with pytest.raises(PageExcludedError, match="excluded from the dump") as exc:
        sysrq.read_phys(pfn * 4096 + 8, 8)
    assert exc.value.paddr == pfn * 4096 + 8
    with pytest.raises(PageMissingError, match="not in the dump"):
        sysrq.read_phys(sysrq.info.max_pfn * 4096, 8)


def test_testmodule_dump(testmod_dump: Path) -> None:
    with open_dump(testmod_dump) as dump:
        assert dump.info.utsname is not None and dump.info.utsname.release == RELEASE
        assert dump.vmcoreinfo and f"OSRELEASE={RELEASE}" in dump.vmcoreinfo
        assert sum(n.type == 1 for n in dump.notes) == 4


@pytest.fixture(scope="module")
def sysrq_elf(sysrq_elf_vmcore: Path):
    with open_dump(sysrq_elf_vmcore) as dump:
        yield dump


def test_elf_info(sysrq_elf: DumpFile, sysrq: DumpFile) -> None:
    info = sysrq_elf.info
    assert (info.format, info.signature, info.compression) == ("elf", "ELF", frozenset())
    assert info.utsname is None and info.timestamp is None and info.dump_level is None
    assert info.partial and info.nr_cpus == 4 and info.page_size == 4096
    assert info.max_pfn == sysrq.info.max_pfn
    assert sysrq_elf.vmcoreinfo == sysrq.vmcoreinfo
    assert f"OSRELEASE={RELEASE}\n" in (sysrq_elf.vmcoreinfo or "")
    assert sum(n.type == 1 for n in sysrq_elf.notes) == 4
    assert sysrq_elf.notes == sysrq.notes


def test_elf_pages_match_kdump(sysrq_elf: DumpFile, sysrq: DumpFile) -> None:
    """The same crash via makedumpfile -E: every page both hold is byte-identical."""
    ps = 4096
    both = [p for p in range(sysrq.info.max_pfn) if sysrq.is_present(p) and sysrq_elf.is_present(p)]
    assert len(both) > 20000
    for pfn in both[::25]:
        assert sysrq_elf.read_phys(pfn * ps, ps) == sysrq.read_phys(pfn * ps, ps), hex(pfn)
    held = set(both)
    pfn = next(p for p in both if p + 1 in held)
    assert sysrq_elf.read_phys(pfn * ps + 100, ps) == sysrq.read_phys(pfn * ps + 100, ps)


def test_elf_excluded_and_missing(sysrq_elf: DumpFile) -> None:
    # makedumpfile -E split this PT_LOAD: [0x100000, 0x1000000) is in p_memsz, not p_filesz
    with pytest.raises(PageExcludedError) as exc:
        sysrq_elf.read_phys(0x100000 + 0x10, 8)
    assert exc.value.paddr == 0x100010
    last = 0x9e000  # PT_LOAD 0x1000: p_filesz 0x9e000, p_memsz 0x9ec00
    assert sysrq_elf.is_present(last >> 12) and not sysrq_elf.is_present((last >> 12) + 1)
    with pytest.raises(PageExcludedError) as exc:
        sysrq_elf.read_phys(last + 0x800, 0x1000)
    assert exc.value.paddr == last + 0x1000
    with pytest.raises(PageMissingError):
        sysrq_elf.read_phys(sysrq_elf.info.max_pfn * 4096, 8)
    with pytest.raises(PageMissingError):
        sysrq_elf.read_phys(0, 8)  # page 0 is in no PT_LOAD


def test_main_prints_info(sysrq_dump: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from crashtui.dumpfile.__main__ import main

    assert main([str(sysrq_dump), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "format          kdump-compressed" in out and "compression     zlib" in out
    assert f"OSRELEASE={RELEASE}" in out and "CORE/1 x4" in out
    assert main([str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
