"""Fetching a Debian debug package (e.g. linux-image-<release>-dbg) and taking one file out.

With apt when its sources have the package's suite; else (a trixie sample on a bookworm host,
or no apt) the exact version straight from Debian's pool (main, then security archive), the
file checked against the sha256 the sample's MANIFEST records.

Sample dumps name their vmlinux by exact package version; Debian's mirror drops a kernel ABI's
packages some time after the next ABI replaces it. A fetch that fails says which sample lost
its vmlinux and the make-dump command that replaces the sample with the current ABI.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, cast
from urllib.parse import quote, unquote

from crashtui.errors import DebugInfoError

# What apt-get download prints when the archive no longer has the package version.
_NOT_SERVED = re.compile(r"Version '[^']*' for '[^']*' was not found|Unable to locate package"
                         r"|Can't select (?:candidate )?version|\b404\s+Not Found")


# Samples whose vmlinux could not be fetched in this process: name -> the error's text (the
# test session fails on them, see tests/conftest.py); a later successful fetch removes one.
UNAVAILABLE: dict[str, str] = {}


class PackageNotServed(DebugInfoError):
    """apt has no such package version (or the mirror answered 404 for it)."""


class VmlinuxUnavailable(DebugInfoError):
    """A sample dump's debug vmlinux cannot be fetched: which sample, why, and, when Debian's
    mirror no longer serves its package version, the make-dump command that replaces it."""

    def __init__(self, sample: str, reason: str, remake: str | None = None) -> None:
        text = f"{sample}: its debug vmlinux cannot be fetched: {reason}"
        if remake:
            text += f"; replace the sample with the current ABI (as root): {remake}"
        super().__init__(text)
        self.sample = sample
        self.reason = reason
        self.remake = remake

    @property
    def gone(self) -> bool:
        """True when the mirror dropped the package version (the sample must be remade)."""
        return self.remake is not None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract(deb: Path, member: str, into: Path) -> Path:
    """Extract ./member from deb into `into`; a symlink member (7.x's boot/vmlinux-* points
    into lib/modules) is followed inside the package."""
    for _ in range(4):
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                              stdout=subprocess.PIPE) as tar:
            x = subprocess.run(["tar", "-x", "-C", str(into), member], stdin=tar.stdout,
                               capture_output=True, text=True)
        if x.returncode != 0:
            raise DebugInfoError(f"{member} not found in {deb.name}: {x.stderr.strip()}")
        extracted = into / member
        if not extracted.is_symlink():
            return extracted
        link = os.readlink(extracted)
        member = "./" + os.path.normpath(os.path.join(os.path.dirname(member[2:]), link)
                                         if not link.startswith("/") else link.lstrip("/"))
    raise DebugInfoError(f"{member}: too many symlinks in {deb.name}")


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
            error = PackageNotServed if _NOT_SERVED.search(r.stderr) else DebugInfoError
            raise error(f"apt-get download {package} failed: {r.stderr.strip()}")
        deb = next(Path(tmp).glob("*.deb"))
        extracted = _extract(deb, "./" + member.lstrip("./"), Path(tmp))
        if sha256 is not None and sha256_of(extracted) != sha256:
            raise DebugInfoError(f"{member} from {deb.name} has an unexpected sha256")
        extracted.rename(target)
    return target


# Where Debian's pool is served: the main archive (point releases, backports) and the
# security archive (kernel updates between point releases: pool/updates/). Overridden, space
# separated, by CRASHTUI_DEBIAN_MIRRORS.
DEBIAN_POOLS = ("http://deb.debian.org/debian/pool",
                "http://deb.debian.org/debian-security/pool/updates")
MAX_DEB_SIZE = 4 << 30
FREE_AFTER = 1 << 30  # room for the extracted vmlinux (563 MiB for 6.1) besides the .deb


def deb_source(m: dict[str, str]) -> str | None:
    """The Debian source package the vmlinux package is built from (`linux` for Debian's
    linux-image-*-dbg; a MANIFEST may name another with vmlinux_source=)."""
    if m.get("vmlinux_source"):
        return m["vmlinux_source"]
    name = m.get("vmlinux_package", "").partition(" ")[0]
    return "linux" if name.startswith("linux-image-") else None


def pool_urls(package: str, version: str, source: str, arch: str = "amd64") -> list[str]:
    """Where Debian's pool keeps PACKAGE_VERSION_ARCH.deb, in each archive (the epoch is not
    part of file names; `lib*` sources sit under a four-letter prefix)."""
    prefix = source[:4] if source.startswith("lib") else source[:1]
    filename = quote(f"{package}_{version.rpartition(':')[2]}_{arch}.deb", safe="+~")
    pools = os.environ.get("CRASHTUI_DEBIAN_MIRRORS", "").split() or list(DEBIAN_POOLS)
    return [f"{pool.rstrip('/')}/main/{prefix}/{source}/{filename}" for pool in pools]


def _progress(label: str) -> Callable[[int, int], None]:
    """`crashtui: LABEL… 42%` on stderr: in place on a terminal, else a line per quarter."""
    tty = sys.stderr.isatty()
    state = {"last": -1}

    def show(done: int, total: int) -> None:
        pct = done * 100 // total if total else 0
        step = pct if tty else pct // 25 * 25
        if step == state["last"]:
            return
        state["last"] = step
        end = "\n" if (not tty or done >= total) else ""
        start = "\r" if tty else ""
        print(f"{start}crashtui: {label}… {step}%", end=end, file=sys.stderr, flush=True)

    return show


def download(url: str, into: Path, timeout: float = 60) -> Path:
    """GET url into the directory `into` (bounded size; free space checked first);
    PackageNotServed on 404."""
    import urllib.error
    import urllib.request

    dest = into / unquote(url.rsplit("/", 1)[1])
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - http(s) pool
            total = int(r.headers.get("Content-Length") or 0)
            if total > MAX_DEB_SIZE:
                raise DebugInfoError(f"{url}: {total >> 20} MiB, more than a -dbg package")
            free = shutil.disk_usage(into).free
            if total + FREE_AFTER > free:
                raise DebugInfoError(f"{url} is {total >> 20} MiB and {into} has "
                                     f"{free >> 20} MiB free")
            show = _progress(f"downloading {dest.name}")
            done = 0
            with dest.open("wb") as out:
                while chunk := r.read(1 << 20):
                    done += len(chunk)
                    if done > MAX_DEB_SIZE:
                        raise DebugInfoError(f"{url}: more than {MAX_DEB_SIZE >> 30} GiB")
                    out.write(chunk)
                    show(done, total)
            if total and done != total:
                raise DebugInfoError(f"{url}: download cut short ({done} of {total} bytes)")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise PackageNotServed(f"{url}: 404 Not Found") from None
        raise DebugInfoError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DebugInfoError(f"{url}: {reason}") from None
    return dest


def _deb_data(deb: Path) -> tuple[int, str]:
    """Offset and name of a .deb's data.tar.* member (a .deb is an ar archive)."""
    with deb.open("rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise DebugInfoError(f"{deb.name} is not a Debian package (no ar header)")
        while len(hdr := f.read(60)) == 60:
            name = hdr[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(hdr[48:58].decode("ascii").strip())
            except ValueError:
                break
            if name.startswith("data.tar"):
                return f.tell(), name
            f.seek(size + (size & 1), os.SEEK_CUR)
    raise DebugInfoError(f"{deb.name} has no data.tar member")


def _data_stream(deb: Path, f: BinaryIO) -> IO[bytes]:
    """The decompressed data.tar of an open .deb (positioned at its data member)."""
    offset, name = _deb_data(deb)
    f.seek(offset)
    if name.endswith(".xz"):
        return lzma.open(f)
    if name.endswith(".zst"):
        import zstandard

        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(f))
    if name.endswith(".gz"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=f))
    if name == "data.tar":
        return f
    raise DebugInfoError(f"{deb.name}: {name} is compressed in a way not supported")


