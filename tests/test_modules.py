"""Modules: `mod`/`mod -s` against crash 8.0.6, module symbols from memory, .ko debug info."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, dump_of

from crashtui.analysis.session import Session
from crashtui.errors import DebugInfoError, KernelReadError

DUMPS = ["6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module", "5.10-sysrq",
         "6.1-bug-kthread", "6.1-softlockup", "6.1-hung-task"]
TESTMOD = "6.1-test-module"
RIP = 0xFFFFFFFFC03C4005  # the faulting instruction, in test_module's init text



def crash_out(name: str, what: str) -> list[str]:
    return (SAMPLES / name / "crash" / what).read_text().splitlines()


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture()
def testmod(vmlinux_for: dict[str, Path]) -> Session:
    return Session.open(dump_of(TESTMOD), vmlinux_for[TESTMOD])


def patched_ko(testmod_ko: Path, tmp_path: Path, old: bytes, new: bytes,
               name: str = "test-module.ko") -> Path:
    """A copy of the test module with one byte string replaced (same length)."""
    assert len(old) == len(new)
    data = testmod_ko.read_bytes()
    assert old in data
    out = tmp_path / name
    out.write_bytes(data.replace(old, new, 1))
    return out


# -- crash's `mod` ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", DUMPS)
def test_mod_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    r = crashtui(str(dump_of(name)), str(vmlinux_for[name]), "-c", "mod")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == crash_out(name, "mod.txt")


@pytest.mark.parametrize("name", [name for name in DUMPS if (SAMPLES / name / "crash" /
                                                             "mod-s.txt").is_file()])
def test_mod_s_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    ko = next((SAMPLES / name).glob("*/*.ko"))
    module = ko.stem.replace("-", "_")
    r = crashtui(str(dump_of(name)), str(vmlinux_for[name]),
                 "-c", f"mod -s {module} {ko}", "-c", "mod")
    assert r.returncode == 0, r.stderr
    theirs = crash_out(name, "mod-s.txt")
    crash_path = theirs[1].split()[-1]  # where crash was given the .ko
    want = [line.replace(crash_path, str(ko)) for line in theirs]
    out = r.stdout.splitlines()
    assert out[:2] == want
    # afterwards `mod` names the object file for that module only
    table = out[2:]
    assert len(table) == len(crash_out(name, "mod.txt"))
    for mine, line in zip(table, crash_out(name, "mod.txt"), strict=True):
        assert mine == (want[1] if line.split()[1] == module else line)


def test_module_rows_json(testmod: Session, testmod_ko: Path) -> None:
    from crashtui.commands.mod import module_rows

    rows = module_rows(testmod)
    theirs = [line.split() for line in crash_out(TESTMOD, "mod.txt")[1:]]
    assert [(r["struct_module"], r["name"], r["base"], r["size"]) for r in rows] == \
        [(t[0], t[1], t[2], int(t[3])) for t in theirs]
    assert all(r["object"] is None for r in rows)
    testmod.load_module_debuginfo("test_module", testmod_ko)
    by_name = {r["name"]: r for r in module_rows(testmod)}
    assert by_name["test_module"]["object"] == str(testmod_ko)
    assert by_name["test_module"]["taints"] == "OE"
    assert by_name["test_module"]["state"] == "COMING"
    assert by_name["virtio"]["taints"] == "" and by_name["virtio"]["state"] == "LIVE"


def test_taints_match_the_kernel_log(testmod: Session) -> None:
    """The oops says `Modules linked in: test_module(OE+) ...`: O out-of-tree, E unsigned."""
    from crashtui.commands import run_command

    linked = next(line for line in crash_out(TESTMOD, "log.txt") if "Modules linked in:" in line)
    assert "test_module(OE+)" in linked
    assert run_command(testmod, "mod -t") == ["NAME         TAINTS", "test_module  OE"]


# -- naming module addresses ----------------------------------------------------------------

def test_init_code_is_named_without_any_ko(testmod: Session) -> None:
    """crash says _MODULE_INIT_START_test_module+5 (KNOWN-ERRORS.md); the kernel and we say
    test_module_init+0x5/0x1000 [test_module], from the module's in-memory symbol table."""
    from crashtui.kernel.modules import module_symbol, module_symbolize

    assert module_symbolize(testmod, RIP) == ("test_module_init", 5, "test_module")
    assert module_symbolize(testmod.kernel, RIP) == ("test_module_init", 5, "test_module")
    hit = module_symbol(testmod, RIP)
    assert hit is not None
    oops = next(line for line in crash_out(TESTMOD, "log.txt") if "RIP: 0010:" in line)
    m = re.search(r"RIP: 0010:(\w+)\+(0x[0-9a-f]+)/(0x[0-9a-f]+) \[(\w+)\]", oops)
    assert m is not None
    assert (hit.name, hit.offset, hit.size, hit.module) == \
        (m[1], int(m[2], 16), int(m[3], 16), m[4])
    assert hit.kind == "t"
    # crash's sym after mod -s shows the module and offset we agree with
    sym = crash_out(TESTMOD, "sym-rip-after-mod-s.txt")[0]
    assert sym.startswith(f"{RIP:x} ") and sym.endswith("+5 [test_module]")


