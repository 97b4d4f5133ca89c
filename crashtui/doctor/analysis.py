"""The analysis side: will crashtui read a dump of the running kernel?

It needs the kernel's debug vmlinux (found by build-id where crashtui looks) for source lines,
or else the kernel's own kallsyms, BTF and ORC tables, which it reads from the dump's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crashtui.debuginfo.elf import parse_notes
from crashtui.debuginfo.locate import locate_vmlinux, valid_build_id
from crashtui.doctor.check import (
    OK,
    PROBLEM,
    WARNING,
    Check,
    Machine,
    kernel_config,
    os_ids,
    release,
)
from crashtui.kernel.debugsources import debian_package

NT_GNU_BUILD_ID = 3
# The kernels crashtui is checked on (README "Supported kernels")
SUPPORTED = ((5, 10), (7, 3))


@dataclass(frozen=True)
class RunningKernel:
    """The running kernel's release and GNU build-id (from /sys/kernel/notes)."""

    release: str | None
    build_id: str | None


def running_kernel(machine: Machine) -> RunningKernel:
    """`uname -r` and the build-id the kernel's own .notes carry (what VMCOREINFO records)."""
    raw = machine.read_bytes("/sys/kernel/notes") or b""
    bid = next((n.desc.hex() for n in parse_notes(raw)
                if n.name == "GNU" and n.type == NT_GNU_BUILD_ID), None)
    return RunningKernel(release(machine), valid_build_id(bid))


def debug_package(rel: str, ids: set[str]) -> str | None:
    """The package with the debug vmlinux: Debian's and Ubuntu's as crashtui names them
    elsewhere (kernel.debugsources.debian_package), RHEL/Fedora's kernel-debuginfo."""
    if ids & {"rhel", "fedora", "centos"}:
        return f"kernel-debuginfo-{rel}"
    return debian_package(rel, ids)


def install_command(package: str, ids: set[str]) -> str:
    """How to install a debug package on this distribution."""
    if ids & {"rhel", "fedora", "centos"}:
        return f"dnf debuginfo-install -y kernel-{package.removeprefix('kernel-debuginfo-')}"
    if "ubuntu" in ids:
        return f"apt-get install -y {package}   # from ddebs.ubuntu.com"
    return f"apt-get install -y {package}"


def analysis_checks(machine: Machine) -> list[Check]:
    """Kernel version, debug vmlinux by build-id, BTF and ORC of the running kernel."""
    kernel = running_kernel(machine)
    config = kernel_config(machine)
    checks = [_version_check(kernel.release)]
    btf = machine.exists("/sys/kernel/btf/vmlinux")
    orc = None if config is None else config.get("CONFIG_UNWINDER_ORC") == "y"
    kallsyms = None if config is None else config.get("CONFIG_KALLSYMS_ALL") == "y"
    vmlinux = _vmlinux_check(machine, kernel, btf and orc is not False)
    checks.append(vmlinux)
    own = []
    status = OK
    own.append("BTF (/sys/kernel/btf/vmlinux)" if btf else "no BTF")
    own.append({True: "ORC unwinder", False: "no ORC unwinder (CONFIG_UNWINDER_ORC)",
                None: "ORC unknown (no /boot/config-<release> or /proc/config.gz)"}[orc])
    if kallsyms is False:
        own.append("kallsyms without data symbols (CONFIG_KALLSYMS_ALL is not set: "
                   "variables such as init_task are not in it)")
    if not btf or orc is not True or kallsyms is False:
        status = WARNING  # the vmlinux check says whether that leaves crashtui without both
    text = "the kernel's own debug info (read from the dump without a vmlinux): " + \
        ", ".join(own)
    if status == OK:
        text += ": enough for crashtui's summary, backtraces, tasks and log"
    checks.append(Check("kernel-debuginfo", "analysis", status, text))
    return checks


def _version_check(rel: str | None) -> Check:
    if rel is None:
        return Check("kernel-version", "analysis", WARNING,
                     "kernel release unknown (/proc/sys/kernel/osrelease unreadable)")
    m = re.match(r"(\d+)\.(\d+)", rel)
    lo, hi = SUPPORTED
    span = f"{lo[0]}.{lo[1]} to {hi[0]}.{hi[1]}"
    if m is None:
        return Check("kernel-version", "analysis", WARNING, f"kernel {rel}: version unknown")
    version = (int(m.group(1)), int(m.group(2)))
    if lo <= version <= hi:
        return Check("kernel-version", "analysis", OK,
                     f"kernel {rel}: within what crashtui is checked on ({span})")
    return Check("kernel-version", "analysis", WARNING,
                 f"kernel {rel}: outside what crashtui is checked on ({span}); a layout it "
                 "does not know is named and the rest still shows")


def _vmlinux_check(machine: Machine, kernel: RunningKernel, memory_enough: bool) -> Check:
    if kernel.release is None:
        return Check("debug-vmlinux", "analysis", WARNING, "no kernel release to look up")
    extra: list[Path] = []
    if kernel.build_id is not None and machine.root == Path("/"):
        from crashtui.debuginfo.debuginfod import cached_path

        extra.append(cached_path(kernel.build_id))
    found = locate_vmlinux(kernel.release, kernel.build_id, roots=[machine.root], extra=extra)
    bid = f"build-id {kernel.build_id}" if kernel.build_id else "no build-id (/sys/kernel/notes)"
    if found is not None:
        shown = "/" + str(found.path.relative_to(machine.root)) \
            if found.path.is_relative_to(machine.root) else str(found.path)
        return Check("debug-vmlinux", "analysis", OK,
                     f"debug vmlinux for {kernel.release} ({bid}): {shown} (found in "
                     f"{found.place}): source lines and every crash command")
    ids = os_ids(machine)
    package = debug_package(kernel.release, ids)
    if package and not ids & {"rhel", "fedora", "centos"} and not any(
            machine.exists(f"/var/lib/dpkg/info/{name}-{kernel.release}.list")
            for name in ("linux-image", "linux-image-unsigned")):
        package = None  # not a packaged kernel: its debug vmlinux is with whoever built it
    fix = install_command(package, ids) if package else None
    text = (f"no debug vmlinux for {kernel.release} ({bid}) where crashtui looks "
            "(/usr/lib/debug/.build-id, /usr/lib/debug/boot, /boot, its debuginfod cache)"
            + (f"; package {package}" if package else "; the kernel is not from a "
               "distribution package, its builder has the vmlinux")
            + ": no source lines" + ("" if memory_enough else ", and nothing else to read "
                                     "the dump with"))
    return Check("debug-vmlinux", "analysis", WARNING if memory_enough else PROBLEM, text, fix)
