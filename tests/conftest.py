"""Shared fixtures: the real sample dumps and their debug vmlinux (fetched once, cached)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-dumps"

# What the machine has in /usr/src (linux-source-X.Y) and /usr/lib/debug is not the tests':
# crashtui looks there (rightly), so the tests point both at an empty directory, and drop a
# CRASHTUI_SOURCE of the user's. A test that wants such files puts them in a directory of its
# own and sets the variable itself (subprocesses inherit these).
MACHINE_FREE = Path(tempfile.mkdtemp(prefix="crashtui-tests-empty-"))
os.environ["CRASHTUI_SRC_ROOT"] = str(MACHINE_FREE)
os.environ["CRASHTUI_DEBUG_ROOT"] = str(MACHINE_FREE)
os.environ.pop("CRASHTUI_SOURCE", None)
atexit.register(shutil.rmtree, MACHINE_FREE, True)


def cache_dir() -> Path:
    """Where the tests keep what they download (CRASHTUI_TEST_CACHE overrides)."""
    env = os.environ.get("CRASHTUI_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "crashtui-tests"


def _add_suite_to_apt(suite: str) -> bool:
    """As root, make apt know a sample's suite the way make-dump does (pinned low, so nothing
    installed is ever upgraded from it). False when that cannot be done here."""
    if os.geteuid() != 0 or not (SAMPLES / "makedump" / "debian.py").exists():
        return False
    import sys

    sys.path.insert(0, str(SAMPLES))
    try:
        from makedump import debian as makedump_debian
        from makedump.util import MakeDumpError

        if makedump_debian.ensure_suite_sources(suite):
            makedump_debian.apt_update()
    except (ImportError, MakeDumpError, OSError):
        return False
    finally:
        sys.path.remove(str(SAMPLES))
    return True


def fetch_vmlinux(manifest: Path = SAMPLES / "6.1-sysrq" / "MANIFEST") -> Path:
    """The debug vmlinux a sample dump's MANIFEST names (downloaded on first use, cached).
    A sample of a suite apt does not know (trixie, trixie-backports on a bookworm machine)
    gets that suite added, pinned low, when the tests run as root."""
    from crashtui.debuginfo.debian import (
        VmlinuxUnavailable,
        apt_knows_suite,
        fetch_manifest_vmlinux,
        manifest_suite,
    )

    try:
        return fetch_manifest_vmlinux(manifest, cache_dir())
    except VmlinuxUnavailable:
        suite = manifest_suite(manifest_of(manifest.parent))
        if suite is None or apt_knows_suite(suite) or not _add_suite_to_apt(suite):
            raise
        return fetch_manifest_vmlinux(manifest, cache_dir())


_BY_BUILD_ID: dict[str, Path] = {}
_FAILED_BUILD_ID: dict[str, str] = {}


def missing_vmlinux() -> dict[str, str]:
    """Samples whose vmlinux could not be fetched in this run: name -> why (and the command
    that remakes it). Kept by crashtui.debuginfo.debian, so every fetch counts, also those
    of tests that import this file as tests.conftest."""
    from crashtui.debuginfo import debian

    return debian.UNAVAILABLE


def _skip_missing(dump_dir: Path, build_id: str, exc: Exception) -> None:
    missing_vmlinux().setdefault(dump_dir.name, str(exc))
    _FAILED_BUILD_ID.setdefault(build_id, str(exc))
    pytest.skip(f"debug vmlinux of {dump_dir.name} ({build_id}) unavailable: {exc}")


def dump_of(name: str) -> Path:
    """The dump file of sample-dumps/<name>."""
    return next((SAMPLES / name).glob("dump.*"))


def manifest_of(dump_dir: Path) -> dict[str, str]:
    """A sample dump's MANIFEST as a dict."""
    lines = (dump_dir / "MANIFEST").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def vmlinux_of(dump: str | Path) -> Path:
    """The debug vmlinux of a sample dump (a name in sample-dumps/ or a directory), by the
    build-id its MANIFEST names: fetched once per build-id, cached; skips if unavailable."""
    dump_dir = SAMPLES / dump if isinstance(dump, str) else dump
    build_id = manifest_of(dump_dir)["vmlinux_build_id"]
    if build_id in _FAILED_BUILD_ID:
        missing_vmlinux().setdefault(dump_dir.name, _FAILED_BUILD_ID[build_id])
        pytest.skip(f"debug vmlinux of {dump_dir.name} ({build_id}) unavailable: "
                    f"{_FAILED_BUILD_ID[build_id]}")
    if build_id not in _BY_BUILD_ID:
        try:
            _BY_BUILD_ID[build_id] = fetch_vmlinux(dump_dir / "MANIFEST")
        except Exception as exc:  # noqa: BLE001 - no vmlinux means skip, with the reason
            _skip_missing(dump_dir, build_id, exc)
    return _BY_BUILD_ID[build_id]


