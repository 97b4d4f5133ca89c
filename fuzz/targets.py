"""Fuzz targets over crashtui's parsers, seeded from the real sample dumps.

Each target takes bytes and may raise only CrashtuiError: any other exception (or a hang) is
a finding. The bytes are read as an edit script (which bytes of the real dump to change and
where to cut it) for the file parsers, and as the raw input for the note, VMCOREINFO and
printk record parsers, so random bytes from atheris or hypothesis both mean something.
"""

from __future__ import annotations

import functools
import lzma
import mmap
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from crashtui.dumpfile.base import DumpFile
from crashtui.dumpfile.elfcore import ElfDumpFile
from crashtui.dumpfile.flattened import FlattenedSource
from crashtui.dumpfile.kdump import KdumpFile
from crashtui.dumpfile.notes import parse_notes, pick_vmcoreinfo
from crashtui.errors import CrashtuiError
from crashtui.kernel import printk
from crashtui.kernel.vmcoreinfo import VmcoreInfo

ROOT = Path(__file__).resolve().parent.parent
SYSRQ = ROOT / "sample-dumps" / "6.1-sysrq"
FAKE_PATH = Path("<fuzz>")
ELF_HEAD = 64 << 10  # bytes of the ELF vmcore used: headers, notes and the first pages