def extract_from_deb(deb: Path, member: str, into: Path) -> Path:
    """Extract ./member (symlinks followed inside the package) from a .deb, without dpkg."""
    want = os.path.normpath(member.lstrip("./"))
    for _ in range(4):
        link = None
        with deb.open("rb") as f, _data_stream(deb, f) as data, \
                tarfile.open(fileobj=data, mode="r|") as tf:
            for info in tf:
                if os.path.normpath(info.name.lstrip("./")) != want:
                    continue
                if info.issym():
                    link = info.linkname
                    break
                src = tf.extractfile(info)
                if src is None:
                    raise DebugInfoError(f"{member} in {deb.name} is not a regular file")
                out = into / Path(want).name
                with out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
                return out
        if link is None:
            raise DebugInfoError(f"{member} not found in {deb.name}")
        want = os.path.normpath(link.lstrip("/") if link.startswith("/")
                                else os.path.join(os.path.dirname(want), link))
    raise DebugInfoError(f"{member}: too many symlinks in {deb.name}")


def fetch_from_pool(package: str, version: str, source: str, member: str, target: Path,
                    sha256: str | None = None, arch: str = "amd64") -> Path:
    """Download PACKAGE VERSION straight from Debian's pool (no apt sources needed) and
    extract `member` to `target`, checked against `sha256`; PackageNotServed if no archive
    has it."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    misses = []
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for url in pool_urls(package, version, source, arch):
            try:
                deb = download(url, Path(tmp))
                break
            except PackageNotServed as exc:
                misses.append(str(exc))
        else:
            raise PackageNotServed(f"no Debian archive serves {package} {version}: "
                                   + "; ".join(misses))
        extracted = extract_from_deb(deb, member, Path(tmp))
        deb.unlink()
        if sha256 is not None and sha256_of(extracted) != sha256:
            raise DebugInfoError(f"{member} from {deb.name} has an unexpected sha256 "
                                 f"(the MANIFEST says {sha256})")
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


def manifest_suite(m: dict[str, str]) -> str | None:
    """The Debian suite of a sample's kernel: kernel_package ends with "(bookworm)"."""
    found = re.search(r"\(([a-z-]+)\)\s*$", m.get("kernel_package", ""))
    return found.group(1) if found else None