def test_core_module_addresses_are_named(testmod: Session) -> None:
    from crashtui.kernel.modules import module_symbolize

    table = testmod.modules
    virtio = table.find("virtio")
    assert virtio is not None
    named = [module_symbolize(testmod, virtio.base + off) for off in range(0, 4096, 64)]
    assert all(n is not None and n[2] == "virtio" for n in named)
    assert module_symbolize(testmod, 0xFFFFFFFFC0000000) is None  # no module there
    assert module_symbolize(testmod, testmod.kernel.symbol("do_one_initcall")) is None


def test_exit_code_prefers_the_function_over_its_alias(testmod: Session) -> None:
    """cleanup_module is an alias of test_module_exit; like the kernel we name the first."""
    from crashtui.kernel.modules import module_symbolize

    mod = testmod.modules.find("test_module")
    assert mod is not None
    assert module_symbolize(testmod, mod.base + 2) == ("test_module_exit", 2, "test_module")


# -- .ko debug info -------------------------------------------------------------------------

def test_mod_s_gives_file_and_line(testmod: Session, testmod_ko: Path) -> None:
    from crashtui.analysis.backtrace import SourceLocation
    from crashtui.kernel.modules import module_source_line

    assert module_source_line(testmod, RIP) is None  # nothing loaded yet
    testmod.load_module_debuginfo("test_module", testmod_ko)
    expect = crash_out(TESTMOD, "module-rip-addr2line.txt")[-1].strip()
    assert expect == "/usr/src/test-module/test-module.c:9"
    line = module_source_line(testmod, RIP)
    assert line is not None
    assert (line.file, line.line, line.section, line.offset) == \
        ("/usr/src/test-module/test-module.c", 9, ".init.text", 5)
    loc = testmod.module_source_line(RIP)
    assert isinstance(loc, SourceLocation)
    assert (loc.file, loc.line) == ("/usr/src/test-module/test-module.c", 9)
    di = testmod.modules.debuginfo["test_module"]
    fn = di.function_at(RIP)
    assert fn is not None and fn.name == "test_module_init"
    # the .ko's own symbols agree with memory
    assert di.symbols.nearest(RIP).name == "test_module_init"  # type: ignore[union-attr]


def test_unload_debuginfo(testmod: Session, testmod_ko: Path) -> None:
    from crashtui.commands import run_command

    run_command(testmod, f"mod -s test_module {testmod_ko}")
    assert testmod.module_source_line(RIP) is not None
    assert run_command(testmod, "mod -d test_module") == []
    assert testmod.module_source_line(RIP) is None
    assert run_command(testmod, "mod") == crash_out(TESTMOD, "mod.txt")


def test_ko_of_another_kernel_is_refused(testmod: Session, testmod_ko: Path,
                                         tmp_path: Path) -> None:
    ko = patched_ko(testmod_ko, tmp_path, b"vermagic=6.1.0-56", b"vermagic=6.1.0-99")
    with pytest.raises(DebugInfoError) as exc:
        testmod.load_module_debuginfo("test_module", ko)
    msg = str(exc.value)
    assert "6.1.0-99-cloud-amd64" in msg and "6.1.0-56-cloud-amd64" in msg and str(ko) in msg
    assert "test_module" not in testmod.modules.debuginfo