class Draw:
    """Consume a fuzz input as little-endian integers and byte strings (zeros past the end)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.data)

    def bytes(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self, n: int) -> int:
        return int.from_bytes(self.bytes(n).ljust(n, b"\0"), "little")


class PatchedSource:
    """A ByteSource: the real bytes, cut to `size`, with patches laid over them."""

    def __init__(self, base: bytes | mmap.mmap, patches: list[tuple[int, bytes]],
                 size: int) -> None:
        self._base = base
        self._patches = patches
        self.size = self.stored = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        out = bytearray(self._base[offset:end])
        for at, raw in self._patches:
            lo, hi = max(at, offset), min(at + len(raw), end)
            if lo < hi:
                out[lo - offset:hi - offset] = raw[lo - at:hi - at]
        return bytes(out)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Region:
    """A part of a real file worth damaging."""

    name: str
    start: int
    length: int


@dataclass(frozen=True)
class KdumpSeed:
    """The real kdump file mapped, and where its parts are."""

    data: mmap.mmap
    regions: tuple[Region, ...]
    present: tuple[int, ...]  # the first dumped pfns
    cut_points: tuple[int, ...]


@functools.cache
def kdump_seed() -> KdumpSeed:
    """The sysrq dump and the regions of it the kdump target damages."""
    path = next(SYSRQ.glob("dump.*"))
    with path.open("rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    _status, bs, sub_blocks, bitmap_blocks = struct.unpack_from("<IiiI", data, 424)
    off_vmci, size_vmci, off_note, size_note = struct.unpack_from("<qQqQ", data, bs + 32)
    bitmap_off = bs * (1 + sub_blocks)
    bitmap_len = bs * bitmap_blocks
    desc_off = bitmap_off + bitmap_len
    dump = open_kdump(data, [], len(data))
    with dump:
        present = tuple(p for p in range(4096) if dump.is_present(p))[:32]
        nr = dump._nr_dumped  # noqa: SLF001 - the seed needs the real layout
        first_data = struct.unpack_from("<q", data, desc_off)[0]
    regions = (
        Region("header", 0, 464), Region("sub_header", bs, 104),
        Region("notes", off_note, size_note), Region("vmcoreinfo", off_vmci, size_vmci),
        Region("bitmap1", bitmap_off, bitmap_len // 2),
        Region("bitmap2", bitmap_off + bitmap_len // 2, bitmap_len // 2),
        Region("first_descriptors", desc_off, 24 * 32), Region("descriptors", desc_off, 24 * nr),
        Region("first_pages", first_data, 32 * bs),
    )
    cuts = (100, bs + 50, off_note + size_note // 2, bitmap_off + 100, desc_off + 100,
            desc_off + 24 * nr + 10, first_data + 5000, len(data) // 2, len(data) - 1000)
    return KdumpSeed(data, regions, present, cuts)


def open_kdump(base: bytes | mmap.mmap, patches: list[tuple[int, bytes]],
               size: int) -> KdumpFile:
    return KdumpFile(FAKE_PATH, PatchedSource(base, patches, size))


def _script(d: Draw, regions: tuple[Region, ...], cuts: tuple[int, ...],
            full: int) -> tuple[list[tuple[int, bytes]], int]:
    """Patches (region-relative offsets, 1-16 bytes each) and the file size to cut to."""
    choice = d.int(1)
    size = full if choice < 192 else cuts[choice % len(cuts)] if choice < 240 else \
        d.int(4) % (full + 1)
    patches: list[tuple[int, bytes]] = []
    while d.more() and len(patches) < 16:
        region = regions[d.int(1) % len(regions)]
        at = region.start + d.int(3) % max(1, region.length)
        raw = d.bytes(1 + d.int(1) % 16)
        if raw:
            patches.append((at, raw))
    return patches, size


def _exercise(dump: DumpFile, pfns: Iterator[int]) -> None:
    """Touch what the kernel layer uses: info, notes, VMCOREINFO and a few pages."""
    _ = (dump.info, dump.notes, repr(dump))
    VmcoreInfo.parse(dump.vmcoreinfo or "")
    ps = dump.info.page_size
    for pfn in pfns:
        try:
            dump.is_present(pfn)
            assert len(dump.read_phys(pfn * ps, 64)) == 64
            dump.read_phys(pfn * ps + ps - 8, 16)  # across a page boundary
        except CrashtuiError:
            pass


def target_kdump(data: bytes) -> None:
    """Header, sub header, notes, VMCOREINFO, bitmaps, descriptors, page data of a kdump."""
    seed = kdump_seed()
    d = Draw(data)
    patches, size = _script(d, seed.regions, seed.cut_points, len(seed.data))
    try:
        dump = open_kdump(seed.data, patches, size)
    except CrashtuiError:
        return
    with dump:
        extra = d.int(3) % max(1, dump.info.max_pfn + 2)
        _exercise(dump, iter((*seed.present[:6], extra)))


@functools.cache
def elf_seed() -> tuple[bytes, tuple[Region, ...]]:
    """The first 64 KiB of the sysrq ELF vmcore (headers, notes, first pages)."""
    src = next(SYSRQ.glob("vmcore-d31.elf.*.xz"))
    with lzma.open(src) as f:
        head = f.read(ELF_HEAD)
    phoff, = struct.unpack_from("<Q", head, 32)
    phnum, = struct.unpack_from("<H", head, 56)
    _t, _f, note_off, _v, _p, note_size, _m, _a = struct.unpack_from("<IIQQQQQQ", head, phoff)
    regions = (Region("ehdr", 0, 64), Region("phdrs", phoff, 56 * phnum),
               Region("first_phdrs", phoff, 56 * 3), Region("notes", note_off, note_size),
               Region("data", note_off + note_size, 8192))
    return head, regions


def target_elf(data: bytes) -> None:
    """ELF header, program headers (PT_LOAD/PT_NOTE) and notes of an ELF vmcore."""
    head, regions = elf_seed()
    d = Draw(data)
    cuts = (40, 64 + 56 * 2, regions[3].start + 100, regions[4].start, regions[4].start + 5000)
    patches, size = _script(d, regions, cuts, len(head))
    try:
        dump = ElfDumpFile(FAKE_PATH, PatchedSource(head, patches, size))  # type: ignore[arg-type]
    except CrashtuiError:
        return
    with dump:
        start = 0x21a00000 // dump.info.page_size
        _exercise(dump, iter((0, 1, start, start + 1, d.int(3))))


def flattened_seed() -> bytes:
    """The real kdump header and sub header as a flattened stream, records out of order."""
    raw = kdump_seed().data[:3 * 4096]
    out = bytearray()
    for off in (8192, 4096, 0):
        out += struct.pack(">qq", off, 4096) + raw[off:off + 4096]
    return bytes(out + struct.pack(">qq", -1, -1))


def target_flattened(data: bytes) -> None:
    """The flattened record index, then the kdump parser on the file it describes."""
    head = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    stream = head.ljust(4096, b"\0") + data
    base = PatchedSource(stream, [], len(stream))
    src = FlattenedSource.__new__(FlattenedSource)
    src.path, src._src, src._mm = FAKE_PATH, base, stream  # type: ignore[assignment]  # noqa: SLF001
    src._starts, src._ends, src._filepos = array("q"), array("q"), array("q")  # noqa: SLF001
    src.cut_at = None
    try:
        src._index()  # noqa: SLF001
        src.size = src._ends[-1] if src._ends else 0  # noqa: SLF001
        src.stored = sum(e - s for s, e in zip(src._starts, src._ends, strict=True))  # noqa: SLF001
        assert len(src.read(0, 100)) == min(100, src.size)
        dump = KdumpFile(FAKE_PATH, src, "flattened")
    except CrashtuiError:
        return
    with dump:
        _exercise(dump, iter(range(1, 4)))


def notes_seed() -> bytes:
    seed = kdump_seed()
    note = next(r for r in seed.regions if r.name == "notes")
    return bytes(seed.data[note.start:note.start + note.length])


def target_notes(data: bytes) -> None:
    """An ELF note area (Elf64_Nhdr records) and the VMCOREINFO picked from it."""
    notes = parse_notes(data)
    text = pick_vmcoreinfo(None, notes)
    VmcoreInfo.parse(text or "")


def vmcoreinfo_seed() -> bytes:
    seed = kdump_seed()
    area = next(r for r in seed.regions if r.name == "vmcoreinfo")
    return bytes(seed.data[area.start:area.start + area.length])


def target_vmcoreinfo(data: bytes) -> None:
    """VMCOREINFO text: the parser, its typed properties and the printk layout from it."""
    info = VmcoreInfo.parse(data.decode("utf-8", "replace"))
    _ = (info.osrelease, info.build_id, info.page_size, info.kerneloffset, info.phys_base,
         info.crashtime, info.pgtable_l5)
    try:
        printk.RingLayout.from_vmcoreinfo(info)
    except CrashtuiError:
        pass


@functools.cache
def printk_seed() -> bytes:
    """Sixteen real records of the sysrq dump repacked into a 16-slot, 4 KiB ring."""
    from crashtui.dumpfile.kdump import KdumpFile
    from crashtui.kernel.program import Kernel

    dump = KdumpFile(FAKE_PATH, PatchedSource(kdump_seed().data, [], len(kdump_seed().data)))
    kernel = Kernel(dump, None)
    log = printk.read_log(kernel)
    layout = printk.RingLayout.from_vmcoreinfo(kernel.vmcoreinfo)
    records = log.records[-16:]
    count, size = 16, 4096
    descs, infos, text = bytearray(24 * count), bytearray(88 * count), bytearray(size)
    pos = 0
    ids = []
    for rec in records:
        raw = rec.text.encode()[:200]
        id_ = rec.seq  # ids are congruent to seqs modulo the ring size
        idx = id_ % count
        blk = (8 + len(raw) + 7) & ~7
        if pos + blk > size:
            break
        struct.pack_into("<Q", text, pos, id_)
        text[pos + 8:pos + 8 + len(raw)] = raw
        struct.pack_into("<QQQ", descs, idx * 24, (2 << 62) | id_, pos, pos + blk)
        struct.pack_into("<QQ", infos, idx * 88 + layout.seq, rec.seq, rec.timestamp_ns)
        struct.pack_into("<H", infos, idx * 88 + layout.text_len, len(raw))
        struct.pack_into("<I", infos, idx * 88 + layout.caller_id, rec.caller_id)
        ids.append(id_)
        pos += blk
    kernel.close()
    return bytes([4, 12]) + struct.pack("<QQ", ids[0], ids[-1]) + descs + infos + text


def target_printk(data: bytes) -> None:
    """The printk record decoder over a small ring (descriptors, infos, text blocks)."""
    d = Draw(data)
    count_bits = d.int(1) % 8
    size_bits = d.int(1) % 16
    tail, head = d.int(8), d.int(8)
    count = 1 << count_bits
    layout = printk.RingLayout(24, 88, 0, 8, 16, 0, 8, 16, 20)
    ring = printk.Ring(count_bits, size_bits, tail, head, d.bytes(24 * count).ljust(24 * count),
                       d.bytes(88 * count).ljust(88 * count), d.bytes(1 << size_bits))
    try:
        log = printk.decode_ring(layout, ring)
    except CrashtuiError:
        return
    log.lines()




def seeds(name: str) -> list[bytes]:
    """Starting inputs for a target: the real structures, unchanged and lightly damaged."""
    if name in ("kdump", "elf"):
        return [b"\0", b"\0" + bytes([0, 0, 0, 4]) + b"\xff" * 4, bytes([200]),
                bytes([250, 0, 0, 1, 0])]
    if name == "flattened":
        return [flattened_seed()]
    if name == "notes":
        return [notes_seed()]
    if name == "vmcoreinfo":
        return [vmcoreinfo_seed()]
    if name == "printk":
        return [printk_seed()]
    if name == "memory":
        return [b"\0", bytes([2, 9, 0, 0, 200, 7]) + b"\xff" * 8, bytes([3, 0, 4, 0, 20, 3, 0])]
    if name == "kmem":
        return [b"", bytes([0, 8, 0, 200]) + b"\xff" * 8, bytes([2, 0, 1, 200, 3]) + b"\x12" * 4]
    if name == "vmcoreinfo_values":
        return [b"\0" * 12, bytes([0, 9, 0]) + b"\xff" * 8 + b"\0", bytes([1, 40, 0]) + b"\x7f" * 9]
    if name == "triage":
        return [log_seed(), log_seed().replace(b"Kernel panic", b"BUG: stack " * 40 + b"Kernel panic")]
    if name == "btf":
        return [b"", bytes([0, 3, 0]) + b"\0\0\0\0", bytes([0, 8, 0]) + b"\xc0\0\0\0"]
    if name == "ko":
        return [b"\0", bytes([0, 0, 0, 4]) + b"\xff" * 4, bytes([200]), bytes([250, 1, 0, 1, 0])]
    raise KeyError(name)


# --- kernel memory: the kernel model and the commands over a real dump with damaged memory ------

@dataclass
class KernelSeed:
    """A Kernel over the sysrq dump with its vmlinux, and the memory worth damaging."""

    kernel: object
    pristine: dict[str, object]
    windows: list[tuple[str, int, int]]  # (what, virtual address, length)


def find_vmlinux() -> Path | None:
    """The sample dumps' debug vmlinux where the tests keep it, if it is there."""
    import os

    env = os.environ.get("CRASHTUI_TEST_CACHE")
    cache = Path(env) if env else Path.home() / ".cache" / "crashtui-tests"
    found = sorted((cache / "vmlinux").glob("3b43fad5*/vmlinux-*"))
    return found[0] if found else None


