"""The kernel log's account of the crash: the panic line, the oops/panic report before it
(one block, used by the triage, the report and the app's Log tab) and the events in it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crashtui.kernel.printk import KernelLog

REPORT_WINDOW = 400  # log lines searched before the panic line for the report's headers
HEADER_GAP = 6  # headers this close together belong to one report
ARM64_OOPS_GAP = 24  # ... and up to this far before arm64's "Internal error: Oops"
LINE_MAX = 1024  # a printk record holds at most 1024 bytes: longer lines are cut to this


PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")
EVENT_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sysrq", re.compile(r"sysrq: (?:SysRq : )?Trigger a crash|SysRq : Trigger a crash|"
                         r"SysRq : Crash")),
    ("null-pointer-dereference", re.compile(
        r"BUG: kernel NULL pointer dereference, address: ([0-9a-fx]+)|"
        r"BUG: unable to handle kernel NULL pointer dereference at ([0-9a-fx]+)|"
        # arm64 (arch/arm64/mm/fault.c, die_kernel_fault)
        r"Unable to handle kernel NULL pointer dereference at virtual address ([0-9a-fx]+)")),
    ("paging-request", re.compile(
        r"BUG: unable to handle page fault for address: ([0-9a-fx]+)|"
        r"BUG: unable to handle kernel paging request at ([0-9a-fx]+)|"
        r"Unable to handle kernel (?:paging request|write to read-only memory|"
        r"execute from non-executable memory|access to user memory outside uaccess routines) "
        r"at virtual "
        r"address ([0-9a-fx]+)")),
    ("instruction-fetch", re.compile(r"kernel tried to execute NX-protected page|"
                                     r"unable to execute userspace code")),
    ("stack-overflow", re.compile(r"BUG: (?:\w+ )?stack guard page was hit at ([0-9a-fx]+)|"
                                  r"kernel stack overflow|corrupted stack end detected|"
                                  r"BUG: (?>.*?stack)(?>.*?overflow)")),  # atomic: linear
    ("general-protection-fault", re.compile(
        r"general protection fault(?:, probably for non-canonical address ([0-9a-fx]+))?")),
    ("bug", re.compile(r"[Kk]ernel BUG at ([^\s:]+):(\d+)!?")),
    ("warn", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ([^\s:]+):(\d+) (\S+)|"
                        r"WARNING: at ([^\s:]+):(\d+) (\S+)")),
    ("soft-lockup", re.compile(r"BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]")),
    ("hard-lockup", re.compile(r"[Ww]atchdog detected hard LOCKUP on cpu (\d+)")),
    ("hung-task", re.compile(r"INFO: task (.+):(\d+) blocked for more than (\d+) seconds")),
    ("rcu-stall", re.compile(r"rcu: INFO: (\w+) (?:self-)?detected stalls? on CPU|"
                             r"INFO: rcu_\w+ (?:self-)?detected stalls? on CPU")),
    ("oom-invoked", re.compile(r"^\s*(\S.*) invoked oom-killer: ")),  # one start: linear
    ("out-of-memory", re.compile(r"Out of memory|invoked oom-killer|System is deadlocked on "
                                 r"memory")),
    ("double-fault", re.compile(r"double fault: [0-9a-f]+|Oops: double fault")),
    ("divide-error", re.compile(r"divide error: [0-9a-f]+|Oops: divide error")),
    ("invalid-opcode", re.compile(r"invalid opcode: [0-9a-f]+|Oops: invalid opcode")),
    ("stack-segment", re.compile(r"stack segment: [0-9a-f]+|Oops: stack segment")),
    ("machine-check", re.compile(r"Machine check|\[Hardware Error\]|mce: ")),
)
_PF_RE = re.compile(r"#PF: error_code\((0x[0-9a-f]+)\)")
_PF_ACCESS_RE = re.compile(r"#PF: (supervisor|user) (read|write|instruction fetch) access in "
                           r"(kernel|user) mode")
# arm64: mem_abort_decode's "ESR = 0x..." and die()'s "Internal error: Oops[ - BUG]: <esr>"
_ESR_RE = re.compile(r"^\s*ESR = 0x([0-9a-f]{1,16})\b|Internal error: [^:]{1,40}: ([0-9a-f]{8,16}) ")
_END_RE = re.compile(r"---\[ end ")
_ARM64_OOPS = re.compile(r"Internal error: Oops")
_CUT_HERE = "------------[ cut here ]------------"
_TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\] ?|^\s+")
_CR2_RE = re.compile(r"\bCR2: ([0-9a-f]{8,16})\b")
_ANY_HEADER = re.compile(r"BUG: |[Kk]ernel BUG at|general protection fault|WARNING: |Oops: |"
                         r"Unable to handle kernel|Internal error: Oops|"
                         r"INFO: task .* blocked|watchdog: |Watchdog detected|Out of memory|"
                         r"invoked oom-killer|detected stalls? on CPU|"
                         r"double fault|divide error|invalid opcode|stack segment|"
                         r"Machine check|\[Hardware Error\]|Trigger a crash|SysRq : Crash")


@dataclass
class LogFacts:
    """The panic line and the report before it, with the events and fault facts it names."""

    panic_message: str = ""
    panic_index: int | None = None
    start: int = 0  # the report's first line
    end: int = 0  # one past its `---[ end` marker (or its last line)
    events: list[tuple[str, re.Match[str], str]] = field(default_factory=list)
    error_code: int | None = None
    cr2: int | None = None
    esr: int | None = None  # arm64: the exception syndrome the oops printed
    block: list[str] = field(default_factory=list)


def log_texts(log: KernelLog) -> list[str]:
    """The log's text lines without timestamps, one for each line of `log.lines()` (a damaged
    record is an empty line), so indices are the same in both."""
    out: list[str] = []
    for rec in log.records:
        if rec.damage is not None:
            out.append("")
            continue
        parts = rec.text.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        out += parts
    return out


def read_log(lines: Sequence[str], panic_message: str = "") -> LogFacts:
    """The panic line, the report block before it, and the facts in that block (the report
    ends at the last line holding `panic_message` if given, else at the last panic line)."""
    facts = LogFacts()
    # Bounded input for the patterns below: a hostile dump can hold a 64 KiB record.
    lines = [line[:LINE_MAX] for line in lines]
    for i in range(len(lines) - 1, -1, -1):
        m = PANIC_RE.search(lines[i])
        if m and not _END_RE.search(lines[i], 0, m.start()):  # not panic's closing marker
            facts.panic_message = lines[i][m.start():].strip()
            facts.panic_index = i
            break
    end = facts.panic_index if facts.panic_index is not None else len(lines) - 1
    anchor = panic_message[:LINE_MAX].strip()
    if anchor:
        end = next((i for i in range(len(lines) - 1, -1, -1) if anchor in lines[i]), end)
    # The report: the last group of headers before the panic (headers within a few lines of
    # each other belong together: "BUG: ..." then "Oops: ...", "kernel BUG at" then
    # "invalid opcode").
    heads = [i for i in range(max(0, end - REPORT_WINDOW), end + 1)
             if _ANY_HEADER.search(lines[i]) and not PANIC_RE.search(lines[i])]
    start = end
    if heads:
        start = heads[-1]
        for i in reversed(heads[:-1]):
            # arm64's "Internal error: Oops" follows its fault line after the ESR and
            # page-table dump (arch/arm64/mm/fault.c: mem_abort_decode, show_pte)
            gap = ARM64_OOPS_GAP if _ARM64_OOPS.search(lines[start]) else HEADER_GAP
            if i < start - gap:
                break
            start = i
    if start > 0 and _CUT_HERE in lines[start - 1]:
        start -= 1
    facts.start = start
    facts.end = next((i + 1 for i in range(max(0, end), len(lines)) if _END_RE.search(lines[i])),
                     len(lines))  # kdump often takes over before panic() prints its end
    facts.block = list(lines[start:end + 1]) if lines else []
    for line in facts.block:
        for kind, rx in EVENT_RES:
            m = rx.search(line)
            if m:
                facts.events.append((kind, m, line.strip()))
        m2 = _PF_RE.search(line)
        if m2 and facts.error_code is None:
            facts.error_code = int(m2.group(1), 16)
        m4 = _ESR_RE.search(line)
        if m4 and facts.esr is None:
            facts.esr = int(m4.group(1) or m4.group(2), 16)
    # The last CR2 of the block is the fault's (the first can be a nested fault while
    # the oops tried to print the code bytes).
    for line in reversed(lines[start:min(len(lines), end + 60)]):
        m3 = _CR2_RE.search(line)
        if m3:
            facts.cr2 = int(m3.group(1), 16)
            break
    return facts


def report_span(lines: Sequence[str]) -> tuple[int, int] | None:
    """[start, end) of the oops/panic report in the log's lines (text or as `log` prints
    them): from its first header to its `---[ end` marker; None if the log has no report."""
    facts = read_log([_TIMESTAMP.sub("", line, count=1) for line in lines])
    if facts.panic_index is None and not facts.events:
        return None
    return facts.start, facts.end


def first_event(facts: LogFacts, kind: str) -> tuple[re.Match[str], str] | None:
    for k, m, line in facts.events:
        if k == kind:
            return m, line
    return None


def hex_or_none(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None

