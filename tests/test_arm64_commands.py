"""arm64 beyond bt: sym, dis, rd, p, struct, mod -s with Debian's own arm64 .ko, and bt's
register blocks in crash's arm64 layout, on the real 6.12 arm64 dump (sample-dumps/
6.12-arm64-sysrq), checked against the vmlinux's ELF symbols, the console, the .ko's own line
table (binutils' readelf) and drgn's recorded outputs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crashtui.kernel.program import Kernel
from tests.conftest import SAMPLES, cache_dir, dump_of, manifest_of, vmlinux_of
from tests.test_robustness_support import CliResult, cli

NAME = "6.12-arm64-sysrq"
DIR = SAMPLES / NAME
MODULES_DIR = "usr/lib/debug/lib/modules/{release}/kernel/"
# the loaded module `mod` lists, and where its debug .ko sits in the -dbg package
VIRTIO_BLK = "drivers/block/virtio_blk.ko"


@pytest.fixture(scope="module")
def dump() -> Path:
    return dump_of(NAME)


@pytest.fixture(scope="module")
def vmlinux() -> Path:
    return vmlinux_of(NAME)


_RUNS: dict[tuple[str, ...], CliResult] = {}


def run(*args: str | Path) -> CliResult:
    key = tuple(str(a) for a in args)
    if key not in _RUNS:
        _RUNS[key] = cli(*args)
        assert _RUNS[key].status == 0, _RUNS[key].err
    return _RUNS[key]


def debug_ko(member: str) -> Path:
    """A debug .ko of the sample's kernel from its -dbg package (the same package as the
    vmlinux): taken from make-dump's cached .deb when there, else from Debian's pool; cached
    by build-id. Skips if neither can be had."""
    from crashtui.debuginfo.debian import deb_source, extract_from_deb, fetch_from_pool

    m = manifest_of(DIR)
    package, _, version = m["vmlinux_package"].partition(" ")
    path = MODULES_DIR.format(release=m["kernel_release"]) + member
    target = cache_dir() / "ko" / m["vmlinux_build_id"] / Path(member).name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    deb = Path.home() / ".cache" / "crashtui-makedump" / "debs" / \
        f"{package}_{version}_{m['arch']}.deb"
    try:
        if deb.is_file():
            extract_from_deb(deb, path, target.parent).rename(target)
        else:
            fetch_from_pool(package, version, deb_source(m) or "linux", path, target,
                            arch=m["arch"])
    except Exception as exc:  # noqa: BLE001 - no .ko means skip, with the reason
        pytest.skip(f"{member} of {package} {version} unavailable: {exc}")
    return target


# -- sym, rd, p, struct --------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils' nm is needed")
def test_sym_is_the_vmlinux_symbol_moved_by_kaslr(dump: Path, vmlinux: Path) -> None:
    """sym NAME and sym ADDR: the vmlinux's ELF symbol value plus the console's "Kernel
    Offset", with the DWARF line of the function's start."""
    kernel = Kernel.open(dump)
    console = (DIR / manifest_of(DIR)["dmesg"]).read_text()
    m = re.search(r"Kernel Offset: (0x[0-9a-f]+) from", console)
    assert m is not None
    slide = int(m.group(1), 16)
    nm = subprocess.run(["nm", str(vmlinux)], capture_output=True, text=True, check=True)
    rows = [parts for parts in map(str.split, nm.stdout.splitlines())
            if len(parts) == 3 and parts[2] in ("panic", "vpanic", "sysrq_handle_crash")]
    elf_syms = {parts[2]: int(parts[0], 16) for parts in rows}
    letters = {parts[2]: parts[1] for parts in rows}
    assert len(elf_syms) == 3 and letters["panic"] == "T" and letters["sysrq_handle_crash"] == "t"
    for name, value in elf_syms.items():  # nm's letter, as crash prints it
        line = run(dump, vmlinux, "-c", f"sym {name}").out.strip()
        assert line.startswith(f"{value + slide:x} ({letters[name]}) {name} "), line
        assert kernel.symbol(name) == value + slide
    # the return address console's trace names "sysrq_handle_crash+0x20/0x28"
    assert "sysrq_handle_crash+0x20/0x28" in console
    ret = elf_syms["sysrq_handle_crash"] + slide + 0x20
    line = run(dump, vmlinux, "-c", f"sym {ret:x}").out.strip()
    assert line.startswith(f"{ret:x} (t) sysrq_handle_crash+32 ")
    assert line.endswith("drivers/tty/sysrq.c: 154"), line