@functools.cache
def kernel_seed() -> KernelSeed:
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.tasks import TaskReader, current_task

    vmlinux = find_vmlinux()
    if vmlinux is None:
        raise RuntimeError("the memory target needs the sample dumps' vmlinux (run the tests once)")
    k = Kernel.open(next(SYSRQ.glob("dump.*")), vmlinux)
    _ = (k.btf, k.symbol("init_task"))
    pristine = dict(k.__dict__)
    sym = k.symbol
    reader = TaskReader(k)
    windows = [(name, sym(name), size) for name, size in (
        ("tick_nsec", 8), ("jiffies_64", 8), ("avenrun", 24), ("nr_cpu_ids", 4),
        ("__cpu_online_mask", 8), ("__cpu_present_mask", 8), ("cpu_khz", 4),
        ("panic_cpu", 4), ("tainted_mask", 8), ("init_uts_ns", 400), ("node_data", 8),
        ("__per_cpu_offset", 32), ("tk_core", 256), ("init_task", reader.o_tasks + 64),
        ("modules", 16), ("prb", 8))]
    windows.append(("node_online_map", k.vmcoreinfo.symbols["node_online_map"], 8))
    prb = k.read_u64(sym("prb"))
    windows.append(("printk_ringbuffer", prb, 88))
    for name, off, size in (("descs", 8, 24 * 64), ("infos", 16, 88 * 64), ("text", 56, 4096)):
        windows.append((name, k.read_u64(prb + off), size))
    windows.append(("pglist_data", k.read_u64(sym("node_data")), 4096))
    rq = k.per_cpu(sym("runqueues"), 3)
    windows.append(("runqueue", rq, 4096))
    task = current_task(k, 3)
    windows.append(("panic_task", task, reader.o_comm + 64))
    windows.append(("task_list", task + reader.o_tasks, 16))
    head = sym("modules")
    windows.append(("module", k.read_u64(head) - 8, 1024))
    for key in ("nr_cpu_ids", "per_cpu_offsets"):
        pristine.pop(key, None)
    return KernelSeed(k, pristine, windows)


