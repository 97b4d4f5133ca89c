"""sample-dumps/make-dump and record-crash-output.

The end-to-end test (marked slow, so not run by default: `pytest -m slow`) makes a real
bookworm sysrq kdump under QEMU into a tmp dir. It needs root on Debian 12 and the network
to Debian's archive; with warm caches (~/.cache/crashtui-makedump) it takes about 30 s
under TCG, the first time a few minutes (it downloads ~330 MB of kernel packages).
The other tests are quick checks of the generator's pieces and of the committed 6.12 dump.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-dumps"
MAKE_DUMP = SAMPLES / "make-dump"
sys.path.insert(0, str(SAMPLES))

from makedump import crashout, debian, initramfs  # noqa: E402
from makedump.cli import MANIFEST_KEYS  # noqa: E402
from makedump.scenarios import SCENARIOS  # noqa: E402


def read_manifest(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_dump_dir(out: Path, release_suffix: str = "-cloud-amd64") -> dict[str, str]:
    """What every make-dump directory must hold; returns its MANIFEST."""
    m = read_manifest(out / "MANIFEST")
    missing = [k for k in MANIFEST_KEYS if not m.get(k)]
    assert not missing, f"MANIFEST lacks {missing}"
    assert m["kernel_release"].endswith(release_suffix)
    assert len(m["vmlinux_build_id"]) == 40 and int(m["vmlinux_build_id"], 16) >= 0
    assert len(m["vmlinux_sha256"]) == 64
    dump = out / m["dump"]
    with dump.open("rb") as f:
        assert f.read(8).startswith(b"KDUMP")
    assert sha256(dump) == m["dump_sha256"]
    assert m["dump"].split(".", 1)[1] == m["dmesg"].split(".", 1)[1]
    assert (out / m["dmesg"]).stat().st_size > 1000
    return m


def check_release_with_crashtui(dump: Path, release: str) -> None:
    from crashtui.dumpfile import open_dump

    d = open_dump(dump)
    try:
        assert d.info.format == "kdump-compressed"
        assert d.info.utsname is not None and d.info.utsname.release == release
        assert d.info.dump_level == 31
    finally:
        d.close()


@pytest.mark.slow
def test_make_dump_bookworm_sysrq_end_to_end(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("make-dump needs root")
    if shutil.which("apt-get") is None:
        pytest.skip("make-dump needs a Debian machine")
    out = tmp_path / "bookworm-sysrq"
    r = subprocess.run([sys.executable, str(MAKE_DUMP), "--suite", "bookworm",
                        "--scenario", "sysrq", "--out", str(out)],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-6000:]
    m = check_dump_dir(out)
    assert m["kernel_package"].endswith("(bookworm)")
    assert m["scenario"].startswith("echo c > /proc/sysrq-trigger")
    assert "sysrq triggered crash" in (out / m["dmesg"]).read_text(errors="replace")
    check_release_with_crashtui(out / m["dump"], m["kernel_release"])


@pytest.mark.slow
def test_make_dump_doctor_tree_end_to_end(tmp_path: Path) -> None:
    """The guest's own /proc and /sys with the capture kernel loaded: doctor says ready, and
    the dump that same run produced opens with --test."""
    if os.geteuid() != 0:
        pytest.skip("make-dump needs root")
    out = tmp_path / "doctor"
    r = subprocess.run([sys.executable, str(MAKE_DUMP), "--suite", "bookworm", "--scenario",
                        "sysrq", "--doctor-tree", "--out", str(out)],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-6000:]
    m = check_dump_dir(out)
    root = out / "doctor-tree"
    stamp = m["dump"].removeprefix("dump.")
    (root / "var" / "crash" / stamp).mkdir(parents=True)
    os.symlink(out / m["dump"], root / "var" / "crash" / stamp / m["dump"])
    d = subprocess.run([sys.executable, "-m", "crashtui.cli", "doctor", "--root", str(root),
                        "--test"], capture_output=True, text=True, timeout=600)
    assert d.returncode == 0, d.stdout + d.stderr
    assert d.stdout.rstrip().splitlines()[-1].startswith("ready")
    assert "sysrq_handle_crash" in d.stdout and "opens" in d.stdout


# crash 8.0.6 opens these (crash/ holds its outputs)
CRASH_READ = ["6.12-sysrq", "6.12-test-module", "5.10-sysrq", "6.1-bug-kthread",
              "6.1-softlockup", "6.1-hung-task", "6.1-deadlock", "6.1-oom",
              "6.12-softlockup", "5.10-softlockup"]
CRASH_READ = [d for d in CRASH_READ if (SAMPLES / d / "MANIFEST").exists()]
# crash cannot open 7.x dumps: drgn/ holds drgn's port of its commands
DRGN_READ = ["7.3-sysrq", "7.3-bug-kthread", "7.3-test-module", "7.3-softlockup"]
DRGN = os.environ.get("CRASHTUI_DRGN", "/work/drgn-venv/bin/drgn")


@pytest.mark.slow
def test_make_dump_7x_sysrq_end_to_end(tmp_path: Path) -> None:
    """trixie-backports' 7.3 kernel: sid's makedumpfile with the compound_info -i; with drgn
    at hand (CRASHTUI_DRGN), -d 31 drops no page a -d 1 dump of the same crash shows in use."""
    if os.geteuid() != 0:
        pytest.skip("make-dump needs root")
    if shutil.which("apt-get") is None:
        pytest.skip("make-dump needs a Debian machine")
    out = tmp_path / "7.3-sysrq"
    r = subprocess.run([sys.executable, str(MAKE_DUMP), "--suite", "trixie-backports",
                        "--scenario", "sysrq", "--check-level", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-6000:]
    m = check_dump_dir(out)
    assert m["kernel_release"].startswith("7.") and MAKEDUMPFILE["7.3"] in m["dump_made_by"]
    check_release_with_crashtui(out / m["dump"], m["kernel_release"])
    if not Path(DRGN).exists():
        return
    work = Path(re.search(r"console log in (\S+)/console.log", r.stderr).group(1))
    check = next((work / "out" / "crash").glob("check-d1.*"))
    vmlinux = Path.home() / ".cache/crashtui-tests/vmlinux" / m["vmlinux_build_id"] / "vmlinux"
    c = subprocess.run([DRGN, "-q", "-c", str(check), "-s", str(vmlinux),
                        str(SAMPLES / "makedump" / "check_excluded.py"), str(out / m["dump"]),
                        str(vmlinux)], capture_output=True, text=True, timeout=1800)
    assert c.returncode == 0, c.stderr[-3000:]
    assert "tail of" not in c.stdout and "other kernel page" not in c.stdout, c.stdout
    counts = re.findall(r"tasks \(for_each_task\): -d \d+: (\d+)", c.stdout)
    assert len(counts) == 2 and counts[0] == counts[1], c.stdout


MADE_BY_MAKE_DUMP = CRASH_READ + DRGN_READ
# makedumpfile by kernel series: bookworm's up to 6.1, trixie's for 6.12, sid's for 7.x
MAKEDUMPFILE = {"5.10": "makedumpfile 1.7.2 -c", "6.1": "makedumpfile 1.7.2 -c",
                "6.12": "makedumpfile 1.7.6 (trixie's package) -c",
                "7.3": "makedumpfile 1.7.8 (sid's package) -c -d 31 -i "
                       "<OFFSET(page.compound_head)=8, the VMCOREINFO's page.compound_info>"}


@pytest.mark.parametrize("dump_dir", MADE_BY_MAKE_DUMP)
def test_committed_make_dump_dir_is_complete(dump_dir: str) -> None:
    out = SAMPLES / dump_dir
    m = check_dump_dir(out)
    series = dump_dir.split("-")[0]  # 7.3, 6.12, 6.1, 5.10
    assert m["kernel_release"].startswith(series + ".")
    assert MAKEDUMPFILE[series] in m["dump_made_by"]
    check_release_with_crashtui(out / m["dump"], m["kernel_release"])
    ref = "drgn" if dump_dir in DRGN_READ else "crash"
    names = ["sys", "bt", "bt-a", "log", "ps", "kmem-i", "mod"] + (["sym-rip"] if ref == "crash"
                                                                   else [])
    for name in names:
        assert (out / ref / f"{name}.txt").stat().st_size > 0, name
    sys_txt = (out / ref / "sys.txt").read_text()
    assert f"RELEASE: {m['kernel_release']}" in sys_txt
    assert "/root" not in sys_txt and "$LAB" in sys_txt
    if (out / "test-module").exists():
        assert "init dereferences (int *)1" in m["scenario"]
        assert "gcc 14" in m["scenario"]
    for ko in out.glob("*/*.ko"):
        assert ko.read_bytes()[:4] == b"\x7fELF"
        assert (ko.parent / "Makefile").is_file() and (ko.with_suffix(".c")).is_file()
        assert f"insmod {ko.name}" in m["scenario"]
        if ref == "crash":
            assert (out / "crash" / "mod-s.txt").stat().st_size > 0
        else:
            assert ko.stem.replace("-", "_") in (out / "drgn" / "mod.txt").read_text()


@pytest.mark.parametrize("dump_dir", DRGN_READ)
def test_7x_dump_dir(dump_dir: str) -> None:
    """The 7.x layout (vmlinux a real file under lib/modules in the -dbg package), drgn's
    references with their README and KNOWN-ERRORS, and the dmesg's caller ids."""
    out = SAMPLES / dump_dir
    m = read_manifest(out / "MANIFEST")
    release = m["kernel_release"]
    assert m["vmlinux_path_in_package"] == f"usr/lib/debug/lib/modules/{release}/vmlinux"
    assert m["kernel_package"].endswith("(trixie-backports)")
    assert "init_on_free=1" in m["kernel_cmdline"]
    readme = (out / "drgn" / "README.md").read_text()
    assert "drgn 0.3.0" in readme and "run_command(prog" in readme
    known = (out / "drgn" / "KNOWN-ERRORS.md").read_text()
    assert "crash_nmi_callback" in known and m["dump"] in known
    # each task KNOWN-ERRORS names has an empty block in drgn's bt -a: the error is real
    bt_a = (out / "drgn" / "bt-a.txt").read_text()
    for pid in re.findall(r"`bt-a.txt`: `PID: (\d+) ", known):
        block = re.search(rf"^PID: {pid} .*\n((?:(?!PID: ).*\n)*)", bt_a, re.M)
        assert block is not None and not re.search(r"#\d+ ", block.group(1)), pid
    dmesg = (out / m["dmesg"]).read_text(errors="replace")
    assert re.search(r"^\[ *\d+\.\d+\] \[ *T1\] ", dmesg, re.M)   # CONFIG_PRINTK_CALLER
    tasks = int(re.search(r"TASKS: (\d+)", (out / "drgn" / "sys.txt").read_text()).group(1))
    assert tasks == len((out / "drgn" / "ps.txt").read_text().splitlines()) - 1


