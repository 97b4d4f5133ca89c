"""The MANIFEST vmlinux helper fetches a sample's -dbg package straight from Debian's pool when
apt cannot (issue 17: the 6.12 sample's package is in trixie, which a Debian 12 host's apt
sources lack): the exact version, from the main or the security archive, sha256 checked."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, cache_dir

from crashtui.debuginfo import debian
from crashtui.debuginfo.debian import (
    PackageNotServed,
    VmlinuxUnavailable,
    deb_source,
    fetch_manifest_vmlinux,
    pool_urls,
    read_manifest,
    sha256_of,
)

M612 = SAMPLES / "6.12-sysrq" / "MANIFEST"
DBG_612 = "linux-image-6.12.118+deb13-cloud-amd64-dbg"
KO = SAMPLES / "6.1-test-module" / "test-module" / "test-module.ko"


@pytest.fixture
def host_without_trixie(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Debian 12 host: apt's sources know bookworm only."""
    monkeypatch.setattr(debian, "apt_knows_suite", lambda suite: suite.startswith("bookworm"))
    monkeypatch.setattr(debian, "UNAVAILABLE", {})  # simulated losses stay out of the record


def test_pool_urls_of_every_sample() -> None:
    manifests = sorted(SAMPLES.glob("*/MANIFEST"))
    assert len(manifests) >= 16
    for manifest in manifests:
        m = read_manifest(manifest)
        name, version = m["vmlinux_package"].split()
        assert deb_source(m) == "linux"
        urls = pool_urls(name, version, "linux")
        assert urls == [
            f"http://deb.debian.org/debian/pool/main/l/linux/{name}_{version}_amd64.deb",
            f"http://deb.debian.org/debian-security/pool/updates/main/l/linux/"
            f"{name}_{version}_amd64.deb"], manifest
    assert pool_urls("libfoo-dbg", "1:2.0-1", "libfoo")[0].endswith(
        "/pool/main/libf/libfoo/libfoo-dbg_2.0-1_amd64.deb")  # no epoch in file names


