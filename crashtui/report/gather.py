"""The facts an export shows, gathered once from the Session for the Markdown and JSON views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame, SourceLocation
from crashtui.errors import CrashtuiError
from crashtui.report.logblock import oops_block
from crashtui.report.notes import Notes
from crashtui.report.tables import ModuleRow, TaskRow, kmem_table, module_table, task_rows

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.analysis.summary import Summary

LOG_TAIL = 100

# Frames that only carry the panic/oops/NMI machinery: the faulting frame is past them.
PANIC_PATH = frozenset("""
machine_kexec __crash_kexec crash_kexec panic vpanic nmi_panic oops_end die die_addr __die
do_trap do_error_trap crash_nmi_callback nmi_handle default_do_nmi exc_nmi end_repeat_nmi
asm_exc_nmi repeat_nmi nmi_restore dump_stack dump_stack_lvl show_stack __warn report_bug
handle_bug exc_invalid_op asm_exc_invalid_op page_fault_oops kernelmode_fixup_or_oops
no_context __bad_area_nosemaphore bad_area_nosemaphore bad_area do_user_addr_fault
handle_page_fault exc_page_fault asm_exc_page_fault exc_general_protection
asm_exc_general_protection do_int3 exc_int3 asm_exc_int3 exc_double_fault
asm_exc_double_fault exc_divide_error asm_exc_divide_error exc_stack_segment
asm_exc_stack_segment crash_setup_regs crash_save_cpu native_machine_crash_shutdown
kdump_nmi_callback nmi_shootdown_cpus crash_smp_send_stop smp_send_stop
check_panic_on_warn _printk printk vprintk vprintk_emit vprintk_default
""".split())


def base_name(function: str) -> str:
    """`panic` for `panic.cold`, `foo` for `foo.isra.0` / `foo.constprop.3`."""
    return function.split(".", 1)[0]


@dataclass(frozen=True)
class DumpFacts:
    """What the dump file says about itself, and which vmlinux read it."""

    path: str
    format: str
    compression: list[str]
    dump_level: int | None
    partial: bool
    incomplete: bool
    page_size: int
    vmlinux: str | None
    build_id: str | None


@dataclass
class FaultSite:
    """Where the crash happened: the exception RIP, or the first frame past the panic path."""

    reason: str  # "exception RIP" | "first frame outside the panic path"
    address: int  # the RIP, or the frame's return address
    lookup: int  # the address to look up in the line table (return address - 1)
    function: str | None
    offset: int
    module: str | None
    frame_index: int | None
    exception: ExceptionFrame | None
    source: SourceLocation | None = None

    @property
    def symbol(self) -> str:
        """`function+0x16`, or the raw address."""
        if self.function is None:
            return f"{self.address:#x}"
        return f"{self.function}+{self.offset:#x}" if self.offset else self.function


@dataclass(frozen=True)
class ExcerptLine:
    """One line of a source or disassembly excerpt."""

    number: int | None  # source line number (None for disassembly)
    text: str
    marked: bool  # the faulting line / instruction


@dataclass
class Excerpt:
    """Source lines around the faulting line, or the disassembly of the faulting function."""

    kind: str  # "source" | "disassembly"
    title: str  # the file shown, or the command that produced the disassembly
    language: str  # fence info string: "c", "asm", "text"
    lines: list[ExcerptLine]
    origin: str = ""  # where the source file was found ("tree DIR", "next to MOD.ko", ...)


@dataclass
class Analysis:
    """Everything an export shows; a section is None when the backend could not provide it."""

    summary: Summary
    facts: DumpFacts
    backtraces: list[Backtrace] | None
    panic: Backtrace | None
    fault: FaultSite | None
    kmem: dict[str, dict[str, int | float | None]] | None
    modules: list[ModuleRow] | None
    tasks: list[TaskRow] | None
    taint_mask: int | None
    log: list[str]
    log_block: list[str]
    log_tail: list[str]
    errors: list[str] = field(default_factory=list)
    excerpt: Excerpt | None = None
    module_files: dict[str, str] = field(default_factory=dict)  # .ko debug info in use


def gather(session: Session, excerpt: bool = True, sources: Sequence[str] = ()) -> Analysis:
    """Read every section; missing backend pieces become notes in .errors (sources: --source
    trees or tarballs searched for the faulting frame's file)."""
    notes = Notes()
    summary = session.summary
    for err in summary.errors:
        notes.errors.append(f"summary: {err}")
    bts = notes.attempt("backtraces", lambda: list(session.backtraces))
    panic = notes.attempt("panic backtrace", lambda: _panic_backtrace(session, bts, summary))
    fault = notes.attempt("faulting frame", lambda: find_fault(session, panic)) if panic else None
    log = session.log
    lines = log.lines()
    if log.error:
        notes.add("log", log.error)
    tasks = notes.attempt("tasks", lambda: task_rows(session, notes.adder("tasks")))
    analysis = Analysis(
        summary=summary, facts=dump_facts(session), backtraces=bts, panic=panic, fault=fault,
        kmem=notes.attempt("kmem", lambda: kmem_table(session, notes.adder("kmem"))),
        modules=notes.attempt("modules", lambda: module_table(session, notes.adder("modules"))),
        tasks=tasks, taint_mask=notes.attempt("taint", lambda: _taint_mask(session)),
        log=lines, log_block=oops_block(log.records, summary.panic_message),
        log_tail=lines[-LOG_TAIL:], errors=notes.errors, module_files=module_files(session))
    if excerpt and fault is not None:
        from crashtui.report.excerpt import fault_excerpt

        analysis.excerpt = notes.attempt("source excerpt", lambda: fault_excerpt(session, fault, sources))
    return analysis


def dump_facts(session: Session) -> DumpFacts:
    """The dump's own header facts and the vmlinux's identity."""
    info = session.kernel.dump.info
    return DumpFacts(
        path=str(session.dump_path), format=info.format, compression=sorted(info.compression),
        dump_level=info.dump_level, partial=info.partial, incomplete=info.incomplete,
        page_size=info.page_size,
        vmlinux=str(session.vmlinux_path) if session.vmlinux_path else None,
        build_id=_build_id(session))


def _build_id(session: Session) -> str | None:
    """The kernel's GNU build-id: the dump's VMCOREINFO BUILD-ID (5.9+, so also without a
    vmlinux), else the vmlinux's; lower-case hex, None if unknown or not hex."""
    from crashtui.debuginfo.locate import valid_build_id

    try:
        return valid_build_id(session.kernel.debug_sources.build_id)
    except CrashtuiError:
        vm = session.kernel.vmlinux
        return valid_build_id(vm.build_id) if vm is not None else None


def module_files(session: Session) -> dict[str, str]:
    """The .ko files whose debug info the session uses, by module name (crash's mod -s)."""
    table = session.__dict__.get("modules")  # only if already read: never load just for this
    debuginfo = getattr(table, "debuginfo", None)
    if not isinstance(debuginfo, Mapping):
        return {}
    return {name: str(getattr(di, "path", di)) for name, di in sorted(debuginfo.items())}


def _panic_backtrace(session: Session, bts: list[Backtrace] | None,
                     summary: Summary) -> Backtrace | None:
    bt = session.panic_backtrace
    if bt is not None:
        return bt
    for b in bts or []:
        if b.panic:
            return b
    for b in bts or []:
        if summary.panic_cpu is not None and b.cpu == summary.panic_cpu:
            return b
    if bts is None:
        raise LookupError("no backtraces to take it from")
    raise LookupError("no backtrace is marked as the panic CPU's")


def find_fault(session: Session, bt: Backtrace) -> FaultSite | None:
    """The exception RIP frame if the panic path has one, else its first non-panic frame."""
    frames = [f for f in bt.frames if not f.inline]
    for i, fr in enumerate(frames):
        exc = fr.exception
        if exc is None or exc.user_mode or not exc.rip:
            continue
        rip = exc.rip
        at_rip = next((f for f in frames[i + 1:] if f.pc == rip), None)
        site = FaultSite("exception RIP", rip, rip, exc.function, exc.offset, exc.module,
                         at_rip.index if at_rip else None, exc, exc.source)
        if site.function is None:
            _symbolize(session, site)
        if site.source is None:
            site.source = source_line(session, rip)
        return site
    for fr in frames:
        if fr.function and base_name(fr.function) not in PANIC_PATH:
            lookup = fr.pc - 1 if fr.return_address else fr.pc
            site = FaultSite("first frame outside the panic path", fr.pc, lookup, fr.function,
                             fr.offset, fr.module, fr.index, None, fr.source)
            if site.source is None:
                site.source = source_line(session, lookup)
            return site
    return None


def _symbolize(session: Session, site: FaultSite) -> None:
    """Name the faulting address: session.symbolize (modules too), else vmlinux symbols."""
    named = getattr(session, "symbolize", None)
    if callable(named):
        hit3 = named(site.address)
        if hit3 is not None:
            site.function, site.offset, site.module = hit3
            return
    hit = session.kernel.symbolize(site.address)
    if hit is not None:
        site.function, site.offset = hit[0].name, hit[1]


def source_line(session: Session, addr: int) -> SourceLocation | None:
    """The file:line of a runtime address (session.source_line when the backend has it)."""
    fn = getattr(session, "source_line", None)
    if fn is None:
        return None
    loc = fn(addr)
    if loc is None or isinstance(loc, SourceLocation):
        return loc
    file, line = getattr(loc, "file", None), getattr(loc, "line", None)
    if not file or not line:
        return None
    return SourceLocation(str(file), int(line), int(getattr(loc, "column", 0) or 0),
                          getattr(loc, "comp_dir", None))


def _taint_mask(session: Session) -> int:
    from crashtui.kernel import system

    return system.tainted_mask(session.kernel)

