"""Building a scenario's module against the kernel's Debian headers, in a chroot of its suite.

The headers' Makefiles include absolute /usr/src/linux-headers-* paths and the kbuild
helpers (fixdep, modpost) are built for that suite's libc (trixie's need glibc 2.38), so the
module is built in a debootstrap chroot of the kernel's suite with that suite's compiler.
An arm64 module is cross-built in the same (amd64) chroot: the arm64 headers with the host's
linux-kbuild and the suite's gcc-N-aarch64-linux-gnu (see kernel.headers_packages).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from . import debian
from .kernel import Kernel, headers_packages
from .scenarios import Scenario
from .util import MakeDumpError, elf_comment, log, run


def build(k: Kernel, sc: Scenario, out_dir: Path) -> tuple[Path, str]:
    """Build sc's module; copies source, Makefile and .ko to out_dir. Returns (.ko, compiler)."""
    assert sc.module and sc.module_src
    root = debian.ensure_chroot(k.suite)
    headers_debs, apt_pkgs = headers_packages(k)
    stamp = root / f".headers-{k.release}_{k.version}"
    if not stamp.exists():
        # 7.x headers depend on gcc-14-for-host, which (unlike gcc-14) does not bring `as`.
        debian.chroot_install(root, ["make", "binutils", *apt_pkgs])
        for deb in headers_debs:
            log(f"unpacking {deb.name} in the chroot")
            debian.extract_into_root(deb, root)
        stamp.touch()
    build_dir = f"/build/{sc.module}"
    host_build = root / build_dir.lstrip("/")
    shutil.rmtree(host_build, ignore_errors=True)
    host_build.mkdir(parents=True)
    sources = [p for p in sorted(sc.module_src.iterdir()) if p.suffix in (".c", ".h")
               or p.name == "Makefile"]
    for p in sources:
        shutil.copy2(p, host_build / p.name)
    kdir = f"/usr/src/linux-headers-{k.release}"
    prefix_map = f"-ffile-prefix-map={build_dir}=/usr/src/{sc.module}"
    # 7.x's objtool reads /proc/self/limits (read_stack_limit): the build needs /proc.
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    mounted = not os.path.ismount(proc)
    if mounted:
        run(["mount", "-t", "proc", "proc", proc], quiet=True)
    try:
        debian.chroot_run(root, ["make", "-C", build_dir, f"KDIR={kdir}",
                                 f"KCFLAGS={prefix_map}"])
    finally:
        if mounted:
            run(["umount", proc], quiet=True, check=False)
    ko = host_build / f"{sc.module}.ko"
    if not ko.exists():
        raise MakeDumpError(f"module build left no {ko}")
    check_vermagic(k, ko)
    dest = out_dir / sc.module
    dest.mkdir(parents=True, exist_ok=True)
    for p in sources:
        shutil.copy2(p, dest / p.name)
    shutil.copy2(ko, dest / ko.name)
    comment = elf_comment(ko)
    m = re.search(r"GCC: \(.*?\) (\d+)", comment)
    compiler = f"gcc {m.group(1)}" if m else (comment.splitlines() or ["unknown compiler"])[0]
    return dest / ko.name, compiler



def check_vermagic(k: Kernel, ko: Path) -> None:
    """Refuse a .ko whose vermagic differs from the kernel's own modules' (insmod would)."""
    def vermagic(path: Path) -> str:
        return run(["modinfo", "-F", "vermagic", path], capture=True, quiet=True).stdout.strip()

    ref = next((p for p in sorted(k.modules_dir.rglob("*.ko*"))), None)
    if ref is None:
        raise MakeDumpError(f"no module of the kernel under {k.modules_dir} to compare vermagic")
    want, got = vermagic(ref), vermagic(ko)
    if got != want:
        raise MakeDumpError(f"{ko.name}: vermagic {got!r}, the kernel's ({ref.name}) {want!r}")
    log(f"{ko.name}: vermagic {got!r} as the kernel's {ref.name}")
