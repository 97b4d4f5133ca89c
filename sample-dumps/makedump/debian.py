"""Debian archive access: apt sources for other suites, versions, downloads, chroots."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from .util import MakeDumpError, cache_root, log, run

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITES = ("bullseye", "bookworm", "trixie", "trixie-backports", "sid")
# A backports suite is added on top of its base suite; sid has no -updates/-security.
BASE_SUITE = {"trixie-backports": "trixie"}
# Other suites are added with this pin: below 100, so that nothing already installed is ever
# upgraded from them (not even packages whose installed version came from backports); a
# package is taken from them only when asked for by version or with pkg/suite.
PIN_PRIORITY = 90
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def host_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    m = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return m.group(1) if m else ""


def _own_suites(suite: str) -> tuple[str, ...]:
    """The archive suites (n=) that make up `suite` as make-dump adds it."""
    if suite in BASE_SUITE or suite == "sid":
        return (suite,)
    return (suite, f"{suite}-updates", f"{suite}-security")


def _apt_knows_suite(suite: str) -> bool:
    policy = run(["apt-cache", "policy"], capture=True, quiet=True).stdout
    return all(f"n={s}," in policy for s in (suite,) + _own_suites(suite)[2:])


def ensure_suite_sources(suite: str) -> bool:
    """Make apt know `suite` (+ -updates, -security; a backports suite with its base suite),
    pinned low. True if a file was added."""
    if suite not in SUITES:
        raise MakeDumpError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
    added = ensure_suite_sources(BASE_SUITE[suite]) if suite in BASE_SUITE else False
    if suite == host_codename() or _apt_knows_suite(suite):
        return added
    src = Path(f"/etc/apt/sources.list.d/crashtui-makedump-{suite}.sources")
    pref = Path(f"/etc/apt/preferences.d/crashtui-makedump-{suite}")
    log(f"adding apt sources for {suite} in {src}, pinned to {PIN_PRIORITY} in {pref}")
    own = _own_suites(suite)
    text = (f"# Added by crashtui sample-dumps/make-dump; pinned low in {pref}\n"
            f"Types: deb\nURIs: {MIRROR}\nSuites: {' '.join(own[:2])}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    if len(own) > 2:
        text += (f"\nTypes: deb\nURIs: {SECURITY_MIRROR}\nSuites: {own[2]}\n"
                 "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    src.write_text(text)
    pref.write_text(
        "# Added by crashtui sample-dumps/make-dump: never upgrade anything from this suite\n"
        + "\n".join(f"Package: *\nPin: release n={s}\nPin-Priority: {PIN_PRIORITY}\n"
                    for s in own))
    return True


def apt_update() -> None:
    run(["apt-get", "update", "-q"], env=APT_ENV)


def apt_install(packages: list[str]) -> None:
    """Install host packages that are missing (dpkg-query decides)."""
    missing = []
    for p in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if missing:
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=APT_ENV)


def installed_version(package: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                       capture_output=True, text=True)
    return r.stdout.strip() or None if r.returncode == 0 else None


def compare_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lt else 1


def madison(package: str, suite: str) -> list[str]:
    """Versions of `package` in `suite` (main, -updates, -security; not -backports),
    newest first."""
    r = run(["apt-cache", "madison", package], capture=True, check=False, quiet=True)
    versions = []
    for line in r.stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 3:
            continue
        src = parts[2].split()
        dist = src[1].split("/")[0] if len(src) > 1 else ""
        if dist in _own_suites(suite) and parts[1] not in versions:
            versions.append(parts[1])
    return sorted(versions, key=functools.cmp_to_key(compare_versions), reverse=True)


def show_field(spec: str, field: str) -> str:
    """A field of `apt-cache show spec` (first stanza)."""
    r = run(["apt-cache", "show", spec], capture=True, check=False, quiet=True)
    m = re.search(rf"^{field}: (.*)$", r.stdout, re.M)
    return m.group(1).strip() if m else ""


def upstream_version(debian_version: str) -> str:
    """1:1.7.2-1 -> 1.7.2"""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def debs_dir() -> Path:
    d = cache_root() / "debs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def download(package: str, version: str, arch: str | None = None) -> Path:
    """apt-get download package=version (of a foreign `arch` if given) into the cache (once);
    returns the .deb."""
    d = debs_dir()
    # apt's name (%3a for an epoch's colon); without `arch` the native or an `all` package,
    # never a foreign one another run downloaded (with arm64 added, `_*` found arm64 debs)
    archs = [arch] if arch else [run(["dpkg", "--print-architecture"], capture=True,
                                     quiet=True).stdout.strip(), "all"]
    pattern = f"{package}_{version.replace(':', '%3a')}_{{{','.join(archs)}}}.deb"
    found = sorted(f for a in archs for f in d.glob(
        f"{package}_{version.replace(':', '%3a')}_{a}.deb"))
    if found:
        return found[0]
    run(["apt-get", "download", "-q", f"{package}{':' + arch if arch else ''}={version}"], cwd=d)
    found = sorted(f for a in archs for f in d.glob(
        f"{package}_{version.replace(':', '%3a')}_{a}.deb"))
    if not found:
        raise MakeDumpError(f"apt-get download {package}={version} left no {pattern} in {d}")
    return found[0]


def download_from_suite(package: str, suite: str, arch: str | None = None) -> tuple[Path, str]:
    """The newest version of `package` (of a foreign `arch` if given) in `suite`; returns
    (.deb, version)."""
    spec = f"{package}:{arch}" if arch else package
    versions = madison(spec, suite)
    if not versions:
        raise MakeDumpError(f"{spec} not found in {suite} (apt-cache madison)")
    return download(package, versions[0], arch), versions[0]


def ensure_foreign_arch(arch: str) -> bool:
    """dpkg --add-architecture `arch` (packages of it are only downloaded and unpacked, never
    installed). True if it was added (apt-get update is then needed)."""
    have = run(["dpkg", "--print-foreign-architectures"], capture=True, quiet=True).stdout.split()
    if arch in have:
        return False
    run(["dpkg", "--add-architecture", arch])
    return True


def deb_field(deb: Path, field: str) -> str:
    return run(["dpkg-deb", "-f", deb, field], capture=True, quiet=True).stdout.strip()


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", deb, dest], quiet=True)


def extract_into_root(deb: Path, root: Path) -> None:
    """Unpack a .deb over a root file system, keeping its /lib -> usr/lib style symlinks
    (plain dpkg-deb -x would replace them with directories and break the chroot)."""
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    r = subprocess.run(["tar", "-x", "--keep-directory-symlink", "-C", str(root)],
                       stdin=tar.stdout)
    tar.wait()
    if r.returncode != 0 or tar.returncode != 0:
        raise MakeDumpError(f"could not unpack {deb} into {root}")


def extract_member(deb: Path, member: str, dest_dir: Path) -> Path:
    """Extract one file (path as in the package, without ./) into dest_dir; returns it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    r = subprocess.run(["tar", "-x", "-C", str(dest_dir), f"./{member}"], stdin=tar.stdout)
    tar.wait()
    if r.returncode != 0 or tar.returncode != 0:
        raise MakeDumpError(f"could not extract {member} from {deb}")
    return dest_dir / member


