"""`crashtui doctor` on recorded /proc, /sys, /etc trees (tests/doctor_trees/<case>/): each
tree has one problem, `ready` none; --test opens the real 6.1-sysrq sample dump saved there."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from crashtui.cli import main as cli_main
from crashtui.doctor import examine
from crashtui.doctor.check import PROBLEM, WARNING, Machine
from crashtui.doctor.render import text_lines
from crashtui.doctor.reservation import choose_size, recommended_size
from crashtui.doctor.service import estimate_dump_bytes, parse_makedump_args

TREES = Path(__file__).parent / "doctor_trees"
SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
BUILD_ID = "3b43fad5034874490492495d552c0af6a5fab235"  # 6.1.0-56-cloud-amd64 (sample dumps)
PLENTY = 100 << 30

# case: (problems, warnings) by check id; the debug vmlinux is absent from every tree
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "ready": (set(), {"debug-vmlinux"}),
    "fedora-ready": (set(), {"debug-vmlinux"}),
    "no-crashkernel": ({"crashkernel", "crash-memory", "capture-loaded"}, {"debug-vmlinux"}),
    "crashkernel-range-misses": ({"crashkernel", "crash-memory", "capture-loaded"},
                                 {"debug-vmlinux"}),
    "crashkernel-too-small": ({"crash-memory"}, {"debug-vmlinux"}),
    "capture-not-loaded": ({"capture-loaded"}, {"debug-vmlinux"}),
    "use-kdump-0": ({"kdump-service", "capture-loaded"}, {"panic_on_oops", "debug-vmlinux"}),
    "service-disabled": ({"kdump-service", "capture-loaded"},
                         {"panic_on_oops", "debug-vmlinux"}),
    "no-kdump-tools": ({"kdump-service", "crashkernel", "crash-memory", "capture-loaded"},
                       {"panic_on_oops", "debug-vmlinux"}),
    "no-kexec-support": ({"crash-support"}, {"debug-vmlinux"}),
    "capture-initrd-missing": ({"capture-files"}, {"debug-vmlinux"}),
    "makedump-dmesg-only": ({"dump-format"}, {"debug-vmlinux"}),
    "makedump-level-1": (set(), {"dump-format", "debug-vmlinux"}),
    "whole-file-xz": (set(), {"dump-format", "debug-vmlinux"}),
    "capture-cmdline-no-unit": ({"capture-cmdline"}, {"debug-vmlinux"}),
    "panic-policy": (set(), {"panic_on_oops", "panic_on_warn", "debug-vmlinux"}),
    "no-debuginfo": ({"debug-vmlinux"}, {"kernel-debuginfo"}),
    "old-kernel": (set(), {"kernel-version", "debug-vmlinux"}),
    # recorded from a real make-dump guest (README.md): capture kernel loaded by its /init
    "guest-6.1-sysrq": (set(), {"kdump-service", "debug-vmlinux"}),
}


def machine(case: str | Path, free: int = PLENTY) -> Machine:
    root = case if isinstance(case, Path) else TREES / case
    return Machine(root, free_space=lambda _p: free)


def test_every_tree_is_expected() -> None:
    assert sorted(p.name for p in TREES.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_tree(case: str) -> None:
    report = examine(machine(case))
    problems, warnings = EXPECTED[case]
    assert {c.id for c in report.problems} == problems, text_lines(report)
    assert {c.id for c in report.warnings} == warnings, text_lines(report)
    assert report.ready == (not problems)
    for c in report.problems:
        assert c.fix, f"{case}: problem {c.id} has no fix command"
    lines = text_lines(report)
    assert lines[-1].startswith("ready" if report.ready else "not ready")


def test_ready_tree_facts() -> None:
    report = examine(machine("ready"))
    by_id = {c.id: c for c in report.checks}
    assert report.tool == "kdump-tools"
    assert by_id["crashkernel"].text.startswith("crashkernel=256M: asks for 256 MiB")
    assert "256 MiB reserved" in by_id["crash-memory"].text
    assert "flattened kdump-compressed (zlib), -d 31" in by_id["dump-format"].text
    assert "systemd.unit=kdump-tools-dump.service nr_cpus=1" in by_id["capture-cmdline"].text
    assert by_id["capture-cmdline"].text.count("crashkernel") == 0
    # the build-id comes from the kernel's own notes (recorded /sys/kernel/notes)
    assert BUILD_ID in by_id["debug-vmlinux"].text
    assert "linux-image-6.1.0-56-cloud-amd64-dbg" in (by_id["debug-vmlinux"].fix or "")
    assert "Alt-SysRq-c on the console is disabled" in by_id["sysrq"].text  # 438 lacks bit 8


def test_fedora_reads_kdump_conf() -> None:
    report = examine(machine("fedora-ready"))
    by_id = {c.id: c for c in report.checks}
    assert report.tool == "kexec-tools"
    assert "kdump.service enabled" in by_id["kdump-service"].text
    assert "core_collector" in by_id["dump-format"].text and "(lzo)" in by_id["dump-format"].text
    assert "256 MiB" in by_id["crashkernel"].text  # 4G-64G:256M with ~7.8 GiB
    assert by_id["debug-vmlinux"].fix == "dnf debuginfo-install -y kernel-6.11.4-301.fc41.x86_64"


def test_dump_space() -> None:
    small = examine(machine("ready", free=10 << 20))
    space = next(c for c in small.checks if c.id == "dump-space")
    assert space.status == PROBLEM and space.fix and "not enough" in space.text
    tight = examine(machine("ready", free=30 << 20))
    assert next(c for c in tight.checks if c.id == "dump-space").status == WARNING


def test_estimate_matches_the_sample_dump() -> None:
    """The 1 GiB guest's meminfo (from the 6.1-sysrq dump's kmem -i) gives an estimate not
    below the real dump's size (18 MB at -c -d 31)."""
    from crashtui.doctor.check import meminfo

    mem = meminfo(machine("ready"))
    est = estimate_dump_bytes(mem, parse_makedump_args("-c -d 31", True))
    real = (SAMPLES / "6.1-sysrq" / "dump.202611261023").stat().st_size
    assert est is not None and real <= est < 4 * real
    whole = estimate_dump_bytes(mem, parse_makedump_args("", True))
    assert whole == mem["MemTotal"]


