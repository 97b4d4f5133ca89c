"""One Debian cloud kernel: which packages, extracted image, debug vmlinux, module order."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import debian
from .util import MakeDumpError, cache_root, elf_build_id, log, run, sha256_file, tests_cache_root

FLAVOUR = "cloud-amd64"
META = f"linux-image-{FLAVOUR}"
# Debian's architecture names of the guests make-dump can boot (amd64 is the host's).
FOREIGN = {"amd64": None, "arm64": "arm64"}
# The GNU triplet of a foreign arch (its Debian cross compilers are gcc-N-<triplet>).
CROSS_TRIPLET = {"arm64": "aarch64-linux-gnu"}
# Modules the guests load, in this order once modprobe has added their dependencies.
GUEST_MODULES = ("virtio_pci", "virtio_blk", "qemu_fw_cfg")


@dataclass
class Kernel:
    suite: str
    release: str                 # 6.1.0-56-cloud-amd64
    version: str                 # 6.1.192-2
    root: Path = field(default=Path())      # extracted image package
    dbg_root: Path = field(default=Path())  # extracted -dbg package
    vmlinux_build_id: str = ""
    vmlinux_sha256: str = ""
    arch: str = "amd64"          # Debian architecture of the packages

    @property
    def image_package(self) -> str:
        return f"linux-image-{self.release}"

    @property
    def dbg_package(self) -> str:
        return f"linux-image-{self.release}-dbg"

    @property
    def vmlinux_member(self) -> str:
        """The vmlinux file in the -dbg package (7.x: boot/vmlinux-* is a symlink to it)."""
        name = f"usr/lib/debug/boot/vmlinux-{self.release}"
        link = self.dbg_root / name
        if link.is_symlink():
            return str(link.resolve().relative_to(self.dbg_root.resolve()))
        return name

    @property
    def vmlinux(self) -> Path:
        return self.dbg_root / self.vmlinux_member

    @property
    def vmlinuz(self) -> Path:
        """/boot/vmlinuz-<release> up to 6.x; 7.x's linux-binary-* has it in the modules dir."""
        boot = self.root / "boot" / f"vmlinuz-{self.release}"
        return boot if boot.exists() else self.root / "usr/lib/modules" / self.release / "vmlinuz"

    @property
    def major_minor(self) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", self.release)
        assert m
        return int(m.group(1)), int(m.group(2))

    @property
    def source_package(self) -> str:
        a, b = self.major_minor
        return f"linux-source-{a}.{b} {self.version}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def candidates(suite: str, kernel_version: str | None, kernel_release: str | None,
               arch: str = "amd64") -> list[tuple[str, str]]:
    """(release, version) pairs to try, best first."""
    flavour = f"cloud-{arch}"
    meta = f"linux-image-{flavour}"
    qual = f":{arch}" if FOREIGN[arch] else ""
    if kernel_release:
        versions = debian.madison(f"linux-image-{kernel_release}{qual}", suite)
        if kernel_version:
            versions = [v for v in versions if v == kernel_version] or [kernel_version]
        if not versions:
            raise MakeDumpError(f"linux-image-{kernel_release} is not in {suite} "
                                "(apt-cache madison); is the suite in apt's sources?")
        return [(kernel_release, v) for v in versions]
    versions = debian.madison(meta + qual, suite)
    if kernel_version:
        versions = [v for v in versions if v == kernel_version]
        if not versions:
            raise MakeDumpError(f"{meta} {kernel_version} is not in {suite}; give "
                                "--kernel-release (e.g. 6.1.0-56-cloud-amd64) instead")
    out = []
    for v in versions:
        dep = debian.show_field(f"{meta}{qual}={v}", "Depends")
        m = re.search(rf"linux-image-(\S+-{flavour})\b", dep)
        if m:
            out.append((m.group(1), v))
    if not out:
        raise MakeDumpError(f"no {meta} in {suite} (apt-cache madison {meta}{qual})")
    return out


def prepare(suite: str, kernel_version: str | None, kernel_release: str | None,
            arch: str = "amd64") -> Kernel:
    """Download and extract the image and -dbg packages of the chosen kernel."""
    errors = []
    for release, version in candidates(suite, kernel_version, kernel_release, arch):
        k = Kernel(suite=suite, release=release, version=version, arch=arch)
        try:
            images = image_debs(k)
            dbg = debian.download(k.dbg_package, version, FOREIGN[arch])
        except MakeDumpError as exc:
            # Seen on bullseye: the newest -dbg may be missing from the mirror.
            log(f"{release} {version} unusable, trying an older one: {exc}")
            errors.append(str(exc))
            continue
        _extract_kernel(k, images, dbg)
        return k
    raise MakeDumpError("no kernel of " + suite + " could be downloaded:\n" + "\n".join(errors))


