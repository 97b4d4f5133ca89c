"""The crash summary (`sys`), the log and the JSON document against crash's output on real dumps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import dump_of

from crashtui.analysis.session import Session

DUMPS = ["6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module", "5.10-sysrq",
         "6.1-bug-kthread", "6.1-softlockup", "6.1-hung-task"]
# crash gets 6.12's UPTIME wrong (6.12-sysrq/crash/KNOWN-ERRORS.md)
SYS_DUMPS = [name for name in DUMPS if not name.startswith("6.12-")]


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


def crash_fields(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(": ")
        out[key.strip()] = value
    return out



@pytest.mark.parametrize("name", SYS_DUMPS)
def test_sys_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    dump = dump_of(name)
    vmlinux_path = vmlinux_for[name]
    r = crashtui(str(dump), str(vmlinux_path), "-c", "sys")
    assert r.returncode == 0, r.stderr
    mine = crash_fields_from_text(r.stdout)
    theirs = crash_fields(dump.parent / "crash" / "sys.txt")
    assert list(mine) == list(theirs)
    for key, value in theirs.items():
        if key == "KERNEL":
            assert mine[key].endswith("[TAINTED]") == value.endswith("[TAINTED]")
        elif key == "DUMPFILE":
            assert mine[key].endswith("[PARTIAL DUMP]") == value.endswith("[PARTIAL DUMP]")
        else:
            assert mine[key] == value, key


def crash_fields_from_text(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        out[key.strip()] = value
    return out


@pytest.mark.parametrize("name", DUMPS)
def test_log_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    dump = dump_of(name)
    vmlinux_path = vmlinux_for[name]
    r = crashtui(str(dump), str(vmlinux_path), "-c", "log")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == (dump.parent / "crash" / "log.txt").read_text().splitlines()


@pytest.mark.parametrize("name", DUMPS)
def test_json_summary_matches_crash_bt_header(name: str, vmlinux_for: dict[str, Path]) -> None:
    dump = dump_of(name)
    vmlinux_path = vmlinux_for[name]
    r = crashtui(str(dump), str(vmlinux_path), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    summary = doc["summary"]
    assert list(summary) == ["KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE",
                             "TASKS", "NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY",
                             "PANIC", "PID", "COMMAND", "TASK", "CPU", "STATE"]
    header = (dump.parent / "crash" / "bt.txt").read_text().splitlines()[0]
    # PID: 1        TASK: ffff8af3c1204180  CPU: 3    COMMAND: "init"
    parts = header.split()
    assert summary["PID"] == parts[1]
    assert summary["TASK"] == parts[3]
    assert summary["CPU"] == parts[5]
    assert summary["COMMAND"] == parts[7]
    assert summary["STATE"] == "TASK_RUNNING (PANIC)"
    assert doc["log"] == (dump.parent / "crash" / "log.txt").read_text().splitlines()


def test_elf_vmcore_gives_same_summary(sysrq_elf_vmcore: Path, vmlinux_path: Path) -> None:
    kdump = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    elf = Session.open(sysrq_elf_vmcore, vmlinux_path)
    for key in ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS", "RELEASE", "VERSION",
                "MACHINE", "MEMORY", "PANIC", "PID", "COMMAND", "TASK", "CPU"):
        assert elf.summary.fields[key] == kdump.summary.fields[key], key
    assert elf.log.lines() == kdump.log.lines()


def test_wrong_vmlinux_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "vmlinux"
    fake.write_bytes(b"\x7fELF" + b"\0" * 60)
    r = crashtui(str(dump_of("6.1-sysrq")), str(fake), "-c", "sys")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert str(fake) in r.stderr


def test_missing_dump_is_one_clear_line(tmp_path: Path) -> None:
    r = crashtui(str(tmp_path / "nope"), "-c", "sys")
    assert r.returncode == 2
    assert r.stderr.strip() == f"crashtui: {tmp_path / 'nope'}: dump file not found"
