"""The damaged-input corpus: copies of the real dumps broken in every way the issue lists.

Each input gets `crashtui DUMP VMLINUX -c sys` and its expected behaviour is asserted: a
one-line `crashtui: PATH: message` and exit status 2 when nothing sensible can be shown, or
the summary with the damaged part marked ([DAMAGED], [INCOMPLETE], WARNING lines) when the
damage is local.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import pytest
from test_robustness_support import (
    CliResult,
    KdumpLayout,
    cli,
    copy_with,
    one_line_error,
    plant,
    rewrite_pages,
)

pytestmark = pytest.mark.needs_vmlinux

RELEASE = "6.1.0-56-cloud-amd64"
TASK_PFN = 0x1234  # holds the head of rcu_par_gp's task_struct (pid 4) and nothing else read


@pytest.fixture(scope="module")
def layout(sysrq_dump: Path) -> KdumpLayout:
    return KdumpLayout.of(sysrq_dump)


@pytest.fixture(scope="module")
def reference(sysrq_dump: Path, vmlinux_path: Path) -> CliResult:
    """`sys` of the undamaged dump."""
    result = cli(sysrq_dump, vmlinux_path, "-c", "sys")
    assert result.status == 0 and not result.warnings, result.err
    return result


def sys_of(path: Path, vmlinux: Path) -> CliResult:
    return cli(path, vmlinux, "-c", "sys")


def assert_partial(result: CliResult, reference: CliResult, intact: tuple[str, ...]) -> None:
    """Exit 0, every sys field present, the `intact` ones as in the undamaged dump."""
    assert result.status == 0, result.err
    assert "Traceback" not in result.err
    for name in ("KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS",
                 "NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY", "PANIC"):
        value = result.field(name)
        if name in intact:
            assert value == reference.field(name), name


# --- not a dump at all ----------------------------------------------------------------------

def test_empty_file(tmp_path: Path, vmlinux_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert one_line_error(sys_of(empty, vmlinux_path)) == f"crashtui: {empty}: empty file"


def test_directory(tmp_path: Path, vmlinux_path: Path) -> None:
    line = one_line_error(sys_of(tmp_path, vmlinux_path))
    assert line == f"crashtui: {tmp_path}: dump file is a directory, not a file"


def test_text_file(tmp_path: Path, vmlinux_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a vmcore\n" * 100)
    assert "not a kdump-compressed, flattened or ELF dump" in one_line_error(
        sys_of(path, vmlinux_path))


def test_fifo(tmp_path: Path, vmlinux_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert one_line_error(sys_of(fifo, vmlinux_path)).endswith("not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; "
                    "test_open_fails_like_permission_denied covers the path for root")
def test_no_read_permission(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path) -> None:
    path = copy_with(sysrq_dump, tmp_path / "dump", size=8192)
    path.chmod(0)
    assert one_line_error(sys_of(path, vmlinux_path)).endswith(
        "dump file is not readable (permission denied)")


def test_open_fails_like_permission_denied(sysrq_dump: Path, tmp_path: Path,
                                           vmlinux_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """As root no mode stops a read: make access() and open() of that one path fail as EACCES."""
    path = copy_with(sysrq_dump, tmp_path / "dump", size=8192)
    real_access, real_open = os.access, os.open

    def access(p: object, mode: int, *a: object, **kw: object) -> bool:
        return False if str(p) == str(path) else real_access(p, mode, *a, **kw)  # type: ignore[arg-type]

    def fake_open(p: object, flags: int, *a: object, **kw: object) -> int:
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, flags, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", fake_open)
    assert one_line_error(sys_of(path, vmlinux_path)) == (
        f"crashtui: {path}: dump file is not readable (permission denied)")


def test_open_fails_other_ways(tmp_path: Path, vmlinux_path: Path) -> None:
    """Paths that fail for root too: a symlink loop, a file used as a directory."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert "Too many levels of symbolic links" in one_line_error(sys_of(loop, vmlinux_path))
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    line = one_line_error(sys_of(plain / "dump", vmlinux_path))
    assert "Not a directory" in line, line
    missing = one_line_error(sys_of(tmp_path / "nope", vmlinux_path))
    assert missing == f"crashtui: {tmp_path / 'nope'}: dump file not found"


