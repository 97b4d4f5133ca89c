"""Shared fixtures: the real sample dumps and their debug vmlinux (fetched once, cached)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-dumps"

VMLINUX_BUILD_ID = "3b43fad5034874490492495d552c0af6a5fab235"
VMLINUX_PACKAGE = "linux-image-6.1.0-56-cloud-amd64-dbg=6.1.192-2"
VMLINUX_MEMBER = "./usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64"
VMLINUX_SHA256 = "66795ff0f633eff6f5eb407499b06658de356dd1f2aa5dfa5ebab47f95366e9b"


def cache_dir() -> Path:
    """Where the tests keep what they download (CRASHTUI_TEST_CACHE overrides)."""
    env = os.environ.get("CRASHTUI_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "crashtui-tests"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_vmlinux() -> Path:
    """Return the 6.1 debug vmlinux, downloading its Debian package on first use."""
    target_dir = cache_dir() / "vmlinux" / VMLINUX_BUILD_ID
    target = target_dir / Path(VMLINUX_MEMBER).name
    if target.exists():
        return target
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("apt-get/dpkg-deb not available to fetch " + VMLINUX_PACKAGE)
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        r = subprocess.run(["apt-get", "download", VMLINUX_PACKAGE], cwd=tmp,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download {VMLINUX_PACKAGE} failed: {r.stderr.strip()}")
        deb = next(Path(tmp).glob("*.deb"))
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tmp, VMLINUX_MEMBER], stdin=tar.stdout, check=True)
        tar.wait()
        extracted = Path(tmp) / VMLINUX_MEMBER
        if _sha256(extracted) != VMLINUX_SHA256:
            raise RuntimeError("downloaded vmlinux has the wrong sha256")
        extracted.rename(target)
    return target


@pytest.fixture(scope="session")
def vmlinux_path() -> Path:
    """The debug vmlinux of the sample dumps' kernel; skips only if it cannot be fetched."""
    try:
        return fetch_vmlinux()
    except Exception as exc:  # noqa: BLE001 - any failure to fetch means skip, with the reason
        pytest.skip(f"debug vmlinux unavailable: {exc}")


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
