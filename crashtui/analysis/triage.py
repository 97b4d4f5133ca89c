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

import hashlib
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, Frame
    from crashtui.analysis.session import Session

SIGNATURE_FRAMES = 3
PAGE_SIZE = 4096
REPORT_WINDOW = 400  # log lines searched before the panic line for the report's headers
HEADER_GAP = 6  # headers this close together belong to one report

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
MEMORY_VECTORS = frozenset(("page fault", "general protection", "stack segment",
                            "alignment check"))
FAULT_VECTORS = frozenset(("page fault", "general protection", "invalid opcode", "divide error",
                           "double fault", "machine check", "stack segment", "breakpoint",
                           "control protection", "alignment check", "bounds", "overflow",
                           "x87 error", "SIMD error", "segment not present", "invalid TSS"))

# Frames that only carry the panic, oops, exception, NMI and watchdog machinery.
MACHINERY = frozenset("""
machine_kexec __crash_kexec crash_kexec panic vpanic nmi_panic oops_end die die_addr __die
__die_body do_trap do_error_trap do_int3 crash_nmi_callback nmi_handle default_do_nmi
end_repeat_nmi repeat_nmi nmi_restore nmi dump_stack dump_stack_lvl show_stack __warn
report_bug handle_bug page_fault_oops kernelmode_fixup_or_oops no_context
__bad_area_nosemaphore bad_area_nosemaphore bad_area bad_area_access_error do_user_addr_fault
do_kern_addr_fault handle_page_fault crash_setup_regs crash_save_cpu
native_machine_crash_shutdown kdump_nmi_callback nmi_shootdown_cpus crash_smp_send_stop
smp_send_stop check_panic_on_warn warn_slowpath_fmt __warn_printk _printk printk vprintk
vprintk_emit vprintk_default fixup_exception handle_stack_overflow
watchdog_timer_fn __hrtimer_run_queues hrtimer_interrupt watchdog_overflow_callback
watchdog_hardlockup_check __perf_event_overflow perf_event_overflow handle_pmi_common
intel_pmu_handle_irq amd_pmu_handle_irq x86_pmu_handle_irq perf_event_nmi_handler
__irq_exit_rcu irq_exit_rcu __sysvec_apic_timer_interrupt
mce_panic do_machine_check mce_timed_out mce_reign
out_of_memory check_panic_on_oom dump_header oom_kill_process __alloc_pages_may_oom
__alloc_pages_slowpath __alloc_pages __alloc_pages_noprof alloc_pages_mpol
alloc_pages_mpol_noprof __folio_alloc __folio_alloc_noprof alloc_pages alloc_pages_noprof
folio_alloc vma_alloc_folio vma_alloc_folio_noprof __get_free_pages get_zeroed_page
___slab_alloc __slab_alloc allocate_slab new_slab kmalloc_large __kmalloc
__kmalloc_noprof kmalloc_trace __kmalloc_node __kmalloc_node_track_caller
kmem_cache_alloc kmem_cache_alloc_noprof kmem_cache_alloc_lru __kmem_cache_alloc_node
alloc_pages_bulk_noprof __alloc_pages_bulk
""".split())
MACHINERY_PREFIXES = ("asm_exc_", "exc_", "asm_sysvec_", "sysvec_", "__sysvec_", "asm_common_",
                      "common_interrupt", "__pfx_")
# Frames that are everyone's caller: not part of a signature.
GENERIC = frozenset("""
do_syscall_64 entry_SYSCALL_64 entry_SYSCALL_64_after_hwframe ret_from_fork ret_from_fork_asm
kthread worker_thread process_one_work start_kernel x86_64_start_kernel
x86_64_start_reservations secondary_startup_64 secondary_startup_64_no_verify
cpu_startup_entry do_idle rest_init kernel_init
""".split())
# A blocked task's waits: its culprit is the first frame past them.
WAIT_PREFIXES = ("__schedule", "schedule", "preempt_schedule", "wait_for_", "__wait_",
                 "do_wait_for", "wait_on_", "mutex_lock", "__mutex_lock", "rwsem_down",
                 "down_", "__down", "io_schedule", "msleep", "usleep", "bit_wait",
                 "out_of_line_wait", "folio_wait", "__folio_lock", "__lock_page",
                 "rt_mutex", "__rt_mutex", "percpu_down", "__percpu_down", "synchronize_rcu",
                 "__synchronize", "wait_rcu_gp", "__wait_rcu_gp", "rcu_barrier",
                 "__flush_work", "flush_work", "context_switch", "__switch_to", "finish_task_switch",
                 "do_nanosleep", "hrtimer_nanosleep", "__refrigerator", "read_events")