# --- kdump file cut short -------------------------------------------------------------------

@pytest.mark.parametrize("where,match", [
    ("header", "truncated kdump header"),
    ("sub_header", r"kdump sub header \(2 blocks of 4096\) extends past the end"),
    ("notes", r"kdump sub header \(2 blocks of 4096\) extends past the end"),
    ("bitmaps", r"kdump bitmap \(16 blocks at 0x3000\) extends past the end"),
    ("descriptors", r"kdump page descriptors truncated: 23069 descriptors end at"),
])
def test_truncated_before_the_pages(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                    vmlinux_path: Path, where: str, match: str) -> None:
    cut = {"header": 300, "sub_header": layout.block_size + 40,
           "notes": layout.note_off + layout.note_size // 2,
           "bitmaps": layout.bitmap_off + layout.bitmap_len // 3,
           "descriptors": layout.desc_off + 24 * 1000 + 7}[where]
    path = copy_with(sysrq_dump, tmp_path / "dump", size=cut)
    assert re.search(match, one_line_error(sys_of(path, vmlinux_path)))


def test_truncated_in_the_page_data_near_the_end(sysrq_dump: Path, layout: KdumpLayout,
                                                 tmp_path: Path, vmlinux_path: Path,
                                                 reference: CliResult) -> None:
    """A copy cut 200 kB short: every field still shows; the lost pages are said."""
    path = copy_with(sysrq_dump, tmp_path / "dump", size=layout.size - 200_000)
    result = sys_of(path, vmlinux_path)
    assert_partial(result, reference, ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "RELEASE",
                                       "VERSION", "MACHINE", "MEMORY", "PANIC"))
    assert re.fullmatch(r"\d+ dumped pages are not in the file \(truncated copy\?\); reads of "
                        r"them fail", result.warnings[0].removeprefix("DUMPFILE: "))
    tasks = result.field("TASKS")
    assert tasks.endswith("  [DAMAGED]") and 50 < int(tasks.split()[0]) < 78
    assert any(w.startswith("TASKS: ") and "past the end of the file" in w
               for w in result.warnings)


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_truncated_in_the_page_data_early(sysrq_dump: Path, layout: KdumpLayout,
                                          tmp_path: Path, vmlinux_path: Path,
                                          fraction: float) -> None:
    """Cut right after the descriptors or halfway: shown, every unread field marked."""
    data_start = layout.desc_off + 24 * layout.nr_dumped
    cut = int(data_start + fraction * (layout.size - data_start)) + 100
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", size=cut), vmlinux_path)
    assert result.status == 0, result.err
    assert result.field("TASKS") == "0  [DAMAGED]"
    assert result.field("RELEASE") == "(unavailable)"
    assert result.field("PANIC") == '""  [DAMAGED]'
    assert "dumped pages are not in the file" in result.warnings[0]
    assert len(result.warnings) <= 21


# --- header fields out of range -------------------------------------------------------------

@pytest.mark.parametrize("offset,value,match", [
    (428, struct.pack("<i", 0), "bad kdump block_size 0"),
    (428, struct.pack("<i", 1 << 30), "bad kdump block_size 1073741824"),
    (432, struct.pack("<i", 1 << 30), "sub header .* extends past the end of the file"),
    (432, struct.pack("<i", -3), "bad kdump sub_hdr_size -3"),
    (436, struct.pack("<I", 0xFFFFFFFF), "bitmap .* extends past the end"),
    (440, struct.pack("<I", 0xFFFFFFFF), None),  # 32-bit max_mapnr: v6 uses the 64-bit one
    (4096 + 96, struct.pack("<Q", 1 << 62), "max_mapnr 4611686018427387904 exceeds"),
    (4096 + 88, struct.pack("<Q", 1 << 62), None),  # end_pfn_64 only matters when split
    (4096 + 40, struct.pack("<Q", 1 << 50), "VMCOREINFO area .* lies outside the file"),
    (4096 + 56, struct.pack("<Q", 1 << 50), "note area .* lies outside the file"),
    (8, struct.pack("<i", -1), "bad kdump header_version -1"),
])
def test_header_field_out_of_range(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                                   reference: CliResult, offset: int, value: bytes,
                                   match: str | None) -> None:
    path = copy_with(sysrq_dump, tmp_path / "dump", {offset: value})
    result = sys_of(path, vmlinux_path)
    if match is None:
        assert result.status == 0 and result.field("TASKS") == reference.field("TASKS")
    else:
        assert re.search(match, one_line_error(result))