def test_crashkernel_syntax() -> None:
    g = 1 << 30
    m = 1 << 20
    assert choose_size("256M", g) == 256 * m
    assert choose_size("512M-2G:64M,2G-:128M", g) == 64 * m
    assert choose_size("512M-2G:64M,2G-:128M", 2 * g) == 128 * m  # end is exclusive
    assert choose_size("512M-2G:64M,2G-:128M", 256 * m) == 0
    assert choose_size("384M-:128M@16M", 4 * g) == 128 * m
    assert choose_size("2G-:oops", 4 * g) is None
    assert recommended_size(g) == 192 * m and recommended_size(8 * g) == 256 * m


def test_makedump_args() -> None:
    f = parse_makedump_args("-c -d 31", True)
    assert (f.codec, f.level, f.flattened, f.elf) == ("zlib", 31, True, False)
    assert parse_makedump_args("-z -d31", False).codec == "zstd"
    assert parse_makedump_args("-l --message-level 7 -d 31", False).codec == "lzo"
    assert parse_makedump_args("-p --dump-level=17", False).level == 17
    assert parse_makedump_args("-E -d 31", False).elf


def _tree_copy(tmp_path: Path, case: str = "ready") -> Path:
    root = tmp_path / case
    shutil.copytree(TREES / case, root, symlinks=True)
    return root