def test_deadlock_dump_shows_both_tasks_blocked_on_each_others_mutex() -> None:
    out = SAMPLES / "6.1-deadlock"
    un = (out / "crash" / "foreach-UN-bt.txt").read_text()
    tasks = dict(re.findall(r'TASK: ([0-9a-f]+)\s+CPU: \d+\s+COMMAND: "(deadlock_\w+)"', un))
    assert sorted(tasks.values()) == ["deadlock_ab", "deadlock_ba"]
    assert un.count("__mutex_lock") == 2
    owners = {}
    for lock in ("a", "b"):
        text = (out / "crash" / f"struct-mutex-lock-{lock}.txt").read_text()
        counter = int(re.search(r"owner = \{\s*counter = (-?\d+)", text).group(1))
        owners[lock] = tasks[f"{counter % (1 << 64) & ~7:x}"]
    assert owners == {"a": "deadlock_ab", "b": "deadlock_ba"}   # each holds the one it took first
    dmesg = (out / read_manifest(out / "MANIFEST")["dmesg"]).read_text()
    assert "INFO: task deadlock_ab:" in dmesg and "INFO: task deadlock_ba:" in dmesg


def test_oom_dump_panicked_in_the_oom_killer() -> None:
    out = SAMPLES / "6.1-oom"
    dmesg = (out / read_manifest(out / "MANIFEST")["dmesg"]).read_text()
    assert "awk invoked oom-killer" in dmesg
    assert "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled" \
        in dmesg
    bt = (out / "crash" / "bt.txt").read_text()
    assert 'COMMAND: "awk"' in bt and "out_of_memory" in bt
    assert (out / "crash" / "ps-m.txt").stat().st_size > 0


