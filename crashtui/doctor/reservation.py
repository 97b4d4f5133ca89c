"""Crash kernel memory (crashkernel=, /sys/kernel/kexec_crash_size) and the capture kernel loaded.

crashkernel= syntax (Documentation/admin-guide/kdump/kdump.rst): `size[@offset]`,
`range1:size1[,range2:size2,...][@offset]` with range `start-[end]` (end exclusive) chosen by
the system RAM, `size,high` / `size,low`, `size,cma` (an extra CMA part, not the base).
"""

from __future__ import annotations

from dataclasses import dataclass

from crashtui.doctor.check import (
    OK,
    PROBLEM,
    WARNING,
    Check,
    Machine,
    kernel_config,
    meminfo,
    parse_size,
    size_text,
)
from crashtui.doctor.service import KdumpSetup

MIB = 1 << 20
GIB = 1 << 30
# Below this the capture kernel of a 6.x distribution kernel and its initramfs do not boot
# (Debian's kdump-tools default is crashkernel=384M-:128M).
MINIMUM = 128 * MIB
# What to reserve, by system RAM: enough for the capture kernel, its initramfs (drivers for
# the dump disk) and makedumpfile's bitmaps, which grow with RAM.
RECOMMENDED = "crashkernel=384M-4G:192M,4G-64G:256M,64G-:512M"


@dataclass(frozen=True)
class CrashKernelParam:
    """The crashkernel= parameter(s) of the kernel command line."""

    text: str  # every crashkernel=... word, space-separated
    size: int | None  # bytes it asks for with this RAM (None: not understood)
    cma: int = 0


def choose_size(value: str, ram: int) -> int | None:
    """The base size `crashkernel=value` reserves on a machine with `ram` bytes, None if the
    value is malformed; 0 when no range matches."""
    value = value.split("@", 1)[0]
    if ":" not in value:
        return parse_size(value.split(",", 1)[0])
    for item in value.split(","):
        rng, sep, size = item.partition(":")
        start, dash, end = rng.partition("-")
        lo = parse_size(start)
        hi = parse_size(end) if end else None
        sz = parse_size(size)
        if not sep or not dash or lo is None or sz is None or (end and hi is None):
            return None
        if ram >= lo and (hi is None or ram < hi):
            return sz
    return 0


def crashkernel_param(cmdline: str, ram: int) -> CrashKernelParam | None:
    """The crashkernel= words of the command line and what they reserve, None if absent."""
    words = [w for w in cmdline.split() if w.startswith("crashkernel=")]
    if not words:
        return None
    size: int | None = 0
    cma = 0
    for w in words:
        value = w.partition("=")[2]
        if value.endswith(",cma"):
            cma += parse_size(value[:-4]) or 0
        elif value.endswith(",low"):
            continue
        else:
            size = choose_size(value.removesuffix(",high"), ram)
    return CrashKernelParam(" ".join(words), size, cma)


def recommended_size(ram: int) -> int:
    """RECOMMENDED's size for this RAM (192 MiB below 4 GiB, and never under MINIMUM)."""
    return max(choose_size(RECOMMENDED.partition("=")[2], ram) or 0, MINIMUM)


def cmdline_fix(setup: KdumpSetup, machine: Machine) -> str:
    """The command that puts RECOMMENDED on the kernel command line for the next boot."""
    if setup.family == "redhat":
        return f"grubby --update-kernel=ALL --args={RECOMMENDED} && reboot"
    if setup.tool == "kdump-tools" and machine.exists("/etc/default/grub.d/kdump-tools.cfg"):
        return (f"sed -i 's/crashkernel=[^ \"]*/{RECOMMENDED}/' "
                "/etc/default/grub.d/kdump-tools.cfg && update-grub && reboot")
    return (f"echo 'GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT {RECOMMENDED}\"' "
            "> /etc/default/grub.d/crashkernel.cfg && update-grub && reboot")