@dataclass(frozen=True)
class Culprit:
    """The code to blame: a function (and where in it), its module and source line."""

    function: str | None
    offset: int
    address: int
    module: str | None = None
    file: str | None = None  # relative to the kernel source tree where that is known
    line: int | None = None
    module_taints: str | None = None  # the module's taint letters, e.g. "OE"
    out_of_tree: bool | None = None  # the module carries the O taint
    frame: int | None = None  # the bt frame number it was found at
    reason: str = ""  # "exception RIP", "first frame outside the panic path", ...
    # Functions inlined at the address, innermost first, with their own file:line
    # (file/line above are then the culprit function's own line, where they were called).
    inlined: tuple[tuple[str, str | None, int], ...] = ()

    @property
    def symbol(self) -> str:
        """`function+0x5`, or the raw address."""
        if self.function is None:
            return f"{self.address:#x}"
        return f"{self.function}+{self.offset:#x}" if self.offset else self.function

    @property
    def location(self) -> str | None:
        """`file:line`, or None."""
        return f"{self.file}:{self.line}" if self.file and self.line else None


@dataclass(frozen=True)
class BadRegister:
    """A register and the value in it that formed the faulting address."""

    name: str
    value: int


@dataclass(frozen=True)
class PageFault:
    """The x86 page-fault error code, decoded (arch/x86/include/asm/trap_pf.h)."""

    error_code: int
    address: int | None  # the faulting address (CR2 / the oops line)

    @property
    def access(self) -> str:
        """"instruction fetch", "write" or "read"."""
        if self.error_code & 0x10:
            return "instruction fetch"
        return "write" if self.error_code & 0x2 else "read"

    @property
    def mode(self) -> str:
        """"user" or "kernel": the privilege level of the access."""
        return "user" if self.error_code & 0x4 else "kernel"

    @property
    def cause(self) -> str:
        """Why the access faulted."""
        if self.error_code & 0x8:
            return "reserved bit set in a page table entry"
        if self.error_code & 0x20:
            return "protection-key violation"
        if self.error_code & 0x40:
            return "shadow-stack access"
        return "protection violation" if self.error_code & 0x1 else "not-present page"

    def text(self) -> str:
        """`read access in kernel mode, not-present page (error code 0x0000)`."""
        return (f"{self.access} access in {self.mode} mode, {self.cause} "
                f"(error code {self.error_code:#06x})")


@dataclass(frozen=True)
class Origin:
    """What the faulting instruction says about the bad address."""

    address: int  # of the instruction
    instruction: str  # GNU syntax, as crash's dis prints it: "mov    0x1,%esi"
    operand: str | None = None  # the memory operand, e.g. "0x8(%rax)"
    effective_address: int | None = None  # the operand's address from the saved registers
    register: BadRegister | None = None
    absolute: bool = False  # the address is a constant in the instruction (no register)
    access: str | None = None  # "read" | "write" | "read/write" per the instruction
    explanation: str = ""


@dataclass(frozen=True)
class BugSite:
    """A BUG()/WARN() site from __bug_table."""

    address: int
    file: str | None
    line: int | None
    warning: bool  # BUGFLAG_WARNING: a WARN(), not a BUG()


@dataclass
class Triage:
    """The whole first diagnosis of one crash."""

    kind: str
    title: str
    summary: str
    culprit: Culprit | None = None
    bad_register: BadRegister | None = None
    origin: Origin | None = None
    page_fault: PageFault | None = None
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
        if self.event:
            out.append(f"EVENT: {self.event}")
        if self.panic_message:
            out.append(f"PANIC: {self.panic_message}")
        out.append(f"SIGNATURE: {self.signature}  ({' / '.join(self.signature_frames)})")
        out += [f"NOTE: {n}" for n in self.notes]
        return out


