"""DWARF line tables and functions of the real 6.1 vmlinux, checked against crash and gdb."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from crashtui.debuginfo.dwarf import DwarfLines, DwarfSections, parse_aranges
from crashtui.debuginfo.elf import ElfImage
from crashtui.debuginfo.linetable import (
    ROW_END_SEQUENCE,
    ROW_IS_STMT,
    LineHeader,
    decode_line_program,
    file_path,
)
from crashtui.debuginfo.symbols import SymbolTable
from crashtui.errors import DebugInfoError

pytestmark = pytest.mark.needs_vmlinux

COMP_DIR = "debian/build/build_amd64_none_cloud-amd64"


@pytest.fixture(scope="module")
def image(vmlinux_path: Path) -> ElfImage:
    return ElfImage(vmlinux_path)


@pytest.fixture(scope="module")
def lines(image: ElfImage) -> DwarfLines:
    return DwarfLines(image)


@pytest.fixture(scope="module")
def symbols(image: ElfImage) -> SymbolTable:
    return SymbolTable.from_elf(image)


def kernel_offset(dump: Path) -> int:
    """KERNELOFFSET (the KASLR slide) from the dump's uncompressed VMCOREINFO text."""
    m = re.search(rb"KERNELOFFSET=([0-9a-f]+)\n", dump.read_bytes())
    assert m, f"no KERNELOFFSET in {dump}"
    return int(m.group(1), 16)


def test_open_is_cheap(vmlinux_path: Path) -> None:
    t = time.perf_counter()
    dl = DwarfLines(vmlinux_path)  # a path works too; nothing is decoded yet
    assert time.perf_counter() - t < 0.5
    assert dl.build_id == "3b43fad5034874490492495d552c0af6a5fab235"
    dl.close()


def test_aranges_index(lines: DwarfLines) -> None:
    index = lines.unit_index
    assert len(index) == 5921
    assert (index.starts[1:] >= index.ends[:-1]).all()  # sorted, no overlaps


def test_sym_rip_matches_crash(lines: DwarfLines, symbols: SymbolTable, sysrq_dir: Path) -> None:
    # "ffffffff9fca8a06 (t) sysrq_handle_crash+22 debian/.../drivers/tty/sysrq.c: 155"
    text = (sysrq_dir / "crash" / "sym-rip.txt").read_text().strip()
    m = re.match(r"([0-9a-f]+) \(t\) (\w+)\+(\d+) (.+)$", text)
    assert m
    runtime, name, off, where = int(m.group(1), 16), m.group(2), int(m.group(3)), m.group(4)
    sym = symbols.lookup(name)
    assert sym is not None
    slide = runtime - off - sym.address
    assert slide == kernel_offset(next(sysrq_dir.glob("dump.*"))) == 0x1E600000
    sl = lines.source_line(runtime - slide)
    assert sl is not None
    assert str(sl) == where == f"{COMP_DIR}/drivers/tty/sysrq.c: 155"
    assert sl.comp_dir == COMP_DIR


def test_bt_l_lines_match_crash(lines: DwarfLines, testmod_dir: Path) -> None:
    """crash's `bt -l` looks up each frame's address as printed (the return address), not
    address - 1: e.g. machine_kexec's ...62f is ftrace.h: 923, ...62e would be 387."""
    slide = kernel_offset(next(testmod_dir.glob("dump.*")))
    text = (testmod_dir / "crash" / "bt-l-after-mod-s.txt").read_text().splitlines()
    checked = 0
    for frame, source in zip(text, text[1:], strict=False):
        m = re.match(r"\s*#\d+ \[[0-9a-f]+\] (\w+) at ([0-9a-f]+)", frame)
        if not m or not re.match(r"\s+\S+: \d+$", source):
            continue
        sl = lines.source_line(int(m.group(2), 16) - slide)
        assert sl is not None, frame
        assert str(sl) == source.strip(), frame
        checked += 1
    assert checked == 12