def test_header_nr_cpus_huge(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                             reference: CliResult) -> None:
    """The header's nr_cpus is only a fallback: the kernel's own nr_cpu_ids wins."""
    path = copy_with(sysrq_dump, tmp_path / "dump", {424 + 36: struct.pack("<i", 1 << 30)})
    result = sys_of(path, vmlinux_path)
    assert result.status == 0 and result.field("CPUS") == reference.field("CPUS")


# --- damaged page descriptors and pages (local damage) --------------------------------------

def _task_page_damaged(result: CliResult, reference: CliResult) -> None:
    assert_partial(result, reference, ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "RELEASE",
                                       "VERSION", "MACHINE", "MEMORY", "PANIC", "NODENAME"))
    assert result.field("TASKS") == "77  [DAMAGED]"
    assert any(w.startswith("TASKS: ") and f"pfn {TASK_PFN:#x}" in w for w in result.warnings), \
        result.warnings


def test_descriptor_past_the_end(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                 vmlinux_path: Path, reference: CliResult) -> None:
    _off, size, flags = layout.descriptor(sysrq_dump, TASK_PFN)
    patch = {layout.desc_pos(TASK_PFN): struct.pack("<qII", layout.size + 4096, size, flags)}
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patch), vmlinux_path)
    _task_page_damaged(result, reference)
    assert any("past the end of the file" in w for w in result.warnings)


def test_descriptors_overlapping(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                 vmlinux_path: Path, reference: CliResult) -> None:
    """The task page's descriptor points into the middle of the next page's data."""
    offset, size, flags = layout.descriptor(sysrq_dump, TASK_PFN + 1)
    patch = {layout.desc_pos(TASK_PFN): struct.pack("<qII", offset + 16, size - 16, flags)}
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patch), vmlinux_path)
    _task_page_damaged(result, reference)
    assert any("zlib data does not decompress" in w for w in result.warnings)


def test_descriptor_flags_unknown(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                  vmlinux_path: Path, reference: CliResult) -> None:
    offset, size, _flags = layout.descriptor(sysrq_dump, TASK_PFN)
    patch = {layout.desc_pos(TASK_PFN): struct.pack("<qII", offset, size, 0x40)}
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patch), vmlinux_path)
    _task_page_damaged(result, reference)


def test_corrupted_compressed_page(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                   vmlinux_path: Path, reference: CliResult) -> None:
    """The zlib stream of the page holding a task_struct is overwritten with garbage."""
    offset, size, flags = layout.descriptor(sysrq_dump, TASK_PFN)
    assert flags == 1
    patch = {offset + 2: bytes((i * 37) & 0xFF for i in range(size - 2))}
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patch), vmlinux_path)
    _task_page_damaged(result, reference)


def test_rewritten_page_of_zeros(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                                 reference: CliResult) -> None:
    """A page that decodes fine but holds zeros where a task was: the list walk notices."""
    path = copy_with(sysrq_dump, tmp_path / "dump")
    rewrite_pages(path, {TASK_PFN: bytes(4096)})
    result = sys_of(path, vmlinux_path)
    assert result.status == 0
    assert result.field("TASKS").endswith("  [DAMAGED]")
    assert int(result.field("TASKS").split()[0]) >= 76
    assert any("list" in w for w in result.warnings), result.warnings