@pytest.mark.needs_vmlinux
def test_debug_vmlinux_found_by_build_id(tmp_path: Path, vmlinux_path: Path) -> None:
    root = _tree_copy(tmp_path)
    link = root / "usr/lib/debug/.build-id" / BUILD_ID[:2] / f"{BUILD_ID[2:]}.debug"
    link.parent.mkdir(parents=True)
    link.symlink_to(vmlinux_path)
    report = examine(machine(root))
    c = next(c for c in report.checks if c.id == "debug-vmlinux")
    assert c.status == "ok", c.text
    assert f"/usr/lib/debug/.build-id/3b/{BUILD_ID[2:]}.debug" in c.text
    assert "/usr/lib/debug/.build-id/xx/<build-id>.debug" in c.text  # where crashtui looks
    assert not report.warnings and report.ready


def test_test_without_dump(tmp_path: Path) -> None:
    report = examine(machine("ready"), test=True)
    c = report.checks[-1]
    assert (c.id, c.status, c.needs_root) == ("test-dump", WARNING, True)
    assert "echo c > /proc/sysrq-trigger" in c.detail[0]
    assert report.ready  # no dump yet is no problem
    assert "no dump in /var/crash yet" in "\n".join(text_lines(report))


@pytest.mark.parametrize("with_vmlinux", [False, True])
def test_test_opens_the_newest_dump(tmp_path: Path, with_vmlinux: bool,
                                    request: pytest.FixtureRequest) -> None:
    """After the crash: kdump-tools' <stamp>/dump.<stamp> (the real 6.1-sysrq dump) opens."""
    root = _tree_copy(tmp_path)
    if with_vmlinux:
        vmlinux = request.getfixturevalue("vmlinux_path")
        link = root / "usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64"
        link.parent.mkdir(parents=True)
        link.symlink_to(vmlinux)
    older = root / "var/crash/202611251200"
    older.mkdir()
    (older / "dump.202611251200").write_bytes(b"not a dump")
    stamp = root / "var/crash/202611261023"
    stamp.mkdir()
    (stamp / "dump.202611261023").symlink_to(SAMPLES / "6.1-sysrq" / "dump.202611261023")
    report = examine(machine(root), test=True)
    c = report.checks[-1]
    assert c.status == "ok", c.text
    assert c.text.startswith("newest dump /var/crash/202611261023/dump.202611261023 "
                             "(this kernel) opens with the " +
                             ("debug vmlinux" if with_vmlinux else "kernel's own symbols"))
    # the signature crashtui --signature gives this dump (README: fc06b3985f5cd9e1)
    assert "fc06b3985f5cd9e1  sysrq  sysrq_handle_crash" in c.text


def test_test_broken_and_compressed_dumps(tmp_path: Path) -> None:
    root = _tree_copy(tmp_path)
    d = root / "var/crash/202611261023"
    d.mkdir()
    (d / "dump.202611261023").write_bytes(b"KDUMP   " + b"\0" * 8)
    c = examine(machine(root), test=True).checks[-1]
    assert c.status == PROBLEM and "does not open" in c.text
    (d / "dump.202611261023").rename(d / "dump.202611261023.xz")
    c = examine(machine(root), test=True).checks[-1]
    assert c.status == WARNING and "unxz /var/crash/202611261023/dump.202611261023.xz" in c.text
    assert "crashtui /var/crash/202611261023/dump.202611261023.xz` decompresses" in c.text
    (d / "dump.202611261023.xz").rename(d / "dump.202611261023.lz4")
    c = examine(machine(root), test=True).checks[-1]
    assert c.status == WARNING and "`lz4 -d --rm /var/crash/202611261023/dump.20261126" in c.text
    assert "decompresses a copy" not in c.text


