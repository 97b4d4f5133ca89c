"""Finding source files: DWARF path mapping, trees, module dirs and source tarballs read in place."""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from conftest import SAMPLES, cache_dir

from crashtui.analysis.source import (
    SourceFinder,
    SourceTarball,
    clean_relpath,
    display_path,
    tree_relative_candidates,
    xz_blocks,
)

SOURCE_VERSION = "6.1.192-2"  # the sample dumps' kernel (MANIFEST: source_package)
SYSRQ_DWARF = "debian/build/build_amd64_none_cloud-amd64/drivers/tty/sysrq.c"
SYSRQ_LINE_155 = 'panic("sysrq triggered crash\\n");'


def fetch_linux_source() -> Path:
    """Debian's linux-source-6.1 tarball (apt-get download, once; cached with the tests)."""
    d = cache_dir() / "linux-source"
    tar = d / "linux-source-6.1.tar.xz"
    if tar.is_file():
        return tar
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("apt-get/dpkg-deb not available")
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", f"linux-source-6.1={SOURCE_VERSION}"], cwd=d,
                   check=True, capture_output=True, timeout=900)
    deb = next(d.glob("linux-source-6.1_*.deb"))
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    part = tar.with_suffix(".part")
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
        for member in tf:
            if member.name.endswith("usr/src/linux-source-6.1.tar.xz"):
                src = tf.extractfile(member)
                assert src is not None
                with part.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 22)
                break
    proc.stdout.close()
    proc.wait()
    part.replace(tar)
    deb.unlink()
    return tar


@pytest.fixture(scope="session")
def linux_source() -> Path:
    """The real linux-source-6.1 tarball; skips (with the reason) only if it cannot be fetched."""
    try:
        return fetch_linux_source()
    except Exception as exc:  # noqa: BLE001 - no network / no apt: skip with the reason
        pytest.skip(f"linux-source-6.1={SOURCE_VERSION} tarball unavailable: {exc}")


# -- mapping DWARF file names ----------------------------------------------------------------

@pytest.mark.parametrize(("dwarf", "rel"), [
    (SYSRQ_DWARF, "drivers/tty/sysrq.c"),
    ("/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S",
     "arch/x86/entry/entry_64.S"),
    ("/usr/src/linux-headers-6.1.0-56-common/include/linux/sched.h", "include/linux/sched.h"),
    ("/usr/src/linux-source-6.1/kernel/panic.c", "kernel/panic.c"),
    ("../../../mm/slub.c", "mm/slub.c"),
    ("./kernel/panic.c", "kernel/panic.c"),
])
def test_build_prefixes_map_to_tree_paths(dwarf: str, rel: str) -> None:
    assert tree_relative_candidates(dwarf)[0] == rel
    assert display_path(dwarf) == rel


def test_relative_file_joined_with_comp_dir() -> None:
    cands = tree_relative_candidates("drivers/tty/sysrq.c", "/build/reproducible-path/linux-6.1.192")
    assert cands[0] == "drivers/tty/sysrq.c"


def test_module_paths_stay_absolute_for_display() -> None:
    assert display_path("/usr/src/test-module/test-module.c") == "/usr/src/test-module/test-module.c"


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../../x", "..", "a\x00b"])
def test_clean_relpath_rejects_escapes(bad: str) -> None:
    assert clean_relpath(bad) is None


# -- trees, module dirs, DWARF paths ---------------------------------------------------------

def test_finder_order_and_origins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "linux"
    (tree / "drivers/tty").mkdir(parents=True)
    (tree / "drivers/tty/sysrq.c").write_text("tree\n")
    env_tree = tmp_path / "env"
    (env_tree / "kernel").mkdir(parents=True)
    (env_tree / "kernel/panic.c").write_text("env\n")
    f = SourceFinder([tree], env={"CRASHTUI_SOURCE": str(env_tree)}, auto=False)
    res = f.find(SYSRQ_DWARF)
    assert res.path == tree / "drivers/tty/sysrq.c" and res.origin == f"tree {tree}"
    res = f.find("/build/reproducible-path/linux-6.1.192/kernel/panic.c")
    assert res.path == env_tree / "kernel/panic.c"
    res = f.find("debian/build/x/mm/nowhere.c")
    assert res.path is None and res.tried
    # a DWARF path is used as-is (or relative to its comp dir) only inside a tree
    abs_file = tmp_path / "abs.c"
    abs_file.write_text("x\n")
    assert f.find(str(abs_file)).path is None
    assert f.find("abs.c", str(tmp_path)).path is None
    inner = tree / "out-of-tree" / "mod.c"
    inner.parent.mkdir()
    inner.write_text("x\n")
    assert f.find(str(inner)).path == inner
    assert f.find("mod.c", str(inner.parent)).path == inner
    assert f.find(str(tree / "out-of-tree" / ".." / ".." / "abs.c")).path is None