def test_the_pool_is_used_when_apt_lacks_the_suite(host_without_trixie: None,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def pool(*args: Any) -> Path:
        calls.append(args)
        args[4].parent.mkdir(parents=True, exist_ok=True)
        args[4].write_bytes(b"")
        return Path(args[4])

    monkeypatch.setattr(debian, "fetch_from_pool", pool)
    monkeypatch.setattr(debian, "fetch_from_deb", lambda *a: pytest.fail("apt was asked"))
    m = read_manifest(M612)
    got = fetch_manifest_vmlinux(M612, tmp_path)
    assert calls == [(DBG_612, "6.12.118-1", "linux",
                      "usr/lib/debug/boot/vmlinux-6.12.118+deb13-cloud-amd64", got,
                      m["vmlinux_sha256"])]
    assert got == tmp_path / "vmlinux" / m["vmlinux_build_id"] / \
        "vmlinux-6.12.118+deb13-cloud-amd64"


def test_a_version_no_archive_serves_names_the_remake(host_without_trixie: None,
                                                      tmp_path: Path) -> None:
    """A copy of the 6.12 MANIFEST naming a version Debian never had: both archives answer
    404 (real requests), the sample is named with the make-dump command that remakes it."""
    d = tmp_path / "sample-dumps" / "6.12-sysrq"
    d.mkdir(parents=True)
    text = M612.read_text().replace(f"{DBG_612} 6.12.118-1", f"{DBG_612} 6.12.118-0+gone")
    (d / "MANIFEST").write_text(text)
    with pytest.raises(VmlinuxUnavailable) as info:
        fetch_manifest_vmlinux(d / "MANIFEST", tmp_path / "cache")
    if not info.value.gone:
        pytest.skip(f"Debian's archive cannot be reached here: {info.value}")
    text = str(info.value)
    assert text.startswith(f"6.12-sysrq: its debug vmlinux cannot be fetched: Debian's mirror "
                           f"no longer serves {DBG_612} 6.12.118-0+gone")
    assert "debian-security/pool/updates/main/l/linux/" in text and "404" in text
    assert "make-dump --suite trixie --scenario sysrq" in text
    assert not any((tmp_path / "cache").rglob("*.deb"))


def test_no_archive_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "cache" / "vmlinux"

    def download(url: str, into: Path, timeout: float = 60) -> Path:
        raise PackageNotServed(f"{url}: 404 Not Found")

    monkeypatch.setattr(debian, "download", download)
    with pytest.raises(PackageNotServed, match=r"no Debian archive serves x-dbg 1-1: .*404"):
        debian.fetch_from_pool("x-dbg", "1-1", "linux", "usr/lib/debug/x", target, "00")
    assert not target.exists() and not any(target.parent.iterdir())


@pytest.fixture
def local_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A pool served over HTTP on localhost holding a package built with dpkg-deb from the
    test-module sample's real .ko, 7.x's way: boot/ names it through a symlink."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb")
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: test-module-dbg\nVersion: 1.0-1~bpo+1\nArchitecture: amd64\n"
        "Maintainer: crashtui <crashtui@example.org>\nDescription: test\n")
    mods = tree / "usr/lib/debug/lib/modules/1.0"
    mods.mkdir(parents=True)
    shutil.copy(KO, mods / "test-module.ko")
    (tree / "usr/lib/debug/boot").mkdir(parents=True)
    (tree / "usr/lib/debug/boot/test-module.ko").symlink_to("../lib/modules/1.0/test-module.ko")
    pool = tmp_path / "www" / "pool" / "updates" / "main" / "l" / "linux"
    pool.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-Zxz", "--build", str(tree),
                    str(pool / "test-module-dbg_1.0-1~bpo+1_amd64.deb")],
                   check=True, capture_output=True)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("CRASHTUI_DEBIAN_MIRRORS", f"{base}/pool {base}/pool/updates")
    yield tmp_path
    server.shutdown()


def test_download_extract_and_check_from_a_pool(local_pool: Path) -> None:
    """Missing from the first archive (404), found in the second; the symlinked member is
    followed inside the package; the sha256 decides."""
    target = local_pool / "cache" / "test-module.ko"
    args = ("test-module-dbg", "1.0-1~bpo+1", "linux", "usr/lib/debug/boot/test-module.ko")
    with pytest.raises(debian.DebugInfoError, match="unexpected sha256"):
        debian.fetch_from_pool(*args, target, "0" * 64)
    assert not target.exists() and list(target.parent.iterdir()) == []
    got = debian.fetch_from_pool(*args, target, sha256_of(KO))
    assert got == target and got.read_bytes() == KO.read_bytes()
    assert list(target.parent.iterdir()) == [target]


@pytest.mark.slow
def test_the_6_12_vmlinux_comes_from_the_pool_on_a_bookworm_host(
        host_without_trixie: None, tmp_path: Path) -> None:
    """The real fetch (a 320 MB package from the security archive), sha256 as recorded."""
    if shutil.disk_usage(tmp_path).free < 3 << 30:
        pytest.skip("needs 3 GiB free")
    m = read_manifest(M612)
    try:
        got = fetch_manifest_vmlinux(M612, tmp_path)
    except VmlinuxUnavailable as exc:
        if exc.gone:
            raise
        pytest.skip(f"Debian's archive cannot be reached here: {exc}")
    assert got.name == "vmlinux-6.12.118+deb13-cloud-amd64"
    assert sha256_of(got) == m["vmlinux_sha256"]
    assert [p.name for p in got.parent.iterdir()] == [got.name]  # the .deb is gone
    cached = cache_dir() / "vmlinux" / m["vmlinux_build_id"] / got.name
    if cached.is_file():
        assert cached.stat().st_size == got.stat().st_size