def test_dis_l_lines_match_crash(lines: DwarfLines, symbols: SymbolTable) -> None:
    # sample-dumps/6.1-sysrq/crash/dis-l.txt: a source line before each change of line
    base = symbols.address_of("sysrq_handle_crash")
    assert base is not None
    expect = {0: "drivers/tty/sysrq.c: 151", 5: "include/linux/rcupdate.h: 823",
              10: "drivers/tty/sysrq.c: 155", 17: "drivers/tty/sysrq.c: 155",
              22: "drivers/tty/sysrq.c: 155"}
    for off, where in expect.items():
        assert str(lines.source_line(base + off)) == f"{COMP_DIR}/{where}"
    rows = lines.function_lines("sysrq_handle_crash")
    assert [(r.address - base, r.line) for r in rows][:2] == [(0, 151), (5, 153)]
    assert rows[-1].line == 155 and all(base <= r.address < base + 22 for r in rows)


# Addresses where gdb 13 (`info line *ADDR`) keeps a row other than the last one at the
# greatest address <= ADDR: discriminator duplicates, non-stmt file switches, is_stmt
# preference. Also `./` kept inside a path as gdb does.
GDB_CASES = [
    (0xFFFFFFFF8308AC88, "fs/notify/inotify/inotify_user.c", 861),
    (0xFFFFFFFF813A3248, "fs/notify/mark.c", 181),
    (0xFFFFFFFF81A056F7, "arch/x86/include/asm/ptrace.h", 136),
    (0xFFFFFFFF8134F64D, "fs/file_table.c", 150),
    (0xFFFFFFFF81495F2A, "ipc/sem.c", 731),
    (0xFFFFFFFF8124442B, "kernel/bpf/offload.c", 432),
    (0xFFFFFFFF81215496, "include/linux/bpf_verifier.h", 631),
    (0xFFFFFFFF8131C8BB, "arch/x86/include/asm/bitops.h", 233),
    (0xFFFFFFFF811EB1C1, "include/linux/seq_buf.h", 52),
    (0xFFFFFFFF818667EB, "include/linux/skbuff.h", 4778),
    (0xFFFFFFFF812D4D6E, "arch/x86/include/asm/paravirt.h", 417),
    (0xFFFFFFFF81057357, "arch/x86/kernel/cpu/resctrl/./pseudo_lock_event.h", 18),
    (0xFFFFFFFF81031E3A, "arch/x86/kernel/../include/asm/trace/./irq_vectors.h", 152),
]


@pytest.mark.parametrize(("addr", "file", "line"), GDB_CASES)
def test_rows_gdb_keeps(lines: DwarfLines, addr: int, file: str, line: int) -> None:
    sl = lines.source_line(addr)
    assert sl is not None
    assert (sl.file, sl.line) == (f"{COMP_DIR}/{file}", line)


def test_assembler_unit_paths(lines: DwarfLines, symbols: SymbolTable) -> None:
    addr = symbols.address_of("entry_SYSCALL_64_after_hwframe")
    assert addr is not None
    sl = lines.source_line(addr)
    assert sl is not None
    assert sl.file == "/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S"
    assert lines.function_at(addr) is None  # no DW_TAG_subprogram for asm code


def test_function_at(lines: DwarfLines, symbols: SymbolTable) -> None:
    sym = symbols.lookup("sysrq_handle_crash")
    assert sym is not None
    fn = lines.function_at(sym.address + 10)
    assert fn is not None
    assert fn.name == "sysrq_handle_crash"
    assert (fn.low_pc, fn.high_pc) == (sym.address, sym.address + sym.size)
    assert (fn.decl_file, fn.decl_line) == (f"{COMP_DIR}/drivers/tty/sysrq.c", 150)
    assert fn.inlined == () and fn.cu_name == "drivers/tty/sysrq.c"
    assert lines.function_at(sym.address + sym.size) is None  # the padding after it
    assert lines.function_range("sysrq_handle_crash") == (sym.address, sym.address + 22)
    # rcu_read_unlock() is inlined at +5 (the call to __rcu_read_unlock)
    fn = lines.function_at(sym.address + 5)
    assert fn is not None
    assert [(c.name, c.call_line) for c in fn.inlined] == [("rcu_read_unlock", 153)]