def base_name(function: str) -> str:
    """`panic` for `panic.cold`, `foo` for `foo.isra.0` / `foo.constprop.3`."""
    return function.split(".", 1)[0]


def is_machinery(function: str | None) -> bool:
    """True for frames of the panic/oops/exception/watchdog/allocation machinery."""
    if function is None:
        return False
    name = base_name(function)
    return name in MACHINERY or name.startswith(MACHINERY_PREFIXES)


def is_wait(function: str | None) -> bool:
    """True for the scheduler's and locks' waiting functions."""
    return function is not None and base_name(function).startswith(WAIT_PREFIXES)


# -- the log -------------------------------------------------------------------------------------

_PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")
_EVENT_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sysrq", re.compile(r"sysrq: (?:SysRq : )?Trigger a crash|SysRq : Trigger a crash|"
                         r"SysRq : Crash")),
    ("null-pointer-dereference", re.compile(
        r"BUG: kernel NULL pointer dereference, address: ([0-9a-fx]+)|"
        r"BUG: unable to handle kernel NULL pointer dereference at ([0-9a-fx]+)")),
    ("paging-request", re.compile(
        r"BUG: unable to handle page fault for address: ([0-9a-fx]+)|"
        r"BUG: unable to handle kernel paging request at ([0-9a-fx]+)")),
    ("instruction-fetch", re.compile(r"kernel tried to execute NX-protected page|"
                                     r"unable to execute userspace code")),
    ("stack-overflow", re.compile(r"BUG: stack guard page was hit at ([0-9a-fx]+)|"
                                  r"kernel stack overflow|corrupted stack end detected|"
                                  r"BUG: .*stack.*overflow")),
    ("general-protection-fault", re.compile(
        r"general protection fault(?:, probably for non-canonical address ([0-9a-fx]+))?")),
    ("bug", re.compile(r"[Kk]ernel BUG at ([^\s:]+):(\d+)!?")),
    ("warn", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ([^\s:]+):(\d+) (\S+)|"
                        r"WARNING: at ([^\s:]+):(\d+) (\S+)")),
    ("soft-lockup", re.compile(r"BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]")),
    ("hard-lockup", re.compile(r"[Ww]atchdog detected hard LOCKUP on cpu (\d+)")),
    ("hung-task", re.compile(r"INFO: task (.+):(\d+) blocked for more than (\d+) seconds")),
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
_CR2_RE = re.compile(r"\bCR2: ([0-9a-f]{8,16})\b")
_ANY_HEADER = re.compile(r"BUG: |[Kk]ernel BUG at|general protection fault|WARNING: |Oops: |"
                         r"INFO: task .* blocked|watchdog: |Watchdog detected|Out of memory|"
                         r"double fault|divide error|invalid opcode|stack segment|"
                         r"Machine check|\[Hardware Error\]|Trigger a crash|SysRq : Crash")


@dataclass
class _LogFacts:
    panic_message: str = ""
    panic_index: int | None = None
    events: list[tuple[str, re.Match[str], str]] = field(default_factory=list)
    error_code: int | None = None
    cr2: int | None = None
    block: list[str] = field(default_factory=list)


def _log_lines(session: Session) -> list[str]:
    try:
        log = session.log
    except CrashtuiError:
        return []
    out: list[str] = []
    for rec in log.records:
        if rec.damage is None:
            out += rec.text.split("\n")
    return out