def parse_depends(text: str) -> list[list[tuple[str, str | None]]]:
    """'a (= 1), b | c' -> [[('a', '1')], [('b', None), ('c', None)]] (exact versions only)."""
    out = []
    for group in filter(None, (g.strip() for g in text.split(","))):
        alts = []
        for alt in group.split("|"):
            m = re.match(r"\s*([^\s(]+)\s*(?:\((=|>=|<=|>>|<<)\s*([^)]+)\))?", alt)
            if m:
                alts.append((m.group(1), m.group(3).strip() if m.group(2) == "=" else None))
        out.append(alts)
    return out


# --- build chroots ----------------------------------------------------------------------------

def ensure_chroot(suite: str) -> Path:
    """A minimal chroot of `suite` (debootstrap, cached) with apt sources incl. security;
    for a backports suite, its base suite with the backports added."""
    root = cache_root() / "chroots" / suite
    base = BASE_SUITE.get(suite, suite)
    stamp = root / ".crashtui-makedump-ready"
    if stamp.exists() and (root / "usr/bin/env").exists():
        return root
    if root.exists():
        log(f"removing incomplete chroot {root}")
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {base} into {root} (a few minutes, once)")
    run(["debootstrap", "--variant=minbase", base, root, MIRROR])
    sources = (f"deb {MIRROR} {base} main\n"
               f"deb {MIRROR} {base}-updates main\n"
               f"deb {SECURITY_MIRROR} {base}-security main\n")
    if base != suite:
        sources += f"deb {MIRROR} {suite} main\n"
    (root / "etc/apt/sources.list").write_text(sources)
    chroot_run(root, ["apt-get", "update", "-q"])
    stamp.touch()
    return root


def chroot_run(root: Path, cmd: list, **kw) -> subprocess.CompletedProcess:
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C", "HOME": "/root"}
    return run(["chroot", root, "/usr/bin/env", "-i",
                *(f"{k}={v}" for k, v in env.items()), *cmd], **kw)


def chroot_install(root: Path, packages: list[str]) -> None:
    if packages:
        chroot_run(root, ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])


def is_root() -> bool:
    return os.geteuid() == 0