# --- the incomplete flag --------------------------------------------------------------------

def test_incomplete_dump(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                         vmlinux_path: Path, reference: CliResult) -> None:
    """What makedumpfile leaves on a full disk: status INCOMPLETE, the descriptors of the
    pages it never wrote zeroed, the file ending early."""
    cut = layout.size - 300_000
    raw = sysrq_dump.read_bytes()[:cut]
    table = bytearray(raw[layout.desc_off:layout.desc_off + 24 * layout.nr_dumped])
    for i in range(layout.nr_dumped):
        offset, size, _f, _p = struct.unpack_from("<qIIQ", table, 24 * i)
        if offset + size > cut:
            table[24 * i:24 * i + 24] = bytes(24)
    status = struct.unpack_from("<I", raw, 424)[0] | 0x8
    path = copy_with(sysrq_dump, tmp_path / "dump", {424: struct.pack("<I", status),
                                                     layout.desc_off: bytes(table)}, size=None)
    with path.open("r+b") as f:
        f.truncate(cut)
    result = sys_of(path, vmlinux_path)
    assert_partial(result, reference, ("CPUS", "RELEASE", "VERSION", "MEMORY", "PANIC"))
    assert result.field("DUMPFILE") == f"{path}  [PARTIAL DUMP]  [INCOMPLETE]"
    assert result.warnings[0].startswith("the dump is incomplete: the capture stopped early")
    assert "dumped pages are not in the file" in result.warnings[1]
    assert result.field("TASKS").endswith("[DAMAGED]")
    assert any("is not in the dump" in w for w in result.warnings), result.warnings


def test_incomplete_flag_alone(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                               reference: CliResult) -> None:
    """The flag on a whole file: everything reads, the summary still says INCOMPLETE."""
    status = struct.unpack_from("<I", sysrq_dump.read_bytes()[:428], 424)[0] | 0x8
    path = copy_with(sysrq_dump, tmp_path / "dump", {424: struct.pack("<I", status)})
    result = sys_of(path, vmlinux_path)
    assert_partial(result, reference, ("CPUS", "TASKS", "RELEASE", "MEMORY", "PANIC"))
    assert result.field("DUMPFILE").endswith("[INCOMPLETE]")


# --- VMCOREINFO missing or garbled ----------------------------------------------------------

def _vmcoreinfo_text(path: Path, layout: KdumpLayout) -> int:
    """File offset of the VMCOREINFO text (makedumpfile's area is the note's descriptor)."""
    head = path.read_bytes()[:layout.bitmap_off]
    starts = [m.start() for m in re.finditer(rb"OSRELEASE=", head)]
    assert starts == [layout.vmcoreinfo_off], starts
    assert layout.note_off < starts[0] < layout.note_off + layout.note_size
    return starts[0]


def test_vmcoreinfo_missing(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path) -> None:
    path = copy_with(sysrq_dump, tmp_path / "dump", {4096 + 32: bytes(32)})
    line = one_line_error(sys_of(path, vmlinux_path))
    assert line == f"crashtui: {path}: the dump carries no VMCOREINFO; cannot locate the kernel"


def _noise(n: int) -> bytes:
    return bytes((i * 91 + 7) % 251 + 1 for i in range(n)).replace(b"=", b"#")


def test_vmcoreinfo_garbled(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                            vmlinux_path: Path) -> None:
    at = _vmcoreinfo_text(sysrq_dump, layout)
    path = copy_with(sysrq_dump, tmp_path / "dump", {at: _noise(layout.vmcoreinfo_size)})
    assert one_line_error(sys_of(path, vmlinux_path)).endswith(
        "the dump's VMCOREINFO is damaged (no OSRELEASE= or SYMBOL() lines); cannot locate "
        "the kernel")


