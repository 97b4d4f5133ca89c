"""Samples that outlive Debian's mirror: a sample whose vmlinux package version is no longer
served is named, with the make-dump command that replaces it; the try-it falls back to a
sample whose vmlinux is still served; a test session that skipped such samples fails.

A missing version is simulated by a copy of a real sample's MANIFEST naming a version of its
-dbg package that apt does not have (apt itself answers, from its package lists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, cache_dir, missing_vmlinux_verdict

from crashtui.debuginfo import debian
from crashtui.debuginfo.debian import (
    VmlinuxUnavailable,
    fetch_manifest_vmlinux,
    manifest_suite,
    read_manifest,
    remake_command,
)

GONE_VERSION = "6.1.192-0+gone"
REMAKE_6_1_SYSRQ = ("sample-dumps/make-dump --suite bookworm --scenario sysrq "
                    "--out sample-dumps/6.1-sysrq --force")

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("apt-cache")
                               is None, reason="needs apt (a Debian machine)")


def gone_sample(root: Path, name: str = "6.1-sysrq") -> Path:
    """A copy of sample-dumps/<name>'s MANIFEST whose -dbg version the mirror lacks."""
    src = SAMPLES / name / "MANIFEST"
    out = root / "sample-dumps" / name
    out.mkdir(parents=True)
    lines = []
    for line in src.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "vmlinux_package":
            line = f"{key}={value.split()[0]} {GONE_VERSION}"
        elif key == "vmlinux_build_id":
            line = f"{key}={'ab' * 20}"
        lines.append(line)
    (out / "MANIFEST").write_text("\n".join(lines) + "\n")
    return out


def test_remake_command_of_each_kind_of_sample() -> None:
    seed = SAMPLES / "6.1-sysrq"        # the earlier lab's, with an ELF vmcore, no made_with
    assert remake_command(seed, read_manifest(seed / "MANIFEST")) == REMAKE_6_1_SYSRQ + " --elf"
    d = SAMPLES / "7.3-sysrq"
    m = read_manifest(d / "MANIFEST")
    assert manifest_suite(m) == "trixie-backports"
    assert remake_command(d, m) == ("sample-dumps/make-dump --suite trixie-backports "
                                    "--scenario sysrq --out sample-dumps/7.3-sysrq --force")
    d = SAMPLES / "6.1-hung-task"
    assert "--suite bookworm --scenario hung-task " in remake_command(d, read_manifest(
        d / "MANIFEST"))


@needs_apt
def test_gone_version_names_the_sample_and_the_command(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # this process's record of unfetchable samples: the simulated loss must not fail the run
    monkeypatch.setattr(debian, "UNAVAILABLE", {})
    sample = gone_sample(tmp_path)
    with pytest.raises(VmlinuxUnavailable) as info:
        fetch_manifest_vmlinux(sample / "MANIFEST", tmp_path / "cache")
    assert list(debian.UNAVAILABLE) == ["6.1-sysrq"]
    exc = info.value
    assert exc.gone and exc.sample == "6.1-sysrq"
    assert exc.remake == REMAKE_6_1_SYSRQ
    text = str(exc)
    assert text.startswith("6.1-sysrq: ")
    assert f"linux-image-6.1.0-56-cloud-amd64-dbg {GONE_VERSION}" in text
    assert "no longer serves" in text and REMAKE_6_1_SYSRQ in text
    assert not (tmp_path / "cache" / "vmlinux").exists() or not any(
        (tmp_path / "cache" / "vmlinux").rglob("vmlinux*"))


def test_verdict_counts_samples_against_the_limit() -> None:
    missing = {"6.1-sysrq": f"6.1-sysrq: ... {REMAKE_6_1_SYSRQ}"}
    assert missing_vmlinux_verdict({}, 0) is None
    assert missing_vmlinux_verdict(missing, 1) is None
    verdict = missing_vmlinux_verdict(missing, 0)
    assert verdict is not None and REMAKE_6_1_SYSRQ in verdict and "fails" in verdict


SESSION_TEST = '''
from pathlib import Path
from conftest import vmlinux_of

def test_uses_the_gone_sample():
    vmlinux_of(Path(__file__).resolve().parent.parent / "sample-dumps" / "6.1-sysrq")
'''


def run_session(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest in a tree with the real tests/conftest.py and one test on the gone sample."""
    if not (tmp_path / "tests").exists():
        gone_sample(tmp_path)
        (tmp_path / "tests").mkdir()
        shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
        (tmp_path / "tests" / "test_gone.py").write_text(SESSION_TEST)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", "tests"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "CRASHTUI_TEST_CACHE": str(tmp_path / "cache"),
                               **env}, timeout=300)


@needs_apt
def test_session_with_a_gone_vmlinux_fails(tmp_path: Path) -> None:
    r = run_session(tmp_path)
    out = r.stdout + r.stderr
    assert "1 skipped" in out, out[-3000:]
    assert r.returncode == 1, out[-3000:]
    assert "sample dumps without their debug vmlinux" in out
    assert "6.1-sysrq: its debug vmlinux cannot be fetched" in out and REMAKE_6_1_SYSRQ in out
    allowed = run_session(tmp_path, CRASHTUI_MAX_MISSING_VMLINUX="1")
    assert allowed.returncode == 0, (allowed.stdout + allowed.stderr)[-3000:]
    assert REMAKE_6_1_SYSRQ in allowed.stdout


@needs_apt
def test_try_it_falls_back_to_a_served_sample(tmp_path: Path) -> None:
    """README's try-it: the first sample is gone, the next one's vmlinux is fetched (or is
    already in the tests' cache)."""
    gone = gone_sample(tmp_path)
    r = subprocess.run([sys.executable, "-m", "crashtui.debuginfo.debian", "--first-available",
                        str(gone), str(SAMPLES / "6.1-sysrq")], capture_output=True, text=True,
                       env={**os.environ, "CRASHTUI_TEST_CACHE": str(cache_dir())}, cwd=ROOT,
                       timeout=900)
    if r.returncode != 0 and "cannot be fetched" in r.stderr and "6.1-sysrq/MANIFEST" in r.stderr:
        pytest.skip(f"the served sample's vmlinux cannot be fetched here: {r.stderr[-500:]}")
    assert r.returncode == 0, r.stderr
    dump, vmlinux = r.stdout.split("\n")[:2]
    assert Path(dump) == SAMPLES / "6.1-sysrq" / read_manifest(
        SAMPLES / "6.1-sysrq" / "MANIFEST")["dump"]
    assert Path(vmlinux).name == "vmlinux-6.1.0-56-cloud-amd64" and Path(vmlinux).is_file()
    assert f"crashtui: 6.1-sysrq: its debug vmlinux cannot be fetched: Debian's mirror no " \
           f"longer serves linux-image-6.1.0-56-cloud-amd64-dbg {GONE_VERSION}" in r.stderr
    assert REMAKE_6_1_SYSRQ in r.stderr


def test_readme_try_it_falls_back_over_existing_samples() -> None:
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "--first-available" in x and "crashtui" in x)
    samples = line.split("--first-available", 1)[1].split(")", 1)[0].split()
    assert samples[0] == "sample-dumps/6.1-sysrq" and len(samples) >= 2
    for s in samples:
        assert (ROOT / s / "MANIFEST").is_file(), s
    assert '.venv/bin/crashtui "$1" "$2"' in line