def reservation_checks(machine: Machine, setup: KdumpSetup) -> list[Check]:
    """crashkernel= on the command line, the memory reserved, the capture kernel loaded."""
    reserved = machine.number("/sys/kernel/kexec_crash_size")
    loaded = machine.number("/sys/kernel/kexec_crash_loaded")
    config = kernel_config(machine) or {}
    mem = meminfo(machine)
    # MemTotal excludes the reservation and the kernel image; the ranges compare system RAM
    ram = mem.get("MemTotal", 0) + (reserved or 0)
    if reserved is None and loaded is None:
        why = " (CONFIG_CRASH_DUMP is not set)" if config and \
            config.get("CONFIG_CRASH_DUMP") != "y" else ""
        return [Check("crash-support", "capture", PROBLEM,
                      "this kernel has no kexec crash support: /sys/kernel/kexec_crash_size "
                      f"and kexec_crash_loaded are missing{why}",
                      "apt-get install -y linux-image-amd64 && reboot   # a kernel built with "
                      "CONFIG_KEXEC and CONFIG_CRASH_DUMP" if setup.family != "redhat" else
                      "dnf install -y kernel && reboot")]
    param = crashkernel_param(machine.value("/proc/cmdline") or "", ram)
    fix = cmdline_fix(setup, machine)
    checks = [_param_check(param, ram, fix)]
    bad_param = checks[0].status == PROBLEM
    if bad_param and not reserved:
        checks.append(Check("crash-memory", "capture", PROBLEM,
                            "no crash kernel memory reserved (/sys/kernel/kexec_crash_size = 0):"
                            " follows from crashkernel= above", fix))
    else:
        checks.append(_reserved_check(reserved or 0, param, ram, fix))
    if loaded == 1:
        checks.append(Check("capture-loaded", "capture", OK,
                            "capture kernel loaded (/sys/kernel/kexec_crash_loaded = 1)"))
    elif reserved:
        checks.append(Check("capture-loaded", "capture", PROBLEM,
                            "no capture kernel loaded (/sys/kernel/kexec_crash_loaded = 0): a "
                            "panic now reboots (or hangs) without a dump", setup.reload))
    else:
        checks.append(Check("capture-loaded", "capture", PROBLEM,
                            "no capture kernel loaded: it needs reserved memory first "
                            "(fix crashkernel= and reboot)", fix))
    return checks


def _param_check(param: CrashKernelParam | None, ram: int, fix: str) -> Check:
    if param is None:
        return Check("crashkernel", "capture", PROBLEM,
                     "no crashkernel= on the kernel command line (/proc/cmdline): no memory "
                     "is reserved for a capture kernel", fix)
    if param.size is None:
        return Check("crashkernel", "capture", PROBLEM,
                     f"{param.text}: not a size or range list the kernel understands", fix)
    if param.size == 0:
        return Check("crashkernel", "capture", PROBLEM,
                     f"{param.text}: no range covers this machine's {size_text(ram)} of RAM, "
                     "so nothing is reserved", fix)
    return Check("crashkernel", "capture", OK,
                 f"{param.text}: asks for {size_text(param.size)} with {size_text(ram)} of RAM")


def _reserved_check(reserved: int, param: CrashKernelParam | None, ram: int,
                    fix: str) -> Check:
    want = recommended_size(ram)
    if reserved == 0:
        text = "no crash kernel memory reserved (/sys/kernel/kexec_crash_size = 0)"
        if param is not None and param.size:
            text += ": the kernel could not reserve what crashkernel= asks for " \
                "(see `dmesg | grep -i crashkernel`)"
        return Check("crash-memory", "capture", PROBLEM, text, fix)
    text = f"{size_text(reserved)} reserved for the capture kernel (kexec_crash_size)"
    if reserved < MINIMUM:
        return Check("crash-memory", "capture", PROBLEM,
                     f"{text}: too small, the capture kernel runs out of memory before it "
                     f"saves the dump (at least {size_text(MINIMUM)}; {size_text(want)} for "
                     f"{size_text(ram)} of RAM)", fix)
    if reserved < want:
        return Check("crash-memory", "capture", WARNING,
                     f"{text}: less than the {size_text(want)} suggested for {size_text(ram)} "
                     "of RAM; check with `crashtui doctor --test` that the capture succeeds",
                     fix)
    if ram and reserved > ram // 2:
        return Check("crash-memory", "capture", WARNING,
                     f"{text}: more than half of the {size_text(ram)} of RAM is held back",
                     fix)
    return Check("crash-memory", "capture", OK, f"{text}: enough for {size_text(ram)} of RAM")
