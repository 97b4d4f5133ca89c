"""The CPU architecture of a dumped kernel: what kernel/ must not assume about x86-64.

One `Arch` per architecture (x86_64.py, arm64.py), chosen from the dump (utsname machine,
else the VMCOREINFO keys only one architecture publishes) by `arch_of_dump`, and from a
vmlinux by its ELF e_machine (`arch_of_machine`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from crashtui.arch.base import Arch, Translator

if TYPE_CHECKING:
    from crashtui.dumpfile import DumpFile
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

__all__ = ["Arch", "Translator", "arch_by_name", "arch_of_dump", "arch_of_machine"]


def _archs() -> tuple[Arch, ...]:
    from crashtui.arch.arm64 import ARM64
    from crashtui.arch.x86_64 import X86_64

    return (X86_64, ARM64)


def arch_of_machine(e_machine: int) -> Arch | None:
    """The Arch of an ELF e_machine, or None if crashtui does not know it."""
    return next((a for a in _archs() if a.elf_machine == e_machine), None)


def arch_by_name(name: str) -> Arch | None:
    return next((a for a in _archs() if name == a.name or name in a.uts_machines), None)


def arch_of_dump(dump: DumpFile, vmcoreinfo: VmcoreInfo) -> Arch | str:
    """The dump's Arch; the machine's name (a str) if crashtui does not support it.

    From the header's utsname.machine when it is a plausible name (not damaged bytes, not
    QEMU's "Unknown"), else from VMCOREINFO: arm64 publishes NUMBER(VA_BITS) and
    NUMBER(kimage_voffset) (arch/arm64/kernel/vmcore_info.c); else x86-64.
    """
    from crashtui.arch.arm64 import ARM64
    from crashtui.arch.x86_64 import X86_64

    uts = dump.info.utsname
    machine = uts.machine if uts else None
    found = arch_by_name(machine) if machine else None
    if found is not None:
        return found
    if machine and machine != "Unknown" and re.fullmatch(r"[A-Za-z0-9_]{2,16}", machine):
        return machine
    if "kimage_voffset" in vmcoreinfo.numbers or "VA_BITS" in vmcoreinfo.numbers:
        return ARM64  # QEMU's kdump-zlib header says machine "Unknown"
    return X86_64