def _read_log(lines: list[str]) -> _LogFacts:
    """The panic line, the event block before it, and the facts in that block."""
    facts = _LogFacts()
    for i in range(len(lines) - 1, -1, -1):
        m = _PANIC_RE.search(lines[i])
        if m:
            facts.panic_message = lines[i][m.start():].strip()
            facts.panic_index = i
            break
    end = facts.panic_index if facts.panic_index is not None else len(lines) - 1
    # The report: the last group of headers before the panic (headers within a few lines of
    # each other belong together: "BUG: ..." then "Oops: ...", "kernel BUG at" then
    # "invalid opcode").
    heads = [i for i in range(max(0, end - REPORT_WINDOW), end + 1)
             if _ANY_HEADER.search(lines[i]) and not _PANIC_RE.search(lines[i])]
    start = end
    if heads:
        start = heads[-1]
        for i in reversed(heads[:-1]):
            if i < start - HEADER_GAP:
                break
            start = i
    facts.block = lines[start:end + 1] if lines else []
    for line in facts.block:
        for kind, rx in _EVENT_RES:
            m = rx.search(line)
            if m:
                facts.events.append((kind, m, line.strip()))
        m2 = _PF_RE.search(line)
        if m2 and facts.error_code is None:
            facts.error_code = int(m2.group(1), 16)
    # The last CR2 of the block is the fault's (the first can be a nested fault while
    # the oops tried to print the code bytes).
    for line in reversed(lines[start:min(len(lines), end + 60)]):
        m3 = _CR2_RE.search(line)
        if m3:
            facts.cr2 = int(m3.group(1), 16)
            break
    return facts


def _first(facts: _LogFacts, kind: str) -> tuple[re.Match[str], str] | None:
    for k, m, line in facts.events:
        if k == kind:
            return m, line
    return None


def _hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


# -- the exception frame and the instruction ------------------------------------------------------

_REG64 = {}
for _r in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp"):
    _REG64.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}"})
for _r in ("a", "b", "c", "d"):
    _REG64.update({f"{_r}l": f"r{_r}x", f"{_r}h": f"r{_r}x"})
_REG64.update({"sil": "rsi", "dil": "rdi", "bpl": "rbp", "spl": "rsp", "rip": "rip",
               "eip": "rip"})
for _n in range(8, 16):
    _REG64.update({f"r{_n}": f"r{_n}", f"r{_n}d": f"r{_n}", f"r{_n}w": f"r{_n}",
                   f"r{_n}b": f"r{_n}"})


def decode_origin(code: bytes, rip: int, registers: dict[str, int],
                  fault_address: int | None) -> Origin | None:
    """Which operand of the instruction at `rip` made the faulting address, from capstone's
    detail and the saved registers (None if the bytes do not decode)."""
    import capstone
    from capstone import x86

    from crashtui.debuginfo.disasm import disassemble

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    ci = next(md.disasm(code, rip, 1), None)
    if ci is None:
        return None
    gnu = disassemble(bytes(ci.bytes), rip, 1)
    text = gnu[0].text if gnu else f"{ci.mnemonic} {ci.op_str}"
    mem = [op for op in ci.operands if op.type == x86.X86_OP_MEM]
    if not mem:
        return Origin(rip, text, explanation="the instruction has no memory operand")
    op = mem[0]
    access = {1: "read", 2: "write", 3: "read/write"}.get(getattr(op, "access", 0) or 0)
    base = ci.reg_name(op.mem.base) if op.mem.base else None
    index = ci.reg_name(op.mem.index) if op.mem.index else None
    seg = ci.reg_name(op.mem.segment) if op.mem.segment else None
    disp, scale = op.mem.disp, op.mem.scale
    operand = _operand_text(text)

    def value(reg: str) -> int | None:
        if reg in ("rip", "eip"):
            return rip + ci.size
        return registers.get(_REG64.get(reg, reg))

    bval = value(base) if base else None
    ival = value(index) if index else None
    ea: int | None = None
    if (base is None or bval is not None) and (index is None or ival is not None):
        ea = ((bval or 0) + (ival or 0) * scale + disp) & 0xFFFFFFFFFFFFFFFF
    if seg in ("gs", "fs"):
        return Origin(rip, text, operand, None, None, False, access,
                      f"the address is {operand} relative to the %{seg} base (per-CPU data)")
    if base is None and index is None:
        return Origin(rip, text, operand, ea, None, True, access,
                      f"address {disp & 0xFFFFFFFFFFFFFFFF:#x} is encoded in the instruction "
                      "itself (absolute): no register held it")
    if base in ("rip", "eip"):
        return Origin(rip, text, operand, ea, None, False, access,
                      f"a %rip-relative address ({ea:#x}): a fixed address in the image")
    chosen = _pick_register(base, bval, index, ival, fault_address)
    reg = BadRegister(_REG64.get(chosen[0], chosen[0]), chosen[1]) if chosen else None
    explanation = ""
    if reg is not None:
        what = _describe_value(reg.value)
        explanation = (f"{reg.name.upper()} = {reg.value:#x}{what} formed the address"
                       + (f" {ea:#x}" if ea is not None else "") + f" ({operand})")
    return Origin(rip, text, operand, ea, reg, False, access, explanation)


