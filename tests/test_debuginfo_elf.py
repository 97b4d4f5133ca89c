"""ElfImage, SymbolTable and Vmlinux on the real debug vmlinux and on synthetic bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from crashtui.debuginfo.elf import ElfImage, parse_notes
from crashtui.debuginfo.symbols import SymbolTable
from crashtui.debuginfo.vmlinux import Vmlinux
from crashtui.errors import DebugInfoError

BUILD_ID = "3b43fad5034874490492495d552c0af6a5fab235"


@pytest.fixture(scope="module")
def vm(vmlinux_path: Path) -> Vmlinux:
    return Vmlinux(vmlinux_path)


# -- synthetic files ---------------------------------------------------------------------------

def _elf_header(machine: int = 62, e_type: int = 2, shoff: int = 0, shnum: int = 0,
                shstrndx: int = 0) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, 0, shoff, 0, 64,
                               56, 0, 64, shnum, shstrndx)


def _minimal_elf(machine: int = 62) -> bytes:
    """ELF with a NULL section, .shstrtab and a NOTE section holding a build-id."""
    shstr = b"\0.shstrtab\0.note.gnu.build-id\0"
    note = struct.pack("<III", 4, 4, 3) + b"GNU\0" + b"\xde\xad\xbe\xef"
    body_off = 64
    note_off = body_off + len(shstr)
    shoff = (note_off + len(note) + 7) & ~7
    data = bytearray(_elf_header(machine, shoff=shoff, shnum=3, shstrndx=1))
    data += shstr + note
    data += bytes(shoff - len(data))
    data += bytes(64)  # NULL section
    data += struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, body_off, len(shstr), 0, 0, 1, 0)
    data += struct.pack("<IIQQQQIIQQ", 11, 7, 2, 0, note_off, len(note), 0, 0, 4, 0)
    return bytes(data)


def test_minimal_elf_sections_and_build_id(tmp_path: Path) -> None:
    p = tmp_path / "mini.elf"
    p.write_bytes(_minimal_elf())
    with ElfImage(p) as img:
        assert set(img.sections) == {".shstrtab", ".note.gnu.build-id"}
        assert img.build_id == "deadbeef"
        assert img.machine == 62 and img.e_type == 2


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"hello, world, this is plainly not an ELF file at all" * 3, "not an ELF"),
    (b"\x7fELF" + bytes([1, 1, 1]) + bytes(80), "64-bit"),
])
def test_bad_files(tmp_path: Path, content: bytes, words: str) -> None:
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(DebugInfoError) as err:
        ElfImage(p)
    assert words in str(err.value)
    assert str(p) in str(err.value)


def test_truncated_section_table(tmp_path: Path) -> None:
    data = _minimal_elf()
    p = tmp_path / "trunc"
    p.write_bytes(data[:-70])
    with pytest.raises(DebugInfoError, match="past the end of the file") as err:
        ElfImage(p)
    assert err.value.path == str(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DebugInfoError, match="cannot open"):
        ElfImage(tmp_path / "nope")


def test_vmlinux_rejects_other_machine(tmp_path: Path) -> None:
    p = tmp_path / "riscv"
    p.write_bytes(_minimal_elf(machine=243))
    with pytest.raises(DebugInfoError, match="is an ELF for riscv, crashtui supports x86-64 and arm64"):
        Vmlinux(p)


def test_an_executable_that_is_not_a_kernel(tmp_path: Path, sysrq_dump: Path) -> None:
    """An x86-64 executable with no kernel banner and no linux_banner symbol (/bin/ls, or this
    synthetic one) is "not a kernel image", named — not "vmlinux is for kernel None"."""
    import subprocess
    import sys

    p = tmp_path / "ls"
    p.write_bytes(_minimal_elf())
    vm = Vmlinux(p)  # opening stays cheap: the check is made when it is used for a dump
    with pytest.raises(DebugInfoError, match=r"is not a kernel image \(no linux_banner symbol\)"):
        vm.check_is_kernel()
    vm.close()
    for exe in (p, Path("/bin/ls")):
        if not exe.is_file():
            continue
        r = subprocess.run([sys.executable, "-m", "crashtui.cli", str(sysrq_dump), str(exe),
                            "-c", "sys"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == f"crashtui: {exe}: is not a kernel image (no linux_banner symbol)\n"


def test_the_real_vmlinux_is_a_kernel(vm: Vmlinux) -> None:
    vm.check_is_kernel()


def test_parse_notes_tolerates_truncation() -> None:
    note = struct.pack("<III", 4, 8, 1) + b"CORE" + b"\1" * 8
    assert len(parse_notes(note + note[:10])) == 1


def test_from_arrays_kallsyms_letters() -> None:
    st = SymbolTable.from_arrays([0x3000, 0x1000, 0x2000], [0, 0x100, 0x10],
                                 ["t", "T", "D"], ["c_local", "a_func", "b_data"])
    assert len(st) == 3
    assert st.address_of("a_func") == 0x1000
    a = st.lookup("a_func")
    assert a is not None and a.kind == "func" and a.binding == "global"
    c = st.lookup("c_local")
    assert c is not None and c.binding == "local"
    hit = st.nearest(0x1010)
    assert hit is not None and hit[0].name == "a_func" and hit[1] == 0x10
    assert st.nearest(0x500) is None
    assert st.nearest(0x3000 + 0x10000) is None
    assert st.names_with_prefix("b") == ["b_data"]


def test_alias_preference() -> None:
    st = SymbolTable.from_arrays(np.array([0x1000, 0x1000, 0x1000]), [16, 0, 64],
                                 ["other", "other", "func"],
                                 ["__pfx_foo", "_MODULE_INIT_START_x", "foo"])
    hit = st.nearest(0x1004)
    assert hit is not None and hit[0].name == "foo"


# -- the real vmlinux ---------------------------------------------------------------------------

def test_vmlinux_headers(vm: Vmlinux) -> None:
    assert vm.build_id == BUILD_ID
    assert vm.image.machine == 62
    assert vm.image.sections[".text"].addr == 0xFFFFFFFF81000000
    assert len(vm.image.section_data(".BTF")) == vm.image.sections[".BTF"].size


def test_vmlinux_release_banner(vm: Vmlinux) -> None:
    assert vm.release == "6.1.0-56-cloud-amd64"
    assert vm.banner is not None
    assert vm.banner.startswith("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@")
    assert "Debian 6.1.192-2" in vm.banner


def test_vmlinux_symbols(vm: Vmlinux) -> None:
    syms = vm.symbols
    assert 100_000 < len(syms) < 130_000
    crash = syms.lookup("sysrq_handle_crash")
    assert crash is not None and crash.kind == "func" and crash.size > 0
    init_task = syms.lookup("init_task")
    assert init_task is not None and init_task.kind == "object" and init_task.size == 9728
    assert syms.address_of("linux_banner") is not None
    assert syms.address_of("no_such_symbol_anywhere") is None
    hit = syms.nearest(crash.address + 5)
    assert hit is not None and hit[0].name == "sysrq_handle_crash" and hit[1] == 5
    assert syms.symbolize(crash.address + 5) == "sysrq_handle_crash+0x5"
    assert "sysrq_handle_crash" in syms.names_with_prefix("sysrq_handle_", 100)
    # percpu variables keep their section-relative offsets
    rq = syms.lookup("runqueues")
    assert rq is not None and rq.address < 0x100000


def test_vmlinux_text_start_names_startup_64(vm: Vmlinux) -> None:
    hit = vm.symbols.nearest(0xFFFFFFFF81000000)
    assert hit is not None and hit[0].name == "startup_64"


def test_vmlinux_read_at(vm: Vmlinux) -> None:
    sym = vm.symbols.lookup("linux_banner")
    assert sym is not None
    assert vm.read_at(sym.address, 14) == b"Linux version "[:14]
    bss = vm.image.sections[".bss"]
    assert vm.read_at(bss.addr + 16, 8) == bytes(8)
    with pytest.raises(DebugInfoError):
        vm.read_at(1 << 63, 8)


def test_symbols_of_a_module(testmod_ko: Path) -> None:
    with ElfImage(testmod_ko) as img:
        assert img.e_type == 1  # ET_REL
        st = SymbolTable.from_elf(img, {".init.text": 0x1000, ".exit.text": 0x2000})
        assert st.address_of("test_module_init") == 0x1000
        assert st.address_of("test_module_exit") == 0x2000
        hit = st.nearest(0x1004)
        assert hit is not None and hit[1] == 4
        assert hit[0].name in ("init_module", "test_module_init")
    with pytest.raises(DebugInfoError, match="relocatable"):
        Vmlinux(testmod_ko)