def apt_knows_suite(suite: str) -> bool:
    """Whether apt's sources include `suite` (apt-cache policy lists n=<suite>)."""
    if shutil.which("apt-cache") is None:
        return False
    r = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True)
    return f"n={suite}," in r.stdout


def remake_command(dump_dir: Path, m: dict[str, str]) -> str:
    """The make-dump command that makes this sample again with its suite's current kernel."""
    made = re.search(r"--scenario (\S+)", m.get("made_with", ""))
    scenario = made.group(1) if made else dump_dir.name.partition("-")[2] or "sysrq"
    out = (f"sample-dumps/{dump_dir.name}" if dump_dir.parent.name == "sample-dumps"
           else str(dump_dir))
    elf = " --elf" if any(dump_dir.glob("vmcore-d31.elf.*")) else ""
    return (f"sample-dumps/make-dump --suite {manifest_suite(m) or 'bookworm'} "
            f"--scenario {scenario} --out {out} --force{elf}")


def fetch_manifest_vmlinux(manifest: Path, cache: Path) -> Path:
    """The debug vmlinux a sample dump's MANIFEST names, downloaded once into `cache`.
    Raises VmlinuxUnavailable naming the sample (and how to remake it) when it cannot."""
    m = read_manifest(manifest)
    name, _, version = m["vmlinux_package"].partition(" ")
    spec = f"{name}={version}" if version else name
    member = m["vmlinux_path_in_package"]
    target = cache / "vmlinux" / m["vmlinux_build_id"] / Path(member).name
    sample = manifest.parent.name
    try:
        found = _fetch(manifest, m, spec, member, target)
    except VmlinuxUnavailable as exc:
        UNAVAILABLE[sample] = str(exc)
        raise
    UNAVAILABLE.pop(sample, None)
    return found


