"""Fetching a Debian debug package (e.g. linux-image-<release>-dbg) and taking one file out."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from crashtui.errors import DebugInfoError


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_from_deb(package: str, member: str, target: Path, sha256: str | None = None) -> Path:
    """`apt-get download PACKAGE` and extract `member` to `target` (kept if already there)."""
    if target.exists():
        return target
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DebugInfoError(f"apt-get/dpkg-deb are needed to fetch {package}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        r = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise DebugInfoError(f"apt-get download {package} failed: {r.stderr.strip()}")
        deb = next(Path(tmp).glob("*.deb"))
        member = "./" + member.lstrip("./")
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                              stdout=subprocess.PIPE) as tar:
            x = subprocess.run(["tar", "-x", "-C", tmp, member], stdin=tar.stdout,
                               capture_output=True, text=True)
        if x.returncode != 0:
            raise DebugInfoError(f"{member} not found in {deb.name}: {x.stderr.strip()}")
        extracted = Path(tmp) / member
        if sha256 is not None and sha256_of(extracted) != sha256:
            raise DebugInfoError(f"{member} from {deb.name} has an unexpected sha256")
        extracted.rename(target)
    return target


def read_manifest(path: Path) -> dict[str, str]:
    """A sample dump's MANIFEST (key=value lines)."""
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def fetch_manifest_vmlinux(manifest: Path, cache: Path) -> Path:
    """The debug vmlinux a sample dump's MANIFEST names, downloaded once into `cache`."""
    m = read_manifest(manifest)
    name, _, version = m["vmlinux_package"].partition(" ")
    spec = f"{name}={version}" if version else name
    member = m["vmlinux_path_in_package"]
    target = cache / "vmlinux" / m["vmlinux_build_id"] / Path(member).name
    return fetch_from_deb(spec, member, target, m.get("vmlinux_sha256"))


def main() -> None:
    """`python -m crashtui.debuginfo.debian MANIFEST`: print the path of its vmlinux."""
    import os
    import sys

    cache = Path(os.environ.get("CRASHTUI_TEST_CACHE", Path.home() / ".cache" / "crashtui-tests"))
    try:
        print(fetch_manifest_vmlinux(Path(sys.argv[1]), cache))
    except (DebugInfoError, KeyError, IndexError, OSError) as exc:
        print(f"crashtui: cannot fetch the vmlinux: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