def test_vmcoreinfo_partly_garbled(sysrq_dump: Path, layout: KdumpLayout, tmp_path: Path,
                                   vmlinux_path: Path, reference: CliResult) -> None:
    """The first 3000 bytes are noise, the last lines (init_top_pgt, KERNELOFFSET) survive:
    what needs the lost lines is marked, the rest is right."""
    at = _vmcoreinfo_text(sysrq_dump, layout)
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", {at: _noise(3000)}), vmlinux_path)
    assert_partial(result, reference, ("CPUS", "DATE", "UPTIME", "TASKS", "RELEASE", "VERSION",
                                       "MACHINE"))
    assert result.field("MEMORY") == "(unavailable)"
    assert result.field("PANIC") == '""  [DAMAGED]'
    assert "log: VMCOREINFO lacks OFFSET(prb_desc.text_blk_lpos)" in result.warnings


def test_vmcoreinfo_area_pointer_garbled(sysrq_dump: Path, layout: KdumpLayout,
                                         tmp_path: Path, vmlinux_path: Path,
                                         reference: CliResult) -> None:
    """offset_vmcoreinfo points at bitmap bytes: the VMCOREINFO note is used instead."""
    patch = {layout.block_size + 32: struct.pack("<q", layout.bitmap_off)}
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patch), vmlinux_path)
    assert_partial(result, reference, ("CPUS", "TASKS", "RELEASE", "MEMORY", "PANIC"))
    assert not result.warnings


@pytest.mark.parametrize("damage", [b"KERNELOFFSET=zzzzzzzz", b"XXXXXXXXXXXXXXXXXXXXX"])
def test_vmcoreinfo_kerneloffset_unreadable(sysrq_dump: Path, tmp_path: Path,
                                            vmlinux_path: Path, reference: CliResult,
                                            damage: bytes) -> None:
    """KASLR comes from SYMBOL(_stext) then: the summary is the real one."""
    raw = sysrq_dump.read_bytes()[:3 * 4096]
    patches = {m.start(): damage for m in re.finditer(rb"KERNELOFFSET=1e600000", raw)}
    assert len(patches) == 1
    result = sys_of(copy_with(sysrq_dump, tmp_path / "dump", patches), vmlinux_path)
    assert result.out == reference.out.replace(str(reference.field("DUMPFILE")).split()[0],
                                               str(tmp_path / "dump"))


def test_vmcoreinfo_kerneloffset_wrong(sysrq_dump: Path, tmp_path: Path,
                                       vmlinux_path: Path) -> None:
    """A wrong KASLR offset would make every symbol wrong: refused, not shown as garbage."""
    raw = sysrq_dump.read_bytes()[:3 * 4096]
    patches = {m.start(): b"KERNELOFFSET=1e400000" for m in
               re.finditer(rb"KERNELOFFSET=1e600000", raw)}
    line = one_line_error(sys_of(copy_with(sysrq_dump, tmp_path / "dump", patches),
                                 vmlinux_path))
    assert "vmlinux does not match the dump's memory: linux_banner reads" in line
    assert "damaged KERNELOFFSET" in line


# --- ELF vmcores ----------------------------------------------------------------------------

def _phdr(i: int) -> int:
    return 64 + 56 * i


def test_elf_program_headers_overlapping(sysrq_elf_vmcore: Path, tmp_path: Path,
                                         vmlinux_path: Path) -> None:
    head = sysrq_elf_vmcore.read_bytes()[:0x1000]
    offset2 = struct.unpack_from("<Q", head, _phdr(2) + 8)[0]
    path = copy_with(sysrq_elf_vmcore, tmp_path / "vmcore",
                     {_phdr(3) + 8: struct.pack("<Q", offset2 + 0x1000)})
    line = one_line_error(sys_of(path, vmlinux_path))
    assert re.search(r"damaged ELF program headers: PT_LOADs for physical 0x24003000 and "
                     r"0x1000 share file bytes", line), line


