"""ORC unwind tables (arch/x86/include/asm/orc_types.h, arch/x86/kernel/unwind_orc.c) as numpy.

Only the tables and the decoding of `struct orc_entry` live here; unwinding is the kernel
layer's job. `bits` (the u16 after sp_offset/bp_offset) is laid out per ORC version, numbered
as drgn does (libdrgn/orc_info.c):
  version 1 (4.14 .. 6.2):  sp_reg:4 bp_reg:4 type:2 end:1     (CALL 0, REGS 1, REGS_PARTIAL 2)
  version 2 (6.3):          sp_reg:4 bp_reg:4 type:2 signal:1 end:1
  version 3 (6.4+):         sp_reg:4 bp_reg:4 type:3 signal:1  (UNDEFINED 0, END_OF_STACK 1,
                                                                CALL 2, REGS 3, REGS_PARTIAL 4)
Entries are normalised to version 3 types: before 6.4, sp_reg == ORC_REG_UNDEFINED means
UNDEFINED (or END_OF_STACK when `end` is set), and version 1 has no signal bit (REGS and
REGS_PARTIAL imply it). Register numbers are those of 4.14 .. 7.0; a renumbering reported for
later kernels is not handled (an unknown .orc_header hash is reported via `header_known`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np

from crashtui.debuginfo.elf import ElfImage
from crashtui.errors import DebugInfoError

# ORC_REG_* (arch/x86/include/asm/orc_types.h)
ORC_REG_UNDEFINED = 0
ORC_REG_PREV_SP = 1
ORC_REG_DX = 2
ORC_REG_DI = 3
ORC_REG_BP = 4
ORC_REG_SP = 5
ORC_REG_R10 = 6
ORC_REG_R13 = 7
ORC_REG_BP_INDIRECT = 8
ORC_REG_SP_INDIRECT = 9
ORC_REG_NAMES = {0: "UNDEFINED", 1: "PREV_SP", 2: "DX", 3: "DI", 4: "BP", 5: "SP", 6: "R10",
                 7: "R13", 8: "BP_INDIRECT", 9: "SP_INDIRECT"}

# .orc_header (6.4+, backported to 6.3.10): sha1 of the orc_types.h definitions
# (scripts/orc_hash.sh); the known values are those drgn recognises.
_ORC_HASH_6_4 = bytes.fromhex("fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24")
_ORC_HASH_6_3 = bytes.fromhex("db84aed4103b31dd51e017f8f79783ca985c2c51")

# struct orc_entry { s16 sp_offset; s16 bp_offset; u16 bits; } __packed
ORC_ENTRY_DTYPE = np.dtype([("sp_offset", "<i2"), ("bp_offset", "<i2"), ("bits", "<u2")])


class OrcType(enum.IntEnum):
    """Normalised ORC entry type (the 6.4+ ORC_TYPE_* numbering)."""

    UNDEFINED = 0
    END_OF_STACK = 1
    CALL = 2
    REGS = 3
    REGS_PARTIAL = 4


@dataclass(frozen=True, slots=True)
class OrcEntry:
    """One decoded orc_entry: prev SP = sp_reg + sp_offset; BP from bp_reg + bp_offset."""

    ip: int
    sp_reg: int
    bp_reg: int
    sp_offset: int
    bp_offset: int
    type: OrcType
    signal: bool
    end: bool = False  # versions 1-2 only: the raw `end` bit

    UNDEFINED = ORC_REG_UNDEFINED
    PREV_SP = ORC_REG_PREV_SP
    DX = ORC_REG_DX
    DI = ORC_REG_DI
    BP = ORC_REG_BP
    SP = ORC_REG_SP
    R10 = ORC_REG_R10
    R13 = ORC_REG_R13
    BP_INDIRECT = ORC_REG_BP_INDIRECT
    SP_INDIRECT = ORC_REG_SP_INDIRECT

    def __str__(self) -> str:
        sp = ORC_REG_NAMES.get(self.sp_reg, str(self.sp_reg))
        bp = ORC_REG_NAMES.get(self.bp_reg, str(self.bp_reg))
        return (f"{self.ip:#x}: sp:{sp}{self.sp_offset:+d} bp:{bp}{self.bp_offset:+d} "
                f"type:{self.type.name}{' signal' if self.signal else ''}")


def orc_version_for_release(release: str | None) -> int:
    """ORC layout version for a kernel release string ("6.1.0-56-cloud-amd64" -> 1)."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    if m is None:
        return 3
    major, minor = int(m.group(1)), int(m.group(2))
    if (major, minor) >= (6, 4):
        return 3
    if (major, minor) == (6, 3):
        return 2
    return 1


def orc_version_for_header(header: bytes | memoryview) -> int | None:
    """ORC layout version from a .orc_header hash, None if unknown."""
    h = bytes(header)
    if h == _ORC_HASH_6_4:
        return 3
    if h == _ORC_HASH_6_3:
        return 2
    return None


