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
