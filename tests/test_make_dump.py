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


MADE_BY_MAKE_DUMP = ["6.12-sysrq", "6.12-test-module", "5.10-sysrq", "6.1-bug-kthread",
                     "6.1-softlockup", "6.1-hung-task"]


@pytest.mark.parametrize("dump_dir", MADE_BY_MAKE_DUMP)
def test_committed_make_dump_dir_is_complete(dump_dir: str) -> None:
    out = SAMPLES / dump_dir
    m = check_dump_dir(out)
    series = dump_dir.split("-")[0]  # 6.12, 6.1, 5.10
    assert m["kernel_release"].startswith(series + ".")
    assert ("1.7.6" if series == "6.12" else "1.7.2") in m["dump_made_by"]
    check_release_with_crashtui(out / m["dump"], m["kernel_release"])
    for name in ("sys", "bt", "bt-a", "log", "ps", "kmem-i", "mod", "sym-rip"):
        assert (out / "crash" / f"{name}.txt").stat().st_size > 0, name
    sys_txt = (out / "crash" / "sys.txt").read_text()
    assert f"RELEASE: {m['kernel_release']}" in sys_txt
    assert "/root" not in sys_txt and "$LAB" in sys_txt
    if (out / "test-module").exists():
        assert "init dereferences (int *)1" in m["scenario"]
        assert "gcc 14" in m["scenario"]
    for ko in out.glob("*/*.ko"):
        assert ko.read_bytes()[:4] == b"\x7fELF"
        assert (ko.parent / "Makefile").is_file() and (ko.with_suffix(".c")).is_file()
        assert (out / "crash" / "mod-s.txt").stat().st_size > 0
        assert f"insmod {ko.name}" in m["scenario"]


@pytest.mark.parametrize("dump_dir", ["6.1-sysrq", "6.1-test-module", *MADE_BY_MAKE_DUMP])
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
    assert {"sysrq", "test-module", "bug-kthread", "softlockup", "hung-task"} <= set(SCENARIOS)
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