def test_elf_truncated_in_memory(sysrq_elf_vmcore: Path, tmp_path: Path, vmlinux_path: Path,
                                 reference: CliResult) -> None:
    """An ELF vmcore cut at 90%: opens like crash does, says how much memory is lost."""
    size = sysrq_elf_vmcore.stat().st_size
    path = copy_with(sysrq_elf_vmcore, tmp_path / "vmcore", size=size * 9 // 10)
    result = sys_of(path, vmlinux_path)
    assert_partial(result, reference, ("RELEASE", "VERSION", "MACHINE"))
    assert "dumped pages are not in the file" in result.warnings[0]


def test_elf_cut_before_memory(sysrq_elf_vmcore: Path, tmp_path: Path,
                               vmlinux_path: Path) -> None:
    path = copy_with(sysrq_elf_vmcore, tmp_path / "vmcore", size=0x16ac)
    assert "ends before the first memory segment" in one_line_error(sys_of(path, vmlinux_path))


def test_elf_notes_cut(sysrq_elf_vmcore: Path, tmp_path: Path, vmlinux_path: Path) -> None:
    path = copy_with(sysrq_elf_vmcore, tmp_path / "vmcore", size=0x800)
    assert re.search(r"ELF segment 0 \(PT_NOTE at 0x430\+0x127c\) extends past the end",
                     one_line_error(sys_of(path, vmlinux_path)))


# --- the wrong vmlinux ----------------------------------------------------------------------

def tiny_vmlinux(path: Path, build_id: bytes | None, banner: bytes) -> Path:
    """A small x86-64 ELF executable with a GNU build-id note and a linux_banner in .rodata."""
    def note(name: bytes, ntype: int, desc: bytes) -> bytes:
        pad = (-len(name) - 1) % 4
        return struct.pack("<III", len(name) + 1, len(desc), ntype) + name + b"\0" * (pad + 1) + desc

    notes = note(b"GNU", 3, build_id) if build_id else b""
    rodata = b"\0" * 64 + banner + b"\0" * 64
    shstr = b"\0.notes\0.rodata\0.shstrtab\0"
    body = notes + rodata + shstr
    shoff = 64 + len(body)
    shoff += (-shoff) % 8
    ehdr = (b"\x7fELF\x02\x01\x01" + b"\0" * 9
            + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0xFFFFFFFF81000000, 0, shoff, 0, 64, 56,
                          0, 64, 4, 3))
    def shdr(name: int, stype: int, flags: int, addr: int, off: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, stype, flags, addr, off, size, 0, 0, 4, 0)
    sections = (shdr(0, 0, 0, 0, 0, 0)
                + shdr(1, 7, 2, 0xFFFFFFFF81000000, 64, len(notes))
                + shdr(8, 1, 2, 0xFFFFFFFF82000000, 64 + len(notes), len(rodata))
                + shdr(16, 3, 0, 0, 64 + len(notes) + len(rodata), len(shstr)))
    data = ehdr + body
    path.write_bytes(data + b"\0" * (shoff - len(data)) + sections)
    return path


OTHER_BANNER = (b"Linux version 5.10.0-99-amd64 (debian-kernel@lists.debian.org) (gcc 10) "
                b"#1 SMP Debian 5.10.999-1 (2025-01-01)\n")


def test_vmlinux_of_another_kernel_build_id(sysrq_dump: Path, tmp_path: Path) -> None:
    vm = tiny_vmlinux(tmp_path / "vmlinux", bytes(range(20)), OTHER_BANNER)
    line = one_line_error(sys_of(sysrq_dump, vm))
    assert line.startswith(f"crashtui: {vm}: vmlinux is for kernel 5.10.0-99-amd64 (build-id "
                           "000102030405060708090a0b0c0d0e0f10111213), but the dump ")
    assert line.endswith(f"is of kernel {RELEASE} (build-id "
                         "3b43fad5034874490492495d552c0af6a5fab235)")


def test_vmlinux_of_another_kernel_banner_only(sysrq_dump: Path, tmp_path: Path) -> None:
    vm = tiny_vmlinux(tmp_path / "vmlinux", None, OTHER_BANNER)
    assert "vmlinux is for kernel 5.10.0-99-amd64 (build-id None)" in one_line_error(
        sys_of(sysrq_dump, vm))