def test_inline_chain(lines: DwarfLines, testmod_dir: Path) -> None:
    # bt frame #2: crash_kexec at ffffffffb7365748 -> arch/x86/include/asm/atomic.h: 41
    addr = 0xFFFFFFFFB7365748 - kernel_offset(next(testmod_dir.glob("dump.*")))
    fn = lines.function_at(addr)
    assert fn is not None and fn.name == "crash_kexec"
    assert [(c.name, c.call_file, c.call_line) for c in fn.inlined] == [
        ("arch_atomic_set", f"{COMP_DIR}/include/linux/atomic/atomic-instrumented.h", 42),
        ("atomic_set", f"{COMP_DIR}/kernel/kexec_core.c", 1003),
    ]
    frames = lines.inline_frames(addr)
    assert [(f.function, f.file.rsplit("/", 1)[-1] if f.file else None, f.line, f.inlined)
            for f in frames] == [
        ("arch_atomic_set", "atomic.h", 41, True),
        ("atomic_set", "atomic-instrumented.h", 42, True),
        ("crash_kexec", "kexec_core.c", 1003, False),
    ]


def test_function_with_two_ranges(lines: DwarfLines, symbols: SymbolTable) -> None:
    # GCC splits cold paths into .text.unlikely: DW_AT_ranges (DWARF 5 .debug_rnglists)
    cold = symbols.lookup("__schedule_bug.cold")
    main = symbols.lookup("__schedule_bug")
    assert cold is not None and main is not None
    fn = lines.function_at(cold.address)
    assert fn is not None and fn.name == "__schedule_bug" and len(fn.ranges) == 2
    assert fn.contains(main.address) and fn.contains(cold.address)


def test_unknown_addresses(lines: DwarfLines, symbols: SymbolTable) -> None:
    assert lines.source_line(0x1234) is None
    assert lines.function_at(0x1234) is None
    assert lines.inline_frames(0x1234) == []
    assert lines.function_range("no_such_function_anywhere") is None


def test_line_decoder_matches_pyelftools(lines: DwarfLines, symbols: SymbolTable) -> None:
    """Our state machine gives the same rows as pyelftools (run over the same windows)."""
    for name in ("sysrq_handle_crash", "entry_SYSCALL_64"):
        addr = symbols.address_of(name)
        assert addr is not None
        unit = lines.unit_for(addr)
        assert unit is not None and unit.stmt_list is not None
        hr = lines._line_rows(unit)
        assert hr is not None
        _, rows = hr
        di = lines.dwarfinfo
        cu = di._parse_CU_at_offset(unit.offset)
        prog = di.line_program_for_CU(cu)
        assert prog is not None
        states = [e.state for e in prog.get_entries() if e.state is not None]
        assert len(states) == len(rows)
        for i, s in enumerate(states):
            assert (s.address, s.file, s.line, s.column) == (
                int(rows.address[i]), int(rows.file[i]), int(rows.line[i]), int(rows.column[i]))
            end = bool(rows.flags[i] & ROW_END_SEQUENCE)
            assert s.end_sequence == end
            if not end:
                assert bool(s.is_stmt) == bool(rows.flags[i] & ROW_IS_STMT)


def test_function_index_matches_pyelftools(lines: DwarfLines, symbols: SymbolTable) -> None:
    addr = symbols.address_of("sysrq_handle_crash")
    assert addr is not None
    unit = lines.unit_for(addr)
    assert unit is not None
    cu = lines.dwarfinfo._parse_CU_at_offset(unit.offset)
    theirs = set()
    for die in cu.get_top_DIE().iter_children():
        if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
            lo = die.attributes["DW_AT_low_pc"].value
            hi = die.attributes["DW_AT_high_pc"].value
            theirs.add((lo, lo + hi, die.offset))
    index = lines._func_index(unit)
    ours = {(int(a), int(b), int(d)) for a, b, d in zip(index.lo, index.hi, index.die, strict=True)}
    assert theirs and theirs <= ours  # ours also has the DW_AT_ranges subprograms


def test_lookups_are_fast(vmlinux_path: Path, symbols: SymbolTable) -> None:
    dl = DwarfLines(vmlinux_path)
    worst = 0.0
    for name in ("do_one_initcall", "page_fault_oops", "oops_end", "copy_process"):
        addr = symbols.address_of(name)
        assert addr is not None
        t = time.perf_counter()
        assert dl.source_line(addr + 8) is not None
        assert dl.function_at(addr + 8) is not None
        worst = max(worst, time.perf_counter() - t)
    assert worst < 0.5  # ~5-30 ms each; generous for slow CI machines
    dl.close()


