"""The --json document: one stable, versioned view of the whole analysis (docs/json.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crashtui.analysis.backtrace import REGISTER_ORDER, Backtrace, ExceptionFrame, Frame
from crashtui.report.gather import Analysis, gather
from crashtui.report.taint import taint_letters
from crashtui.report.version import tool_version

if TYPE_CHECKING:
    from crashtui.analysis.hang import BlockedTask, HangReport
    from crashtui.analysis.session import Session

SCHEMA_VERSION = 1
SUMMARY_KEYS = ("KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS",
                "NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY", "PANIC",
                "PID", "COMMAND", "TASK", "CPU", "STATE")


def hexaddr(value: int | None) -> str | None:
    """Addresses and register values as "0x..." strings (JSON numbers lose 64-bit precision)."""
    return None if value is None else f"{value:#x}"


def build_document(session: Session) -> dict[str, Any]:
    """Everything the analysis knows, as plain JSON values."""
    a = gather(session, excerpt=False)
    a.backtraces = with_inline_frames(session, a.backtraces, a.errors)
    doc = document(a)
    doc["triage"] = triage_json(session, doc["errors"])
    if doc["triage"] is not None and doc["triage"].get("culprit") is not None:
        doc["triage"]["culprit"]["variables"] = culprit_variables_json(session, doc["errors"])
        doc["triage"]["culprit"]["registers"] = culprit_registers_json(session, doc["errors"])
    doc["blocked"] = blocked_json(a.hang)
    return doc


def culprit_variables_json(session: Session, errors: list[str]) -> dict[str, Any] | None:
    """The culprit frame's arguments and locals (crashtui.kernel.framevars), or None."""
    from crashtui.errors import CrashtuiError
    from crashtui.kernel.framevars import culprit_variables

    try:
        fv = culprit_variables(session)
    except CrashtuiError as exc:
        errors.append(f"variables: {exc.message}")
        return None
    return fv.as_json() if fv is not None else None


def culprit_registers_json(session: Session, errors: list[str]) -> dict[str, Any] | None:
    """The culprit frame's registers, annotated (crashtui.analysis.regnotes): the pt_regs
    when the culprit is an exception RIP, else what unwinding knows in that frame."""
    from crashtui.analysis.regnotes import RegisterAnnotator, frame_registers
    from crashtui.errors import CrashtuiError

    try:
        c = session.triage.culprit
        if c is None or c.frame is None:
            return None
        bt = session.panic_backtrace
        if bt is None or (c.task is not None and bt.task != c.task):
            bt = session.backtrace_of(c.task) if c.task is not None else None
        frame = None if bt is None else next(
            (f for f in bt.frames if f.index == c.frame and not f.inline), None)
        if bt is None or frame is None:
            return None
        exception = frame.exception if c.exception else None
        return frame_registers(session, RegisterAnnotator(session), bt, frame,
                               exception).as_json()
    except CrashtuiError as exc:
        errors.append(f"registers: {exc.message}")
        return None


def blocked_json(hang: HangReport | None) -> dict[str, Any] | None:
    """The `"blocked"` object: D-state tasks, their locks and owners, lock cycles."""
    if hang is None:
        return None

    def task(b: BlockedTask) -> dict[str, Any]:
        w = b.wait
        return {"pid": b.task.pid, "comm": b.task.comm, "task": hexaddr(b.task.address),
                "since_ns": b.since, "in": b.culprit.symbol if b.culprit else None,
                "waits_in": b.waits_in,
                "lock": None if w is None else {
                    "kind": w.kind, "address": hexaddr(w.lock), "symbol": b.lock_symbol,
                    "owner": hexaddr(w.owner), "reader_owned": w.reader_owned}}

    return {"tasks": [task(b) for b in hang.blocked],
            "groups": [{"functions": list(g.functions), "pids": [b.task.pid for b in g.tasks]}
                       for g in hang.groups],
            "cycles": [[{"waiter": hexaddr(e.waiter), "lock": hexaddr(e.lock), "kind": e.kind,
                         "owner": hexaddr(e.owner)} for e in c] for c in hang.cycles],
            "errors": list(hang.errors)}


