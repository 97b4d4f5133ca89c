"""No debug vmlinux: the dump's own kallsyms, BTF and ORC give what the vmlinux gives.

Every sample dump is analysed twice, with its debug vmlinux and with none, and the crash-style
outputs compared: summary, every CPU's backtrace (names, order, exception frames), log, ps,
kmem -i, mod. Also: the in-memory tables equal the vmlinux's, kallsyms is found by structure
when VMCOREINFO does not name it (kernels before 6.0), and the CLI finds a vmlinux by build-id
in the usual places or says what it uses instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import dump_of

from crashtui.analysis.session import Session
from crashtui.commands import run_command
from crashtui.kernel.program import Kernel
from tests.conftest import SAMPLES, fetch_vmlinux

# 5.10 has no kallsyms in VMCOREINFO: its tables are found by structure in the image
DUMPS = [d for d in ("6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module",
                     "5.10-sysrq") if (SAMPLES / d).is_dir()]
COMMANDS = ["sys", "bt -a", "log", "ps", "kmem -i", "mod", "foreach bt"]
IMAGE = 0xFFFFFFFF80000000



_vmlinux: dict[str, Path] = {}


def vmlinux_of(name: str) -> Path:
    if name not in _vmlinux:
        try:
            _vmlinux[name] = fetch_vmlinux(SAMPLES / name / "MANIFEST")
        except Exception as exc:  # noqa: BLE001 - no vmlinux means skip, with the reason
            pytest.skip(f"debug vmlinux for {name} unavailable: {exc}")
    return _vmlinux[name]


_sessions: dict[tuple[str, bool], Session] = {}


def session(name: str, with_vmlinux: bool) -> Session:
    """One session per dump and mode, shared by the tests of this module."""
    key = (name, with_vmlinux)
    if key not in _sessions:
        _sessions[key] = Session.open(dump_of(name), vmlinux_of(name) if with_vmlinux else None)
    return _sessions[key]


@pytest.fixture(scope="module", autouse=True)
def _close_sessions() -> object:
    yield
    for s in _sessions.values():
        s.close()
    _sessions.clear()


def output(name: str, with_vmlinux: bool, command: str) -> list[str]:
    lines = run_command(session(name, with_vmlinux), command)
    return [line for line in lines if not line.lstrip().startswith("KERNEL:")]


# -- the same crash-style output with and without the vmlinux --------------------------------

@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", DUMPS)
def test_same_output_without_vmlinux(name: str, command: str) -> None:
    with_vm = output(name, True, command)
    without = output(name, False, command)
    assert len(with_vm) >= 3
    assert without == with_vm


@pytest.mark.parametrize("name", DUMPS)
def test_summary_and_panic_frames_match(name: str) -> None:
    a, b = session(name, True), session(name, False)
    sa, sb = a.summary, b.summary
    assert sb.fields["KERNEL"].startswith("(none: in-memory symbols)")
    assert {k: v for k, v in sb.fields.items() if k != "KERNEL"} == \
        {k: v for k, v in sa.fields.items() if k != "KERNEL"}
    assert (sb.panic_message, sb.panic_cpu, sb.errors, sb.warnings) == \
        (sa.panic_message, sa.panic_cpu, sa.errors, sa.warnings)
    pa, pb = a.panic_backtrace, b.panic_backtrace
    assert pa is not None and pb is not None
    def names(bt: object) -> list[tuple[object, ...]]:
        return [(f.function, f.offset, f.module, f.sp, f.pc, f.exception is not None)
                for f in bt.frames if not f.inline]  # type: ignore[attr-defined]

    assert names(pb) == names(pa)
    assert all(f.source is None for f in pb.frames)  # only source lines are missing


@pytest.mark.parametrize("name", DUMPS)
def test_in_memory_tables_equal_the_vmlinux(name: str) -> None:
    with_vm, without = session(name, True).kernel, session(name, False).kernel
    # BTF: the image's .BTF is the vmlinux's section, byte for byte
    vm_btf = with_vm.vmlinux.btf if with_vm.vmlinux is not None else None
    assert vm_btf is not None
    assert without.btf is not vm_btf and without.types_source == "BTF in memory"
    assert len(without.btf) == len(vm_btf)
    for struct, member in (("task_struct", "comm"), ("module", "list"), ("rq", "curr")):
        assert without.offsetof(struct, member) == with_vm.offsetof(struct, member)
    # ORC: the same entries at the same link-time addresses
    ma, mb = with_vm.orc, without.orc
    assert ma is not None and mb is not None and without.unwind_source == "ORC in memory"
    assert mb.version == ma.version and len(mb) == len(ma)
    assert np.array_equal(mb.ips, ma.ips) and np.array_equal(mb.bits, ma.bits)
    # symbols: every kallsyms symbol at its vmlinux address (link-time), runtime lookups agree
    syms = without.symbols
    assert without.symbols_source == ("kallsyms in memory (found by structure)"
                                      if name.startswith("5.") else "kallsyms in memory")
    vm_syms = with_vm.symbols
    missing = 0
    for i in range(0, len(syms), 97):
        sym = syms.symbol_at(i)
        if not any(s.name == sym.name for s in vm_syms.in_range(sym.address, sym.address + 1)):
            missing += 1  # linker-script symbols the .symtab lacks
    assert missing <= len(syms) // 97 // 100
    for name_ in ("init_task", "panic", "runqueues", "__per_cpu_offset", "jiffies_64",
                  "page_offset_base", "modules", "_stext"):
        assert without.symbol(name_) == with_vm.symbol(name_), name_
    # symbolize: the same name for addresses across the text
    # (kallsyms has no sizes: in the text's alignment holes, up to 64 KiB past the last
    # function, the in-memory table still names an address the .symtab does not)
    text0, text1 = with_vm.symbol("_stext"), with_vm.symbol("_etext")
    named = differ = 0
    for addr in range(text0 + 0x123, text1, (text1 - text0) // 2000):
        ha, hb = with_vm.symbolize(addr), without.symbolize(addr)
        if ha is None:
            assert hb is None or hb[1] < 64 * 1024 + 4096
            differ += hb is not None
            continue
        named += 1
        assert hb is not None and hb[0].address == ha[0].address and hb[1] == ha[1]
    assert named > 1000 and differ < 50


def test_symbols_stay_in_their_range() -> None:
    """A direct-map address is no symbol's (the per-CPU range does not extend to the image)."""
    k = session(DUMPS[0], False).kernel
    assert k.symbolize(0xFFFF888000000000) is None
    assert k.symbols.nearest(0x7FFF0000) is None
    hit = k.symbolize(k.symbol("panic") + 5)
    assert hit is not None and hit[0].name == "panic" and hit[1] == 5
    assert hit[0].address == k.symbol("panic") - k.kaslr_offset  # link-time, as with a vmlinux
    assert k.symbol_type("panic") == "T" and k.symbol_type("runqueues") == "D"