def target_memory(data: bytes) -> None:
    """sys, log, ps and one more command over the real dump with some memory damaged."""
    d = Draw(data)
    extra = ("mod", "kmem -i", "bt -a", "foreach bt", "bt")[d.int(1) % 5]
    _run_damaged(d, kernel_seed().windows, ("sys", "log", "ps", extra))


def target_kmem(data: bytes) -> None:
    """kmem -i's memory walk (mem_section roots and sections, struct pages, hstates, zones,
    swap) over the real dump with up to 8 patches or holes there."""
    _run_damaged(Draw(data), kmem_windows(), ("kmem -i",))


@functools.cache
def kmem_windows() -> list[tuple[str, int, int]]:
    """The memory kmem -i reads: mem_section roots, a section page, hstates, node, swap."""
    seed = kernel_seed()
    k = seed.kernel
    from crashtui.kernel.program import Kernel

    assert isinstance(k, Kernel)
    vi = k.vmcoreinfo
    roots = vi.symbols["mem_section"]
    out = [("mem_section", roots, 8 * vi.lengths["mem_section"]),
           ("section_page", k.read_u64(roots), 4096),
           ("hstates", k.symbol("hstates"), 2 * k.sizeof("struct hstate")),
           ("pglist_data", k.read_u64(k.symbol("node_data")), 4096),
           ("swap_info", k.symbol("swap_info"), 64), ("nr_swapfiles", k.symbol("nr_swapfiles"), 4),
           ("vm_zone_stat", k.symbol("vm_zone_stat"), 128),
           ("vm_node_stat", k.symbol("vm_node_stat"), 512)]
    section = k.read_u64(k.read_u64(roots)) & ~0x3F  # the first section's mem_map
    out.append(("struct_pages", section, 64 * 512))
    return out


