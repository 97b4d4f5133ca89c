"""crash's argument order (`crash vmlinux vmcore`) works too, on the real 6.1 sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.needs_vmlinux


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_vmlinux_first_is_the_same_as_dump_first(sysrq_dump: Path, vmlinux_path: Path) -> None:
    crash_order = crashtui(str(vmlinux_path), str(sysrq_dump), "-c", "sys")
    ours = crashtui(str(sysrq_dump), str(vmlinux_path), "-c", "sys")
    assert crash_order.returncode == 0, crash_order.stderr
    assert crash_order.stdout == ours.stdout and "RELEASE: 6.1.0-56-cloud-amd64" in ours.stdout


def test_signature_takes_either_order(sysrq_dump: Path, vmlinux_path: Path) -> None:
    a = crashtui("--signature", str(vmlinux_path), str(sysrq_dump))
    b = crashtui(str(sysrq_dump), str(vmlinux_path), "--signature")
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and a.stdout.count("\n") == 1
    assert "sysrq_handle_crash" in a.stdout


def test_a_vmlinux_alone_says_the_dump_is_missing(vmlinux_path: Path) -> None:
    r = crashtui(str(vmlinux_path), "-c", "sys")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("this is a kernel image (vmlinux); give the dump file too")