# -- kernels before 6.0: kallsyms found by structure -----------------------------------------------

def without_kallsyms_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make VMCOREINFO look like a kernel before 6.0's: no SYMBOL(kallsyms_*) lines."""
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

    real = VmcoreInfo.parse.__func__  # type: ignore[attr-defined]

    def parse(cls: type[VmcoreInfo], text: str) -> VmcoreInfo:
        kept = [ln for ln in text.splitlines() if not ln.startswith("SYMBOL(kallsyms_")]
        return real(cls, "\n".join(kept))  # type: ignore[no-any-return]

    monkeypatch.setattr(VmcoreInfo, "parse", classmethod(parse))


@pytest.mark.parametrize("name", [d for d in ("6.1-sysrq", "6.12-sysrq") if d in DUMPS])
def test_kallsyms_found_by_structure(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the VMCOREINFO kallsyms lines the tables are found in the image: 6.1's
    layout (with 6.2's seqs_of_names backported) and 6.12's (reordered in 6.4)."""
    from crashtui.kernel.kallsyms_image import find_tables, tables_from_vmcoreinfo

    named = tables_from_vmcoreinfo(session(name, False).kernel.vmcoreinfo.symbols)
    assert named is not None
    without_kallsyms_lines(monkeypatch)
    k = Kernel.open(dump_of(name), None)
    try:
        assert tables_from_vmcoreinfo(k.vmcoreinfo.symbols) is None
        start = time.perf_counter()
        found = find_tables(k)
        took = time.perf_counter() - start
        assert found is not None and found.found_by == "structure"
        assert (found.offsets, found.relative_base, found.num_syms, found.names,
                found.token_table, found.token_index) == (
                    named.offsets, named.relative_base, named.num_syms, named.names,
                    named.token_table, named.token_index)
        assert took < 5
        assert k.symbol("init_task") == session(name, False).kernel.symbol("init_task")
        assert k.symbols_source == "kallsyms in memory (found by structure)"
        assert run_command(Session(k, dump_of(name), None), "bt") == \
            run_command(session(name, False), "bt")
    finally:
        k.close()


def test_damaged_vmcoreinfo_kallsyms_found_by_structure(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A VMCOREINFO kallsyms address that does not decode: the image is searched instead."""
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

    real = VmcoreInfo.parse.__func__  # type: ignore[attr-defined]

    def parse(cls: type[VmcoreInfo], text: str) -> VmcoreInfo:
        info = real(cls, text)
        info.symbols["kallsyms_token_index"] += 0x40  # not an increasing index any more
        return info  # type: ignore[no-any-return]

    monkeypatch.setattr(VmcoreInfo, "parse", classmethod(parse))
    k = Kernel.open(dump_of(DUMPS[0]), None)
    try:
        assert k.symbols_source == "kallsyms in memory (found by structure)"
        assert k.symbol("panic") == session(DUMPS[0], False).kernel.symbol("panic")
    finally:
        k.close()


@pytest.mark.parametrize("name", ["6.1-sysrq", "6.12-sysrq"])
def test_p_without_vmlinux(name: str) -> None:
    """The in-memory BTF's only DATASEC is .data..percpu: a per-CPU variable prints, any other
    variable says plainly why it cannot (not 'no DWARF in the vmlinux': there is none)."""
    from crashtui.commands import CommandError

    s = session(name, False)
    btf = s.kernel.btf
    sections = set()
    for tid in range(1, len(btf)):
        try:
            t = btf.type(tid)
        except Exception:  # noqa: BLE001 - the last id may be out of range
            continue
        if t.kind == "datasec":
            sections.add(t.name)
    assert sections == {".data..percpu"}
    for var in ("jiffies", "init_uts_ns", "panic_cpu"):
        with pytest.raises(CommandError) as err:
            run_command(s, f"p {var}")
        assert str(err.value) == (
            "no type information for this variable without the debug vmlinux (BTF only "
            f"describes per-CPU variables); try `rd {var}` or give the vmlinux")
    assert run_command(s, "p runqueues")[:2] == ["PER-CPU DATA TYPE:", "  struct rq runqueues;"]
    assert run_command(s, "p runqueues:0")[0].startswith("per_cpu(runqueues, 0) = $")
    assert run_command(s, "rd jiffies")[0].startswith(f"{s.kernel.symbol('jiffies'):x}:  ")


def test_no_kallsyms_says_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    from crashtui.errors import KernelReadError
    from crashtui.kernel import kallsyms_image

    monkeypatch.setattr(kallsyms_image, "find_tables", lambda kernel: None)
    without_kallsyms_lines(monkeypatch)
    k = Kernel.open(dump_of(DUMPS[0]), None)
    try:
        with pytest.raises(KernelReadError) as err:
            _ = k.symbols
        assert "6.0+" in err.value.message and "vmlinux" in err.value.message
        assert k.symbol_or_none("init_uts_ns") is not None  # VMCOREINFO's own still work
        assert k.symbolize(k.symbol("init_uts_ns")) is None
    finally:
        k.close()


# -- the command line ----------------------------------------------------------------------------

def crashtui(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "CRASHTUI_DEBUG_ROOT": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120, env=full, cwd=cwd)


def test_cli_without_vmlinux_says_so(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=debian\nVERSION_ID="12"\n')
    dump = dump_of("6.1-sysrq")
    start = time.perf_counter()
    res = crashtui(str(dump), "-c", "sys", "-c", "bt", "-c", "log",
                   env={"CRASHTUI_CACHE": str(tmp_path / "cache"),
                        "CRASHTUI_OS_RELEASE": str(os_release)})
    took = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("crashtui: no debug vmlinux for 6.1.0-56-cloud-amd64 (build-id "
                               "3b43fad5034874490492495d552c0af6a5fab235): using the kernel's "
                               "own kallsyms, BTF and ORC from the dump")
    assert "apt-get install linux-image-6.1.0-56-cloud-amd64-dbg" in lines[0]
    assert "KERNEL: (none: in-memory symbols)" in res.stdout
    assert "sysrq_handle_crash at ffffffff9fca8a06" in res.stdout
    assert "PANIC: \"Kernel panic - not syncing: sysrq triggered crash\"" in res.stdout
    print(f"crashtui DUMP -c sys -c bt -c log without a vmlinux: {took:.2f} s")


def test_cli_ubuntu_and_other_hosts(tmp_path: Path) -> None:
    from crashtui.kernel.debugsources import debian_package

    os_release = tmp_path / "os-release"
    os_release.write_text("ID=ubuntu\nID_LIKE=debian\n")
    os.environ["CRASHTUI_OS_RELEASE"] = str(os_release)
    try:
        assert debian_package("6.8.0-45-generic") == "linux-image-unsigned-6.8.0-45-generic-dbgsym"
        os_release.write_text("ID=fedora\n")
        assert debian_package("6.8.0-45-generic") is None
        os_release.write_text("ID=debian\n")
        assert debian_package("6.1.0-56-cloud-amd64") == "linux-image-6.1.0-56-cloud-amd64-dbg"
        assert debian_package("a b") is None
    finally:
        del os.environ["CRASHTUI_OS_RELEASE"]


def _debug_tree(root: Path, vmlinux: Path, place: str) -> None:
    target = root / place
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(vmlinux)


@pytest.mark.parametrize("place", [
    "usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64",
    "usr/lib/debug/lib/modules/6.1.0-56-cloud-amd64/vmlinux",
    "boot/vmlinux-6.1.0-56-cloud-amd64",
    "usr/lib/debug/.build-id/3b/43fad5034874490492495d552c0af6a5fab235.debug",
])
def test_locate_by_build_id(tmp_path: Path, place: str) -> None:
    from crashtui.debuginfo.locate import locate_vmlinux

    vm = vmlinux_of("6.1-sysrq")
    _debug_tree(tmp_path, vm, place)
    found = locate_vmlinux("6.1.0-56-cloud-amd64", "3B43FAD5034874490492495D552C0AF6A5FAB235",
                           roots=[tmp_path])
    assert found is not None and found.path == tmp_path / place
    assert found.build_id == "3b43fad5034874490492495d552c0af6a5fab235"
    assert "<" in found.place or found.place.startswith("/boot")


def test_locate_refuses_another_build(tmp_path: Path) -> None:
    """A file at the right path but of another build is not used (nor is a non-ELF)."""
    from crashtui.debuginfo.locate import locate_vmlinux

    if "6.12-sysrq" not in DUMPS:
        pytest.skip("no 6.12 sample")
    _debug_tree(tmp_path, vmlinux_of("6.12-sysrq"), "usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64")
    junk = tmp_path / "boot/vmlinux-6.1.0-56-cloud-amd64"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\x7fELF" + bytes(100))
    assert locate_vmlinux("6.1.0-56-cloud-amd64", "3b43fad5034874490492495d552c0af6a5fab235",
                          roots=[tmp_path]) is None
    assert locate_vmlinux("../../etc", "not-hex", roots=[tmp_path]) is None


def test_cli_uses_a_vmlinux_found_by_build_id(tmp_path: Path) -> None:
    vm = vmlinux_of("6.1-sysrq")
    place = "usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64"
    _debug_tree(tmp_path, vm, place)
    res = crashtui(str(dump_of("6.1-sysrq")), "-c", "sym panic",
                   env={"CRASHTUI_DEBUG_ROOT": str(tmp_path),
                        "CRASHTUI_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith(f"crashtui: debug info: {tmp_path / place} (found by build-id "
                                 "in /usr/lib/debug/boot/vmlinux-<release>, build-id 3b43fad5")
    assert "kernel/panic.c" in res.stdout  # source lines: the vmlinux is used


def test_cli_explicit_vmlinux_prints_nothing_extra() -> None:
    res = crashtui(str(dump_of("6.1-sysrq")), str(vmlinux_of("6.1-sysrq")), "-c", "sys")
    assert res.returncode == 0 and res.stderr == ""


def test_debug_sources_describe() -> None:
    with_vm = session(DUMPS[0], True).kernel.debug_sources
    assert with_vm.vmlinux is not None and with_vm.source_lines and with_vm.hint() is None
    assert with_vm.describe().startswith(f"debug info: {with_vm.vmlinux} (given, build-id ")
    without = session(DUMPS[0], False).kernel.debug_sources
    assert without.in_memory and not without.source_lines
    assert (without.symbols, without.types, without.unwind) == (
        "kallsyms in memory", "BTF in memory", "ORC in memory")
    hint = without.hint()
    assert hint is not None and "--fetch" in hint


def test_cli_finds_module_debug_files(tmp_path: Path) -> None:
    """Modules' .ko files under /usr/lib/debug/lib/modules/<release> are loaded like mod -s."""
    ko = SAMPLES / "6.1-test-module" / "test-module" / "test-module.ko"
    target = tmp_path / "usr/lib/debug/lib/modules/6.1.0-56-cloud-amd64/extra/test-module.ko"
    target.parent.mkdir(parents=True)
    target.write_bytes(ko.read_bytes())
    res = crashtui(str(dump_of("6.1-test-module")), "-c", "sym ffffffffc03c4005", "-c", "mod",
                   env={"CRASHTUI_DEBUG_ROOT": str(tmp_path),
                        "CRASHTUI_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert "no debug vmlinux" in res.stderr
    assert res.stdout.startswith("ffffffffc03c4005 (m) test_module_init+5 [test_module] "
                                 "/usr/src/test-module/test-module.c: 9")
    assert str(target) in res.stdout