def with_inline_frames(session: Session, bts: list[Backtrace] | None,
                       errors: list[str]) -> list[Backtrace] | None:
    """The backtraces with their DWARF inline frames (bt -i's `[inline]` lines: inline=True,
    just before the frame they were inlined into, innermost first, with its index); a trace
    whose inline frames cannot be read stays as it is, the reason in errors."""
    from crashtui.errors import CrashtuiError

    if bts is None:
        return bts
    out = []
    for bt in bts:
        try:
            out.append(session.with_inline_frames(bt))
        except CrashtuiError as exc:
            errors.append(f"inline frames: CPU {bt.cpu}: {exc.message}")
            out.append(bt)
    return out


def triage_json(session: Session, errors: list[str]) -> dict[str, Any] | None:
    """The `"triage"` object (crashtui.analysis.triage), or None with the reason in errors."""
    from crashtui.analysis.triage import triage_to_json
    from crashtui.errors import CrashtuiError

    try:
        return triage_to_json(session.triage)
    except CrashtuiError as exc:
        errors.append(f"triage: {exc.message}")
        return None


def document(a: Analysis) -> dict[str, Any]:
    """The schema-1 document for gathered facts."""
    f = a.facts
    return {
        "schema": SCHEMA_VERSION,
        "tool": {"name": "crashtui", "version": tool_version()},
        "dump": {"path": f.path, "format": f.format, "compression": f.compression,
                 "dump_level": f.dump_level, "partial": f.partial, "incomplete": f.incomplete,
                 "page_size": f.page_size, "vmlinux": f.vmlinux, "build_id": f.build_id},
        "summary": {name: a.summary.fields.get(name) for name in SUMMARY_KEYS},
        "panic": {"message": a.summary.panic_message or None, "cpu": a.summary.panic_cpu,
                  "taint": None if a.taint_mask is None else taint_letters(a.taint_mask)},
        "triage": None,
        "backtraces": None if a.backtraces is None else [_backtrace(bt) for bt in a.backtraces],
        "registers": _registers(a.panic),
        "kmem": a.kmem,
        "tasks": None if a.tasks is None else [
            {"pid": t.pid, "ppid": t.ppid, "cpu": t.cpu, "task": hexaddr(t.task),
             "state": t.state, "command": t.comm, "kthread": t.kthread, "active": t.active,
             "vsz": t.vsz,
             "rss": t.rss, "mem_percent": t.mem_percent} for t in a.tasks],
        "modules": None if a.modules is None else [
            {"name": m.name, "address": hexaddr(m.address), "base": hexaddr(m.base),
             "size": m.size, "taint": m.taint, "object_file": m.object_file}
            for m in a.modules],
        "log": a.log,
        "errors": a.errors,
    }


def _backtrace(bt: Backtrace) -> dict[str, Any]:
    start = bt.start
    return {"cpu": bt.cpu, "pid": bt.pid, "command": bt.command, "task": hexaddr(bt.task),
            "panic": bt.panic, "active": bt.active, "error": bt.error,
            "start": None if start is None else _exception(start),
            "frames": [_frame(fr) for fr in bt.frames]}


def _frame(fr: Frame) -> dict[str, Any]:
    src = fr.source
    return {"index": fr.index, "sp": hexaddr(fr.sp), "function": fr.function,
            "offset": fr.offset, "address": hexaddr(fr.pc), "module": fr.module,
            "file": src.file if src else None, "line": src.line if src else None,
            "inline": fr.inline, "reliable": fr.reliable, "stack": fr.stack_name,
            "return_address": fr.return_address,
            "exception": None if fr.exception is None else _exception(fr.exception)}


def _exception(exc: ExceptionFrame) -> dict[str, Any]:
    names = [n for n in REGISTER_ORDER if n in exc.registers]
    names += sorted(n for n in exc.registers if n not in REGISTER_ORDER)
    src = exc.source
    return {"kind": exc.kind or None, "address": hexaddr(exc.address),
            "user_mode": exc.user_mode, "partial": exc.partial,
            "function": exc.function, "offset": exc.offset, "module": exc.module,
            "file": src.file if src else None, "line": src.line if src else None,
            "registers": {n: hexaddr(exc.registers[n]) for n in names}}


def _registers(bt: Backtrace | None) -> dict[str, Any] | None:
    """The panic CPU's kernel-mode exception frame (else its first one), or None."""
    if bt is None:
        return None
    frames = [(fr.index, fr.exception) for fr in bt.frames if fr.exception is not None]
    if not frames:
        return None
    index, exc = next((f for f in frames if not f[1].user_mode), frames[0])
    return {"cpu": bt.cpu, "frame": index, **_exception(exc)}
