"""Kernel module files: sections, .modinfo, symbols, relocated DWARF of the test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashtui.debuginfo.kmodule import KernelModuleFile
from crashtui.errors import DebugInfoError

SOURCE = "/usr/src/test-module/test-module.c"
# Where the test-module dump had the module (crash's `mod`, `dis`): .init.text at ...c4000
INIT_TEXT = 0xFFFFFFFFC03C4000


@pytest.fixture(scope="module")
def ko(testmod_ko: Path) -> KernelModuleFile:
    return KernelModuleFile(testmod_ko)


def test_modinfo(ko: KernelModuleFile) -> None:
    assert ko.module_name == "test_module"
    assert ko.vermagic == "6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions "
    assert ko.release == "6.1.0-56-cloud-amd64"
    assert ko.matches_release("6.1.0-56-cloud-amd64")
    assert not ko.matches_release("6.12.0-1-amd64")  # a .ko for another kernel
    assert ko.license == "GPL"
    assert ko.description == "crash lab: bad pointer dereference in init"
    assert ko.depends == []
    assert ko.srcversion is None
    assert ko.modinfo["retpoline"] == ["Y"]
    assert ko.build_id == "688f70cd228f32d0ba317c134ee0cfe6f3355941"


def test_sections(ko: KernelModuleFile) -> None:
    init = ko.section(".init.text")
    assert (init.size, init.align, init.allocated, init.executable) == (0x1F, 1, True, True)
    this = ko.section(".gnu.linkonce.this_module")
    assert (this.size, this.align, this.executable) == (0x380, 64, False)
    assert not ko.section(".debug_info").allocated
    names = [s.name for s in ko.allocated_sections]
    assert names[:4] == [".note.gnu.build-id", ".note.Linux", ".text", ".exit.text"]
    with pytest.raises(DebugInfoError):
        ko.section(".nope")


def test_symbols(ko: KernelModuleFile) -> None:
    syms = {(name, sec, value, size, kind) for name, sec, value, size, kind in ko.symbols()}
    assert ("test_module_init", ".init.text", 0, 31, "func") in syms
    assert ("cleanup_module", ".exit.text", 0, 5, "func") in syms
    assert ("__this_module", ".gnu.linkonce.this_module", 0, 896, "object") in syms
    placed = ko.symbols_for({".init.text": INIT_TEXT, ".text": 0xFFFFFFFFC03BF000})
    assert [(s.name, s.address, s.binding) for s in placed] == [
        ("test_module_init", INIT_TEXT, "local"), ("init_module", INIT_TEXT, "global")]
    table = ko.symbol_table({".init.text": INIT_TEXT})
    hit = table.nearest(INIT_TEXT + 5)
    assert hit is not None and hit[0].name in ("test_module_init", "init_module")
    assert hit[1] == 5


def test_source_line_matches_addr2line(ko: KernelModuleFile) -> None:
    # crash/module-rip-addr2line.txt: addr2line -f -i -e test-module.ko -j .init.text 0x5
    sl = ko.source_line(".init.text", 5)
    assert sl is not None
    assert (sl.file, sl.line) == (SOURCE, 9)
    assert sl.comp_dir == "/usr/src/linux-headers-6.1.0-56-cloud-amd64"  # kbuild runs there
    fn = ko.function_at(".init.text", 5)
    assert fn is not None
    assert (fn.name, fn.low_pc, fn.high_pc, fn.decl_line) == ("test_module_init", 0, 31, 6)
    assert fn.decl_file == SOURCE and fn.inlined == ()
    frames = ko.inline_frames(".init.text", 5)
    assert [(f.function, f.line, f.inlined) for f in frames] == [("test_module_init", 9, False)]


def test_sections_do_not_overlap(ko: KernelModuleFile) -> None:
    # .init.text and .exit.text both start at 0 in the file: offsets must stay apart
    exit_fn = ko.function_at(".exit.text", 0)
    assert exit_fn is not None and exit_fn.name == "test_module_exit"
    exit_line = ko.source_line(".exit.text", 0)
    assert exit_line is not None and exit_line.line == 15
    init_line = ko.source_line(".init.text", 0)
    assert init_line is not None and init_line.line == 7
    rows = ko.lines_in_range(".init.text", 0, 0x1F)
    assert [r.address for r in rows][0] == 0 and {r.line for r in rows} >= {7, 9, 11}
    assert all(0 <= r.address < 0x1F for r in rows)


def test_lines_at_runtime_addresses(ko: KernelModuleFile) -> None:
    dl = ko.lines({".init.text": INIT_TEXT, ".exit.text": 0xFFFFFFFFC03BF000})
    sl = dl.source_line(INIT_TEXT + 5)
    assert sl is not None and (sl.file, sl.line) == (SOURCE, 9)
    fn = dl.function_at(INIT_TEXT + 5)
    assert fn is not None and (fn.name, fn.low_pc) == ("test_module_init", INIT_TEXT)
    assert ko.lines({".init.text": INIT_TEXT, ".exit.text": 0xFFFFFFFFC03BF000}) is dl
    # a section that is not loaded (no base given) has no lines
    assert ko.lines({".exit.text": 0xFFFFFFFFC03BF000}).source_line(5) is None


def test_relocation_matches_pyelftools(ko: KernelModuleFile, testmod_ko: Path) -> None:
    """With every section at 0 our RELA application is byte-identical to pyelftools'."""
    from elftools.elf.elffile import ELFFile

    ours = ko._relocated({})
    with testmod_ko.open("rb") as f:
        di = ELFFile(f).get_dwarf_info()
        for name, sec in (("info", di.debug_info_sec), ("line", di.debug_line_sec),
                          ("aranges", di.debug_aranges_sec), ("rnglists", di.debug_rnglists_sec)):
            assert sec is not None
            sec.stream.seek(0)
            assert bytes(getattr(ours, name)) == sec.stream.read(sec.size), name


def test_rejects_non_modules(vmlinux_path: Path, tmp_path: Path) -> None:
    with pytest.raises(DebugInfoError, match="not a kernel module"):
        KernelModuleFile(vmlinux_path)
    bad = tmp_path / "x.ko"
    bad.write_bytes(b"not an elf at all")
    with pytest.raises(DebugInfoError):
        KernelModuleFile(bad)