def image_debs(k: Kernel) -> list[Path]:
    """The image package, and on 7.x the packages it was split into: linux-image-<release> is
    then a small package depending on linux-binary-<release> (vmlinuz),
    linux-modules-<release> and linux-base-<release> (modules.builtin, System.map)."""
    image = debian.download(k.image_package, k.version, FOREIGN[k.arch])
    debs = [image]
    for alts in debian.parse_depends(debian.deb_field(image, "Depends")):
        name, ver = alts[0]
        if name.startswith("linux-") and name.endswith("-" + k.release) and ver == k.version:
            debs.append(debian.download(name, ver, FOREIGN[k.arch]))
    return debs


def _extract_kernel(k: Kernel, images: list[Path], dbg: Path) -> None:
    base = cache_root() / "kernels" / f"{k.release}_{k.version}"
    k.root = base / "image"
    k.dbg_root = base / "dbg"
    if not (base / "image.done").exists():
        shutil.rmtree(k.root, ignore_errors=True)
        for image in images:
            log(f"extracting {image.name}")
            debian.extract(image, k.root)
        # Trixie ships usr/lib/modules only: let depmod/modprobe -d find lib/modules.
        if not (k.root / "lib").exists() and (k.root / "usr/lib").exists():
            os.symlink("usr/lib", k.root / "lib")
        run(["depmod", "-b", k.root, k.release])
        (base / "image.done").touch()
    if not (base / "dbg.done").exists():
        shutil.rmtree(k.dbg_root, ignore_errors=True)
        log(f"extracting {dbg.name} (vmlinux with DWARF and module debug files; ~1 min)")
        debian.extract(dbg, k.dbg_root)
        (base / "dbg.done").touch()
    info_file = base / "vmlinux.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
    else:
        if not k.vmlinux.exists():
            raise MakeDumpError(f"{dbg.name} has no {k.vmlinux_member}")
        log("hashing the debug vmlinux")
        info = {"build_id": elf_build_id(k.vmlinux), "sha256": sha256_file(k.vmlinux)}
        info_file.write_text(json.dumps(info))
    k.vmlinux_build_id = info["build_id"]
    k.vmlinux_sha256 = info["sha256"]
    link_vmlinux_for_tests(k)


def link_vmlinux_for_tests(k: Kernel) -> Path:
    """Make the vmlinux available where tests and record-crash-output look (hard link)."""
    target = tests_cache_root() / "vmlinux" / k.vmlinux_build_id / k.vmlinux.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(k.vmlinux, target)
        except OSError:
            shutil.copyfile(k.vmlinux, target)
    return target


def module_load_order(k: Kernel, names: tuple[str, ...] = GUEST_MODULES) -> list[Path]:
    """The .ko files (within the extracted image) to insmod, dependencies first."""
    r = run(["modprobe", "-d", k.root, "-S", k.release, "--show-depends", "-a", *names],
            capture=True, quiet=True)
    out: list[Path] = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "insmod":
            p = Path(parts[1])
            if p not in out:
                out.append(p)
    return out


def headers_packages(k: Kernel) -> tuple[list[Path], list[str]]:
    """The headers .debs to unpack in a build chroot, and the packages they need from apt.

    linux-headers-<release> and linux-headers-*-common are unpacked (their Makefiles use
    absolute /usr/src paths, hence the chroot); the kbuild and compiler packages they depend
    on are installed in the chroot with apt. For a foreign `k.arch` the packages are the
    host's (linux-kbuild-* is Multi-Arch: foreign) with the compiler as a cross compiler:
    the headers' Makefile says `CC = $(CROSS_COMPILE)gcc-14`, CROSS_COMPILE=aarch64-linux-gnu-.
    """
    arch_deb = debian.download(f"linux-headers-{k.release}", k.version, FOREIGN[k.arch])
    debs = [arch_deb]
    apt_pkgs: list[str] = []
    for alts in debian.parse_depends(debian.deb_field(arch_deb, "Depends")):
        name, ver = alts[0]
        if any(n.startswith("linux-image-") for n, _ in alts):
            continue                      # the image itself is not needed to build modules
        if name.startswith("linux-headers-"):
            debs.append(debian.download(name, ver or k.version))
        else:
            if FOREIGN[k.arch] and re.fullmatch(r"gcc-\d+", name):
                name += "-" + CROSS_TRIPLET[k.arch]      # gcc-14 -> gcc-14-aarch64-linux-gnu
            apt_pkgs.append(f"{name}={ver}" if ver else name)
    return debs, apt_pkgs
