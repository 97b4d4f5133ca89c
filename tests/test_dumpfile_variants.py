"""The same real crash written by the real tools in every format and codec reads the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dumpfile_fixtures import (
    ToolUnavailable,
    ensure_makedumpfile,
    ensure_trixie_makedumpfile,
    makedumpfile_features,
    makedumpfile_variant,
    makedumpfile_version,
    qemu_guest_dumps,
)

from crashtui.dumpfile import DumpFile, open_dump
from crashtui.errors import DumpCorruptError, PageExcludedError, PageMissingError

# name: (makedumpfile build, options, flattened, expected format, expected codecs)
VARIANTS = {
    "lzo": ("bookworm", ["-l", "-d", "31"], False, "kdump-compressed", {"lzo"}),
    "raw": ("bookworm", ["-d", "31"], False, "kdump-compressed", set()),
    "flattened-zlib": ("bookworm", ["-F", "-c", "-d", "31"], True, "flattened", {"zlib"}),
    "flattened-lzo": ("bookworm", ["-F", "-l", "-d", "31"], True, "flattened", {"lzo"}),
    "zstd": ("trixie", ["-z", "-d", "31"], False, "kdump-compressed", {"zstd"}),
    "flattened-zstd": ("trixie", ["-F", "-z", "-d", "31"], True, "flattened", {"zstd"}),
    "snappy": ("snappy", ["-p", "-d", "31"], False, "kdump-compressed", {"snappy"}),
}


def _tool(build: str) -> Path:
    """The makedumpfile of a Debian suite, or ("snappy") any of them built with snappy."""
    if build != "snappy":
        try:
            return ensure_makedumpfile() if build == "bookworm" else ensure_trixie_makedumpfile()
        except ToolUnavailable as exc:
            pytest.skip(str(exc))
    reasons = []
    for find in (ensure_makedumpfile, ensure_trixie_makedumpfile):
        try:
            tool = find()
        except ToolUnavailable as exc:
            reasons.append(str(exc))
            continue
        if "snappy" in makedumpfile_features(tool):
            return tool
        reasons.append(f"makedumpfile {makedumpfile_version(tool)} is built without snappy")
    pytest.skip("; ".join(reasons) + " (snappy pages are covered by test_dumpfile_codecs)")


@pytest.fixture(scope="module")
def reference(sysrq_dump: Path) -> Iterator[DumpFile]:
    with open_dump(sysrq_dump) as dump:
        yield dump


@pytest.fixture(scope="module")
def present(reference: DumpFile) -> list[int]:
    return [pfn for pfn in range(reference.info.max_pfn) if reference.is_present(pfn)]


@pytest.fixture(scope="module")
def sample(present: list[int]) -> list[int]:
    """About 400 dumped pfns spread over the whole dump."""
    return present[:: max(1, len(present) // 400)]


@pytest.fixture(scope="module")
def excluded(reference: DumpFile) -> int:
    """A RAM page that -d 31 filtered out of the reference dump."""
    for pfn in range(0x1000, reference.info.max_pfn):
        if not reference.is_present(pfn):
            try:
                reference.read_phys(pfn * reference.info.page_size, 1)
            except PageExcludedError:
                return pfn
            except PageMissingError:
                continue
    raise AssertionError("no excluded page in the reference dump")


def _variant(name: str, sysrq_dump: Path) -> Path:
    build, options, flattened, _fmt, _codecs = VARIANTS[name]
    return makedumpfile_variant(_tool(build), sysrq_dump, options, flattened=flattened)[0]


def assert_same_crash(ref: DumpFile, other: DumpFile, present: list[int],
                      sample: list[int]) -> None:
    """Same VMCOREINFO, notes, dumped-page set and page bytes as the reference dump."""
    assert other.vmcoreinfo == ref.vmcoreinfo
    assert other.notes == ref.notes
    assert [pfn for pfn in range(other.info.max_pfn) if other.is_present(pfn)] == present
    ps = ref.info.page_size
    for pfn in sample:
        assert other.read_phys(pfn * ps, ps) == ref.read_phys(pfn * ps, ps), hex(pfn)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_reads_like_the_original(name: str, sysrq_dump: Path, reference: DumpFile,
                                         present: list[int], sample: list[int],
                                         excluded: int) -> None:
    path = _variant(name, sysrq_dump)
    _build, _opts, _flat, fmt, codecs = VARIANTS[name]
    with open_dump(path) as dump:
        assert dump.info.format == fmt
        assert dump.info.compression == frozenset(codecs)
        assert dump.info.utsname == reference.info.utsname
        assert (dump.info.dump_level, dump.info.nr_cpus, dump.info.phys_base) == (
            31, 4, reference.info.phys_base)
        assert dump.info.partial and not dump.info.incomplete
        assert_same_crash(reference, dump, present, sample)
        with pytest.raises(PageExcludedError):
            dump.read_phys(excluded * 4096, 8)
        with pytest.raises(PageMissingError):
            dump.read_phys(reference.info.max_pfn * 4096, 8)


def test_split_dump(sysrq_dump: Path, reference: DumpFile, present: list[int],
                    sample: list[int]) -> None:
    """`makedumpfile --split`: each part holds a pfn range; the others say "not in the dump"."""
    parts = makedumpfile_variant(_tool("bookworm"), sysrq_dump,
                                 ["--split", "--splitblock-size", "16", "-c", "-d", "31"],
                                 parts=2)
    dumps = [open_dump(p) for p in parts]
    try:
        assert all(d.vmcoreinfo == reference.vmcoreinfo for d in dumps)
        covered = [sum(d.is_present(p) for d in dumps) for p in present]
        assert set(covered) == {1}
        ps = reference.info.page_size
        for pfn in sample:
            holder, other = dumps if dumps[0].is_present(pfn) else dumps[::-1]
            assert holder.read_phys(pfn * ps, ps) == reference.read_phys(pfn * ps, ps)
            with pytest.raises(PageMissingError):
                other.read_phys(pfn * ps, 8)
    finally:
        for d in dumps:
            d.close()


@pytest.mark.parametrize("name,offset", [("lzo", 7), ("zstd", 4)])
def test_damaged_page_of_each_codec(name: str, offset: int, sysrq_dump: Path,
                                    reference: DumpFile, present: list[int],
                                    tmp_path: Path) -> None:
    """A compressed page whose bytes are damaged raises DumpCorruptError naming the codec."""
    src = _variant(name, sysrq_dump)
    data = bytearray(src.read_bytes())
    with open_dump(src) as dump:
        target = None
        for pfn in present[100:]:
            desc = dump._descriptor(pfn)  # type: ignore[attr-defined]
            if desc.flags and desc.size > 64:
                target = pfn, desc
                break
        assert target is not None
    pfn, desc = target
    data[desc.offset + offset: desc.offset + desc.size] = b"\xff" * (desc.size - offset)
    bad = tmp_path / "bad"
    bad.write_bytes(data)
    with open_dump(bad) as dump, pytest.raises(DumpCorruptError, match=name):
        dump.read_phys(pfn * 4096, 8)


def test_qemu_dump_guest_memory() -> None:
    """QEMU's own writer: its ELF and its (flattened) kdump-zlib dumps of one guest agree."""
    try:
        dumps = qemu_guest_dumps()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))
    with open_dump(dumps["elf"]) as elf, open_dump(dumps["kdump-zlib"]) as kd:
        assert elf.info.format == "elf" and kd.info.format == "flattened"
        assert kd.info.compression <= {"zlib"} and kd.info.timestamp is None
        assert kd.info.utsname is not None and kd.info.utsname.machine == "x86_64"
        assert elf.notes == kd.notes
        assert sum(n.type == 1 for n in elf.notes) == 1 and elf.info.nr_cpus == 1
        assert elf.vmcoreinfo is None and kd.vmcoreinfo is None
        assert not elf.info.partial
        pfns = [p for p in range(kd.info.max_pfn) if kd.is_present(p)]
        assert pfns == [p for p in range(elf.info.max_pfn) if elf.is_present(p)]
        nonzero = 0
        for pfn in pfns:
            page = kd.read_phys(pfn * 4096, 4096)
            assert page == elf.read_phys(pfn * 4096, 4096)
            nonzero += page != bytes(4096)
        assert nonzero > 10  # the firmware wrote something
        with pytest.raises(PageMissingError):
            elf.read_phys(64 << 20, 8)
        with pytest.raises(PageMissingError):
            kd.read_phys(64 << 20, 8)