def _operand_text(text: str) -> str | None:
    """The memory operand of a GNU-syntax instruction text."""
    m = re.search(r"(%\w+:)?-?(0x[0-9a-f]+)?\([^)]*\)|(?<![$\w%])(%\w+:)?-?0x[0-9a-f]+(?=,|$)",
                  text.split(None, 1)[1] if " " in text else "")
    return m.group(0) if m else None


def _pick_register(base: str | None, bval: int | None, index: str | None, ival: int | None,
                   fault: int | None) -> tuple[str, int] | None:
    """The register whose value made the address bad: the one that looks like a bad pointer
    (NULL-ish, non-canonical, near the fault address), else the base."""
    cands = [(r, v) for r, v in ((base, bval), (index, ival)) if r is not None and v is not None]
    if not cands:
        return None

    def bad(v: int) -> bool:
        return v < PAGE_SIZE or not _canonical(v) or (fault is not None and abs(v - fault) < PAGE_SIZE)

    for r, v in cands:
        if bad(v):
            return r, v
    return cands[0]


def _canonical(v: int) -> bool:
    top = v >> 47
    return top == 0 or top == 0x1FFFF


def _describe_value(v: int) -> str:
    if v == 0:
        return " (NULL)"
    if v < PAGE_SIZE:
        return " (a small offset from NULL)"
    if not _canonical(v):
        if (v >> 32) in (0xDEAD0000, 0xDEAD):
            return " (a list poison value: use after list_del)"
        if v & 0xFFFFFFFFFFFF0000 in (0x6B6B6B6B6B6B0000,):
            return " (slab poison 0x6b: use after free)"
        return " (not a canonical address)"
    return ""


def bug_site(session: Session, address: int) -> BugSite | None:
    """The __bug_table entry for a BUG()/WARN() at `address` (vmlinux, else its module)."""
    k = session.kernel
    tables: list[tuple[int, int]] = []
    start, stop = k.symbol_or_none("__start___bug_table"), k.symbol_or_none("__stop___bug_table")
    if start is not None and stop is not None and 0 < stop - start < 1 << 24:
        tables.append((start, stop - start))
    try:
        mod = session.modules.module_at(address)
    except CrashtuiError:
        mod = None
    if mod is not None:
        try:
            table = k.pointer(mod.address, "module", "bug_table")
            num = k.member(mod.address, "module", "num_bugs", 4)
            if table and 0 < num < 1 << 20:
                tables.append((table, num * _bug_entry_size(session)))
        except CrashtuiError:
            pass
    for base, size in tables:
        try:
            raw = k.read(base, size)
        except CrashtuiError:
            continue
        hit = _search_bug_table(session, raw, base, address)
        if hit is not None:
            return hit
    return None


def _bug_entry_size(session: Session) -> int:
    try:
        return session.kernel.sizeof("struct bug_entry")
    except CrashtuiError:
        return 12