def test_module_source_next_to_its_ko() -> None:
    ko = SAMPLES / "6.1-test-module" / "test-module" / "test-module.ko"
    f = SourceFinder([], env={}, auto=False)
    assert f.find("/usr/src/test-module/test-module.c", module="test_module").path is None
    f.add_module("test_module", ko)
    res = f.find("/usr/src/test-module/test-module.c", module="test_module")
    assert res.path == ko.parent.resolve() / "test-module.c"
    assert "printk" in res.path.read_text().splitlines()[8]
    g = SourceFinder([], env={}, auto=False, module_dirs=[ko.parent])
    assert g.find("/usr/src/test-module/test-module.c", module="test_module").path is not None


# -- tarballs --------------------------------------------------------------------------------

def _tarball(path: Path, members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:xz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type = tarfile.SYMTYPE
            info.linkname = symlink[1]
            tf.addfile(info)
    return path


def test_tarball_extracts_only_wanted_members_safely(tmp_path: Path) -> None:
    tb_path = _tarball(tmp_path / "linux-6.1.1.tar.xz", {
        "linux-6.1.1/drivers/tty/sysrq.c": b"int sysrq;\n",
        "linux-6.1.1/kernel/panic.c": b"void panic(void);\n",
        "linux-6.1.1/../../evil.c": b"escaped\n",
        "/abs/evil.c": b"absolute\n",
    }, symlink=("linux-6.1.1/include/link.h", "/etc/passwd"))
    cache = tmp_path / "cache"
    tb = SourceTarball(tb_path, cache)
    assert tb.has("drivers/tty/sysrq.c") is None  # not indexed yet
    seen: list[float] = []
    got = tb.extract(["drivers/tty/sysrq.c", "../evil.c", "evil.c", "include/link.h",
                      "/etc/passwd"], lambda frac, label: seen.append(frac))
    assert set(got) == {"drivers/tty/sysrq.c"}
    assert got["drivers/tty/sysrq.c"].read_bytes() == b"int sysrq;\n"
    assert got["drivers/tty/sysrq.c"].is_relative_to(cache)
    assert not (tmp_path / "evil.c").exists() and not any(cache.rglob("evil.c"))
    assert not any(cache.rglob("link.h"))
    assert seen and seen[-1] == 1.0
    assert not any(cache.rglob("panic.c"))
    # the index now answers without reading the tarball; a second member comes by block access
    assert tb.has("kernel/panic.c") is True and tb.has("nope.c") is False
    again = SourceTarball(tb_path, cache)
    got2 = again.extract(["kernel/panic.c"])
    assert got2["kernel/panic.c"].read_bytes() == b"void panic(void);\n"


def test_tarball_cache_key_follows_the_file(tmp_path: Path) -> None:
    p = _tarball(tmp_path / "a.tar.xz", {"linux/x.c": b"1\n"})
    k1 = SourceTarball(p, tmp_path).cache_dir
    time.sleep(0.01)
    _tarball(p, {"linux/x.c": b"2\n"})
    assert SourceTarball(p, tmp_path).cache_dir != k1


def test_finder_reads_tarball_only_when_fetching(tmp_path: Path) -> None:
    tb_path = _tarball(tmp_path / "linux-source-6.1.tar.xz",
                       {"linux-source-6.1/drivers/tty/sysrq.c": b"a\nb\n"})
    f = SourceFinder([tb_path], env={}, cache_root=tmp_path / "c", auto=False)
    res = f.find(SYSRQ_DWARF)
    assert res.path is None and res.pending  # fast path: nothing read yet
    res = f.find(SYSRQ_DWARF, fetch=True)
    assert res.path is not None and res.path.read_text() == "a\nb\n"
    assert res.origin == "tarball linux-source-6.1.tar.xz"
    assert f.find(SYSRQ_DWARF).path == res.path  # cached now


def test_xz_blocks_of_a_non_xz_file(tmp_path: Path) -> None:
    p = tmp_path / "x.tar.gz"
    with tarfile.open(p, "w:gz"):
        pass
    with p.open("rb") as fh:
        assert xz_blocks(fh) is None
    q = tmp_path / "y.xz"
    q.write_bytes(lzma.compress(b"hello" * 1000))
    with q.open("rb") as fh:
        blocks = xz_blocks(fh)
    assert blocks is not None and blocks[0].uncomp_size == 5000


def test_real_linux_source_tarball(linux_source: Path, tmp_path: Path) -> None:
    """Debian's linux-source-6.1.tar.xz: one streamed pass, then block-level reads."""
    fracs: list[float] = []
    f = SourceFinder([linux_source], env={}, cache_root=tmp_path, auto=False)
    res = f.find(SYSRQ_DWARF, fetch=True, progress=lambda frac, label: fracs.append(frac))
    assert res.path is not None
    lines = res.path.read_text().splitlines()
    assert lines[154].strip() == SYSRQ_LINE_155
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and len(fracs) > 10
    # nothing but the wanted file, the top Makefile (the tree's version) and the index
    written = [p for p in res.path.parents[3].rglob("*") if p.is_file()]
    assert {p.name for p in written} == {"sysrq.c", "Makefile", ".index"}
    t = time.monotonic()
    res2 = f.find("/build/reproducible-path/linux-6.1.192/kernel/panic.c", fetch=True)
    assert res2.path is not None and "void panic(" in res2.path.read_text()
    assert time.monotonic() - t < 5, "a second file should come from its xz block, not a pass"