def test_ko_of_another_build_is_refused(testmod: Session, testmod_ko: Path,
                                        tmp_path: Path) -> None:
    from crashtui.debuginfo.elf import ElfImage

    with ElfImage(testmod_ko) as image:
        note = bytes(image.section_data(".note.gnu.build-id"))
    build_id = note[16:]
    other = bytes([build_id[0] ^ 0xFF]) + build_id[1:]
    ko = patched_ko(testmod_ko, tmp_path, build_id, other)
    with pytest.raises(DebugInfoError, match="build-id"):
        testmod.load_module_debuginfo("test_module", ko)


def test_ko_of_another_module_is_refused(testmod: Session, testmod_ko: Path,
                                         tmp_path: Path) -> None:
    with pytest.raises(DebugInfoError, match="is module test_module, not virtio"):
        testmod.load_module_debuginfo("virtio", testmod_ko)
    with pytest.raises(DebugInfoError, match="no module nosuch"):
        testmod.load_module_debuginfo("nosuch", testmod_ko)
    with pytest.raises(DebugInfoError, match="not found"):
        testmod.load_module_debuginfo("test_module", tmp_path / "missing.ko")
    junk = tmp_path / "junk.ko"
    junk.write_bytes(b"not an elf file at all")
    with pytest.raises(DebugInfoError):
        testmod.load_module_debuginfo("test_module", junk)


def test_load_modules_dir(testmod: Session, testmod_ko: Path, tmp_path: Path) -> None:
    sub = tmp_path / "extra" / "deeper"
    sub.mkdir(parents=True)
    shutil.copy(testmod_ko, sub / "test-module.ko")
    # a module that is not loaded in the dump is skipped without complaint
    patched_ko(testmod_ko, tmp_path, b"name=test_module", b"name=other_modul", "other.ko")
    assert testmod.load_modules_dir(tmp_path) == []
    assert testmod.modules.debuginfo["test_module"].path == sub / "test-module.ko"
    with pytest.raises(DebugInfoError, match="not found"):
        testmod.load_modules_dir(tmp_path / "nope")


def test_modules_option(vmlinux_for: dict[str, Path], testmod_ko: Path, tmp_path: Path) -> None:
    """--modules DIR loads the matching .ko; an unusable one is one warning line."""
    bad = tmp_path / "bad"
    bad.mkdir()
    patched_ko(testmod_ko, bad, b"vermagic=6.1.0-56", b"vermagic=6.1.0-99")
    r = crashtui(str(dump_of(TESTMOD)), str(vmlinux_for[TESTMOD]),
                 "--modules", str(testmod_ko.parent), "--modules", str(bad), "-c", "mod")
    assert r.returncode == 0, r.stderr
    assert f"test_module            ffffffffc03b9000  16384  {testmod_ko} " in r.stdout
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 1 and "6.1.0-99-cloud-amd64" in warnings[0]
    r = crashtui(str(dump_of(TESTMOD)), str(vmlinux_for[TESTMOD]),
                 "--modules", str(tmp_path / "nope"), "-c", "mod")
    assert r.returncode == 2
    assert r.stderr.strip() == f"crashtui: {tmp_path / 'nope'}: module directory not found"


def test_mod_command_errors(testmod: Session) -> None:
    from crashtui.commands import CommandError, run_command

    for line in ("mod -s test_module", "mod -S a b", "mod -d", "mod -x"):
        with pytest.raises(CommandError):
            run_command(testmod, line)


# -- damaged module lists -------------------------------------------------------------------

