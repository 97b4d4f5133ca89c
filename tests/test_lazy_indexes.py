"""Indexes the report no longer builds in full: the .debug_frame FDE index served from the
on-disk cache (only when the section proves it right), and BTF enumerators looked up by name.

Both must answer exactly as the full computation does, on real vmlinuxes; a cache entry that
is well formed but wrong (shifted, one FDE short, another CIE) must be a miss and rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crashtui.debuginfo import cache
from crashtui.debuginfo.btf import Btf
from crashtui.debuginfo.dwarf.cfi import CallFrameInfo
from crashtui.debuginfo.vmlinux import Vmlinux

SAMPLES = ("5.10-sysrq", "6.1-sysrq", "6.12-sysrq", "7.3-sysrq")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty cache root."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CRASHTUI_CACHE", str(root))
    yield root


def _frame(vmlinux: Path) -> tuple[memoryview, str]:
    vm = Vmlinux(vmlinux)
    buf, build_id = vm.lines.sections.frame, vm.build_id
    assert buf is not None and build_id is not None
    return buf, build_id


def _index(cfi: CallFrameInfo) -> tuple[list[int], ...]:
    return tuple([int(x) for x in a] for a in (cfi._starts, cfi._ends, cfi._cie_offs,
                                                cfi._ins_starts, cfi._ins_ends))


def _entry(build_id: str) -> Path:
    path = cache.entry_path(build_id, "debug-frame-index")
    assert path is not None
    return path


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("sample", SAMPLES)
def test_cfi_index_from_the_cache_is_the_walk(sample: str, vmlinux_for: dict[str, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    buf, build_id = _frame(vmlinux_for[sample])
    walked = CallFrameInfo(buf)
    assert len(walked) > 10_000
    CallFrameInfo(buf, build_id=build_id)  # writes the entry
    assert _entry(build_id).is_file()

    def walk(self: CallFrameInfo) -> None:
        raise AssertionError("the FDE index was rebuilt although a valid entry exists")

    monkeypatch.setattr(CallFrameInfo, "_index", walk)
    cached = CallFrameInfo(buf, build_id=build_id)
    assert _index(cached) == _index(walked)
    for pc in walked._starts[::997] + [walked._ends[5] - 1, walked._starts[0] - 1]:
        assert cached.row_at(pc) == walked.row_at(pc)


def _rewrite(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(path) as data:
        arrays = {k: data[k].copy() for k in data.files}
    change(arrays)
    with path.open("wb") as f:
        np.savez(f, **arrays)


STARTS, ENDS, CIES = 0, 1, 2  # rows of the entry's "fdes" array


def _shift(a: dict[str, np.ndarray]) -> None:
    a["fdes"][STARTS, 100:] += np.uint64(1)  # still sorted, every later FDE off by one


def _drop_one(a: dict[str, np.ndarray]) -> None:
    a["fdes"] = np.delete(a["fdes"], 7, axis=1)


def _other_cie(a: dict[str, np.ndarray]) -> None:
    a["fdes"][CIES, 3] = a["fdes"][CIES, 3000]


def _long_range(a: dict[str, np.ndarray]) -> None:
    a["fdes"][ENDS, 42] += np.uint64(0x1000)


def _one_row_short(a: dict[str, np.ndarray]) -> None:
    a["fdes"] = a["fdes"][:4].copy()


DAMAGE = {"shifted": _shift, "one-fde-short": _drop_one, "other-cie": _other_cie,
          "long-range": _long_range, "one-row-short": _one_row_short}


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_wrong_cfi_entry_is_a_miss(damage: str, vmlinux_path: Path) -> None:
    buf, build_id = _frame(vmlinux_path)
    want = _index(CallFrameInfo(buf, build_id=build_id))
    entry = _entry(build_id)
    good = entry.read_bytes()
    _rewrite(entry, DAMAGE[damage])
    assert _index(CallFrameInfo(buf, build_id=build_id)) == want
    assert entry.read_bytes() == good, "the entry was not rewritten from the walked index"


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("sample", SAMPLES)
def test_enumerator_by_name_is_the_full_decode(sample: str,
                                               vmlinux_for: dict[str, Path]) -> None:
    lazy = Vmlinux(vmlinux_for[sample]).btf
    full = Vmlinux(vmlinux_for[sample]).btf
    assert lazy is not None and full is not None
    every = full._all_enumerators()
    assert len(every) > 10_000
    assert "MM_SHMEMPAGES" in lazy.enumerators() and "NO_SUCH_ENUMERATOR" not in lazy.enumerators()
    assert lazy._enumerators is None, "a lookup decoded every enumerator"
    wrong = [k for k, v in every.items() if lazy.enumerator(k) != v]
    assert not wrong, f"{len(wrong)} enumerators differ, e.g. {wrong[:5]}"
    assert dict(lazy.enumerators()) == every


def _scanned_ids(btf: Btf, name: str) -> list[int]:
    """Type ids named `name` by scanning the string table for "name\\0" after a NUL."""
    if not name:
        return []  # anonymous types are not looked up by name
    name_offs, _ = btf._arrays()
    needle, s, ids = name.encode() + b"\0", btf._strings, []
    pos = s.find(needle)
    while pos >= 0:
        if pos == 0 or s[pos - 1] == 0:
            ids += [int(h) + btf.start_id for h in np.flatnonzero(name_offs == pos)]
        pos = s.find(needle, pos + 1)
    return sorted(ids)


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("sample", SAMPLES)
def test_ids_by_name_is_the_string_scan(sample: str, vmlinux_for: dict[str, Path]) -> None:
    btf = Vmlinux(vmlinux_for[sample]).btf
    assert btf is not None
    name_offs, _ = btf._arrays()
    names = sorted({btf.string(int(o)) for o in name_offs[::40]})
    names += ["task_struct", "list_head", "hlist_head", "ist_head", "rq", "page", "x",
              "no_such_type_anywhere", "a" * 20, "é"]  # suffixes of names, short, absent
    wrong = [n for n in names if btf.ids_by_name(n) != _scanned_ids(btf, n)]
    assert not wrong, f"{len(wrong)} names answered differently, e.g. {wrong[:5]}"
    assert btf.ids_by_name("task_struct") and not btf.ids_by_name("ist_head")


def _big_headers(vmlinux: Path, count: int) -> tuple[Any, list[Any], str]:
    """The .debug_line buffer, the headers of `count` units with big line programs, the
    build-id."""
    from crashtui.debuginfo.linetable import CACHED_PROGRAM_MIN

    vm = Vmlinux(vmlinux)
    lines, build_id = vm.lines, vm.build_id
    assert build_id is not None
    found = []
    for off in lines.reader.all_unit_offsets():
        h = lines._header(lines.reader.unit_at(off))
        if h is not None and h.program_end - h.program_start >= CACHED_PROGRAM_MIN:
            found.append(h)
            if len(found) == count:
                break
    assert len(found) == count
    return lines.sections.line, found, build_id


def _same_rows(a: Any, b: Any) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) and
               getattr(a, k).dtype == getattr(b, k).dtype for k in (
                   "address", "file", "line", "column", "flags", "seq_start_addr",
                   "seq_end_addr", "seq_first_row", "seq_last_row"))


@pytest.mark.needs_vmlinux
def test_line_rows_from_the_cache_are_the_decoded_rows(
        vmlinux_for: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.debuginfo import linetable

    buf, headers, build_id = _big_headers(vmlinux_for["5.10-sysrq"], 3)
    decoded = [linetable.decode_line_program(buf, h) for h in headers]
    for h in headers:
        linetable.decode_line_program_cached(buf, h, build_id)  # writes the entries

    def decode(*_: object) -> None:
        raise AssertionError("decoded again although a valid entry exists")

    monkeypatch.setattr(linetable, "_decode", decode)
    for h, want in zip(headers, decoded, strict=True):
        assert _same_rows(linetable.decode_line_program_cached(buf, h, build_id), want)


@pytest.mark.needs_vmlinux
def test_line_rows_entry_of_other_bytes_is_a_miss(vmlinux_for: dict[str, Path]) -> None:
    from crashtui.debuginfo import linetable

    buf, (h, other), build_id = _big_headers(vmlinux_for["5.10-sysrq"], 2)
    want = linetable.decode_line_program(buf, h)
    linetable.decode_line_program_cached(buf, other, build_id)
    # the other unit's rows filed under this unit's name: its fingerprint tells them apart
    src = cache.entry_path(build_id, f"line-rows-{other.offset:x}")
    dst = cache.entry_path(build_id, f"line-rows-{h.offset:x}")
    assert src is not None and dst is not None
    dst.write_bytes(src.read_bytes())
    assert _same_rows(linetable.decode_line_program_cached(buf, h, build_id), want)
    _rewrite(dst, lambda a: a.update(flags=a["flags"][:-1].copy()))  # one row short
    assert _same_rows(linetable.decode_line_program_cached(buf, h, build_id), want)


NAME_DAMAGE: dict[str, Callable[[dict[str, np.ndarray]], None]] = {
    "reversed-order": lambda a: a.update(order=a["order"][::-1].copy()),
    "shifted-keys": lambda a: a.update(keys=a["keys"] + np.uint64(1)),  # sorted, all wrong
    "one-short": lambda a: a.update(keys=a["keys"][:-1].copy(), order=a["order"][:-1].copy()),
    "duplicate-slot": lambda a: a["order"].__setitem__(1, a["order"][0]),
}


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("damage", sorted(NAME_DAMAGE))
def test_btf_name_keys_entry_is_checked(damage: str, vmlinux_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = Vmlinux(vmlinux_path).btf
    assert first is not None
    want = first._name_keys()  # built, and written to the cache
    assert first._build_id is not None
    entry = cache.entry_path(first._build_id, "btf-names")
    assert entry is not None and entry.is_file()
    good = entry.read_bytes()

    def build(self: Btf) -> None:
        raise AssertionError("the name keys were rebuilt although a valid entry exists")

    with monkeypatch.context() as m:
        m.setattr(Btf, "_build_name_keys", build)
        served = Vmlinux(vmlinux_path).btf
        assert served is not None
        assert all(np.array_equal(a, b) for a, b in zip(served._name_keys(), want, strict=True))
    _rewrite(entry, NAME_DAMAGE[damage])
    again = Vmlinux(vmlinux_path).btf
    assert again is not None
    assert all(np.array_equal(a, b) for a, b in zip(again._name_keys(), want, strict=True))
    assert again.ids_by_name("task_struct") == first.ids_by_name("task_struct")
    assert entry.read_bytes() == good, "the entry was not rewritten from the built keys"