def test_rejects_relocatable_and_dwarfless(testmod_ko: Path) -> None:
    with pytest.raises(DebugInfoError, match="relocatable"):
        DwarfLines(testmod_ko)
    true = shutil.which("true")
    if true is not None:
        with pytest.raises(DebugInfoError, match="no DWARF"):
            DwarfLines(true)


def test_parse_aranges_handcrafted() -> None:
    import struct

    body = struct.pack("<HIBB", 2, 0x40, 8, 0) + b"\0" * 4  # header padded to 16
    body += struct.pack("<QQ", 0x2000, 0x10) + struct.pack("<QQ", 0x1000, 0x20)
    body += struct.pack("<QQ", 0, 0)
    buf = struct.pack("<I", len(body)) + body
    index = parse_aranges(buf)
    assert index.lookup(0x1000) == 0x40 and index.lookup(0x201F) is None
    assert index.lookup(0x200F) == 0x40 and index.lookup(0x1020) is None


def test_file_path_versions() -> None:
    base: dict[str, Any] = dict(offset=0, offset_size=4, address_size=8, min_inst_length=1,
                default_is_stmt=True, line_base=-5, line_range=14, opcode_base=13,
                standard_opcode_lengths=(), program_start=0, program_end=0)
    v5 = LineHeader(version=5, include_dirs=("cd", "drivers/tty", "/abs"),
                    file_entries=(("a.c", 1), ("a.c", 1), ("b.h", 2), ("c.c", 0)), **base)
    assert file_path(v5, 1, "cd") == "cd/drivers/tty/a.c"
    assert file_path(v5, 2, "cd") == "/abs/b.h"
    assert file_path(v5, 3, "cd") == "cd/c.c"
    assert file_path(v5, 9, "cd") is None
    v4 = LineHeader(version=4, include_dirs=("inc",), file_entries=(("x.c", 0), ("y.h", 1)),
                    **base)
    assert file_path(v4, 1, "/src") == "/src/x.c"
    assert file_path(v4, 2, "/src") == "/src/inc/y.h"
    assert file_path(v4, 0, "/src") is None


def test_decode_handcrafted_program() -> None:
    prog = bytes([0, 9, 2]) + (0x1000).to_bytes(8, "little")  # DW_LNE_set_address 0x1000
    prog += bytes([13 + 5 + 1])  # special opcode: line += -5 + 6 = 1 -> line 2, addr += 0
    prog += bytes([0, 2, 4, 3])  # DW_LNE_set_discriminator 3
    prog += bytes([2, 4, 1])  # advance_pc 4; copy: line 2 again, with a discriminator
    prog += bytes([2, 4, 0, 1, 1])  # advance_pc 4; DW_LNE_end_sequence
    h = LineHeader(offset=0, version=5, offset_size=4, address_size=8, min_inst_length=1,
                   default_is_stmt=True, line_base=-5, line_range=14, opcode_base=13,
                   standard_opcode_lengths=(0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1),
                   include_dirs=("d",), file_entries=(("f.c", 0), ("f.c", 0)),
                   program_start=0, program_end=len(prog))
    rows = decode_line_program(prog, h)
    assert rows.address.tolist() == [0x1000, 0x1004, 0x1008]
    assert rows.line.tolist() == [2, 2, 2]
    assert rows.flags.tolist()[2] & ROW_END_SEQUENCE
    assert rows.find_row(0x1005) == (1, 0)
    # gdb drops a same-line row once the line had a non-zero discriminator
    assert rows.gdb_row(0x1002) == 0 and rows.gdb_row(0x1005) == 0
    assert rows.gdb_row(0x1008) is None and rows.gdb_row(0x0FFF) is None


def test_sections_are_views(image: ElfImage) -> None:
    secs = DwarfSections.from_image(image)
    assert isinstance(secs.info, memoryview) and secs.info.readonly
    assert secs.ranges is None and secs.rnglists is not None


# --- disassembly in crash's `dis` / `dis -l` layout (crashtui.debuginfo.disasm) -----------

