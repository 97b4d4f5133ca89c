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
REGS_PARTIAL imply it).

Register numbers: 4.14 .. 7.0 number them UNDEFINED PREV_SP DX DI BP SP R10 R13 BP_INDIRECT
SP_INDIRECT (0-9); 7.1 added AX and renumbered them all (UNDEFINED AX DX SP BP DI R10 R13
PREV_SP SP_INDIRECT BP_INDIRECT, 0-10). Entries are decoded to the classic numbers, with AX
as 10. Which layout and numbering a table uses is read from the table itself
(`detect_layout`): almost every entry is a CALL frame based on SP, so the most common type
value and sp_reg name them, whatever the kernel's version (distributions backport).
"""

from __future__ import annotations

import enum
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
ORC_REG_AX = 10  # not a classic number: 7.1's ORC_REG_AX (1) decodes to this
ORC_REG_NAMES = {0: "UNDEFINED", 1: "PREV_SP", 2: "DX", 3: "DI", 4: "BP", 5: "SP", 6: "R10",
                 7: "R13", 8: "BP_INDIRECT", 9: "SP_INDIRECT", 10: "AX"}

# Raw register number -> classic number, for each numbering (index: the 4-bit raw value).
_CLASSIC_REGS = np.arange(16, dtype=np.uint8)
# 7.1+: 0 UNDEFINED, 1 AX, 2 DX, 3 SP, 4 BP, 5 DI, 6 R10, 7 R13, 8 PREV_SP, 9 SP_INDIRECT,
# 10 BP_INDIRECT (arch/x86/include/asm/orc_types.h)
_AX_REGS = np.array([ORC_REG_UNDEFINED, ORC_REG_AX, ORC_REG_DX, ORC_REG_SP, ORC_REG_BP,
                     ORC_REG_DI, ORC_REG_R10, ORC_REG_R13, ORC_REG_PREV_SP, ORC_REG_SP_INDIRECT,
                     ORC_REG_BP_INDIRECT, 11, 12, 13, 14, 15], dtype=np.uint8)
REG_NUMBERINGS = {"classic": _CLASSIC_REGS, "ax": _AX_REGS}

# .orc_header (6.4+, backported to 6.3.10): sha1 of the orc_types.h definitions
# (scripts/orc_hash.sh); the known values are those drgn recognises.
_ORC_HASH_6_4 = bytes.fromhex("fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24")
_ORC_HASH_6_3 = bytes.fromhex("db84aed4103b31dd51e017f8f79783ca985c2c51")
_ORC_HASH_7_1 = bytes.fromhex("137c36ad7627c4dd55932176bb0ecdbd5041fc82")  # AX renumbering
_MIN_ENTRIES_TO_DETECT = 64

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


def orc_version_for_header(header: bytes | memoryview) -> int | None:
    """ORC layout version from a .orc_header hash, None if unknown."""
    h = bytes(header)
    if h in (_ORC_HASH_6_4, _ORC_HASH_7_1):
        return 3
    if h == _ORC_HASH_6_3:
        return 2
    return None


def detect_layout(bits: np.ndarray) -> tuple[int | None, str | None]:
    """(version, register numbering) read off a table's entries; None where unclear.

    The most common entry is a CALL frame with sp_reg SP: CALL is type 2 in version 3 (type in
    bits 8-10) and 0 before (bits 8-9); SP is 5 classically, 3 from 7.1. Of the older two,
    only version 2 (6.3) uses bit 11 (its `end`; entry code's END_OF_STACK hints set it).
    """
    defined = bits[(bits & 0xF) != ORC_REG_UNDEFINED]
    if len(defined) < _MIN_ENTRIES_TO_DETECT:
        return None, None
    types = np.bincount((defined >> 8) & 0x3, minlength=4)
    version = 3 if types[2] > len(defined) // 2 else 1 if types[0] > len(defined) // 2 else None
    if version == 1 and bool((bits & 0x800).any()):
        version = 2
    regs = np.bincount(defined & 0xF, minlength=16)
    top = int(np.argmax(regs))
    numbering = ("classic" if top == ORC_REG_SP else "ax" if top == _AX_REGS.tolist().index(
        ORC_REG_SP) else None) if regs[top] > len(defined) // 2 else None
    return version, numbering


def decode_bits(bits: int, version: int, regs: np.ndarray = _CLASSIC_REGS,
                ) -> tuple[int, int, OrcType, bool, bool]:
    """(sp_reg, bp_reg, type, signal, end) from orc_entry's u16 bitfield word, registers in
    the classic numbering."""
    sp_reg, bp_reg = int(regs[bits & 0xF]), int(regs[(bits >> 4) & 0xF])
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
                 header_known: bool = True, numbering: str = "classic") -> None:
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
        self.numbering = numbering
        self._regs = REG_NUMBERINGS[numbering]

    @classmethod
    def detected(cls, ips: np.ndarray, entries: np.ndarray, fallback_version: int,
                 fallback_numbering: str = "classic") -> OrcTable:
        """A table whose layout is read off its own entries (`detect_layout`), the fallbacks
        used only where the entries do not tell (a module's few entries: the kernel's)."""
        version, numbering = detect_layout(np.asarray(entries["bits"]))
        if version is None:
            version = fallback_version
        return cls(ips, entries, version, numbering=numbering or fallback_numbering)

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
        return cls.detected(ips, entries, version)

    @classmethod
    def from_elf(cls, image: ElfImage) -> OrcTable:
        """From a vmlinux's sections; the layout from the entries (.orc_header, 6.4+, only
        says whether its hash is one crashtui has seen)."""
        for name in (".orc_unwind_ip", ".orc_unwind"):
            if name not in image.sections:
                raise DebugInfoError(f"no {name} section", image.path)
        header_known = True
        if ".orc_header" in image.sections:
            header_known = orc_version_for_header(image.section_data(".orc_header")) is not None
        ip_sec = image.sections[".orc_unwind_ip"]
        try:
            table = cls.from_raw(image.section_data(ip_sec), ip_sec.addr,
                                 image.section_data(".orc_unwind"), 3)
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
        sp_reg, bp_reg, typ, signal, end = decode_bits(int(self.bits[i]), self.version,
                                                       self._regs)
        return OrcEntry(int(self.ips[i]), sp_reg, bp_reg, int(self.sp_offsets[i]),
                        int(self.bp_offsets[i]), typ, signal, end)

    def lookup(self, addr: int) -> OrcEntry | None:
        """The entry covering link-time address `addr` (last ip <= addr), or None."""
        i = self.index_of(addr)
        return None if i is None else self.entry_at(i)

    def __repr__(self) -> str:
        return (f"OrcTable({len(self)} entries, version {self.version}, "
                f"{self.numbering} registers)")
