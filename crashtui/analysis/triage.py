"""Triage: what kind of crash this is, which code is to blame, and a stable signature.

The first walk an engineer makes by hand (read the panic, run `bt`, `sym` the RIP, open the
source), done from the kernel log and the panic CPU's backtrace:

- **kind**: from the log event that led to the panic (the nearest oops/BUG/WARNING/lockup/
  hung-task/OOM header before the `Kernel panic` line) and the exception frame's vector
  (asm_exc_page_fault, asm_exc_invalid_op, ...). Page faults are decoded from the kernel's
  `#PF: error_code(0x....)` line (read/write, kernel/user, not-present/protection,
  instruction fetch); `BUG()` sites from `__bug_table` (file:line, WARN flag).
- **culprit**: the first frame outside the panic/exception/watchdog machinery; a fault's
  culprit is the code it interrupted (exception RIP), a hung task's the first frame of the
  blocked task outside the scheduler's waits. Its module, the module's taint letters
  (out-of-tree `O`, unsigned `E`, proprietary `P`) and its source file:line.
- **origin of the bad value**: the instruction at RIP decoded with capstone; the memory
  operand's base/index registers and values from the exception frame say which register
  made the faulting address. When the address is a constant in the instruction itself (the
  sample test module's `mov 0x1,%esi`: `int *p = (int *)1` folded into an absolute
  address), no register held it: the triage says so instead of naming the destination
  register (%esi is where the load was going, not where the pointer was) — `bad_register`
  stays None and `origin.absolute` is True. This deliberately departs from issue #10's
  "names the register holding the bad pointer" for that dump: there is no such register.
- **signature**: sha1 of kind, culprit module and the base names (no `.cold`/`.isra`
  suffixes, no offsets) of up to three meaningful frames from the culprit down — the same
  crash on another kernel build gives the same signature.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crashtui.analysis.arm64origin import Arm64Fault
from crashtui.analysis.culprit import Culprit, Located, culprit_at, locate
from crashtui.analysis.hangverdict import deadlock_signature, hang_verdict
from crashtui.analysis.logfacts import (
    LogFacts,
    first_event,
    hex_or_none,
    log_texts,
    read_log,
)
from crashtui.analysis.machinery import GENERIC, base_name, is_machinery, is_wait
from crashtui.analysis.recursion import deepest_recursion
from crashtui.analysis.x86origin import BadRegister, Origin, PageFault, decode_origin
from crashtui.errors import CrashtuiError
from crashtui.kernel.bugtable import BugSite, bug_site

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, Frame
    from crashtui.analysis.oom import OomReport
    from crashtui.analysis.session import Session

__all__ = ["BadRegister", "BugSite", "Culprit", "Origin", "PageFault", "Triage",
           "build_triage", "classify_log", "decode_origin", "triage_to_json"]

SIGNATURE_FRAMES = 3
PAGE_SIZE = 4096
# Kinds whose culprit is a blocked task, not the panicking CPU's code.
HANG_KINDS = ("hung-task", "deadlock", "system-hung")

# Kinds: a stable id, and how people say it.
KINDS = {
    "sysrq": "SysRq-triggered crash",
    "null-pointer-dereference": "NULL pointer dereference",
    "paging-request": "paging request at a bad address",
    "general-protection-fault": "general protection fault",
    "bug": "BUG()/BUG_ON()",
    "warn-panic": "WARN with panic_on_warn",
    "soft-lockup": "soft lockup",
    "hard-lockup": "hard lockup",
    "hung-task": "hung task",
    "deadlock": "deadlock (lock cycle)",
    "system-hung": "system hung (tasks blocked)",
    "rcu-stall": "RCU stall",
    "out-of-memory": "out of memory panic",
    "stack-overflow": "kernel stack overflow",
    "double-fault": "double fault",
    "divide-error": "divide error",
    "invalid-opcode": "invalid opcode",
    "machine-check": "machine check",
    "stack-segment": "stack segment fault",
    "panic": "explicit panic()",
    "unknown": "unknown",
}

# Exception entry points (the frame that carries the pt_regs) → vector.
VECTORS = {
    "asm_exc_page_fault": "page fault", "asm_exc_general_protection": "general protection",
    "asm_exc_invalid_op": "invalid opcode", "asm_exc_divide_error": "divide error",
    "asm_exc_double_fault": "double fault", "asm_exc_machine_check": "machine check",
    "asm_exc_int3": "breakpoint", "asm_exc_stack_segment": "stack segment",
    "asm_exc_nmi": "NMI", "nmi": "NMI", "asm_exc_control_protection": "control protection",
    "asm_exc_alignment_check": "alignment check", "asm_exc_debug": "debug",
    "asm_exc_bounds": "bounds", "asm_exc_overflow": "overflow",
    "asm_exc_coprocessor_error": "x87 error", "asm_exc_simd_coprocessor_error": "SIMD error",
    "asm_exc_segment_not_present": "segment not present",
    "asm_exc_invalid_tss": "invalid TSS", "asm_exc_spurious_interrupt_bug": "interrupt",
}
# arm64: one vector (el1h_64_sync) for every synchronous exception; the handler that ran on
# it (arch/arm64/kernel/entry-common.c, el1h_64_sync_handler's switch on ESR_ELx_EC) says
# which, and it is on the stack between the exception frame and die().
ARM64_HANDLERS = {
    "el1_abort": "page fault", "do_mem_abort": "page fault", "el1_pc": "alignment check",
    "el1_undef": "invalid opcode", "do_el1_undef": "invalid opcode", "el1_bti": "control protection",
    "el1_dbg": "breakpoint", "el1_brk64": "breakpoint", "do_el1_brk64": "breakpoint", "bug_brk_handler": "breakpoint",
    "el1_fpac": "control protection",
}
MEMORY_VECTORS = frozenset(("page fault", "general protection", "stack segment",
                            "alignment check"))
FAULT_VECTORS = frozenset(("page fault", "general protection", "invalid opcode", "divide error",
                           "double fault", "machine check", "stack segment", "breakpoint",
                           "control protection", "alignment check", "bounds", "overflow",
                           "x87 error", "SIMD error", "segment not present", "invalid TSS"))


@dataclass
class Triage:
    """The whole first diagnosis of one crash."""

    kind: str
    title: str
    summary: str
    culprit: Culprit | None = None
    bad_register: BadRegister | None = None
    origin: Origin | None = None
    page_fault: PageFault | Arm64Fault | None = None  # arm64: the decoded ESR
    fault_address: int | None = None
    bug: BugSite | None = None
    vector: str | None = None  # the exception at the crash site ("page fault", ...)
    panic_message: str = ""
    event: str = ""  # the log line that tells what happened
    evidence: list[str] = field(default_factory=list)  # the log lines the kind came from
    signature: str = ""
    signature_frames: list[str] = field(default_factory=list)
    pid: int | None = None
    command: str | None = None
    cpu: int | None = None
    notes: list[str] = field(default_factory=list)  # what could not be determined, and why
    # Hangs: how many tasks are blocked, the one the culprit is in, who waits on whom.
    blocked: int | None = None
    hung_pid: int | None = None
    hung_command: str | None = None
    hung_since: int | None = None  # ns since the hung task last ran
    waits: list[str] = field(default_factory=list)  # "PID 1 (a) waits for mutex X held by ..."
    cycle: list[str] = field(default_factory=list)  # the lock cycle of a deadlock, in order
    oom: OomReport | None = None  # an out-of-memory panic's trigger, consumers and totals

    def lines(self) -> list[str]:
        """The triage as plain text lines (the `triage` command and the app's pane)."""
        out = [f"KIND: {self.title} ({self.kind})", f"SUMMARY: {self.summary}"]
        c = self.culprit
        if c is not None:
            where = c.symbol + (f" [{c.module}]" if c.module else "")
            out.append(f"CULPRIT: {where}" + (f" at {c.location}" if c.location else ""))
            for fn, file, line in c.inlined:
                out.append(f"INLINED: {fn}" + (f" at {file}:{line}" if file else ""))
            if c.module:
                taint = c.module_taints or "none"
                out.append(f"MODULE: {c.module} (taints: {taint}"
                           + (", out-of-tree" if c.out_of_tree else "") + ")")
        if self.page_fault is not None:
            out.append(f"PAGE FAULT: {self.page_fault.text()}")
        if self.fault_address is not None:
            out.append(f"ADDRESS: {self.fault_address:#x}")
        if self.bug is not None:
            b = self.bug
            out.append(f"{'WARN' if b.warning else 'BUG'} SITE: "
                       + (f"{b.file}:{b.line}" if b.file else f"{b.address:#x}"))
        o = self.origin
        if o is not None:
            out.append(f"INSTRUCTION: {o.address:x}: {o.instruction}")
            if o.explanation:
                out.append(f"ORIGIN: {o.explanation}")
        if self.bad_register is not None:
            r = self.bad_register
            out.append(f"BAD REGISTER: {r.name.upper()} = {r.value:#x}")
        if self.hung_pid is not None:
            out.append(f"BLOCKED TASK: PID {self.hung_pid} ({self.hung_command})"
                       + (f", not run for {self.hung_since / 1e9:.1f} s"
                          if self.hung_since is not None else ""))
        out += [f"CYCLE: {w}" for w in self.cycle]
        out += [f"WAITS: {w}" for w in self.waits if w not in self.cycle]
        if self.blocked:
            out.append(f"BLOCKED TASKS: {self.blocked} (see `ps -m`, `foreach UN bt`, `hang`)")
        out += [f"OOM: {line}" for line in self.oom.lines()] if self.oom else []
        if self.event:
            out.append(f"EVENT: {self.event}")
        if self.panic_message:
            out.append(f"PANIC: {self.panic_message}")
        out.append(f"SIGNATURE: {self.signature}  ({' / '.join(self.signature_frames)})")
        out += [f"NOTE: {n}" for n in self.notes]
        return out



# -- building ------------------------------------------------------------------------------------

def _vector(frame: Frame) -> str | None:
    if frame.exception is None or frame.exception.user_mode:
        return None
    name = base_name(frame.function or "")
    if name in VECTORS:
        return VECTORS[name]
    if name.startswith(("asm_sysvec_", "asm_common_interrupt", "common_interrupt")):
        return "interrupt"
    return frame.exception.kind or "exception"


def _arm64_vector(bt: Backtrace, fault_frame: Frame) -> str | None:
    """The exception an arm64 el1h_64_sync frame took, from the handler frames above it."""
    for fr in bt.frames:
        if fr is fault_frame:
            break
        name = base_name(fr.function or "")
        if name in ARM64_HANDLERS:
            return ARM64_HANDLERS[name]
    return None


def _signature(kind: str, culprit: Culprit | None, rest: list[Frame]) -> tuple[str, list[str]]:
    names: list[str] = []
    if culprit is not None and culprit.function:
        names.append(base_name(culprit.function))
    for fr in rest:
        if len(names) >= SIGNATURE_FRAMES:
            break
        if fr.function is None or is_machinery(fr.function) or is_wait(fr.function):
            continue
        name = base_name(fr.function)
        if name in GENERIC or (names and names[-1] == name):
            continue
        names.append(name)
    module = culprit.module if culprit and culprit.module else "vmlinux"
    key = "|".join([kind, module, *names])
    return hashlib.sha1(key.encode()).hexdigest()[:16], names


def _log_lines(session: Session) -> list[str]:
    try:
        return log_texts(session.log)
    except CrashtuiError:
        return []


def _cpu_backtrace(session: Session, cpu: int) -> Backtrace | None:
    """CPU `cpu`'s backtrace (the panic CPU's without unwinding the others)."""
    panic = session.panic_backtrace
    if panic is not None and panic.cpu == cpu:
        return panic
    return next((bt for bt in session.backtraces if bt.cpu == cpu), None)


def _stuck_cpu(kind: str, facts: LogFacts) -> int | None:
    """The CPU a lockup report names (a buddy or remote detector reports another CPU's)."""
    m = first_event(facts, kind)
    if m is None:
        return None
    try:
        return int(m[0].group(1))
    except (IndexError, TypeError, ValueError):
        return None


def build_triage(session: Session) -> Triage:
    """Diagnose the crash: kind, summary, culprit, bad register, signature (use
    Session.triage: built once)."""
    notes: list[str] = []
    facts = read_log(_log_lines(session))
    panic_message = facts.panic_message or session.summary.panic_message
    try:
        bt = session.panic_backtrace
    except CrashtuiError as exc:
        bt = None
        notes.append(f"no panic backtrace: {exc.message}")
    at = locate(bt) if bt is not None else None
    fault_frame = at.frame if at is not None and at.exception else None
    vector = _vector(fault_frame) if fault_frame is not None else None
    arm64 = session.kernel.arch.name == "arm64"
    if arm64 and fault_frame is not None and bt is not None:
        vector = _arm64_vector(bt, fault_frame) or vector
    kind, event, evidence, fault_address = _classify(facts, vector, panic_message)

    t = Triage(kind, KINDS.get(kind, kind), "", panic_message=panic_message, event=event,
               evidence=evidence, vector=vector, notes=notes, fault_address=fault_address)
    culprit_bt, rest = bt, at.rest if at is not None else []
    if bt is not None:
        t.pid, t.command, t.cpu = bt.pid, bt.command, bt.cpu
    if kind in ("soft-lockup", "hard-lockup", "rcu-stall"):
        cpu = _stuck_cpu(kind, facts)
        if cpu is not None and bt is not None and cpu != bt.cpu:
            try:
                other = _cpu_backtrace(session, cpu)
            except CrashtuiError as exc:
                other = None
                notes.append(f"CPU {cpu}'s backtrace: {exc.message}")
            found = locate(other) if other is not None else None
            if other is not None and found is not None:
                culprit_bt, at, rest = other, found, found.rest
    if kind == "stack-overflow" and culprit_bt is not None:
        # the fault is wherever the stack ran out (memset, a prologue): blame the recursion
        rec = deepest_recursion(culprit_bt)
        blamed = None if at is None else (at.frame.exception.function if at.exception and
                                          at.frame.exception else at.frame.function)
        if rec is not None and base_name(blamed or "") != rec.function:
            frames = [f for f in culprit_bt.frames if not f.inline]
            at = Located(rec.frame, False, frames[frames.index(rec.frame) + 1:])
            rest = at.rest
    culprit = culprit_at(session, culprit_bt, at, "first frame outside the panic path") \
        if culprit_bt is not None and at is not None else None
    if kind in HANG_KINDS or kind == "sysrq":
        culprit, rest = hang_verdict(session, t, facts, culprit, rest)
    if kind == "out-of-memory":
        from crashtui.analysis.oom import oom_report

        t.oom = oom_report(session, _log_lines(session))
        t.notes += t.oom.errors
    t.culprit = culprit
    if t.culprit is None:
        notes.append("no frame outside the panic machinery was found")

    if arm64 and facts.esr is not None:
        if Arm64Fault(facts.esr, fault_address).is_abort:  # (a BRK's ESR is no fault)
            t.page_fault = Arm64Fault(facts.esr, fault_address)
    elif vector == "page fault" or facts.error_code is not None:
        if facts.error_code is not None:
            t.page_fault = PageFault(facts.error_code, fault_address)
        elif vector == "page fault" and not arm64:
            notes.append("no #PF error_code line in the log: the access type is unknown")
    if fault_frame is not None and fault_frame.exception is not None and \
            t.kind not in HANG_KINDS:
        _fault_facts(session, t, fault_frame, vector)
    if t.page_fault is not None and t.page_fault.access == "instruction fetch" and \
            fault_frame is not None and culprit is not None and culprit.function is None:
        notes.append("the CPU jumped to a bad address: the caller is the frame after it")
    t.signature, t.signature_frames = _signature(t.kind, t.culprit, rest)
    if t.kind == "deadlock":
        t.signature, t.signature_frames = deadlock_signature(session.hang)
    t.summary = _summary(t)
    return t


def _fault_facts(session: Session, t: Triage, fault_frame: Frame, vector: str | None) -> None:
    """The faulting instruction, the register that made the address, the BUG site."""
    ef = fault_frame.exception
    assert ef is not None
    arch = session.kernel.arch.name
    if arch not in ("x86_64", "arm64"):
        return  # no instruction decoder for it
    t.origin = _origin(session, ef.rip, ef.registers, t.fault_address, arch)
    if t.origin is not None and vector not in MEMORY_VECTORS:
        # not a memory fault: the operands did not cause it
        t.origin = dataclasses.replace(t.origin, register=None, explanation="")
    if t.origin is not None:
        t.bad_register = t.origin.register
        ea = t.origin.effective_address
        if vector == "page fault" and t.fault_address is None and ea is not None:
            t.fault_address = ea  # no oops line or CR2: the operand's address
            if t.kind == "paging-request" and ea < PAGE_SIZE:
                t.kind, t.title = "null-pointer-dereference", KINDS["null-pointer-dereference"]
    else:
        t.notes.append(f"the instruction at {ef.rip:#x} could not be read or decoded")
    if vector == "invalid opcode" or (arch == "arm64" and vector == "breakpoint"):
        # x86 BUG() is ud2, arm64's a BRK: both have a __bug_table entry
        t.bug = _bug_site(session, ef.rip)
        retitle = ("invalid-opcode",) if arch == "x86_64" else ("bug", "panic", "unknown")
        if t.bug is not None and t.kind in retitle:
            t.kind = "warn-panic" if t.bug.warning else "bug"
            t.title = KINDS[t.kind]


def _bug_site(session: Session, address: int) -> BugSite | None:
    try:
        mod = session.modules.module_at(address)
    except CrashtuiError:
        mod = None
    return bug_site(session.kernel, address, mod.address if mod is not None else None)


def _origin(session: Session, rip: int, registers: dict[str, int],
            fault_address: int | None, arch: str = "x86_64") -> Origin | None:
    k = session.kernel
    code: bytes | None = None
    try:
        code = k.read(rip, 16)
    except CrashtuiError:
        vm = k.vmlinux
        if vm is not None:
            try:
                code = vm.read_at(rip - k.kaslr_offset, 16)
            except CrashtuiError:
                code = None
    if code is None:
        return None
    if arch == "arm64":
        from crashtui.analysis import arm64origin

        try:
            return arm64origin.decode_origin(code, rip, registers, fault_address)
        except (ImportError, StopIteration, ValueError):
            return None
    try:
        return decode_origin(code, rip, registers, fault_address)
    except (ImportError, StopIteration, ValueError):
        return None


def classify_log(lines: list[str], vector: str | None = None
                 ) -> tuple[str, str, int | None, int | None]:
    """(kind, the deciding log line, fault address, #PF error code) from log lines alone
    (and the exception vector, if known)."""
    facts = read_log(lines)
    kind, event, _evidence, address = _classify(facts, vector, facts.panic_message)
    return kind, event, address, facts.error_code


def _classify(facts: LogFacts, vector: str | None, panic_message: str
              ) -> tuple[str, str, list[str], int | None]:
    """(kind, the deciding log line, evidence lines, fault address)."""
    ev = {k: (m, line) for k, m, line in reversed(facts.events)}  # first occurrence wins
    evidence = [line for _, _, line in facts.events]
    panic = panic_message.lower()

    def addr_of(kind: str) -> int | None:
        m = ev[kind][0]
        return next((hex_or_none(g) for g in m.groups() if g), None)

    cr2 = facts.cr2
    if "sysrq" in ev:  # the report starts at the SysRq trigger: what follows is its doing
        return "sysrq", ev["sysrq"][1], evidence, None
    if "stack-overflow" in ev:  # the oops line's address is %p, hashed: CR2 is the real one
        return ("stack-overflow", ev["stack-overflow"][1], evidence,
                cr2 if cr2 is not None else addr_of("stack-overflow"))
    if "soft-lockup" in ev:
        return "soft-lockup", ev["soft-lockup"][1], evidence, None
    if "hard-lockup" in ev or "hard lockup" in panic:
        line = ev["hard-lockup"][1] if "hard-lockup" in ev else panic_message
        return "hard-lockup", line, evidence, None
    if "rcu-stall" in ev or "rcu stall" in panic:
        line = ev["rcu-stall"][1] if "rcu-stall" in ev else panic_message
        return "rcu-stall", line, evidence, None
    if "hung-task" in ev or "hung_task" in panic:
        line = ev["hung-task"][1] if "hung-task" in ev else panic_message
        return "hung-task", line, evidence, None
    if "out of memory" in panic or ("out-of-memory" in ev and "oom" in panic):
        line = ev["oom-invoked"][1] if "oom-invoked" in ev else panic_message
        return "out-of-memory", line, evidence, None
    if "null-pointer-dereference" in ev:
        return ("null-pointer-dereference", ev["null-pointer-dereference"][1], evidence,
                addr_of("null-pointer-dereference") if addr_of("null-pointer-dereference")
                is not None else cr2)
    if "paging-request" in ev:
        a = addr_of("paging-request")
        kind = "null-pointer-dereference" if a is not None and a < PAGE_SIZE else "paging-request"
        return kind, ev["paging-request"][1], evidence, a if a is not None else cr2
    if "bug" in ev:
        return "bug", ev["bug"][1], evidence, None
    if "warn" in ev and "panic_on_warn" in panic:
        return "warn-panic", ev["warn"][1], evidence, None
    if "general-protection-fault" in ev:
        return ("general-protection-fault", ev["general-protection-fault"][1], evidence,
                addr_of("general-protection-fault"))
    if "double-fault" in ev or vector == "double fault":
        line = ev["double-fault"][1] if "double-fault" in ev else ""
        return "double-fault", line, evidence, None
    for kind in ("divide-error", "invalid-opcode", "stack-segment", "machine-check"):
        if kind in ev:
            return kind, ev[kind][1], evidence, None
    by_vector = {"page fault": "paging-request", "general protection": "general-protection-fault",
                 "invalid opcode": "invalid-opcode", "divide error": "divide-error",
                 "machine check": "machine-check", "stack segment": "stack-segment"}
    if vector in by_vector:
        kind = by_vector[vector]
        if kind == "paging-request" and cr2 is not None and cr2 < PAGE_SIZE:
            kind = "null-pointer-dereference"
        return kind, "", evidence, cr2 if vector == "page fault" else None
    if "machine check" in panic:
        return "machine-check", panic_message, evidence, None
    if panic_message:
        return "panic", panic_message, evidence, None
    return "unknown", "", evidence, None


def _summary(t: Triage) -> str:
    """One sentence saying what happened."""
    c = t.culprit
    where = ""
    if c is not None:
        where = c.symbol + (f" [{c.module}]" if c.module else "")
        if c.location:
            where += f" ({c.location})"
    who = f"PID {t.pid} ({t.command}) on CPU {t.cpu}" if t.pid is not None else "the panic CPU"
    waits = next((w for w in t.waits if t.hung_pid is not None
                  and w.startswith(f"PID {t.hung_pid} (")), None)
    wait = "" if waits is None else "; it " + waits.split(" ", 3)[3].split(", in ")[0]
    if t.kind == "deadlock" and t.cycle:
        chain = "; ".join(t.cycle)
        return (f"Deadlock: {len(t.cycle)} tasks wait on each other in a lock cycle: {chain}"
                + (f"; the hung-task watchdog, {who}, panicked." if "hung" in t.event or
                   "hung_task" in t.panic_message else f"; {who} panicked."))
    if t.kind == "system-hung":
        return (f"System hung: the panic was forced ({t.title if not t.event else t.event}) "
                f"while {t.blocked} task(s) were blocked; the longest, PID {t.hung_pid} "
                f"({t.hung_command}), has not run for "
                f"{(t.hung_since or 0) / 1e9:.0f} s" + (f", in {where}" if where else "")
                + wait + ".")
    if t.kind == "hung-task":
        m = re.search(r"INFO: task (.+):(\d+) blocked for more than (\d+) seconds", t.event)
        if m:
            return (f"Hung task: {m.group(1)} (PID {m.group(2)}) was blocked for more than "
                    f"{m.group(3)} seconds" + (f" in {where}" if where else "") + wait
                    + f"; the hung-task watchdog, {who}, panicked.")
    if t.kind == "out-of-memory":
        o = t.oom
        m = re.search(r"(\S.*) invoked oom-killer", t.event)
        trig = f"{m.group(1)} invoked the OOM killer" if m else "the OOM killer ran"
        if o is not None and o.order is not None:
            trig += f" for an order-{o.order} allocation"
        text = f"Out of memory: {trig}" + (f" in {where}" if where else "") + \
            " and panic_on_oom made the kernel panic"
        if o is not None and o.consumers:
            big = o.consumers[0]
            text += (f"; the largest task is PID {big.pid} ({big.comm}), "
                     f"{big.rss_kb // 1024} MiB resident ({big.percent:g}% of RAM)")
        if o is not None and o.slab_heavy and o.slab_kb is not None:
            text += f"; slab holds {o.slab_kb // 1024} MiB (a kernel leak?)"
        return text + f"; {who}."
    if t.kind in ("hard-lockup", "rcu-stall") and where:
        ran = f" (PID {c.pid}, {c.command})" if c is not None and c.pid is not None else ""
        return f"{t.title[0].upper()}{t.title[1:]}: stuck in {where}{ran}; {who} panicked."
    if t.kind == "soft-lockup":
        m = re.search(r"CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]", t.event)
        if m:
            return (f"Soft lockup: CPU {m.group(1)} ran {m.group(3)} (PID {m.group(4)}) for "
                    f"{m.group(2)}s without scheduling" + (f", in {where}" if where else "")
                    + (f"; module {c.module} is out-of-tree (taints {c.module_taints})"
                       if c is not None and c.out_of_tree else "") + ".")
    if t.kind == "sysrq":
        return (f"The crash was triggered on purpose with SysRq-c (echo c > "
                f"/proc/sysrq-trigger) by {who}: {where or 'the SysRq handler'} called panic().")
    parts = [f"{t.title[0].upper()}{t.title[1:]}"]
    if where:
        parts.append(f" in {where}")
    if t.page_fault is not None:
        parts.append(f": {t.page_fault.access} of address "
                     + (f"{t.fault_address:#x}" if t.fault_address is not None else "?")
                     + f" ({t.page_fault.cause}, {t.page_fault.mode} mode)")
    elif t.fault_address is not None:
        parts.append(f" at address {t.fault_address:#x}")
    if t.bug is not None and t.bug.file:
        parts.append(f"; {'WARN' if t.bug.warning else 'BUG'} at {t.bug.file}:{t.bug.line}")
    if t.origin is not None and t.origin.explanation and (t.origin.absolute or t.origin.register):
        parts.append(f"; {t.origin.explanation}")
    if t.culprit is not None and t.culprit.out_of_tree:
        parts.append(f"; module {t.culprit.module} is out-of-tree (taints "
                     f"{t.culprit.module_taints})")
    parts.append(f"; {who}.")
    return "".join(parts)


def triage_to_json(t: Triage) -> dict[str, Any]:
    """The `"triage"` object of the --json document (docs/json.md)."""

    def hx(v: int | None) -> str | None:
        return None if v is None else f"{v:#x}"

    c = t.culprit
    o = t.origin
    pf = t.page_fault
    return {
        "kind": t.kind,
        "title": t.title,
        "summary": t.summary,
        "culprit": None if c is None else {
            "function": c.function, "offset": c.offset, "address": hx(c.address),
            "module": c.module, "file": c.file, "line": c.line,
            "module_taints": c.module_taints, "out_of_tree": c.out_of_tree,
            "frame": c.frame, "reason": c.reason, "task": hx(c.task), "pid": c.pid,
            "command": c.command, "exception": c.exception,
            "inlined": [{"function": f, "file": fl, "line": ln} for f, fl, ln in c.inlined]},
        "bad_register": None if t.bad_register is None else {
            "name": t.bad_register.name, "value": hx(t.bad_register.value)},
        "fault_address": hx(t.fault_address),
        "page_fault": None if pf is None else {
            "error_code": hx(pf.error_code), "access": pf.access, "mode": pf.mode,
            "cause": pf.cause},
        "origin": None if o is None else {
            "address": hx(o.address), "instruction": o.instruction, "operand": o.operand,
            "effective_address": hx(o.effective_address), "absolute": o.absolute,
            "access": o.access, "explanation": o.explanation},
        "bug": None if t.bug is None else {
            "address": hx(t.bug.address), "file": t.bug.file, "line": t.bug.line,
            "warning": t.bug.warning},
        "vector": t.vector,
        "event": t.event or None,
        "panic_message": t.panic_message or None,
        "signature": t.signature,
        "signature_frames": list(t.signature_frames),
        "pid": t.pid, "command": t.command, "cpu": t.cpu,
        "notes": list(t.notes),
        "blocked": t.blocked, "hung_pid": t.hung_pid, "hung_command": t.hung_command,
        "hung_since_ns": t.hung_since, "waits": list(t.waits), "cycle": list(t.cycle),
        "oom": None if t.oom is None else {
            "trigger": t.oom.trigger, "trigger_pid": t.oom.trigger_pid,
            "gfp_mask": t.oom.gfp_mask, "order": t.oom.order,
            "consumers": [{"pid": c.pid, "comm": c.comm, "rss_kb": c.rss_kb,
                           "percent": c.percent} for c in t.oom.consumers],
            "total_kb": t.oom.total_kb, "free_kb": t.oom.free_kb, "slab_kb": t.oom.slab_kb,
            "unreclaimable_slab": [{"name": n, "used_kb": u, "total_kb": tot}
                                   for n, u, tot in t.oom.unreclaimable_slab]},
    }


def signature_line(session: Session, dump: str) -> str:
    """`crashtui --signature`'s line: signature, kind, culprit (or -), the dump's path."""
    t = session.triage
    c = t.culprit
    culprit = "-"
    if c is not None:
        culprit = c.symbol + (f" [{c.module}]" if c.module else "") + \
            (f" at {c.location}" if c.location else "")
    return f"{t.signature}  {t.kind}  {culprit}  {dump}"