def target_vmcoreinfo_values(data: bytes) -> None:
    """VMCOREINFO numbers (SIZE/LENGTH/OFFSET/NUMBER, any 64-bit value) under the kernel
    model: sys, log and kmem -i over the real dump with up to 4 values replaced."""
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

    d = Draw(data)
    lines = vmcoreinfo_seed().decode().split("\n")
    keyed = [i for i, line in enumerate(lines) if line.startswith(("SIZE(", "LENGTH(", "OFFSET(",
                                                                    "NUMBER("))]
    for _ in range(1 + d.int(1) % 4):
        i = keyed[d.int(2) % len(keyed)]
        value = int.from_bytes(d.bytes(8).ljust(8, b"\0"), "little", signed=True) >> d.int(1) % 64
        lines[i] = f"{lines[i].partition('=')[0]}={value}"
    _run_damaged(d, [], ("sys", "log", "kmem -i"),
                 vmcoreinfo=VmcoreInfo.parse("\n".join(lines)))


def _run_damaged(d: Draw, windows: list[tuple[str, int, int]], commands: tuple[str, ...],
                 vmcoreinfo: object = None) -> None:
    """Run `commands` over the seed kernel with the patches and holes `d` describes."""
    from crashtui.analysis.session import Session
    from crashtui.commands import run_command
    from crashtui.kernel.program import Kernel
    from crashtui.textsafe import terminal_safe

    seed = kernel_seed()
    k = seed.kernel
    assert isinstance(k, Kernel)
    patches: list[tuple[int, bytes]] = []
    holes: list[tuple[int, int]] = []
    while windows and d.more() and len(patches) + len(holes) < 8:
        _what, start, length = windows[d.int(1) % len(windows)]
        at = start + d.int(2) % length
        if d.int(1) < 16:
            holes.append((at, at + 1 + d.int(1)))
        else:
            patches.append((at, d.bytes(1 + d.int(1) % 16)))
    k.__dict__.clear()
    k.__dict__.update(seed.pristine)
    real_vmcoreinfo = k.vmcoreinfo
    if vmcoreinfo is not None:
        k.vmcoreinfo = vmcoreinfo  # type: ignore[assignment]
    real_read = Kernel.read

    def read(vaddr: int, size: int) -> bytes:
        from crashtui.errors import KernelReadError

        for lo, hi in holes:
            if vaddr < hi and lo < vaddr + size:
                raise KernelReadError(f"cannot read {max(lo, vaddr):#x}: damaged", vaddr)
        out = bytearray(real_read(k, vaddr, size))
        for at, raw in patches:
            lo, hi = max(at, vaddr), min(at + len(raw), vaddr + size)
            if lo < hi:
                out[lo - vaddr:hi - vaddr] = raw[lo - at:hi - at]
        return bytes(out)

    k.read = read  # type: ignore[method-assign]
    session = Session(k, Path("<fuzz>"), None)
    try:
        for line in commands:
            try:
                for text in run_command(session, line):
                    terminal_safe(text)
            except CrashtuiError:
                pass
    finally:
        del k.read
        k.vmcoreinfo = real_vmcoreinfo