@pytest.mark.parametrize("dump_dir", ["6.1-sysrq", "6.1-test-module", *CRASH_READ])
def test_panic_rip_matches_recorded_sym(dump_dir: str) -> None:
    """record-crash-output picks the address the committed sym-rip.txt was made for."""
    crash_dir = SAMPLES / dump_dir / "crash"
    rip = crashout.panic_rip((crash_dir / "bt.txt").read_text())
    assert rip is not None
    assert (crash_dir / "sym-rip.txt").read_text().startswith(rip + " ")


def _parse_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    entries, p = {}, 0
    while True:
        assert data[p:p + 6] == b"070701"
        f = [int(data[p + 6 + 8 * i:p + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[p + 110:p + 110 + namesize - 1].decode()
        p += 110 + namesize
        p += -p % 4
        body = data[p:p + size]
        p += size
        p += -p % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body)


def test_cpio_writer_is_valid_newc() -> None:
    c = initramfs.Cpio()
    c.dir("usr/bin")
    c.file("usr/bin/tool", b"abc", 0o755)
    c.symlink("bin/sh", "busybox")
    c.chardev("dev/console", 5, 1)
    entries = _parse_newc(gzip.decompress(c.gzip()))
    names = list(entries)
    assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/tool")
    assert names.index("bin") < names.index("bin/sh")
    assert entries["usr/bin/tool"] == (0o100755, b"abc")
    assert entries["bin/sh"][1] == b"busybox"
    assert entries["dev/console"][0] == 0o020600


def test_scenarios_and_init() -> None:
    assert {"sysrq", "test-module", "bug-kthread", "softlockup", "hung-task", "deadlock",
            "oom"} <= set(SCENARIOS)
    for sc in SCENARIOS.values():
        if sc.module:
            assert sc.module_src is not None
            assert (sc.module_src / f"{sc.module}.c").exists(), sc.name
            assert (sc.module_src / "Makefile").exists(), sc.name
            assert sc.ko_in_guest in sc.shell
    conf = initramfs.config_text("sysrq", SCENARIOS["sysrq"].shell, "-c -d 31", False)
    if shutil.which("sh"):
        subprocess.run(["sh", "-n"], input=initramfs.INIT + conf, text=True, check=True)


def test_parse_depends() -> None:
    got = debian.parse_depends("linux-base (>= 4.12~), linux-headers-x-common (= 1.2-3), "
                               "linux-image-x (= 1.2-3) | linux-image-x-unsigned (= 1.2-3), gcc-14")
    assert got == [[("linux-base", None)], [("linux-headers-x-common", "1.2-3")],
                   [("linux-image-x", "1.2-3"), ("linux-image-x-unsigned", "1.2-3")],
                   [("gcc-14", None)]]
    assert debian.upstream_version("1:1.7.2-1") == "1.7.2"


def test_compound_info_fix_is_recorded_from_the_console() -> None:
    from makedump.cli import _compound_fix

    console = ("MAKEDUMP: VMCOREINFO has OFFSET(page.compound_info)=8: makedumpfile gets it "
               "as OFFSET(page.compound_head) with -i\n")
    assert _compound_fix(console) == (" -i <OFFSET(page.compound_head)=8, the VMCOREINFO's "
                                      "page.compound_info>")
    assert _compound_fix("MAKEDUMP: makedumpfile -c -d 31 /proc/vmcore dump.1\n") == ""
    assert "OFFSET(page.compound_info)=" in initramfs.INIT and "-i /tmp/vmcoreinfo" in \
        initramfs.INIT


def test_kernel_7x_package_layout(tmp_path: Path) -> None:
    """7.x: vmlinuz in the modules dir (linux-binary-*), boot/vmlinux-* of -dbg a symlink."""
    from makedump.kernel import Kernel

    rel = "7.3.4+deb13-cloud-amd64"
    k = Kernel(suite="trixie-backports", release=rel, version="7.3.4-1~bpo13+1",
               root=tmp_path / "image", dbg_root=tmp_path / "dbg")
    (k.root / "usr/lib/modules" / rel).mkdir(parents=True)
    (k.root / "usr/lib/modules" / rel / "vmlinuz").write_bytes(b"bz")
    real = k.dbg_root / "usr/lib/debug/lib/modules" / rel / "vmlinux"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"\x7fELF")
    (k.dbg_root / "usr/lib/debug/boot").mkdir(parents=True)
    (k.dbg_root / "usr/lib/debug/boot" / f"vmlinux-{rel}").symlink_to(
        f"../lib/modules/{rel}/vmlinux")
    assert k.vmlinuz == k.root / "usr/lib/modules" / rel / "vmlinuz"
    assert k.vmlinux_member == f"usr/lib/debug/lib/modules/{rel}/vmlinux"
    assert k.vmlinux.read_bytes() == b"\x7fELF" and not k.vmlinux.is_symlink()
    assert k.major_minor == (7, 3) and k.source_package == "linux-source-7.3 7.3.4-1~bpo13+1"


def test_suites_backports_apart_from_their_base() -> None:
    assert debian._own_suites("trixie") == ("trixie", "trixie-updates", "trixie-security")
    assert debian._own_suites("trixie-backports") == ("trixie-backports",)
    assert debian._own_suites("sid") == ("sid",)
    assert debian.BASE_SUITE["trixie-backports"] == "trixie"