# (bytes, GNU objdump text) — except `nopw %cs:...`, which gdb 10 (crash 8.0.6) prints so
GNU_SAMPLES = [
    ("48c7c7b9973682", "mov    $0xffffffff823697b9,%rdi"),
    ("662e0f1f840000000000", "nopw   %cs:0x0(%rax,%rax,1)"),
    ("66662e0f1f840000000000", "data16 nopw %cs:0x0(%rax,%rax,1)"),
    ("0f1f4000", "nopl   0x0(%rax)"),
    ("31c0", "xor    %eax,%eax"),
    ("c3", "ret"),
    ("f348ab", "rep stos %rax,%es:(%rdi)"),
    ("f3a4", "rep movsb %ds:(%rsi),%es:(%rdi)"),
    ("6690", "xchg   %ax,%ax"),
    ("d1e8", "shr    %eax"),
    ("48d320", "shlq   %cl,(%rax)"),
    ("488d3500000000", "lea    0x0(%rip),%rsi"),
    ("48837df000", "cmpq   $0x0,-0x10(%rbp)"),
    ("ff24c5a0000081", "jmp    *-0x7effff60(,%rax,8)"),
    ("0fb6c0", "movzbl %al,%eax"),
    ("4863c2", "movslq %edx,%rax"),
    ("48b80000000000000080", "movabs $0x8000000000000000,%rax"),
    ("4883e4f0", "and    $0xfffffffffffffff0,%rsp"),
    ("f00fb117", "lock cmpxchg %edx,(%rdi)"),
    ("9d", "popf"),
    ("ee", "out    %al,(%dx)"),
    ("2ee800000000", "cs call 0x6"),
    ("06", "(bad)"),
]


@pytest.mark.parametrize(("hexbytes", "text"), GNU_SAMPLES)
def test_gnu_syntax(hexbytes: str, text: str) -> None:
    from crashtui.debuginfo.disasm import disassemble

    insns = disassemble(bytes.fromhex(hexbytes), 0)
    assert len(insns) == 1 and insns[0].text == text


def test_disassemble_annotations() -> None:
    from crashtui.debuginfo.disasm import disassemble, format_insn

    base = 0xFFFFFFFF81000000
    code = bytes.fromhex("06" "e8fa0f0000" "488b05ff0f0000" "c3")  # (bad); call; mov rip; ret
    insns = disassemble(code, base)
    assert [i.kind for i in insns] == ["data", "call", "other", "ret"]  # skipdata goes on
    assert insns[1].target == base + 0x1000 and insns[2].rip_target == base + 0x1000 + 0xC

    def sym(addr: int) -> tuple[str, int] | None:
        return ("f", addr - base) if base <= addr < base + 0x2000 else None

    assert format_insn(insns[1], sym) == (
        "0xffffffff81000001 <f+1>:\tcall   0xffffffff81001000 <f+4096>")
    assert format_insn(insns[2], sym) == (
        "0xffffffff81000006 <f+6>:\tmov    0xfff(%rip),%rax        # 0xffffffff8100100c <f+4108>")
    assert format_insn(insns[3]) == "0xffffffff8100000d:\tret"


def test_dis_l_matches_crash(vmlinux_path: Path, sysrq_dir: Path) -> None:
    """crash's `dis -l sysrq_handle_crash` and `dis -rl <rip>` on the sysrq dump, from the
    code bytes in the dump (the patched ftrace nop, KASLR-relocated immediates)."""
    from crashtui.debuginfo.disasm import disassemble, format_listing
    from crashtui.debuginfo.vmlinux import Vmlinux
    from crashtui.dumpfile import open_dump

    dump = open_dump(next(sysrq_dir.glob("dump.*")))
    vm = Vmlinux(vmlinux_path)
    slide = kernel_offset(next(sysrq_dir.glob("dump.*")))
    start = vm.symbols.address_of("sysrq_handle_crash")
    assert start is not None and dump.info.phys_base is not None
    runtime = start + slide
    # kernel text: physical = virtual - __START_KERNEL_map + phys_base
    code = dump.read_phys(runtime - 0xFFFFFFFF80000000 + dump.info.phys_base, 0x26)

    def symbolize(addr: int) -> tuple[str, int] | None:
        hit = vm.symbols.nearest(addr - slide)
        return (hit[0].name, hit[1]) if hit else None

    lines = DwarfLines(vm.image)
    insns = disassemble(code, runtime)
    listing = format_listing(insns[:4], symbolize, lambda a: lines.source_line(a - slide))
    assert listing == (sysrq_dir / "crash" / "dis-l.txt").read_text().splitlines()
    listing = format_listing(insns[:5], symbolize, lambda a: lines.source_line(a - slide))
    assert listing == (sysrq_dir / "crash" / "dis-rl-rip.txt").read_text().splitlines()
    dump.close()