# --- triage over the log ---------------------------------------------------------------------

@functools.cache
def log_seed() -> bytes:
    """The sysrq dump's log text (the records before and with the panic)."""
    from crashtui.dumpfile.kdump import KdumpFile
    from crashtui.kernel.program import Kernel

    dump = KdumpFile(FAKE_PATH, PatchedSource(kdump_seed().data, [], len(kdump_seed().data)))
    kernel = Kernel(dump, None)
    try:
        return "\n".join(r.text for r in printk.read_log(kernel).records[-120:]).encode()
    finally:
        kernel.close()


def target_triage(data: bytes) -> None:
    """The log's panic line, report block and events (analysis/logfacts), as the triage
    reads them: every pattern over damaged log text, in bounded time."""
    from crashtui.analysis.logfacts import read_log

    facts = read_log(data.decode("utf-8", "replace").split("\n"))
    _ = (facts.panic_message, facts.events, facts.cr2, facts.error_code, facts.block)


# --- BTF from memory -------------------------------------------------------------------------

@functools.cache
def btf_seed() -> tuple[object, tuple[int, ...]]:
    """The sysrq kernel's own BTF (read from the dump's memory) and the struct ids the
    commands use, whose records the target damages."""
    from crashtui.debuginfo.btf import Btf
    from crashtui.kernel.program import Kernel

    k = Kernel.open(next(SYSRQ.glob("dump.*")))
    try:
        btf = k.btf
        assert isinstance(btf, Btf)
        ids = tuple(btf._struct_id(n) for n in ("task_struct", "mm_struct", "page", "rq",
                                                 "module", "list_head", "signal_struct"))
    finally:
        k.close()
    return btf, ids