def test_unreadable_module_ends_the_list(testmod: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.commands import run_command

    k = testmod.kernel
    victim = 0xFFFFFFFFC03D0000  # virtio_pci_legacy_dev's struct module
    real = k.read

    def read(addr: int, size: int) -> bytes:
        if addr < victim + 4096 and addr + size > victim + 64:
            raise KernelReadError(f"cannot read {addr:#x}", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    out = run_command(testmod, "mod")
    assert out[-1] == f"mod: module list: entry at {victim:#x} unreadable: cannot read {victim:#x}"
    # the walk goes newest first: the modules loaded after it are still listed
    names = [line.split()[1] for line in out[1:-1]]
    assert names == ["test_module", "virtio_pci", "virtio_blk", "qemu_fw_cfg"]


def test_module_list_cycle_and_garbage(testmod: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.commands import run_command
    from crashtui.kernel.modules import read_modules

    k = testmod.kernel
    mods = read_modules(k).modules
    real = k.read_u64
    qemu = next(m for m in mods if m.name == "qemu_fw_cfg").address + 8
    blk = next(m for m in mods if m.name == "virtio_blk").address + 8

    def read_u64(addr: int) -> int:  # virtio_blk's next points back to qemu_fw_cfg
        return qemu if addr == blk else real(addr)

    monkeypatch.setattr(k, "read_u64", read_u64)
    listing = read_modules(k)
    assert len(listing.modules) == 3  # test_module, qemu_fw_cfg, virtio_blk
    assert listing.errors and "cycle" in listing.errors[0]
    monkeypatch.undo()

    real_read = k.read
    virtio = next(m for m in mods if m.name == "virtio").address
    name_at = virtio + k.offsetof("module", "name")
    size_at = virtio + k.offsetof("module", "core_layout") + k.offsetof("module_layout", "size")

    def patched(patches: dict[int, bytes]) -> None:
        def read(addr: int, size: int) -> bytes:
            data = real_read(addr, size)
            for at, raw in patches.items():
                if addr <= at < addr + size:
                    i = at - addr
                    data = data[:i] + raw + data[i + len(raw):]
            return data

        monkeypatch.setattr(k, "read", read)
        testmod.modules._list = None

    # a name full of control characters is odd, not damage: kept, shown as it is
    patched({name_at: b"\x01\x02\x1b[2J\0"})
    out = run_command(testmod, "mod")
    assert not any(line.startswith("mod: ") for line in out), out
    assert len(out) == len(mods) + 1
    assert [m.name for m in testmod.modules.modules if m.address == virtio] == ["\x01\x02\x1b[2J"]
    # garbage: a name with no NUL in MODULE_NAME_LEN, an absurd size
    for patches, problem in (({name_at: b"A" * 56}, "name not NUL-terminated"),
                             ({size_at: (1 << 31).to_bytes(4, "little")}, "size ")):
        patched(patches)
        out = run_command(testmod, "mod")
        assert out[-1].startswith(f"mod: module list: entry at {virtio:#x} looks damaged "
                                  f"({problem}"), out[-1]


def test_module_name_with_control_characters_is_kept(vmlinux_for: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """QA's hostile dump: test_module renamed to escape sequences and markup in the dump's own
    bytes. The module stays (mod lists it, escaped; sym and triage name its function), it is
    not 'damaged'."""
    from test_robustness_support import copy_with, plant

    from crashtui.kernel.modules import read_modules
    from crashtui.kernel.program import Kernel
    from crashtui.textsafe import terminal_safe

    name = "\x1b[2Jmod[bold]|<b>"
    src, vmlinux = dump_of(TESTMOD), vmlinux_for[TESTMOD]
    path = copy_with(src, tmp_path / "dump.hostile")
    k = Kernel.open(src, vmlinux)
    try:
        mod = next(m.address for m in read_modules(k).modules if m.name == "test_module")
        plant(path, k, mod + k.offsetof("module", "name"), name.encode() + b"\0")
    finally:
        k.close()
    r = crashtui(str(path), str(vmlinux), "-c", "mod", "-c", f"sym {RIP:x}", "-c", "triage")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    shown = terminal_safe(name)
    assert not any("damaged" in line for line in out), out
    row = next(line for line in out if line.startswith(f"{mod:016x}  "))
    assert row.split()[1] == shown
    assert row.index("ffffffffc03b9000") == out[1].index("ffffffffc03ac000")  # aligned
    assert f"{RIP:x} (m) test_module_init+5 [{shown}]" in out
    assert f"CULPRIT: test_module_init+0x5 [{shown}]" in out
    assert "\x1b" not in r.stdout


def test_no_vmlinux_module_types_from_memory(vmlinux_for: dict[str, Path]) -> None:
    """Without a vmlinux the kernel's in-memory BTF gives struct module: the same `mod`."""
    from crashtui.commands import run_command

    out = run_command(Session.open(dump_of(TESTMOD)), "mod")
    assert len(out) > 2 and not any("cannot read" in line for line in out)
    assert out == run_command(Session.open(dump_of(TESTMOD), vmlinux_for[TESTMOD]), "mod")


# -- the kernel's own kallsyms from VMCOREINFO ------------------------------------------------

@pytest.mark.parametrize("name", ["6.1-sysrq", "6.1-test-module", "6.12-sysrq"])  # 6.0 and up
def test_kernel_kallsyms_from_vmcoreinfo(name: str, vmlinux_for: dict[str, Path]) -> None:
    from crashtui.kernel.kallsyms_image import kernel_kallsyms, symbol_table

    session = Session.open(dump_of(name), vmlinux_for[name])
    k = session.kernel
    decoded = kernel_kallsyms(k, search=False)
    assert decoded is not None and decoded.tables.found_by == "VMCOREINFO"
    table = symbol_table(decoded)  # runtime addresses, like k.symbol()
    assert len(table) > 50_000
    for sym in ("do_one_initcall", "_printk", "init_task", "jiffies_64", "runqueues",
                "sysrq_handle_crash", "panic"):
        assert table.address_of(sym) == k.symbol(sym), sym
    fn = k.symbol("do_one_initcall")
    assert table.symbolize(fn + 0x59) == "do_one_initcall+0x59"


def test_mod_base_zero_is_printed_as_crash_prints_it(testmod: Session) -> None:
    """A module still in its init on 6.4+ may have no core text: crash's %lx shows `0`."""
    import dataclasses

    from crashtui.commands.mod import module_lines
    from crashtui.kernel.modules import ModuleList

    table = testmod.modules
    table._list = ModuleList([dataclasses.replace(m, base=0) if m.name == "test_module" else m
                              for m in table.modules])
    theirs = next(line for line in crash_out(TESTMOD, "mod.txt") if " test_module " in line)
    mine = next(line for line in module_lines(table) if " test_module " in line)
    assert mine == theirs.replace("ffffffffc03b9000", " " * 15 + "0")


def test_dis_of_a_module_function_is_that_function(testmod: Session, testmod_ko: Path,
                                                   vmlinux_for: dict[str, Path]) -> None:
    """The kernel's size for test_module_init runs to the end of the init text (0x1000, as
    the oops prints); its own st_size (0x1f, kept in the in-memory symtab) bounds `dis -l`,
    which lists just the function, as objdump does."""
    from crashtui.kernel.modules import module_symbol

    hit = module_symbol(testmod, RIP)
    assert hit is not None and (hit.size, hit.extent) == (0x1000, 0x1F)
    objdump = (SAMPLES / TESTMOD / "crash" / "objdump-init-text.txt").read_text().splitlines()
    want = [int(m[1], 16) for line in objdump if (m := re.match(r"\s+([0-9a-f]+):\t", line))]
    dump, vmlinux = str(dump_of(TESTMOD)), str(vmlinux_for[TESTMOD])
    for args in ([], ["--modules", str(testmod_ko.parent)]):
        r = crashtui(dump, vmlinux, *args, "-c", "dis -l test_module_init")
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        offsets = [int(m[1] or 0) for line in out
                   if (m := re.match(r"0x[0-9a-f]+ <test_module_init(?:\+(\d+))?>:", line))]
        assert len(offsets) == len([line for line in out if line.startswith("0x")])
        # objdump's instructions; the .ko's `jmp __x86_return_thunk` (0x1a, 5 bytes) runs
        # in memory as `ret` and int3 padding up to the function's end
        assert offsets[:len(want)] == want
        assert offsets[len(want):] == [0x1B, 0x1C, 0x1D, 0x1E]
        assert out[[i for i, line in enumerate(out) if line.startswith("0x")][5]].endswith(
            "ret")
        lines = [line for line in out if not line.startswith("0x")]
        if args:  # with the .ko: its source lines, where objdump -l puts them
            assert lines == ["/usr/src/test-module/test-module.c: 7",
                             "/usr/src/test-module/test-module.c: 9",
                             # two rows at 0x18: line 10 (a statement, as gdb and crash
                             # pick) and 11 (not one, which objdump prints)
                             "/usr/src/test-module/test-module.c: 10"]
            assert out.index(lines[1]) + 1 == next(
                i for i, line in enumerate(out) if "<test_module_init+5>" in line)
        else:
            assert lines == []
