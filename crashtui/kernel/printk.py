"""The kernel log: the lockless printk ring buffer (kernel/printk/printk_ringbuffer.h, 5.10+)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

# prb_desc.state_var: the top two bits hold the descriptor state, the rest the record id.
_DESC_FLAGS_SHIFT = 62
_DESC_ID_MASK = (1 << _DESC_FLAGS_SHIFT) - 1
_DESC_COMMITTED = 1
_DESC_FINALIZED = 2
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


@dataclass(frozen=True)
class LogRecord:
    """One printk record; `damage` says why a record the ring holds could not be decoded."""

    seq: int
    timestamp_ns: int
    text: str
    caller_id: int
    level: int | None = None
    damage: str | None = None

    @property
    def timestamp(self) -> str:
        """The `[    7.628092]` prefix crash's `log` prints."""
        secs, nsec = divmod(self.timestamp_ns, 1_000_000_000)
        return f"[{secs:5d}.{nsec // 1000:06d}]"

    @property
    def caller(self) -> str:
        """The caller id as the kernel prints it (print_caller): T<pid>, or C<cpu> outside a
        task (the top bit of printk_info.caller_id set), right-aligned to 6."""
        kind = "C" if self.caller_id & 0x80000000 else "T"
        return f"[{kind + str(self.caller_id & 0x7FFFFFFF):>6}]"

    def lines(self, caller: bool = False, timestamp: bool = True) -> list[str]:
        """The record as crash's `log` prints it (`-c`: with the caller id, `-t`: without the
        timestamp): continuation lines indented under the text."""
        prefix = ((self.timestamp + " ") if timestamp else "") + (self.caller + " " if caller
                                                                  else "")
        if self.damage is not None:
            return [f"{prefix}<damaged log record: {self.damage}>"]
        parts = self.text.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        return [prefix + parts[0]] + [" " * len(prefix) + p for p in parts[1:]]


@dataclass
class KernelLog:
    """All records read, and a note when the walk stopped early."""

    records: list[LogRecord]
    error: str | None = None

    @property
    def damaged(self) -> int:
        """How many records are damaged (shown as markers in place)."""
        return sum(1 for r in self.records if r.damage is not None)

    def lines(self, caller: bool = False, timestamp: bool = True) -> list[str]:
        out = [line for rec in self.records for line in rec.lines(caller, timestamp)]
        if self.error:
            out.append(f"<log incomplete: {self.error}>")
        return out


@dataclass(frozen=True)
class RingLayout:
    """Sizes and member offsets of prb_desc / printk_info, checked to lie inside the structs."""

    desc_size: int
    info_size: int
    state_var: int
    begin: int
    next: int
    seq: int
    ts_nsec: int
    text_len: int
    caller_id: int

    @classmethod
    def from_vmcoreinfo(cls, vi: VmcoreInfo) -> RingLayout:
        """Read the layout from VMCOREINFO; KernelReadError if missing or out of range."""
        def off(key: str) -> int:
            try:
                return vi.offsets[key]
            except KeyError:
                raise KernelReadError(f"VMCOREINFO lacks OFFSET({key})") from None

        lpos = off("prb_desc.text_blk_lpos")
        layout = cls(desc_size=vi.sizes.get("prb_desc", 24),
                     info_size=vi.sizes.get("printk_info", 88),
                     state_var=off("prb_desc.state_var"),
                     begin=lpos + off("prb_data_blk_lpos.begin"),
                     next=lpos + off("prb_data_blk_lpos.next"), seq=off("printk_info.seq"),
                     ts_nsec=off("printk_info.ts_nsec"), text_len=off("printk_info.text_len"),
                     caller_id=off("printk_info.caller_id"))
        layout.check()
        return layout

    def check(self) -> None:
        """KernelReadError unless every field fits in its struct (sizes up to 4 KiB)."""
        if not (24 <= self.desc_size <= 4096 and 16 <= self.info_size <= 4096):
            raise KernelReadError(f"implausible printk struct sizes in VMCOREINFO "
                                  f"(prb_desc {self.desc_size}, printk_info {self.info_size})")
        fields = (("prb_desc.state_var", self.state_var, 8, self.desc_size),
                  ("prb_data_blk_lpos.begin", self.begin, 8, self.desc_size),
                  ("prb_data_blk_lpos.next", self.next, 8, self.desc_size),
                  ("printk_info.seq", self.seq, 8, self.info_size),
                  ("printk_info.ts_nsec", self.ts_nsec, 8, self.info_size),
                  ("printk_info.text_len", self.text_len, 2, self.info_size),
                  ("printk_info.caller_id", self.caller_id, 4, self.info_size))
        for name, offset, width, size in fields:
            if not 0 <= offset <= size - width:
                raise KernelReadError(f"VMCOREINFO OFFSET({name})={offset} lies outside the "
                                      f"{size}-byte struct")


