"""The on-disk cache (crashtui.debuginfo.cache): stale or corrupt entries are detected and rebuilt.

A cache may only ever cost time, never give a wrong answer: every way an entry can be out of
date (another fingerprint, another format version) or damaged (truncated, garbage, bit flips,
missing or misshapen arrays, a pickle smuggled in, a directory in its place) must read as a
miss, drop the bad file, and let the next save write a good one. End to end, each index
the cache holds (the DWARF unit index of DWARF without .debug_aranges, the vmlinux's symbol
names and BTF types) answers the same after each kind of damage and is rewritten valid.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crashtui.debuginfo import cache
from crashtui.debuginfo.dwarf import DwarfLines, DwarfSections, SourceLine
from crashtui.debuginfo.vmlinux import Vmlinux

BUILD_ID = "cd" * 20
NAME = "guard"
FINGERPRINT = (11, 22, 33)
KEYS = ("starts", "units")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty cache root."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CRASHTUI_CACHE", str(root))
    yield root


def _arrays() -> dict[str, np.ndarray]:
    return {"starts": np.arange(0, 4000, 16, dtype=np.uint64),
            "units": np.arange(250, dtype=np.uint64) * 7}


def _entry() -> Path:
    path = cache.entry_path(BUILD_ID, NAME)
    assert path is not None
    return path


def _save() -> Path:
    assert cache.save_arrays(BUILD_ID, NAME, FINGERPRINT, _arrays())
    return _entry()


def _assert_rebuilds(path: Path) -> None:
    """A damaged or stale entry is a miss, is removed, and a fresh save is served again."""
    assert cache.load_arrays(BUILD_ID, NAME, FINGERPRINT, KEYS) is None
    assert not path.exists(), "the bad entry was left behind"
    _save()
    got = cache.load_arrays(BUILD_ID, NAME, FINGERPRINT, KEYS)
    assert got is not None
    for key, want in _arrays().items():
        np.testing.assert_array_equal(got[key], want)


def test_round_trip_is_atomic_and_per_build_id(cache_dir: Path) -> None:
    path = _save()
    assert path == cache_dir / BUILD_ID / f"{NAME}.npz"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left
    got = cache.load_arrays(BUILD_ID, NAME, FINGERPRINT, KEYS)
    assert got is not None and set(got) == set(KEYS)
    np.testing.assert_array_equal(got["units"], _arrays()["units"])
    assert cache.load_arrays("ef" * 20, NAME, FINGERPRINT, KEYS) is None  # another build
    assert cache.load_arrays(None, NAME, FINGERPRINT, KEYS) is None
    assert not cache.save_arrays(None, NAME, FINGERPRINT, _arrays())


def test_stale_fingerprint_is_rebuilt() -> None:
    path = _save()
    assert cache.load_arrays(BUILD_ID, NAME, (11, 22, 34), KEYS) is None
    assert not path.exists()
    _assert_rebuilds(path)


def test_shorter_or_longer_fingerprint_is_stale() -> None:
    path = _save()
    assert cache.load_arrays(BUILD_ID, NAME, FINGERPRINT[:2], KEYS) is None
    assert not path.exists()
    _save()
    assert cache.load_arrays(BUILD_ID, NAME, (*FINGERPRINT, 0), KEYS) is None
    assert not path.exists()


def test_older_format_version_is_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save()
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    _assert_rebuilds(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not a zip at all" * 10)


def _flip_in(member: str) -> Callable[[Path], None]:
    """Damage: flip one byte inside a stored array (zip's CRC-32 must catch it)."""
    def flip(path: Path) -> None:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(member)
        data = bytearray(path.read_bytes())
        # local header: 30 bytes + name + extra, then the .npy (its header, then the data)
        at = info.header_offset
        name_len = int.from_bytes(data[at + 26:at + 28], "little")
        extra_len = int.from_bytes(data[at + 28:at + 30], "little")
        data[at + 30 + name_len + extra_len + info.file_size - 3] ^= 0x40
        path.write_bytes(bytes(data))
    return flip


_flip_array_byte = _flip_in("units.npy")


def _no_meta(path: Path) -> None:
    with path.open("wb") as f:
        np.savez(f, **_arrays())  # type: ignore[arg-type]


def _missing_key(path: Path) -> None:
    meta = np.array([cache.FORMAT_VERSION, *FINGERPRINT], dtype=np.uint64)
    with path.open("wb") as f:
        np.savez(f, meta=meta, starts=_arrays()["starts"])


def _meta_wrong_shape(path: Path) -> None:
    meta = np.array([[cache.FORMAT_VERSION, *FINGERPRINT]], dtype=np.uint64)
    with path.open("wb") as f:
        np.savez(f, meta=meta, **_arrays())  # type: ignore[arg-type]


def _pickled_objects(path: Path) -> None:
    """A well-formed npz whose arrays are pickled Python objects: never unpickled."""
    meta = np.array([cache.FORMAT_VERSION, *FINGERPRINT], dtype=np.uint64)
    objs = np.array([{"evil": 1}, None], dtype=object)
    with path.open("wb") as f:
        np.savez(f, meta=meta, starts=objs, units=objs)


def _not_npy_inside(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.npy", b"\x93NUMPY garbage header")
        z.writestr("starts.npy", b"")
        z.writestr("units.npy", b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "garbage": _garbage,
    "bit-flip": _flip_array_byte,
    "no-meta": _no_meta,
    "missing-key": _missing_key,
    "meta-wrong-shape": _meta_wrong_shape,
    "pickled-objects": _pickled_objects,
    "bad-npy-inside": _not_npy_inside,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_corrupt_entry_is_detected_and_rebuilt(damage: str) -> None:
    path = _save()
    DAMAGE[damage](path)
    _assert_rebuilds(path)


def test_directory_in_place_of_the_entry_is_a_miss(cache_dir: Path) -> None:
    path = _entry()
    path.mkdir(parents=True)
    assert cache.load_arrays(BUILD_ID, NAME, FINGERPRINT, KEYS) is None
    assert not cache.save_arrays(BUILD_ID, NAME, FINGERPRINT, _arrays())  # no exception
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # its temp file removed


def test_unusable_cache_root_never_raises(cache_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    blocker = cache_dir.parent / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CRASHTUI_CACHE", str(blocker))
    assert not cache.save_arrays(BUILD_ID, NAME, FINGERPRINT, _arrays())
    assert cache.load_arrays(BUILD_ID, NAME, FINGERPRINT, KEYS) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_read_only_cache_root_never_raises(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    cache_dir.chmod(0o500)
    try:
        assert not cache.save_arrays(BUILD_ID, NAME, FINGERPRINT, _arrays())
    finally:
        cache_dir.chmod(0o700)


def test_off_and_odd_names_write_nothing(cache_dir: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    for bad_id, bad_name in (("../../etc", NAME), (BUILD_ID, "../x"), (BUILD_ID, "a/b"),
                             ("", NAME), ("XYZ" * 8, NAME)):
        assert cache.entry_path(bad_id, bad_name) is None
        assert not cache.save_arrays(bad_id, bad_name, FINGERPRINT, _arrays())
    monkeypatch.setenv("CRASHTUI_CACHE", "off")
    assert not cache.save_arrays(BUILD_ID, NAME, FINGERPRINT, _arrays())
    assert not cache_dir.exists()


# --- end to end: the DWARF unit index of a module without .debug_aranges -------------------

@pytest.fixture(scope="module")
def ko_sections(testmod_ko: Path) -> tuple[DwarfSections, int]:
    """The test module's DWARF sections with .debug_aranges dropped, and an address in it."""
    from crashtui.debuginfo.kmodule import KernelModuleFile

    ko = KernelModuleFile(testmod_ko)
    secs = replace(ko._relocated(ko._private_bases), aranges=None)
    return secs, ko._private_address(".init.text", 5)


def _lines(secs: DwarfSections) -> DwarfLines:
    return DwarfLines.from_sections(secs, build_id=BUILD_ID)


def _dwarf_entry() -> Path:
    path = cache.entry_path(BUILD_ID, "dwarf-units")
    assert path is not None
    return path


def _good_answer(ko_sections: tuple[DwarfSections, int]) -> tuple[SourceLine, bytes]:
    secs, addr = ko_sections
    want = _lines(secs).source_line(addr)
    assert want is not None and want.line == 9
    entry = _dwarf_entry()
    assert entry.is_file()
    return want, entry.read_bytes()


def _rewrite(path: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Rewrite a valid entry with `change` applied to its arrays (meta kept unless changed)."""
    with np.load(path) as data:
        arrays = {k: data[k].copy() for k in data.files}
    change(arrays)
    with path.open("wb") as f:
        np.savez(f, **arrays)


def _stale(path: Path) -> None:
    def bump(a: dict[str, np.ndarray]) -> None:
        a["meta"][1] += 1  # as if .debug_info had another size
    _rewrite(path, bump)


def _unsorted(path: Path) -> None:
    def reverse(a: dict[str, np.ndarray]) -> None:
        assert len(a["starts"]) > 1
        a["starts"] = a["starts"][::-1].copy()
    _rewrite(path, reverse)


def _ragged(path: Path) -> None:
    def grow(a: dict[str, np.ndarray]) -> None:
        a["units"] = np.append(a["units"], np.uint64(12345))
    _rewrite(path, grow)


def _dropped_key(path: Path) -> None:
    def drop(a: dict[str, np.ndarray]) -> None:
        del a["units"]
    _rewrite(path, drop)


def _emptied(path: Path) -> None:
    def empty(a: dict[str, np.ndarray]) -> None:
        for key in ("starts", "ends", "units"):
            a[key] = a[key][:0]
    _rewrite(path, empty)


END_TO_END: dict[str, Callable[[Path], None]] = {
    "stale": _stale, "truncated": _truncate, "garbage": _garbage, "bit-flip": _flip_array_byte,
    "unsorted": _unsorted, "ragged": _ragged, "dropped-key": _dropped_key, "emptied": _emptied,
}


@pytest.mark.parametrize("damage", sorted(END_TO_END))
def test_dwarf_index_survives_a_bad_entry(ko_sections: tuple[DwarfSections, int], damage: str
                                          ) -> None:
    want, good = _good_answer(ko_sections)
    entry = _dwarf_entry()
    END_TO_END[damage](entry)
    secs, addr = ko_sections
    assert _lines(secs).source_line(addr) == want
    assert entry.read_bytes() == good, "the entry was not rewritten from the rebuilt index"


def test_dwarf_index_is_served_from_the_cache(ko_sections: tuple[DwarfSections, int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    want, good = _good_answer(ko_sections)
    secs, addr = ko_sections
    again = _lines(secs)

    def rebuilt() -> None:
        raise AssertionError("the unit index was rebuilt although a valid entry exists")

    monkeypatch.setattr(again, "_index_from_units", rebuilt)
    assert again.source_line(addr) == want
    assert _dwarf_entry().read_bytes() == good


# --- end to end: the vmlinux's symbol-name index and BTF type index ------------------------

def _vmlinux(path: Path) -> Vmlinux:
    return Vmlinux(path)


def _vm_entry(vmlinux_path: Path, name: str) -> Path:
    from crashtui.debuginfo.elf import ElfImage

    build_id = ElfImage(vmlinux_path).build_id
    assert build_id is not None
    path = cache.entry_path(build_id, name)
    assert path is not None
    return path


def _reverse_order(path: Path) -> None:
    def rev(a: dict[str, np.ndarray]) -> None:
        a["order"] = a["order"][::-1].copy()  # still a permutation, every slot wrong
    _rewrite(path, rev)


def _unsorted_hashes(path: Path) -> None:
    def swap(a: dict[str, np.ndarray]) -> None:
        a["hashes"][[0, -1]] = a["hashes"][[-1, 0]]
    _rewrite(path, swap)


def _duplicate_slot(path: Path) -> None:
    def dup(a: dict[str, np.ndarray]) -> None:
        a["order"][1] = a["order"][0]  # not a permutation any more
    _rewrite(path, dup)


def _stale_symbols(path: Path) -> None:
    def bump(a: dict[str, np.ndarray]) -> None:
        a["meta"][2] ^= 1  # the string table's CRC
    _rewrite(path, bump)


SYMBOL_DAMAGE: dict[str, Callable[[Path], None]] = {
    "stale": _stale_symbols, "truncated": _truncate, "bit-flip-order": _flip_in("order.npy"),
    "reversed-order": _reverse_order, "unsorted": _unsorted_hashes,
    "duplicate-slot": _duplicate_slot,
}
PROBES = ("linux_banner", "init_task", "__per_cpu_offset", "sysrq_handle_crash", "jiffies_64",
          "no_such_symbol_at_all")




@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("damage", sorted(SYMBOL_DAMAGE))
def test_symbol_index_survives_a_bad_entry(vmlinux_path: Path, damage: str) -> None:
    first = _vmlinux(vmlinux_path).symbols
    want = {name: first.address_of(name) for name in PROBES}
    assert want["linux_banner"] is not None and want["no_such_symbol_at_all"] is None
    entry = _vm_entry(vmlinux_path, "symbol-names")
    good = entry.read_bytes()
    SYMBOL_DAMAGE[damage](entry)
    again = _vmlinux(vmlinux_path).symbols
    assert {name: again.address_of(name) for name in PROBES} == want
    assert entry.read_bytes() == good, "the entry was not rewritten from the rebuilt index"


@pytest.mark.needs_vmlinux
def test_symbol_index_from_the_cache_answers_like_the_name_dict(
        vmlinux_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.debuginfo.symbols import _StrtabNames

    _vmlinux(vmlinux_path).symbols.address_of("linux_banner")

    def rebuilt(self: object) -> None:
        raise AssertionError("the symbol index was rebuilt although a valid entry exists")

    monkeypatch.setattr(_StrtabNames, "_build_hashes", rebuilt)
    cached = _vmlinux(vmlinux_path).symbols
    assert cached.address_of("linux_banner") is not None
    by_name = _vmlinux(vmlinux_path).symbols._name_index()
    wrong = [n for n, i in by_name.items() if cached._find(n) != i]
    assert not wrong, f"{len(wrong)} names answered differently, e.g. {wrong[:5]}"


def _shift_offsets(path: Path) -> None:
    def shift(a: dict[str, np.ndarray]) -> None:
        a["offsets"][1:] += np.uint32(1)  # well formed, sorted, and wrong
    _rewrite(path, shift)


def _drop_last_type(path: Path) -> None:
    def drop(a: dict[str, np.ndarray]) -> None:
        a["offsets"] = a["offsets"][:-1].copy()
    _rewrite(path, drop)


BTF_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate, "garbage": _garbage, "bit-flip": _flip_in("offsets.npy"),
    "shifted": _shift_offsets, "one-type-short": _drop_last_type,
}


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("damage", sorted(BTF_DAMAGE))
def test_btf_index_survives_a_bad_entry(vmlinux_path: Path, damage: str) -> None:
    btf = _vmlinux(vmlinux_path).btf
    assert btf is not None
    want = (len(btf), btf.sizeof("task_struct"), btf.offsetof("task_struct", "comm"))
    entry = _vm_entry(vmlinux_path, "btf-types")
    good = entry.read_bytes()
    BTF_DAMAGE[damage](entry)
    again = _vmlinux(vmlinux_path).btf
    assert again is not None
    assert (len(again), again.sizeof("task_struct"),
            again.offsetof("task_struct", "comm")) == want
    assert entry.read_bytes() == good, "the entry was not rewritten from the rebuilt index"