def _search_bug_table(session: Session, raw: bytes, base: int, address: int) -> BugSite | None:
    """Entries are {s32 bug_addr_disp; s32 file_disp; u16 line; u16 flags} (relative
    pointers, CONFIG_GENERIC_BUG_RELATIVE_POINTERS)."""
    k = session.kernel
    size = _bug_entry_size(session)
    try:
        off_line = k.offsetof("bug_entry", "line")
        off_flags = k.offsetof("bug_entry", "flags")
        off_file = k.offsetof("bug_entry", "file_disp")
    except CrashtuiError:
        off_line, off_flags, off_file = 8, 10, 4
    n = len(raw) // size
    if n == 0 or size % 4 or not -(1 << 40) < address - base < 1 << 40:
        return None
    disps = np.frombuffer(raw[:n * size], dtype="<i4").reshape(n, size // 4)[:, 0]
    offsets = np.arange(n, dtype=np.int64) * size  # of each entry from the table's start
    hits = np.flatnonzero(offsets + disps.astype(np.int64) == address - base)
    for i in hits.tolist():
        pos = i * size
        (fdisp,) = struct.unpack_from("<i", raw, pos + off_file)
        line, flags = struct.unpack_from("<H", raw, pos + off_line)[0], \
            struct.unpack_from("<H", raw, pos + off_flags)[0]
        file: str | None = None
        try:
            file = k.read_cstr(base + pos + off_file + fdisp, 256) or None
        except CrashtuiError:
            pass
        return BugSite(address, file, line or None, bool(flags & 1))
    return None


# -- building ------------------------------------------------------------------------------------

def _frames(bt: Backtrace) -> list[Frame]:
    return [f for f in bt.frames if not f.inline]


def _vector(frame: Frame) -> str | None:
    if frame.exception is None or frame.exception.user_mode:
        return None
    name = base_name(frame.function or "")
    if name in VECTORS:
        return VECTORS[name]
    if name.startswith(("asm_sysvec_", "asm_common_interrupt", "common_interrupt")):
        return "interrupt"
    return frame.exception.kind or "exception"


def _short_path(file: str, comp_dir: str | None) -> str:
    """A DWARF path relative to the kernel source tree where its build prefix is known."""
    if comp_dir and file.startswith(comp_dir.rstrip("/") + "/"):
        return file[len(comp_dir.rstrip("/")) + 1:]
    m = re.match(r".*/linux-[0-9][^/]*/(.*)", file)
    if m and not file.startswith("/usr/src/"):
        return m.group(1)
    return file


def _module_facts(session: Session, module: str | None) -> tuple[str | None, bool | None]:
    if module is None:
        return None, None
    try:
        mod = session.modules.find(module)
    except CrashtuiError:
        return None, None
    if mod is None:
        return None, None
    return mod.taint_flags, "O" in mod.taint_flags


def _inline_chain(session: Session, addr: int, module: str | None) -> list[Any]:
    """DWARF inline frames at a runtime address (innermost first), vmlinux or module .ko."""
    k = session.kernel
    try:
        if module is None:
            vm = k.vmlinux
            lines = vm.lines if vm is not None else None
            return list(lines.inline_frames(addr - k.kaslr_offset)) if lines is not None else []
        di = session.modules.debuginfo.get(module)
        hit = di.section_at(addr) if di is not None else None
        return list(di.ko.inline_frames(*hit)) if di is not None and hit is not None else []
    except (CrashtuiError, AttributeError):
        return []


def _located(session: Session, c: Culprit, lookup: int, comp_dir: str | None) -> Culprit:
    """c with file:line moved to the culprit function's own line when code was inlined at
    the address, and the inlined functions listed."""
    chain = _inline_chain(session, lookup, c.module)
    if len(chain) < 2 or not chain[-1].file:
        return c
    import dataclasses

    outer = chain[-1]
    inl = tuple((f.function, _short_path(f.file, comp_dir) if f.file else None, f.line)
                for f in chain[:-1])
    return dataclasses.replace(c, file=_short_path(outer.file, comp_dir), line=outer.line,
                               inlined=inl)


def _culprit_from_frame(session: Session, fr: Frame, reason: str) -> Culprit:
    src = fr.source
    taints, oot = _module_facts(session, fr.module)
    c = Culprit(fr.function, fr.offset, fr.pc, fr.module,
                _short_path(src.file, src.comp_dir) if src else None,
                src.line if src else None, taints, oot, fr.index, reason)
    return _located(session, c, fr.pc - 1 if fr.return_address else fr.pc,
                    src.comp_dir if src else None)


def _culprit_from_exception(session: Session, fr: Frame) -> Culprit:
    ef = fr.exception
    assert ef is not None
    function, offset, module = ef.function, ef.offset, ef.module
    if function is None:
        named = session.symbolize(ef.rip)
        if named is not None:
            function, offset, module = named
    src = ef.source or session.source_line(ef.rip)
    taints, oot = _module_facts(session, module)
    c = Culprit(function, offset, ef.rip, module,
                _short_path(src.file, src.comp_dir) if src else None,
                src.line if src else None, taints, oot, fr.index, "exception RIP")
    return _located(session, c, ef.rip, src.comp_dir if src else None)


def _find_culprit(session: Session, bt: Backtrace, lockup: bool
                  ) -> tuple[Culprit | None, Frame | None, list[Frame]]:
    """(culprit, the frame carrying the fault's pt_regs if any, the frames after it)."""
    frames = _frames(bt)
    for i, fr in enumerate(frames):
        vec = _vector(fr)
        if vec is not None and (vec in FAULT_VECTORS or lockup):
            return _culprit_from_exception(session, fr), fr, frames[i + 1:]
        if fr.function is not None and not is_machinery(fr.function):
            return _culprit_from_frame(session, fr, "first frame outside the panic path"), \
                None, frames[i + 1:]
    return None, None, []


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


def _hung_task_culprit(session: Session, pid: int) -> tuple[Culprit | None, list[Frame]]:
    for task in session.tasks.tasks:
        if task.pid != pid:
            continue
        try:
            bt = session.backtrace_of(task.address)
        except CrashtuiError:
            return None, []
        frames = _frames(bt)
        for i, fr in enumerate(frames):
            if fr.function and not is_wait(fr.function) and not is_machinery(fr.function):
                return _culprit_from_frame(session, fr, f"blocked task {pid}'s first frame "
                                                        "outside the scheduler's waits"), \
                    frames[i + 1:]
        return None, []
    return None, []


def build_triage(session: Session) -> Triage:
    """Diagnose the crash: kind, summary, culprit, bad register, signature."""
    notes: list[str] = []
    facts = _read_log(_log_lines(session))
    panic_message = facts.panic_message or session.summary.panic_message
    try:
        bt = session.panic_backtrace
    except CrashtuiError as exc:
        bt = None
        notes.append(f"no panic backtrace: {exc.message}")
    events = {k for k, _, _ in facts.events}
    lockup = bool(events & {"soft-lockup", "hard-lockup"})
    culprit, fault_frame, rest = (_find_culprit(session, bt, lockup) if bt is not None
                                  else (None, None, []))
    vector = _vector(fault_frame) if fault_frame is not None else None
    kind, event, evidence, fault_address = _classify(facts, vector, panic_message)

    t = Triage(kind, KINDS.get(kind, kind), "", panic_message=panic_message, event=event,
               evidence=evidence, vector=vector, notes=notes, fault_address=fault_address)
    if bt is not None:
        t.pid, t.command, t.cpu = bt.pid, bt.command, bt.cpu
    if kind == "hung-task":
        m = _first(facts, "hung-task")
        if m is not None:
            hung, hung_rest = _hung_task_culprit(session, int(m[0].group(2)))
            if hung is not None:
                culprit, rest = hung, hung_rest
    t.culprit = culprit
    if culprit is None:
        notes.append("no frame outside the panic machinery was found")

    if vector == "page fault" or facts.error_code is not None:
        if facts.error_code is not None:
            t.page_fault = PageFault(facts.error_code, fault_address)
        elif vector == "page fault":
            notes.append("no #PF error_code line in the log: the access type is unknown")
    if fault_frame is not None and fault_frame.exception is not None:
        ef = fault_frame.exception
        t.origin = _origin(session, ef.rip, ef.registers, fault_address)
        if t.origin is not None and vector not in MEMORY_VECTORS:
            import dataclasses  # not a memory fault: the operands did not cause it

            t.origin = dataclasses.replace(t.origin, register=None, explanation="")
        if t.origin is not None:
            t.bad_register = t.origin.register
            ea = t.origin.effective_address
            if vector == "page fault" and t.fault_address is None and ea is not None:
                t.fault_address = ea  # no oops line or CR2: the operand's address
                if t.kind == "paging-request" and ea < PAGE_SIZE:
                    t.kind, t.title = "null-pointer-dereference", KINDS["null-pointer-dereference"]
        else:
            notes.append(f"the instruction at {ef.rip:#x} could not be read or decoded")
        if vector == "invalid opcode":
            t.bug = bug_site(session, ef.rip)
            if t.bug is not None and t.kind == "invalid-opcode":
                t.kind = "warn-panic" if t.bug.warning else "bug"
                t.title = KINDS[t.kind]
    if t.page_fault is not None and t.page_fault.access == "instruction fetch" and \
            fault_frame is not None and culprit is not None and culprit.function is None:
        notes.append("the CPU jumped to a bad address: the caller is the frame after it")
    t.signature, t.signature_frames = _signature(t.kind, t.culprit, rest)
    t.summary = _summary(t)
    return t


def _origin(session: Session, rip: int, registers: dict[str, int],
            fault_address: int | None) -> Origin | None:
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
    try:
        return decode_origin(code, rip, registers, fault_address)
    except (ImportError, StopIteration, ValueError):
        return None


def classify_log(lines: list[str], vector: str | None = None
                 ) -> tuple[str, str, int | None, int | None]:
    """(kind, the deciding log line, fault address, #PF error code) from log lines alone
    (and the exception vector, if known)."""
    facts = _read_log(lines)
    kind, event, _evidence, address = _classify(facts, vector, facts.panic_message)
    return kind, event, address, facts.error_code


def _classify(facts: _LogFacts, vector: str | None, panic_message: str
              ) -> tuple[str, str, list[str], int | None]:
    """(kind, the deciding log line, evidence lines, fault address)."""
    ev = {k: (m, line) for k, m, line in reversed(facts.events)}  # first occurrence wins
    evidence = [line for _, _, line in facts.events]
    panic = panic_message.lower()

    def addr_of(kind: str) -> int | None:
        m = ev[kind][0]
        return next((_hex(g) for g in m.groups() if g), None)

    cr2 = facts.cr2
    if "sysrq" in ev:  # the report starts at the SysRq trigger: what follows is its doing
        return "sysrq", ev["sysrq"][1], evidence, None
    if "stack-overflow" in ev:
        return "stack-overflow", ev["stack-overflow"][1], evidence, addr_of("stack-overflow")
    if "soft-lockup" in ev:
        return "soft-lockup", ev["soft-lockup"][1], evidence, None
    if "hard-lockup" in ev or "hard lockup" in panic:
        line = ev["hard-lockup"][1] if "hard-lockup" in ev else panic_message
        return "hard-lockup", line, evidence, None
    if "hung-task" in ev or "hung_task" in panic:
        line = ev["hung-task"][1] if "hung-task" in ev else panic_message
        return "hung-task", line, evidence, None
    if "out of memory" in panic or ("out-of-memory" in ev and "oom" in panic):
        return "out-of-memory", panic_message, evidence, None
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
    if t.kind == "hung-task":
        m = re.search(r"INFO: task (.+):(\d+) blocked for more than (\d+) seconds", t.event)
        if m:
            return (f"Hung task: {m.group(1)} (PID {m.group(2)}) was blocked for more than "
                    f"{m.group(3)} seconds" + (f" in {where}" if where else "")
                    + f"; the hung-task watchdog, {who}, panicked.")
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
            "frame": c.frame, "reason": c.reason,
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
    }


def signature_line(session: Session, dump: str) -> str:
    """`crashtui --signature`'s line: signature, kind, culprit (or -), the dump's path."""
    t = build_triage(session)
    c = t.culprit
    culprit = "-"
    if c is not None:
        culprit = c.symbol + (f" [{c.module}]" if c.module else "") + \
            (f" at {c.location}" if c.location else "")
    return f"{t.signature}  {t.kind}  {culprit}  {dump}"