def decode_bits(bits: int, version: int) -> tuple[int, int, OrcType, bool, bool]:
    """(sp_reg, bp_reg, type, signal, end) from orc_entry's u16 bitfield word."""
    sp_reg, bp_reg = bits & 0xF, (bits >> 4) & 0xF
    if version >= 3:
        raw = (bits >> 8) & 0x7
        typ = OrcType(raw) if raw <= 4 else OrcType.UNDEFINED
        return sp_reg, bp_reg, typ, bool(bits & 0x800), False
    raw = (bits >> 8) & 0x3
    if version == 2:
        signal, end = bool(bits & 0x400), bool(bits & 0x800)
    else:
        end = bool(bits & 0x400)
        signal = raw in (1, 2)  # no signal bit before 6.3: REGS/REGS_PARTIAL imply it
    if sp_reg == ORC_REG_UNDEFINED:
        typ = OrcType.END_OF_STACK if end else OrcType.UNDEFINED
    else:
        typ = OrcType(raw + 2) if raw <= 2 else OrcType.UNDEFINED
    return sp_reg, bp_reg, typ, signal, end


class OrcTable:
    """Sorted ORC ips (uint64) with their raw entries; lookup(addr) bisects."""

    def __init__(self, ips: np.ndarray, entries: np.ndarray, version: int,
                 header_known: bool = True) -> None:
        """Take ips and ORC_ENTRY_DTYPE entries of the same length (sorted here if needed)."""
        if len(ips) != len(entries):
            raise DebugInfoError(f"ORC tables disagree: {len(ips)} ips, {len(entries)} entries")
        ips = ips.astype(np.uint64, copy=False)
        if len(ips) > 1 and not bool(np.all(ips[1:] >= ips[:-1])):
            # same ip: the terminator (sp_reg UNDEFINED) first, so the real entry wins
            term = (entries["bits"] & 0xF) != ORC_REG_UNDEFINED
            order = np.lexsort((term, ips))
            ips, entries = ips[order], entries[order]
        self.ips = ips
        self.sp_offsets = entries["sp_offset"]
        self.bp_offsets = entries["bp_offset"]
        self.bits = entries["bits"]
        self.version = version
        self.header_known = header_known

    @classmethod
    def from_raw(cls, ip_bytes: bytes | memoryview, ip_section_addr: int,
                 unwind_bytes: bytes | memoryview, version: int) -> OrcTable:
        """From .orc_unwind_ip bytes (s32, ip = entry address + value) and .orc_unwind bytes."""
        nip = len(ip_bytes) // 4
        if len(ip_bytes) % 4 or len(unwind_bytes) != nip * ORC_ENTRY_DTYPE.itemsize:
            raise DebugInfoError(f"ORC tables have inconsistent sizes ({len(ip_bytes)} bytes "
                                 f"of ips, {len(unwind_bytes)} bytes of entries)")
        rel = np.frombuffer(ip_bytes, dtype="<i4").astype(np.int64).astype(np.uint64)
        slot = np.uint64(ip_section_addr) + np.arange(nip, dtype=np.uint64) * np.uint64(4)
        ips = slot + rel  # wraps modulo 2**64 like the kernel's pointer arithmetic
        entries = np.frombuffer(unwind_bytes, dtype=ORC_ENTRY_DTYPE)
        return cls(ips, entries, version)

    @classmethod
    def from_elf(cls, image: ElfImage, release: str | None = None,
                 version: int | None = None) -> OrcTable:
        """From a vmlinux's sections; version from .orc_header, else from the release."""
        for name in (".orc_unwind_ip", ".orc_unwind"):
            if name not in image.sections:
                raise DebugInfoError(f"no {name} section", image.path)
        header_known = True
        if version is None and ".orc_header" in image.sections:
            version = orc_version_for_header(image.section_data(".orc_header"))
            header_known = version is not None
        if version is None:
            version = orc_version_for_release(release)
        ip_sec = image.sections[".orc_unwind_ip"]
        try:
            table = cls.from_raw(image.section_data(ip_sec), ip_sec.addr,
                                 image.section_data(".orc_unwind"), version)
        except DebugInfoError as exc:
            raise DebugInfoError(exc.message, image.path) from None
        table.header_known = header_known
        return table

    def __len__(self) -> int:
        return len(self.ips)

    def index_of(self, addr: int) -> int | None:
        """Index of the last entry whose ip <= addr."""
        if addr < 0 or addr >= 1 << 64:
            return None
        i = int(np.searchsorted(self.ips, np.uint64(addr), side="right")) - 1
        return i if i >= 0 else None

    def entry_at(self, i: int) -> OrcEntry:
        """Decode the i-th entry."""
        sp_reg, bp_reg, typ, signal, end = decode_bits(int(self.bits[i]), self.version)
        return OrcEntry(int(self.ips[i]), sp_reg, bp_reg, int(self.sp_offsets[i]),
                        int(self.bp_offsets[i]), typ, signal, end)

    def lookup(self, addr: int) -> OrcEntry | None:
        """The entry covering link-time address `addr` (last ip <= addr), or None."""
        i = self.index_of(addr)
        return None if i is None else self.entry_at(i)

    def __repr__(self) -> str:
        return f"OrcTable({len(self)} entries, version {self.version})"