def test_cli_text_json_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", "--root", str(TREES / "ready")]) == 0
    text = capsys.readouterr().out
    assert "ok       capture kernel loaded" in text and text.rstrip().endswith("(1 warning)")
    assert cli_main(["doctor", "--root", str(TREES / "no-crashkernel"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ready"] is False and doc["kdump_service"] == "kdump-tools"
    assert doc["as_root"] is None  # a recorded tree
    first = doc["checks"][0]
    assert (first["id"], first["status"], first["area"]) == ("crashkernel", "problem", "capture")
    assert "update-grub && reboot" in first["fix"]
    assert cli_main(["doctor", "--root", "/nonexistent-doctor-root"]) == 2


def test_cli_dump_named_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """A dump file named `doctor` in the current directory is still opened as a dump."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doctor").write_bytes(b"neither a dump nor ELF")
    assert cli_main(["doctor", "-c", "sys"]) == 2
    assert "doctor: not a kdump-compressed, flattened or ELF dump" in capsys.readouterr().err
    os.remove(tmp_path / "doctor")
    (tmp_path / "doctor").mkdir()  # a directory is no dump: the subcommand
    assert cli_main(["doctor", "--root", str(TREES / "ready"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ready"] is True


def test_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    """On the machine running the tests: a report (ready or not), never a traceback."""
    status = cli_main(["doctor"])
    out = capsys.readouterr().out
    assert status in (0, 1)
    assert out.startswith("crashtui doctor: ") and out.rstrip().splitlines()[-1].startswith(
        ("ready", "not ready"))


def test_unpackaged_kernel_with_proc_config(tmp_path: Path) -> None:
    """A self-built kernel (no dpkg list, config only in /proc/config.gz, as on the machine
    running crashtui's CI): no package to suggest, and its config is still read."""
    import gzip

    root = _tree_copy(tmp_path)
    rel = "6.1.0-56-cloud-amd64"
    os.remove(root / f"var/lib/dpkg/info/linux-image-{rel}.list")
    config = (root / f"boot/config-{rel}").read_text()
    os.remove(root / f"boot/config-{rel}")
    config = config.replace("CONFIG_KALLSYMS_ALL=y", "# CONFIG_KALLSYMS_ALL is not set")
    (root / "proc/config.gz").write_bytes(gzip.compress(
        (config + "# CONFIG_MAGIC_SYSRQ is not set\n").encode()))
    os.remove(root / "proc/sys/kernel/sysrq")
    by_id = {c.id: c for c in examine(machine(root)).checks}
    assert by_id["debug-vmlinux"].fix is None
    assert "not from a distribution package" in by_id["debug-vmlinux"].text
    own = by_id["kernel-debuginfo"]
    assert own.status == WARNING and "ORC unwinder" in own.text and "KALLSYMS_ALL" in own.text
    assert by_id["sysrq"].status == WARNING and "CONFIG_MAGIC_SYSRQ" in by_id["sysrq"].text


def test_unreadable_config_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file only root may read is said so ([root]), not taken for a wrong setting (the
    tests run as root, so the permission error is simulated)."""
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "kdump-tools" and self.parent.name == "default":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    report = examine(machine("ready"))
    by_id = {c.id: c for c in report.checks}
    assert by_id["kdump-service"].status == WARNING and by_id["kdump-service"].needs_root
    assert "readable by root only" in by_id["kdump-service"].text
    assert report.ready
    assert any(line.endswith("[root]") for line in text_lines(report))


def test_real_guest_tree_is_the_sample_dumps_kernel(tmp_path: Path) -> None:
    """The tree recorded from a make-dump guest: ready, its build-id (read from its own
    /sys/kernel/notes) is the 6.1 samples' kernel, and --test opens a dump of that kernel."""
    report = examine(machine("guest-6.1-sysrq"))
    assert report.ready
    by_id = {c.id: c for c in report.checks}
    assert by_id["capture-loaded"].status != WARNING and "= 1" in by_id["capture-loaded"].text
    assert BUILD_ID in by_id["debug-vmlinux"].text
    root = tmp_path / "root"
    shutil.copytree(TREES / "guest-6.1-sysrq", root)
    crash_dir = root / "var" / "crash" / "202611261023"
    crash_dir.mkdir(parents=True)
    os.symlink(SAMPLES / "6.1-sysrq" / "dump.202611261023", crash_dir / "dump.202611261023")
    tested = examine(Machine(root, free_space=lambda _p: PLENTY), test=True)
    assert tested.ready
    assert any("fc06b3985f5cd9e1" in c.text for c in tested.checks)
