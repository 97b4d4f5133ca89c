"""ORC tables: decoding of each layout version, from_raw, and the real vmlinux's tables."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from crashtui.debuginfo.orc import (
    ORC_ENTRY_DTYPE,
    ORC_REG_BP,
    ORC_REG_PREV_SP,
    ORC_REG_SP,
    ORC_REG_UNDEFINED,
    OrcEntry,
    OrcTable,
    OrcType,
    decode_bits,
    detect_layout,
    orc_version_for_header,
)
from crashtui.debuginfo.vmlinux import Vmlinux
from crashtui.errors import DebugInfoError


def test_layout_read_off_the_entries() -> None:
    """Version and register numbering from the entries alone: most are CALL frames on SP."""
    call = [_bits(5, 1, 0)] * 90 + [_bits(5, 0, 1)] * 10            # v1, classic SP=5
    assert detect_layout(np.array(call, dtype=np.uint16)) == (1, "classic")
    v2 = call + [_bits(0, 0, 0b1000)]                                 # v2: end is bit 11
    assert detect_layout(np.array(v2, dtype=np.uint16)) == (2, "classic")
    v3 = [_bits(5, 1, 2)] * 90 + [_bits(5, 0, 3)] * 10                # v3: CALL is type 2
    assert detect_layout(np.array(v3, dtype=np.uint16)) == (3, "classic")
    ax = [_bits(3, 8, 2)] * 90 + [_bits(3, 0, 3)] * 10                # 7.1: SP=3, PREV_SP=8
    assert detect_layout(np.array(ax, dtype=np.uint16)) == (3, "ax")
    assert detect_layout(np.array(ax[:10], dtype=np.uint16)) == (None, None)  # too few
    table = OrcTable.detected(np.arange(100, dtype=np.uint64),
                              np.array([(8, -16, b) for b in ax], dtype=ORC_ENTRY_DTYPE), 1)
    e = table.entry_at(0)
    assert (table.version, e.sp_reg, e.bp_reg, e.type) == (3, ORC_REG_SP, ORC_REG_PREV_SP,
                                                           OrcType.CALL)
    assert orc_version_for_header(bytes(20)) is None
    assert orc_version_for_header(bytes.fromhex("fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24")) == 3


def _bits(sp_reg: int, bp_reg: int, rest: int) -> int:
    return sp_reg | (bp_reg << 4) | (rest << 8)


def test_decode_version1() -> None:
    # layout: type:2 end:1 -- CALL 0, REGS 1, REGS_PARTIAL 2
    assert decode_bits(_bits(ORC_REG_SP, ORC_REG_UNDEFINED, 0), 1)[2] is OrcType.CALL
    sp, bp, typ, signal, end = decode_bits(_bits(ORC_REG_SP, ORC_REG_BP, 1), 1)
    assert (sp, bp, typ, signal, end) == (ORC_REG_SP, ORC_REG_BP, OrcType.REGS, True, False)
    assert decode_bits(_bits(ORC_REG_SP, 0, 2), 1)[2:4] == (OrcType.REGS_PARTIAL, True)
    assert decode_bits(_bits(0, 0, 0), 1)[2] is OrcType.UNDEFINED
    assert decode_bits(_bits(0, 0, 0b100), 1)[2] is OrcType.END_OF_STACK


def test_decode_version2() -> None:
    # layout: type:2 signal:1 end:1
    assert decode_bits(_bits(ORC_REG_SP, 0, 0b0100), 2)[2:4] == (OrcType.CALL, True)
    assert decode_bits(_bits(ORC_REG_SP, 0, 0b0001), 2)[2:4] == (OrcType.REGS, False)
    assert decode_bits(_bits(0, 0, 0b1000), 2)[2] is OrcType.END_OF_STACK
    assert decode_bits(_bits(0, 0, 0), 2)[2] is OrcType.UNDEFINED


def test_decode_version3() -> None:
    # layout: type:3 signal:1 -- UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4
    for raw, typ in [(0, OrcType.UNDEFINED), (1, OrcType.END_OF_STACK), (2, OrcType.CALL),
                     (3, OrcType.REGS), (4, OrcType.REGS_PARTIAL)]:
        assert decode_bits(_bits(ORC_REG_SP, 0, raw), 3)[2] is typ
    assert decode_bits(_bits(ORC_REG_SP, 0, 0b1010), 3)[2:4] == (OrcType.CALL, True)


def test_from_raw_relative_ips_and_lookup() -> None:
    base = 0xFFFFFFFF82000000
    targets = [0xFFFFFFFF81000000, 0xFFFFFFFF81000010, 0xFFFFFFFF81000040]
    ip_bytes = b"".join(struct.pack("<i", t - (base + 4 * i)) for i, t in enumerate(targets))
    unwind = b"".join(struct.pack("<hhH", 8 * (i + 1), -16, _bits(ORC_REG_SP, ORC_REG_PREV_SP,
                                                                    0)) for i in range(3))
    table = OrcTable.from_raw(ip_bytes, base, unwind, version=1)
    assert len(table) == 3
    assert [int(x) for x in table.ips] == targets
    assert table.lookup(0xFFFFFFFF80FFFFFF) is None
    e = table.lookup(0xFFFFFFFF81000017)
    assert isinstance(e, OrcEntry)
    assert (e.ip, e.sp_offset, e.bp_offset, e.bp_reg) == (targets[1], 16, -16, OrcEntry.PREV_SP)
    last = table.lookup(0xFFFFFFFF81001000)
    assert last is not None and last.sp_offset == 24
    with pytest.raises(DebugInfoError, match="inconsistent"):
        OrcTable.from_raw(ip_bytes, base, unwind[:-6], version=1)


def test_unsorted_tables_are_sorted() -> None:
    ips = np.array([30, 10, 20, 20], dtype=np.uint64)
    raw = np.zeros(4, dtype=[("sp_offset", "<i2"), ("bp_offset", "<i2"), ("bits", "<u2")])
    raw["sp_offset"] = [3, 1, 2, 0]
    raw["bits"] = [ORC_REG_SP, ORC_REG_SP, ORC_REG_SP, 0]  # the second ip 20 is a terminator
    table = OrcTable(ips, raw, version=1)
    assert [int(x) for x in table.ips] == [10, 20, 20, 30]
    e = table.lookup(25)
    assert e is not None and e.sp_offset == 2 and e.type is OrcType.CALL


@pytest.fixture(scope="module")
def vm(vmlinux_path: Path) -> Vmlinux:
    return Vmlinux(vmlinux_path)


def test_vmlinux_orc(vm: Vmlinux) -> None:
    orc = vm.orc
    assert orc is not None
    assert orc.version == 1
    assert len(orc) == 368_456
    assert bool(np.all(orc.ips[1:] >= orc.ips[:-1]))
    for name in ("sysrq_handle_crash", "__schedule", "panic"):
        addr = vm.symbols.address_of(name)
        assert addr is not None
        e = orc.lookup(addr)
        assert e is not None and e.ip <= addr  # objtool merges identical neighbours
        assert e.type is OrcType.CALL
        assert e.sp_reg == ORC_REG_SP and e.sp_offset == 8
        assert e.bp_reg == ORC_REG_UNDEFINED and not e.signal


def test_vmlinux_orc_frame_pointer_and_entry_code(vm: Vmlinux) -> None:
    orc = vm.orc
    assert orc is not None
    sched = vm.symbols.address_of("__schedule")
    assert sched is not None
    body = orc.lookup(sched + 0x40)  # after push %rbp; mov %rsp,%rbp
    assert body is not None and body.sp_reg == ORC_REG_BP and body.sp_offset == 16
    assert body.bp_reg == ORC_REG_PREV_SP and body.bp_offset == -16
    fault = vm.symbols.address_of("asm_exc_page_fault")
    assert fault is not None
    e = orc.lookup(fault)
    assert e is not None and e.type is OrcType.REGS_PARTIAL and e.signal
    start = orc.lookup(vm.symbols.address_of("startup_64") or 0)
    assert start is not None and start.type is OrcType.END_OF_STACK
