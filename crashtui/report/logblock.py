"""Finding the oops/panic block in the kernel log."""

from __future__ import annotations

from collections.abc import Sequence

from crashtui.kernel.printk import LogRecord

# Lines that open an oops/panic report (the earliest one shortly before the panic line wins).
BLOCK_STARTS = (
    "------------[ cut here ]------------", "BUG: ", "Oops: ", "general protection fault",
    "Kernel panic - not syncing", "sysrq: Trigger a crash", "SysRq : Trigger a crash",
    "kernel BUG at", "Kernel BUG at", "Unable to handle kernel", "WARNING: CPU:", "watchdog: ",
    "INFO: task ", "invalid opcode:", "divide error:", "double fault:", "stack segment:",
    "[Hardware Error]:", "NMI watchdog:",
)
BLOCK_ENDS = ("---[ end trace", "---[ end Kernel panic")
LOOKBACK_RECORDS = 40
LOOKBACK_NS = 2_000_000_000
MAX_LINES = 300


def _starts_block(text: str) -> bool:
    return text.startswith(BLOCK_STARTS)


def oops_block(records: Sequence[LogRecord], panic_message: str) -> list[str]:
    """The log lines from the start of the final oops/panic report to its end marker."""
    if not records:
        return []
    anchor = None
    if panic_message:
        anchor = next((i for i, r in enumerate(records) if panic_message in r.text), None)
    if anchor is None:
        anchor = next((i for i in range(len(records) - 1, -1, -1)
                       if _starts_block(records[i].text)), None)
    if anchor is None:
        return []
    start = anchor
    t0 = records[anchor].timestamp_ns
    for i in range(anchor - 1, max(-1, anchor - LOOKBACK_RECORDS), -1):
        if t0 - records[i].timestamp_ns > LOOKBACK_NS:
            break
        if _starts_block(records[i].text):
            start = i
    end = len(records)
    for i in range(anchor, len(records)):
        if records[i].text.startswith(BLOCK_ENDS):
            end = i + 1
            break
    lines = [line for r in records[start:end] for line in r.lines()]
    return lines[:MAX_LINES]