def _fetch(manifest: Path, m: dict[str, str], spec: str, member: str, target: Path) -> Path:
    """fetch_from_deb (apt), or straight from Debian's pool when apt cannot (no apt, or the
    sample's suite is not in apt's sources: a trixie sample on a bookworm host); errors
    turned into VmlinuxUnavailable naming the sample."""
    name, _, version = m["vmlinux_package"].partition(" ")
    sample = manifest.parent.name
    suite = manifest_suite(m)
    source = deb_source(m)
    no_apt = shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None
    arch = m.get("arch", "amd64")  # a foreign architecture's package: apt may not know it
    if not target.exists() and source and version and (
            no_apt or arch != "amd64" or (suite is not None and not apt_knows_suite(suite))):
        try:
            return fetch_from_pool(name, version, source, member, target,
                                   m.get("vmlinux_sha256"),
                                   *((arch,) if arch != "amd64" else ()))
        except PackageNotServed as exc:
            raise VmlinuxUnavailable(
                sample, f"Debian's mirror no longer serves {name} {version} ({exc})",
                remake_command(manifest.parent, m)) from exc
        except (DebugInfoError, OSError, tarfile.TarError, lzma.LZMAError) as exc:
            raise VmlinuxUnavailable(sample, str(exc)) from exc
    try:
        return fetch_from_deb(spec, member, target, m.get("vmlinux_sha256"))
    except PackageNotServed as exc:
        suite = manifest_suite(m)
        if suite and not apt_knows_suite(suite):
            raise VmlinuxUnavailable(
                sample, f"{name} {version} is in Debian {suite}, which apt's sources lack "
                f"(add it, pinned low, as sample-dumps/make-dump --suite {suite} does)") from exc
        raise VmlinuxUnavailable(
            sample, f"Debian's mirror no longer serves {name} {version} (its kernel ABI was "
            "replaced)", remake_command(manifest.parent, m)) from exc
    except DebugInfoError as exc:
        raise VmlinuxUnavailable(sample, str(exc)) from exc


def first_available(samples: list[Path], cache: Path) -> tuple[Path, Path]:
    """(dump, vmlinux) of the first sample whose vmlinux can be had; each sample passed over
    is reported on stderr with the reason (and the command that remakes it)."""
    failures = []
    for sample in samples:
        manifest = sample if sample.name == "MANIFEST" else sample / "MANIFEST"
        try:
            vmlinux = fetch_manifest_vmlinux(manifest, cache)
        except (DebugInfoError, KeyError, OSError) as exc:
            print(f"crashtui: {exc}", file=sys.stderr)
            failures.append(str(exc))
            continue
        return manifest.parent / read_manifest(manifest)["dump"], vmlinux
    raise DebugInfoError("no sample's vmlinux can be fetched: " + "; ".join(failures))


def main() -> None:
    """`python -m crashtui.debuginfo.debian MANIFEST`: print the path of its vmlinux.
    `... --first-available SAMPLE_DIR...`: print the dump and vmlinux of the first sample
    whose vmlinux can be fetched (the README's try-it)."""
    cache = Path(os.environ.get("CRASHTUI_TEST_CACHE", Path.home() / ".cache" / "crashtui-tests"))
    args = sys.argv[1:]
    try:
        if args[:1] == ["--first-available"]:
            dump, vmlinux = first_available([Path(a) for a in args[1:]], cache)
            print(dump)
            print(vmlinux)
        else:
            print(fetch_manifest_vmlinux(Path(args[0]), cache))
    except (DebugInfoError, KeyError, IndexError, OSError) as exc:
        print(f"crashtui: cannot fetch the vmlinux: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
