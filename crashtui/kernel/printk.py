"""The kernel log: the lockless printk ring buffer (kernel/printk/printk_ringbuffer.h, 5.10+)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

# prb_desc.state_var: the top two bits hold the descriptor state, the rest the record id.
_DESC_FLAGS_SHIFT = 62
_DESC_ID_MASK = (1 << _DESC_FLAGS_SHIFT) - 1
_DESC_COMMITTED = 1
_DESC_FINALIZED = 2


@dataclass(frozen=True)
class LogRecord:
    """One printk record."""

    seq: int
    timestamp_ns: int
    text: str
    caller_id: int
    level: int | None = None

    @property
    def timestamp(self) -> str:
        """The `[    7.628092]` prefix crash's `log` prints."""
        secs, nsec = divmod(self.timestamp_ns, 1_000_000_000)
        return f"[{secs:5d}.{nsec // 1000:06d}]"

    def lines(self) -> list[str]:
        """The record as crash's `log` prints it: continuation lines indented under the text."""
        prefix = self.timestamp + " "
        parts = self.text.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        return [prefix + parts[0]] + [" " * len(prefix) + p for p in parts[1:]]


@dataclass
class KernelLog:
    """All records read, and a note when the walk stopped early."""

    records: list[LogRecord]
    error: str | None = None

    def lines(self) -> list[str]:
        out = [line for rec in self.records for line in rec.lines()]
        if self.error:
            out.append(f"<log incomplete: {self.error}>")
        return out


def _off(kernel: Kernel, key: str) -> int:
    try:
        return kernel.vmcoreinfo.offsets[key]
    except KeyError:
        raise KernelReadError(f"VMCOREINFO lacks OFFSET({key})") from None


def read_log(kernel: Kernel) -> KernelLog:
    """Read every finalized/committed record of the lockless ring buffer, oldest first."""
    vi = kernel.vmcoreinfo
    if "prb" not in vi.symbols and not kernel.has_symbol("prb"):
        raise KernelReadError("this kernel has no lockless printk ring buffer (prb)")
    prb = kernel.read_u64(vi.symbols.get("prb") or kernel.symbol("prb"))
    desc_ring = prb + _off(kernel, "printk_ringbuffer.desc_ring")
    data_ring = prb + _off(kernel, "printk_ringbuffer.text_data_ring")

    count_bits = kernel.read_u32(desc_ring + _off(kernel, "prb_desc_ring.count_bits"))
    descs = kernel.read_u64(desc_ring + _off(kernel, "prb_desc_ring.descs"))
    infos = kernel.read_u64(desc_ring + _off(kernel, "prb_desc_ring.infos"))
    head_id = kernel.read_u64(desc_ring + _off(kernel, "prb_desc_ring.head_id"))
    tail_id = kernel.read_u64(desc_ring + _off(kernel, "prb_desc_ring.tail_id"))
    size_bits = kernel.read_u32(data_ring + _off(kernel, "prb_data_ring.size_bits"))
    data = kernel.read_u64(data_ring + _off(kernel, "prb_data_ring.data"))
    if not 0 < count_bits <= 24 or not 0 < size_bits <= 30:
        raise KernelReadError(f"implausible printk ring sizes (count_bits={count_bits}, "
                              f"size_bits={size_bits})")

    count = 1 << count_bits
    desc_size = vi.sizes.get("prb_desc", 24)
    info_size = vi.sizes.get("printk_info", 88)
    data_size = 1 << size_bits
    desc_buf = kernel.read(descs, count * desc_size)
    info_buf = kernel.read(infos, count * info_size)
    data_buf = kernel.read(data, data_size)

    sv_off = _off(kernel, "prb_desc.state_var")
    lpos_off = _off(kernel, "prb_desc.text_blk_lpos")
    begin_off = lpos_off + _off(kernel, "prb_data_blk_lpos.begin")
    next_off = lpos_off + _off(kernel, "prb_data_blk_lpos.next")
    seq_off = _off(kernel, "printk_info.seq")
    ts_off = _off(kernel, "printk_info.ts_nsec")
    len_off = _off(kernel, "printk_info.text_len")
    caller_off = _off(kernel, "printk_info.caller_id")

    records: list[LogRecord] = []
    error = None
    id_ = tail_id & _DESC_ID_MASK
    last = head_id & _DESC_ID_MASK
    for _ in range(count):
        idx = id_ & (count - 1)
        d = idx * desc_size
        sv = struct.unpack_from("<Q", desc_buf, d + sv_off)[0]
        state = sv >> _DESC_FLAGS_SHIFT
        if state in (_DESC_COMMITTED, _DESC_FINALIZED) and (sv & _DESC_ID_MASK) == id_:
            i = idx * info_size
            seq, ts = struct.unpack_from("<QQ", info_buf, i + seq_off)[0], \
                struct.unpack_from("<Q", info_buf, i + ts_off)[0]
            text_len = struct.unpack_from("<H", info_buf, i + len_off)[0]
            caller = struct.unpack_from("<I", info_buf, i + caller_off)[0]
            begin = struct.unpack_from("<Q", desc_buf, d + begin_off)[0]
            nxt = struct.unpack_from("<Q", desc_buf, d + next_off)[0]
            text = _block_text(data_buf, size_bits, begin, nxt, text_len)
            if text is not None:
                records.append(LogRecord(seq, ts, text, caller))
        if id_ == last:
            break
        id_ = (id_ + 1) & _DESC_ID_MASK
    else:
        error = "descriptor walk did not reach head_id"
    records.sort(key=lambda r: r.seq)
    return KernelLog(records, error)


def _block_text(data: bytes, size_bits: int, begin: int, nxt: int, text_len: int) -> str | None:
    """The text of one data block (printk_ringbuffer.c get_data()), or None if invalid."""
    size = 1 << size_bits
    if begin & 1 and nxt & 1:  # data-less record
        return ""
    if begin >> size_bits == nxt >> size_bits and begin < nxt:
        start, length = begin & (size - 1), nxt - begin
    elif (begin + size) >> size_bits == nxt >> size_bits:
        start, length = 0, nxt & (size - 1)  # the block wrapped to the start of the ring
    else:
        return None
    length -= 8  # each block starts with the unsigned long id of its descriptor
    if length < 0:
        return None
    raw = data[start + 8:start + 8 + min(length, text_len)]
    return raw.decode("utf-8", "replace")


def try_read_log(kernel: Kernel) -> KernelLog:
    """read_log that never raises: a failure becomes the log's error marker."""
    try:
        return read_log(kernel)
    except CrashtuiError as exc:
        return KernelLog([], exc.message)