@dataclass(frozen=True)
class Ring:
    """One printk ring as read from memory: bounds, ids and the raw arrays."""

    count_bits: int
    size_bits: int
    tail_id: int
    head_id: int
    descs: bytes
    infos: bytes
    data: bytes


MAX_COUNT_BITS = 24
MAX_SIZE_BITS = 31  # log_buf_len= is capped at 2 GiB (LOG_BUF_LEN_MAX)


def read_log(kernel: Kernel) -> KernelLog:
    """Read every finalized/committed record of the lockless ring buffer, oldest first."""
    vi = kernel.vmcoreinfo
    if "prb" not in vi.symbols and not kernel.has_symbol("prb"):
        raise KernelReadError("this kernel has no lockless printk ring buffer (prb)")
    layout = RingLayout.from_vmcoreinfo(vi)
    prb = kernel.read_u64(vi.symbols.get("prb") or kernel.symbol("prb"))

    def off(key: str) -> int:
        try:
            return vi.offsets[key]
        except KeyError:
            raise KernelReadError(f"VMCOREINFO lacks OFFSET({key})") from None

    desc_ring = prb + off("printk_ringbuffer.desc_ring")
    data_ring = prb + off("printk_ringbuffer.text_data_ring")
    count_bits = kernel.read_u32(desc_ring + off("prb_desc_ring.count_bits"))
    descs = kernel.read_u64(desc_ring + off("prb_desc_ring.descs"))
    infos = kernel.read_u64(desc_ring + off("prb_desc_ring.infos"))
    head_id = kernel.read_u64(desc_ring + off("prb_desc_ring.head_id"))
    tail_id = kernel.read_u64(desc_ring + off("prb_desc_ring.tail_id"))
    size_bits = kernel.read_u32(data_ring + off("prb_data_ring.size_bits"))
    data = kernel.read_u64(data_ring + off("prb_data_ring.data"))
    check_ring_bits(count_bits, size_bits)
    if not size_bits - 7 <= count_bits <= size_bits - 3:
        # kernel/printk/printk.c sizes the descriptor ring from the text ring (PRB_AVGBITS 5)
        raise KernelReadError(f"inconsistent printk ring sizes (count_bits={count_bits}, "
                              f"size_bits={size_bits}): ring header damaged?")
    count = 1 << count_bits
    ring = Ring(count_bits, size_bits, tail_id, head_id, kernel.read(descs, count * layout.desc_size),
                kernel.read(infos, count * layout.info_size), kernel.read(data, 1 << size_bits))
    return decode_ring(layout, ring)


def check_ring_bits(count_bits: int, size_bits: int) -> None:
    """KernelReadError unless the ring sizes are ones a kernel can have."""
    if not 0 < count_bits <= MAX_COUNT_BITS or not 0 < size_bits <= MAX_SIZE_BITS:
        raise KernelReadError(f"implausible printk ring sizes (count_bits={count_bits}, "
                              f"size_bits={size_bits})")