class _Vmlinuxes(dict[str, Path]):
    """Each sample dump's debug vmlinux by dump name, fetched on first use (skips if not)."""

    def __missing__(self, name: str) -> Path:
        self[name] = vmlinux_of(name)
        return self[name]


@pytest.fixture(scope="session")
def vmlinux_for() -> dict[str, Path]:
    """vmlinux_for[name]: the debug vmlinux of sample-dumps/<name> (several kernels)."""
    return _Vmlinuxes()


@pytest.fixture(scope="session")
def vmlinux_path() -> Path:
    """The debug vmlinux of the sample dumps' kernel; skips only if it cannot be fetched."""
    return vmlinux_of("6.1-sysrq")


@pytest.fixture(scope="session")
def sysrq_dir() -> Path:
    return SAMPLES / "6.1-sysrq"


@pytest.fixture(scope="session")
def testmod_dir() -> Path:
    return SAMPLES / "6.1-test-module"


@pytest.fixture(scope="session")
def sysrq_dump(sysrq_dir: Path) -> Path:
    return next(sysrq_dir.glob("dump.*"))


@pytest.fixture(scope="session")
def testmod_dump(testmod_dir: Path) -> Path:
    return next(testmod_dir.glob("dump.*"))


@pytest.fixture(scope="session")
def testmod_ko(testmod_dir: Path) -> Path:
    return testmod_dir / "test-module" / "test-module.ko"


@pytest.fixture(scope="session")
def sysrq_elf_vmcore(sysrq_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sysrq crash saved by `makedumpfile -E -d 31`, decompressed from the committed .xz."""
    import lzma

    src = next(sysrq_dir.glob("vmcore-d31.elf.*.xz"))
    out = tmp_path_factory.mktemp("elf") / src.name.removesuffix(".xz")
    with lzma.open(src) as fin, out.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
    return out


def pytest_configure(config: pytest.Config) -> None:
    """crash printed the sample dumps' DATE in UTC: run everything (and subprocesses) in UTC."""
    import time

    os.environ["TZ"] = "UTC"
    time.tzset()


def max_missing_vmlinux() -> int:
    """How many samples may lose their vmlinux before the session fails
    (CRASHTUI_MAX_MISSING_VMLINUX, default 0: any)."""
    try:
        return int(os.environ.get("CRASHTUI_MAX_MISSING_VMLINUX", "0"))
    except ValueError:
        return 0


def missing_vmlinux_verdict(missing: dict[str, str], limit: int) -> str | None:
    """Why the session fails when more than `limit` samples lost their vmlinux (their tests
    were skipped), else None."""
    if len(missing) <= limit:
        return None
    lines = [f"{len(missing)} sample dump(s) lost their debug vmlinux, so their tests were "
             f"skipped (CRASHTUI_MAX_MISSING_VMLINUX={limit}); the session fails:"]
    lines += [f"  {why}" for _name, why in sorted(missing.items())]
    return "\n".join(lines)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that skipped the tests of samples whose vmlinux is gone must not pass."""
    if missing_vmlinux_verdict(missing_vmlinux(), max_missing_vmlinux()) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """Name each sample whose vmlinux could not be fetched, and the command that remakes it."""
    missing = missing_vmlinux()
    if not missing:
        return
    verdict = missing_vmlinux_verdict(missing, max_missing_vmlinux())
    terminalreporter.section("sample dumps without their debug vmlinux",
                             red=verdict is not None, yellow=verdict is None)
    if verdict:
        terminalreporter.line(verdict, red=True)
    else:
        for why in sorted(missing.values()):
            terminalreporter.line(f"  {why}")


class SampleSessions(dict[str, "Session"]):
    """Sessions on the sample dumps by name, opened with their debug vmlinux on first use."""

    def __missing__(self, name: str) -> Session:
        from crashtui.analysis.session import Session

        self[name] = Session.open(dump_of(name), vmlinux_of(name))
        return self[name]


@pytest.fixture(scope="module")
def sessions() -> Iterator[SampleSessions]:
    """One session per sample dump for a test module (a module may define its own)."""
    out = SampleSessions()
    yield out
    for s in out.values():
        s.close()