def test_rd_p_struct_read_the_arm64_kernel(dump: Path, vmlinux: Path) -> None:
    """rd -a linux_banner is the log's "Linux version" line; p init_uts_ns.name.release the MANIFEST's
    release; struct task_struct.pid,comm of bt's task is PID 1 "init"; pt_regs as BTF says."""
    log = run(dump, vmlinux, "-c", "log").out
    banner = next(re.sub(r"^\[\s*[\d.]+\] ", "", line) for line in log.splitlines()
                  if "] Linux version " in line)
    rd = run(dump, vmlinux, "-c", "rd -a linux_banner").out
    assert "".join(line.split(":  ", 1)[1] for line in rd.splitlines()) == banner
    release = manifest_of(DIR)["kernel_release"]
    p = run(dump, vmlinux, "-c", "p init_uts_ns.name.release").out
    assert p.startswith(f'$1 = "{release}\\000')
    bt = run(dump, vmlinux, "-c", "bt").out
    task = re.search(r"TASK: ([0-9a-f]+)", bt)
    assert task is not None
    st = run(dump, vmlinux, "-c", f"struct task_struct.pid,comm {task.group(1)}").out
    assert "  pid = 1," in st and '  comm = "init\\000' in st
    regs = run(dump, vmlinux, "-c", "whatis pt_regs").out
    assert "    u64 orig_x0;" in regs and "    s32 syscallno;" in regs
    assert "SIZE: 336" in regs


# -- mod -s with Debian's arm64 .ko ------------------------------------------------------------

def _readelf_lines(ko: Path) -> dict[int, set[int]]:
    """.text offset -> the lines of the .ko's own line table's rows there (binutils' readelf
    relocates it; several rows may share an address)."""
    r = subprocess.run(["readelf", "--debug-dump=decodedline", str(ko)], capture_output=True,
                       text=True, check=True)
    out: dict[int, set[int]] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\S+\.[ch])\s+(\d+)\s+(0x[0-9a-f]+)", line)
        if m:
            out.setdefault(int(m.group(3), 16), set()).add(int(m.group(2)))
    return out


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is needed")
def test_mod_s_loads_an_arm64_ko_and_dis_l_has_its_lines(dump: Path, vmlinux: Path) -> None:
    """Debian's virtio_blk.ko (R_AARCH64_ABS64/ABS32 relocations in its DWARF): `mod -s`
    names it, and `dis -l` of one of its functions prints the lines readelf decodes."""
    ko = debug_ko(VIRTIO_BLK)
    out = run(dump, vmlinux, "-c", f"mod -s virtio_blk {ko}", "-c", "dis -l virtblk_getgeo",
              "-c", "mod").out.splitlines()
    assert out[0].split()[:4] == ["MODULE", "NAME", "TEXT_BASE", "SIZE"]
    row = out[1].split()
    assert row[1] == "virtio_blk" and row[4] == str(ko)
    base = int(row[2], 16)
    table = _readelf_lines(ko)
    headers = 0
    for i, line in enumerate(out):
        m = re.match(r".*/virtio_blk\.c: (\d+)$", line)
        if m is None:
            continue
        addr = int(out[i + 1].split()[0], 16)
        offset = addr - base
        # readelf's rows at this address or the last address before it
        want = table[max(a for a in table if a <= offset)]
        assert int(m.group(1)) in want, (line, hex(offset), want)
        headers += 1
    assert headers >= 3
    assert any(line.startswith(f"0x{base + 0xdd0:x} <virtblk_getgeo>:") for line in out)
    # afterwards `mod` names the object file for that module only
    mods = [line for line in out if line.startswith("ffff") and "virtio_blk" in line]
    assert mods[-1].rstrip().endswith(str(ko))