def test_vmlinux_is_a_module(sysrq_dump: Path, testmod_ko: Path) -> None:
    assert one_line_error(sys_of(sysrq_dump, testmod_ko)) == (
        f"crashtui: {testmod_ko}: is a relocatable object (a kernel module?), not a vmlinux")


def test_vmlinux_is_another_program(sysrq_dump: Path, tmp_path: Path) -> None:
    """Some other x86-64 executable (this Python): no kernel banner, no matching build-id."""
    exe = Path(shutil.which("python3") or "/usr/bin/python3").resolve()
    line = one_line_error(sys_of(sysrq_dump, exe))
    assert line.startswith(f"crashtui: {exe}: ")


@pytest.mark.parametrize("kind", ["empty", "text", "directory", "missing"])
def test_vmlinux_not_an_elf(sysrq_dump: Path, tmp_path: Path, kind: str) -> None:
    vm = tmp_path / "vmlinux"
    expected = {"empty": "empty file, not an ELF image", "text": "not an ELF file",
                "directory": "vmlinux is a directory, not a file",
                "missing": "vmlinux not found"}[kind]
    if kind == "empty":
        vm.write_bytes(b"")
    elif kind == "text":
        vm.write_text("#!/bin/sh\necho not a kernel\n")
    elif kind == "directory":
        vm.mkdir()
    assert one_line_error(sys_of(sysrq_dump, vm)) == f"crashtui: {vm}: {expected}"


# --- a .ko of another kernel ----------------------------------------------------------------

def test_module_of_another_kernel(testmod_dump: Path, testmod_ko: Path, tmp_path: Path,
                                  vmlinux_path: Path) -> None:
    """The .ko's vermagic names another release: refused in one line, the rest goes on."""
    raw = bytearray(testmod_ko.read_bytes())
    at = raw.index(b"vermagic=" + RELEASE.encode())
    other = b"vermagic=" + b"5.10.0-99-amd64".ljust(len(RELEASE), b"x")
    raw[at:at + len(other)] = other
    moddir = tmp_path / "modules"
    moddir.mkdir()
    (moddir / testmod_ko.name).write_bytes(bytes(raw))
    result = cli(testmod_dump, vmlinux_path, "--modules", moddir, "-c", "sys")
    assert result.status == 0, result.err
    assert result.field("RELEASE") == RELEASE
    err = result.err.strip().splitlines()
    assert err == [f"crashtui: {moddir / testmod_ko.name}: was built for kernel "
                   f"5.10.0-99-amd64xxxxx, but the dump is of kernel {RELEASE}"], err


# --- kernel memory damaged where the kernel model starts ------------------------------------

@pytest.mark.parametrize("delta", [0x1000, -0x200000, 1 << 30, -(1 << 30) + 0x100000])
def test_page_offset_base_damaged(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                                  reference: CliResult, delta: int) -> None:
    """A damaged page_offset_base (the real one moved by `delta`) is not trusted as the
    direct map: the page tables are walked instead and the summary is the real one."""
    from crashtui.kernel.program import Kernel

    path = copy_with(sysrq_dump, tmp_path / "dump")
    kernel = Kernel.open(sysrq_dump, vmlinux_path)
    try:
        at = kernel.symbol("page_offset_base")
        plant(path, kernel, at, struct.pack("<Q", kernel.read_u64(at) + delta))
    finally:
        kernel.close()
    result = sys_of(path, vmlinux_path)
    assert result.out == reference.out.replace(str(sysrq_dump), str(path))