def target_btf(data: bytes) -> None:
    """The in-memory BTF parser's type walks (flattened struct layouts, member paths, sizes,
    C declarations, struct -o) with up to 8 words of type records replaced."""
    from crashtui.debuginfo.btf import Btf

    btf, ids = btf_seed()
    assert isinstance(btf, Btf)
    d = Draw(data)
    words = array("I", btf._words)
    while d.more() and d.pos < 8 * 7:
        tid = ids[d.int(1) % len(ids)]
        pos = int(btf._offsets[tid - btf.start_id]) + d.int(2) % 256
        if pos < len(words):
            words[pos] = d.int(4)
    saved = btf._words, btf._structs
    btf._words = memoryview(words).cast("B").cast("I")
    btf._structs = {}
    try:
        for tid in ids:
            try:
                st = btf.struct_by_id(tid)
                for m in st.members[:64]:
                    btf.type_name(m.type_id)
                    btf.sizeof_id(m.type_id)
                btf.format_struct(st.name or "task_struct")
            except CrashtuiError:
                pass
        for path in ("se.sum_exec_runtime", "thread_info.cpu", "pid_links", "comm"):
            try:
                btf.offsetof("task_struct", path)
            except CrashtuiError:
                pass
    finally:
        btf._words, btf._structs = saved


# --- the .ko reader --------------------------------------------------------------------------

KO = ROOT / "sample-dumps" / "6.1-test-module" / "test-module" / "test-module.ko"


@functools.cache
def ko_seed() -> tuple[bytes, tuple[Region, ...]]:
    """The test module's .ko and its parts: ELF and section headers, .symtab, .rela.*."""
    raw = KO.read_bytes()
    shoff = struct.unpack_from("<Q", raw, 0x28)[0]
    shnum = struct.unpack_from("<H", raw, 0x3C)[0]
    regions = [Region("ehdr", 0, 64), Region("shdrs", shoff, 64 * shnum)]
    for i in range(shnum):
        sh_type, _f, _a, off, size = struct.unpack_from("<IQQQQ", raw, shoff + 64 * i + 4)
        if sh_type in (2, 3, 4) and size:  # SYMTAB, STRTAB, RELA
            regions.append(Region(f"section{i}", off, min(size, 1 << 16)))
    return raw, tuple(regions)


def target_ko(data: bytes) -> None:
    """A damaged .ko: headers, sections, symbols, modinfo, relocated DWARF, line lookups."""
    import os
    import tempfile

    from crashtui.debuginfo.kmodule import KernelModuleFile

    raw, regions = ko_seed()
    patches, size = _script(Draw(data), regions, (64, 4096, len(raw) // 2), len(raw))
    body = bytearray(raw[:size])
    for at, chunk in patches:
        body[at:at + len(chunk)] = chunk[:max(0, len(body) - at)]
    fd, name = tempfile.mkstemp(suffix=".ko")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(body))
        try:
            ko = KernelModuleFile(name)
        except CrashtuiError:
            return
        try:
            _ = (ko.module_name, ko.vermagic, ko.release, ko.build_id, ko.depends)
            bases = {s.name: (i + 1) << 32 for i, s in enumerate(ko.allocated_sections)}
            for call in (ko.symbols, lambda: ko.symbols_for(bases), lambda: ko.lines(bases),
                         lambda: ko.source_line(".text", 5),
                         lambda: ko.function_at(".init.text", 5)):
                try:
                    call()
                except CrashtuiError:
                    pass
        finally:
            ko.close()
    finally:
        os.unlink(name)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "kdump": target_kdump, "elf": target_elf, "flattened": target_flattened,
    "notes": target_notes, "vmcoreinfo": target_vmcoreinfo, "printk": target_printk,
    "memory": target_memory, "kmem": target_kmem, "vmcoreinfo_values": target_vmcoreinfo_values,
    "triage": target_triage, "btf": target_btf, "ko": target_ko,
}