# -- bt's arm64 register blocks ---------------------------------------------------------------

def test_bt_user_mode_block_is_crashs_arm64_layout(dump: Path, vmlinux: Path) -> None:
    """crash's arm64_print_exception_frame() for USER_MODE: PC/LR/SP, X29..X0 three a line,
    then ORIG_X0, SYSCALLNO (hex: 0x40 is __NR_write, the console's __arm64_sys_write) and
    PSTATE; no x86 wording ([exception RIP: ...], RIP, RAX)."""
    out = run(dump, vmlinux, "-c", "bt").out
    lines = out.splitlines()
    top = lines.index(next(x for x in lines if x.startswith("     PC: ")))
    assert re.fullmatch(r"     PC: [0-9a-f]{16}   LR: [0-9a-f]{16}   SP: [0-9a-f]{16}",
                        lines[top])
    assert lines[top + 1].startswith("    X29: ") and "  X28: " in lines[top + 1]
    assert lines[top + 7] == lines[top + 7].rstrip() and "X11: " in lines[top + 7]
    assert "   X9: " in lines[top + 7]
    assert re.fullmatch(r"     X2: [0-9a-f]{16}   X1: [0-9a-f]{16}   X0: [0-9a-f]{16}",
                        lines[top + 10])
    assert lines[top + 11] == "    ORIG_X0: 0000000000000001  SYSCALLNO: 40  PSTATE: 80001000"
    assert "__arm64_sys_write" in out
    for x86 in ("exception RIP", "RIP:", "RAX:", "RSP:"):
        assert x86 not in out
    assert "exception RIP" not in run(dump, vmlinux, "-c", "bt -a").out


def test_triage_panic_line_is_the_log_panic_not_its_end_marker(dump: Path,
                                                               vmlinux: Path) -> None:
    """QEMU saved the dump after panic() returned from its notifiers: the log ends with
    `---[ end Kernel panic - not syncing: ... ]---`; the PANIC line is the panic itself."""
    out = run(dump, vmlinux, "-c", "triage").out
    log = run(dump, vmlinux, "-c", "log").out
    assert "---[ end Kernel panic - not syncing: sysrq triggered crash ]---" in log
    assert "PANIC: Kernel panic - not syncing: sysrq triggered crash\n" in out
    assert "KIND: SysRq-triggered crash (sysrq)" in out
    assert "CULPRIT: sysrq_handle_crash+0x20 at drivers/tty/sysrq.c:154" in out


def test_el1_exception_block_names_pc_and_lr_as_the_oops_does() -> None:
    """6.12-arm64-test-module: the el1h_64_sync frame's pt_regs print PC and LR (LR without
    its PAC) named as the kernel's own `pc : ` / `lr : ` lines, no x86 wording."""
    name = "6.12-arm64-test-module"
    out = run(dump_of(name), vmlinux_of(name), "-c", "bt").out
    console = next((SAMPLES / name).glob("console.*")).read_text()
    for reg in ("pc", "lr"):
        m = re.search(rf"\] {reg} : (\w+)\+(0x[0-9a-f]+)/", console)
        assert m is not None
        want = f"[{m.group(1)}+{int(m.group(2), 16)}]"
        line = next(x for x in out.splitlines() if x.startswith(f"     {reg.upper()}: "))
        assert line.endswith(want) and line.split()[1].startswith("ffff"), (line, want)
    assert "exception RIP" not in out and "RAX:" not in out