def test_log_record_damaged_in_the_file(sysrq_dump: Path, tmp_path: Path,
                                        vmlinux_path: Path) -> None:
    """One printk descriptor's text position is garbage in the file: `log` prints every
    other record and a marker in its place; `sys` still finds the panic message."""
    from crashtui.kernel.printk import read_log
    from crashtui.kernel.program import Kernel

    path = copy_with(sysrq_dump, tmp_path / "dump")
    kernel = Kernel.open(sysrq_dump, vmlinux_path)
    try:
        records = read_log(kernel).records
        victim = records[200]
        prb = kernel.read_u64(kernel.vmcoreinfo.symbols["prb"])
        count_bits, descs = kernel.read_u32(prb), kernel.read_u64(prb + 8)
        slot = victim.seq & ((1 << count_bits) - 1)
        plant(path, kernel, descs + slot * 24 + 8, struct.pack("<QQ", 0x100, 0x10))
    finally:
        kernel.close()
    reference = cli(sysrq_dump, vmlinux_path, "-c", "log").lines
    result = cli(path, vmlinux_path, "-c", "log", "-c", "sys")
    assert result.status == 0
    at = reference.index(victim.lines()[0])
    assert result.lines[:at] == reference[:at]
    assert result.lines[at] == (f"{victim.timestamp} <damaged log record: text block position "
                                "0x100..0x10 is invalid>")
    rest = reference[at + len(victim.lines()):]
    assert result.lines[at + 1:at + 1 + len(rest)] == rest
    assert result.field("PANIC") == '"Kernel panic - not syncing: sysrq triggered crash"'
    assert "log: 1 damaged record(s), marked in place" in result.warnings


@pytest.mark.parametrize("machine,refused", [(b"riscv64", True), (b"\xff\x1b[2J\x01", False),
                                             (b"", False)])
def test_header_machine(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                        reference: CliResult, machine: bytes, refused: bool) -> None:
    """Another architecture is refused; a damaged machine field in the header is ignored."""
    path = copy_with(sysrq_dump, tmp_path / "dump", {12 + 4 * 65: machine.ljust(65, b"\0")})
    result = sys_of(path, vmlinux_path)
    if refused:
        assert one_line_error(result).endswith(
            "the dump is of a riscv64 kernel; crashtui supports x86_64 and arm64")
    else:
        assert result.out == reference.out.replace(str(sysrq_dump), str(path))


# --- flattened streams cut short (an interrupted `makedumpfile -F | ssh ...`) ----------------

def _stream(raw: bytes, path: Path, skip: frozenset[int] = frozenset(),
            cut: int | None = None) -> Path:
    """The dump as an in-order flattened stream of 64 KiB records, some left out, cut."""
    from dumpfile_fixtures import flatten

    chunk = 1 << 16
    records = [(o, raw[o:o + chunk]) for o in range(0, len(raw), chunk) if o // chunk not in skip]
    flatten(b"", path, extra=records)
    if cut is not None:
        with path.open("r+b") as f:
            f.truncate(cut)
    return path


def test_flattened_stream_cut_short(sysrq_dump: Path, tmp_path: Path, vmlinux_path: Path,
                                    reference: CliResult) -> None:
    raw = sysrq_dump.read_bytes()
    path = _stream(raw, tmp_path / "flat", cut=int(len(raw) * 0.95))
    result = sys_of(path, vmlinux_path)
    assert_partial(result, reference, ("CPUS", "RELEASE", "VERSION", "MACHINE", "PANIC"))
    assert "dumped pages are not in the file" in result.warnings[0]


def test_flattened_stream_with_a_record_missing(sysrq_dump: Path, layout: KdumpLayout,
                                                tmp_path: Path, vmlinux_path: Path,
                                                reference: CliResult) -> None:
    """A record of page data never arrived: its pages are lost (and said so), not zeros."""
    from crashtui.dumpfile import open_dump
    from crashtui.errors import DumpCorruptError

    raw = sysrq_dump.read_bytes()
    offset, size, _flags = layout.descriptor(sysrq_dump, TASK_PFN)
    path = _stream(raw, tmp_path / "flat", skip=frozenset({offset >> 16}))
    with open_dump(path) as dump:
        assert dump.info.lost_pages > 0
        with pytest.raises(DumpCorruptError, match="in no record of the flattened stream"):
            dump.read_phys(TASK_PFN * 4096, 8)
    result = sys_of(path, vmlinux_path)
    assert result.status == 0
    assert result.field("TASKS").endswith("[DAMAGED]")
    assert any("in no record of the flattened stream" in w for w in result.warnings)
