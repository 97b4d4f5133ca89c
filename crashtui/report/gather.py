"""The facts an export shows, gathered once from the Session for the Markdown and JSON views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import Backtrace
from crashtui.analysis.logfacts import log_texts, read_log
from crashtui.errors import CrashtuiError
from crashtui.report.excerpt import Excerpt, FaultSite, fault_excerpt, module_files
from crashtui.report.notes import Notes
from crashtui.report.tables import ModuleRow, TaskRow, kmem_table, module_table, task_rows

if TYPE_CHECKING:
    from crashtui.analysis.culprit import Culprit
    from crashtui.analysis.hang import HangReport
    from crashtui.analysis.session import Session
    from crashtui.analysis.summary import Summary
    from crashtui.analysis.triage import Triage
    from crashtui.analysis.variables import FrameVariables
    from crashtui.kernel.printk import KernelLog

LOG_BLOCK_MAX = 300  # lines of the oops/panic report shown

LOG_TAIL = 100


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
    triage: Triage | None = None
    hang: HangReport | None = None  # the blocked tasks (hangs, deadlocks, forced panics)
    variables: FrameVariables | None = None  # the culprit frame's arguments and locals


def gather(session: Session, excerpt: bool = True, sources: Sequence[str] = ()) -> Analysis:
    """Read every section; missing backend pieces become notes in .errors (sources: --source
    trees or tarballs searched for the faulting frame's file)."""
    notes = Notes()
    summary = session.summary
    for err in summary.errors:
        notes.errors.append(f"summary: {err}")
    bts = notes.attempt("backtraces", lambda: list(session.backtraces))
    panic = notes.attempt("panic backtrace", lambda: _panic_backtrace(session, bts, summary))
    triage = notes.attempt("triage", lambda: session.triage)
    culprit = triage.culprit if triage is not None else None
    fault = fault_site(culprit) if culprit is not None else None
    hang = notes.attempt("blocked tasks", lambda: _hang(session))
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
        log=lines, log_block=log_block(log, lines, summary.panic_message),
        log_tail=lines[-LOG_TAIL:],
        errors=notes.errors, module_files=module_files(session), triage=triage, hang=hang)
    if culprit is not None:
        analysis.variables = notes.attempt("variables", lambda: _culprit_variables(session))
    if excerpt and fault is not None:

        analysis.excerpt = notes.attempt("source excerpt", lambda: fault_excerpt(session, fault, sources))
    return analysis


def _culprit_variables(session: Session) -> FrameVariables | None:
    from crashtui.kernel.framevars import culprit_variables

    return culprit_variables(session)


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


def _hang(session: Session) -> HangReport | None:
    """The blocked tasks, when there are any (their backtraces are only unwound then)."""
    from crashtui.analysis.hang import blocked_tasks

    return session.hang if blocked_tasks(session) else None


def fault_site(c: Culprit) -> FaultSite:
    """The report's faulting frame: the triage's culprit, the same in every view."""
    return FaultSite(c.reason, c.address, c.lookup, c.function, c.offset, c.module, c.frame,
                     None, c.source, c.location, c.pid, c.command)


def log_block(log: KernelLog, lines: list[str], panic_message: str = "") -> list[str]:
    """The oops/panic report's lines as `log` prints them (crashtui.analysis.logfacts)."""
    facts = read_log(log_texts(log), panic_message)
    if facts.panic_index is None and not facts.events and not panic_message:
        return []
    return lines[facts.start:facts.end][:LOG_BLOCK_MAX]


def _taint_mask(session: Session) -> int:
    from crashtui.kernel import system

    return system.tainted_mask(session.kernel)