def decode_ring(layout: RingLayout, ring: Ring) -> KernelLog:
    """Decode the records from tail_id to head_id; each bad record becomes a marker."""
    layout.check()
    check_ring_bits(ring.count_bits, ring.size_bits)
    count = 1 << ring.count_bits
    if (len(ring.descs) < count * layout.desc_size or len(ring.infos) < count * layout.info_size
            or len(ring.data) < 1 << ring.size_bits):
        raise KernelReadError("printk ring arrays are shorter than the ring sizes say")
    records: list[LogRecord] = []
    error = None
    id_ = ring.tail_id & _DESC_ID_MASK
    last = ring.head_id & _DESC_ID_MASK
    for _ in range(count):
        rec = _record(layout, ring, id_)
        if rec is not None:
            records.append(rec)
        if id_ == last:
            break
        id_ = (id_ + 1) & _DESC_ID_MASK
    else:
        error = "descriptor walk did not reach head_id"
    return KernelLog(records, error)


def _record(layout: RingLayout, ring: Ring, id_: int) -> LogRecord | None:
    """The record of descriptor `id_`; None when the slot holds no finished record."""
    idx = id_ & ((1 << ring.count_bits) - 1)
    d = idx * layout.desc_size
    sv = _U64.unpack_from(ring.descs, d + layout.state_var)[0]
    if sv >> _DESC_FLAGS_SHIFT not in (_DESC_COMMITTED, _DESC_FINALIZED) \
            or sv & _DESC_ID_MASK != id_:
        return None  # reserved, reusable or being rewritten: not a record (yet)
    i = idx * layout.info_size
    seq = _U64.unpack_from(ring.infos, i + layout.seq)[0]
    ts = _U64.unpack_from(ring.infos, i + layout.ts_nsec)[0]
    text_len = _U16.unpack_from(ring.infos, i + layout.text_len)[0]
    caller = _U32.unpack_from(ring.infos, i + layout.caller_id)[0]
    begin = _U64.unpack_from(ring.descs, d + layout.begin)[0]
    nxt = _U64.unpack_from(ring.descs, d + layout.next)[0]
    if seq & ((1 << ring.count_bits) - 1) != idx:
        return LogRecord(seq, ts, "", caller, damage=f"sequence number {seq} does not belong "
                         f"in descriptor slot {idx}")
    text = _block_text(ring.data, ring.size_bits, begin, nxt, text_len, id_)
    if isinstance(text, _Damage):
        return LogRecord(seq, ts, "", caller, damage=text.reason)
    return LogRecord(seq, ts, text, caller)


@dataclass(frozen=True)
class _Damage:
    reason: str


def _block_text(data: bytes, size_bits: int, begin: int, nxt: int, text_len: int,
                id_: int) -> str | _Damage:
    """The text of one data block (printk_ringbuffer.c get_data()), or why it is invalid."""
    size = 1 << size_bits
    if begin & 1 and nxt & 1:  # data-less record
        return ""
    bad = _Damage(f"text block position {begin:#x}..{nxt:#x} is invalid")
    if begin & 7 or nxt & 7:
        return bad
    if begin >> size_bits == nxt >> size_bits and begin < nxt:
        start, length = begin & (size - 1), nxt - begin
    elif (begin + size) >> size_bits == nxt >> size_bits:
        start, length = 0, nxt & (size - 1)  # the block wrapped to the start of the ring
    else:
        return bad
    length -= 8  # each block starts with the unsigned long id of its descriptor
    if length < 0 or start + 8 > size:
        return bad
    block_id = _U64.unpack_from(data, start)[0]
    if block_id & _DESC_ID_MASK != id_:
        return _Damage(f"text block at {begin:#x} belongs to record id {block_id:#x}, "
                       f"not {id_:#x}")
    raw = data[start + 8:start + 8 + min(length, text_len)]
    return raw.decode("utf-8", "replace")


def try_read_log(kernel: Kernel) -> KernelLog:
    """read_log that never raises: a failure becomes the log's error marker."""
    try:
        return read_log(kernel)
    except CrashtuiError as exc:
        return KernelLog([], exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug on strange data must not stop the rest
        if os.environ.get("CRASHTUI_DEBUG"):
            raise
        return KernelLog([], f"internal error: {type(exc).__name__}: {exc}")