# --- DWARF without .debug_aranges, the on-disk cache, damaged input ------------------------

BUILD_ID = "ab" * 20


def _ko_sections_without_aranges(ko_path: Path) -> tuple[DwarfSections, int]:
    from dataclasses import replace

    from crashtui.debuginfo.kmodule import KernelModuleFile

    ko = KernelModuleFile(ko_path)
    secs = replace(ko._relocated(ko._private_bases), aranges=None)
    return secs, ko._private_address(".init.text", 5)


def test_unit_index_without_aranges_is_cached(testmod_ko: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.debuginfo import cache

    monkeypatch.setenv("CRASHTUI_CACHE", str(tmp_path))
    secs, addr = _ko_sections_without_aranges(testmod_ko)
    dl = DwarfLines.from_sections(secs, build_id=BUILD_ID)
    sl = dl.source_line(addr)
    assert sl is not None and sl.line == 9
    entry = tmp_path / BUILD_ID / "dwarf-units.npz"
    assert entry.is_file()

    def boom() -> None:
        raise AssertionError("index rebuilt although cached")

    again = DwarfLines.from_sections(secs, build_id=BUILD_ID)
    monkeypatch.setattr(again, "_index_from_units", boom)
    assert again.source_line(addr) == sl  # served from the npz

    entry.write_bytes(b"PK\x03\x04 this is not a zip file")  # corrupt: rebuilt, rewritten
    third = DwarfLines.from_sections(secs, build_id=BUILD_ID)
    assert third.source_line(addr) == sl
    assert cache.load_arrays(BUILD_ID, "dwarf-units", (len(secs.info or b""),), ["units"]) \
        is None  # another fingerprint: stale, and the file is dropped
    assert not entry.exists()
    no_id = DwarfLines.from_sections(secs)  # no build-id: nothing written
    assert no_id.source_line(addr) == sl and not entry.exists()


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from crashtui.debuginfo import cache

    monkeypatch.setenv("CRASHTUI_CACHE", "off")
    assert cache.entry_path(BUILD_ID, "x") is None
    monkeypatch.delenv("CRASHTUI_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.entry_path(BUILD_ID, "x") == tmp_path / "crashtui" / BUILD_ID / "x.npz"
    assert cache.entry_path("../../etc", "x") is None


def test_damaged_dwarf_is_a_debuginfo_error(testmod_ko: Path) -> None:
    from dataclasses import replace

    secs, addr = _ko_sections_without_aranges(testmod_ko)
    assert secs.line is not None and secs.info is not None
    short_line = DwarfLines.from_sections(replace(secs, line=bytes(secs.line[:40])))
    with pytest.raises(DebugInfoError):
        short_line.source_line(addr)
    garbage = bytes(secs.info[:11]) + b"\x7f" * (len(secs.info) - 11)
    with pytest.raises(DebugInfoError):
        DwarfLines.from_sections(replace(secs, info=garbage)).function_at(addr)


def test_vmlinux_lines_and_threads(vmlinux_path: Path) -> None:
    """Vmlinux.lines is a DwarfLines; lookups from several threads agree."""
    from concurrent.futures import ThreadPoolExecutor

    from crashtui.debuginfo.vmlinux import Vmlinux

    vm = Vmlinux(vmlinux_path)
    lines = vm.lines
    assert isinstance(lines, DwarfLines)
    addrs = [vm.symbols.address_of(n) for n in ("sysrq_handle_crash", "do_one_initcall",
                                                 "oops_end", "machine_kexec")] * 8
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda a: str(lines.source_line(a)), addrs))
    assert got[:4] == got[4:8] and all(g != "None" for g in got)
    assert got[0] == f"{COMP_DIR}/drivers/tty/sysrq.c: 151"
