"""The Markdown incident report (`crashtui DUMP VMLINUX --report FILE.md`, key `e` in the app)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import Backtrace
from crashtui.analysis.summary import FIELD_NAMES
from crashtui.commands.bt import format_backtrace, format_registers
from crashtui.kernel.system import pages_to_size
from crashtui.report import mdescape as md
from crashtui.report.gather import Analysis, gather
from crashtui.report.taint import module_taint_meaning, taint_letters, taint_meanings
from crashtui.report.version import tool_version

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.analysis.triage import Triage

REPRODUCE_COMMANDS = ("sys", "bt -a", "kmem -i", "mod", "ps", "log")


@dataclass(frozen=True)
class ReportOptions:
    """How paths and the tool version appear (sample-dumps/ reports use stable names)."""

    relative_to: Path | None = None  # paths under this directory are shown relative to it
    vmlinux_name: str | None = None  # shown instead of the vmlinux path
    show_version: bool = True
    sources: tuple[str, ...] = ()  # --source trees/tarballs for the faulting frame's file

    def show(self, path: str) -> str:
        """path as the report prints it."""
        if self.relative_to is not None:
            try:
                return str(Path(path).resolve().relative_to(self.relative_to.resolve()))
            except ValueError:
                pass
        return path

    def show_in(self, text: str) -> str:
        """text with the paths under relative_to in it made relative."""
        if self.relative_to is None:
            return text
        return text.replace(str(self.relative_to.resolve()) + "/", "")


def write_report(session: Session, path: str | Path, options: ReportOptions | None = None) -> None:
    """Write the report to path ('-' for stdout)."""
    text = build_report(session, options)
    if str(path) == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")


def build_report(session: Session, options: ReportOptions | None = None) -> str:
    """The whole report as Markdown (CommonMark + GFM tables)."""
    opts = options or ReportOptions()
    a = gather(session, sources=opts.sources)
    return render(a, opts)


def render(a: Analysis, opts: ReportOptions) -> str:
    """Render gathered facts; every string from the dump goes through mdescape."""
    dump_name = opts.show(a.facts.path)
    vmlinux_name = opts.vmlinux_name or a.facts.vmlinux
    kos = {name: opts.show(path) for name, path in a.module_files.items()}
    parts = [_title(a), _intro(a, dump_name, opts), _triage(a.triage, opts),
             _summary(a, dump_name, vmlinux_name),
             _panic(a), _fault(a, opts), _variables(a), _blocked(a), _registers(a), _other_cpus(a), _kmem(a),
             _tasks(a),
             _modules(a), _log(a), _facts(a, dump_name, vmlinux_name, kos),
             _reproduce(dump_name, vmlinux_name, kos), _errors(a)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _title(a: Analysis) -> str:
    message = a.summary.panic_message or "no panic message found in the log"
    return "# " + md.inline(message)


def _intro(a: Analysis, dump_name: str, opts: ReportOptions) -> str:
    by = f"crashtui {tool_version()}" if opts.show_version else "crashtui"
    return (f"Crash report for {md.code(Path(dump_name).name)} ({md.inline(a.summary.fields.get('RELEASE', '?'))}), "
            f"written by {by}.\n\n"
            "> **Note:** this report contains kernel memory contents (log lines, task names, "
            "register values). Treat it like the dump itself.")


def _triage(t: Triage | None, opts: ReportOptions) -> str:
    """What happened, first: kind, culprit, the faulting instruction, signature."""
    if t is None:
        return ""
    items: list[str] = []
    c = t.culprit
    if c is not None:
        where = md.code(c.symbol) + (f" in module {md.code(c.module)}" if c.module else "")
        if c.location:
            where += f" at {md.code(opts.show_in(c.location))}"
        if c.module:
            where += (f" (taints {md.code(c.module_taints or '-')}"
                      + (", out-of-tree" if c.out_of_tree else "") + ")")
        items.append(f"**Culprit:** {where}")
    if t.page_fault is not None:
        items.append(f"**Page fault:** {md.inline(t.page_fault.text())}"
                     + (f" at address `{t.fault_address:#x}`" if t.fault_address is not None
                        else ""))
    elif t.fault_address is not None:
        items.append(f"**Address:** `{t.fault_address:#x}`")
    if t.bug is not None and t.bug.file:
        items.append(f"**{'WARN' if t.bug.warning else 'BUG'} site:** "
                     + md.code(f"{t.bug.file}:{t.bug.line}"))
    if t.origin is not None:
        items.append(f"**Faulting instruction:** {md.code(f'{t.origin.address:x}: {t.origin.instruction}')}"
                     + (f" — {md.inline(t.origin.explanation)}" if t.origin.explanation else ""))
    if t.bad_register is not None:
        r = t.bad_register
        items.append(f"**Bad register:** `{r.name.upper()} = {r.value:#x}`")
    if t.hung_pid is not None:
        items.append(f"**Blocked task:** PID {t.hung_pid} {md.code(t.hung_command or '')}"
                     + (f", not run for {t.hung_since / 1e9:.1f} s" if t.hung_since is not None
                        else ""))
    if t.cycle:
        items.append("**Lock cycle:** " + "; ".join(md.inline(w) for w in t.cycle))
    items += [f"**Waits:** {md.inline(w)}" for w in t.waits if w not in t.cycle]
    if t.oom is not None:
        items += [f"**Out of memory:** {md.inline(line)}" for line in t.oom.lines()]
    if t.event:
        items.append(f"**Log:** {md.code(t.event)}")
    frames = " / ".join(t.signature_frames)
    items.append(f"**Signature:** `{t.signature}`" + (f" ({md.code(frames)})" if frames else ""))
    items += [f"**Note:** {md.inline(n)}" for n in t.notes]
    title = md.inline(t.title[:1].upper() + t.title[1:])
    return (f"## Triage: {title}\n\n{md.inline(t.summary)}\n\n"
            + "\n".join(f"- {i}" for i in items))


def _summary(a: Analysis, dump_name: str, vmlinux_name: str | None) -> str:
    fields = dict(a.summary.fields)
    if "KERNEL" in fields and a.facts.vmlinux:
        fields["KERNEL"] = fields["KERNEL"].replace(a.facts.vmlinux, vmlinux_name or "")
    if "DUMPFILE" in fields:
        fields["DUMPFILE"] = fields["DUMPFILE"].replace(a.facts.path, dump_name)
    rows = [[f"**{name}**", md.cell(fields[name])] for name in FIELD_NAMES if name in fields]
    return "## Summary (`sys`)\n\n" + md.table(["Field", "Value"], rows)


def _bt_title(bt: Backtrace) -> str:
    return f"CPU {bt.cpu}: PID {bt.pid} {md.code(bt.command)}"


def _bt_block(bt: Backtrace) -> str:
    return md.fence(format_backtrace(bt), "text")


def _panic(a: Analysis) -> str:
    if a.panic is None:
        return "## Panic backtrace\n\n*Not available (see [Notes](#notes)).*"
    return f"## Panic backtrace ({_bt_title(a.panic)})\n\n" + _bt_block(a.panic)


def _fault(a: Analysis, opts: ReportOptions) -> str:
    f = a.fault
    if f is None:
        return ""
    where = f" frame #{f.frame_index}," if f.frame_index is not None else ""
    mod = f" in module {md.code(f.module)}" if f.module else ""
    place = f.location or (f"{f.source.file}:{f.source.line}" if f.source else None)
    loc = f" at {md.code(opts.show_in(place))}" if place else ""
    task = f" of PID {f.pid} {md.code(f.command or '')}" if f.pid is not None else ""
    head = (f"## Faulting frame\n\n{md.code(f.symbol)} ({f.reason},{where} address "
            f"`{f.address:#x}`{task}){mod}{loc}")
    ex = a.excerpt
    if ex is None:
        return head + "\n\n*No source or disassembly available (see [Notes](#notes)).*"
    if ex.kind == "source":
        width = len(str(max((x.number or 0) for x in ex.lines)))
        body = [f"{'>' if x.marked else ' '} {x.number or 0:>{width}}  {x.text}" for x in ex.lines]
        found = f", found {md.inline(opts.show_in(ex.origin))}" if ex.origin else ""
        intro = f"Source {md.code(ex.title)}{found} (the faulting line marked `>`):"
    else:
        body = [f"{'>' if x.marked else ' '} {x.text}" for x in ex.lines]
        intro = (f"No source file found; disassembly ({md.code(ex.title)}), the faulting "
                 "instruction marked `>`:")
    return f"{head}\n\n{intro}\n\n{md.fence(body, ex.language)}"


MAX_VARIABLE_ROWS = 40


def _variables(a: Analysis) -> str:
    """The culprit frame's arguments and locals (`locals`), one table row each."""
    fv = a.variables
    if fv is None or a.fault is None:
        return ""
    head = "## Variables of the faulting frame (`locals`)"
    if fv.error:
        return f"{head}\n\n*None listed: {md.inline(fv.error)}.*"
    if not fv.variables:
        return f"{head}\n\n*The function has no arguments or locals.*"
    rows = []
    for v in fv.variables[:MAX_VARIABLE_ROWS]:
        name = f"{v.function}(): {v.name}" if v.inlined else v.name
        value = v.display()
        if len(value) > 100:
            value = value[:100] + "..."
        rows.append([md.code(name, in_table=True), "argument" if v.parameter else "local",
                     md.code(v.type, in_table=True), md.code(value, in_table=True),
                     md.cell(v.location or "")])
    more = len(fv.variables) - MAX_VARIABLE_ROWS
    tail = f"\n\n*{more} more: `locals` in the app or `crashtui -c locals`.*" if more > 0 else ""
    return (f"{head}\n\nFrom DWARF at the frame's pc; `<optimized out>`: no location there, "
            "`<unknown: ...>`: the location needs a register or memory the dump does not "
            "give.\n\n" + md.table(["Name", "Kind", "Type", "Value", "Where"], rows) + tail)


def _blocked(a: Analysis) -> str:
    """The blocked tasks grouped by identical stacks, each group's backtrace once."""
    from crashtui.commands.sched import nanoseconds

    h = a.hang
    if h is None or not h.blocked:
        return ""
    out = [f"## Blocked tasks ({len(h.blocked)}, `foreach UN bt`, `ps -m`)",
           "Tasks in uninterruptible sleep, longest-waiting first, grouped by identical "
           "stacks; the time is since each last ran."]
    if h.cycles:
        out.append(f"**{len(h.cycles)} lock cycle(s): a deadlock.**")
    for g in h.groups:
        rows = []
        for b in g.tasks:
            since = nanoseconds(b.since) if b.since is not None else "?"
            lock = ""
            if b.wait is not None:
                lock = f"{b.wait.kind} {b.lock_symbol or f'{b.wait.lock:#x}'}"
                if b.wait.owner is not None:
                    owner = next((x for x in h.blocked if x.task.address == b.wait.owner),
                                 None)
                    lock += (f" held by PID {owner.task.pid}" if owner is not None
                             else f" held by task {b.wait.owner:#x}")
            rows.append([str(b.task.pid), md.code(b.task.comm, in_table=True), since,
                         md.code(b.culprit.symbol, in_table=True) if b.culprit else "",
                         md.cell(lock)])
        out.append(md.table(["PID", "COMM", "Not run for", "Blocked in", "Waits for"], rows,
                            ["r", "l", "r", "l", "l"]))
        first = g.tasks[0].backtrace
        if first is not None:
            out.append(_bt_block(first))
    return "\n\n".join(out)


def _registers(a: Analysis) -> str:
    if a.panic is None:
        return ""
    out = ["## Exception registers"]
    saved = [(f"frame #{fr.index}", fr.exception) for fr in a.panic.frames
             if fr.exception is not None and not fr.inline]
    if a.panic.start is not None:
        saved.insert(0, ("the CPU's registers when it stopped (NT_PRSTATUS)", a.panic.start))
    for where, exc in saved:
        kind = exc.kind or ("user-mode entry" if exc.user_mode else "kernel exception")
        mode = "user mode" if exc.user_mode else "kernel mode"
        rip = f", RIP in {md.code(exc.rip_symbol)}" if exc.function else ""
        out.append(f"Saved at {where} ({md.inline(kind)}, {mode}{rip}), "
                   f"pt_regs at `{exc.address:#x}`:")
        out.append(md.fence(format_registers(exc), "text"))
    if not saved:
        out.append("*The panic CPU's stack holds no exception frame.*")
    return "\n\n".join(out)


def _other_cpus(a: Analysis) -> str:
    if a.backtraces is None:
        return ""
    others = [bt for bt in a.backtraces if bt is not a.panic]
    if not others:
        return ""
    out = ["## Other CPUs"]
    for bt in others:
        out.append(f"### {_bt_title(bt)}\n\n" + _bt_block(bt))
    return "\n\n".join(out)


def _kmem(a: Analysis) -> str:
    if a.kmem is None:
        return ""
    rows = []
    for name, r in a.kmem.items():
        pages, pct = r.get("pages"), r.get("percent")
        total = pages_to_size(int(pages), a.facts.page_size) if isinstance(pages, int) else ""
        rows.append([f"**{md.inline(name)}**", "" if pages is None else str(pages), total,
                     "" if pct is None else f"{pct:g}%"])
    return ("## Memory (`kmem -i`)\n\n"
            + md.table(["", "Pages", "Total", "Percentage"], rows, ["l", "r", "r", "r"]))


def _tasks(a: Analysis) -> str:
    if a.tasks is None:
        return ""
    shown = [t for t in a.tasks if t.active or t.state == "UN"]
    rows = [[(">" if t.active else "") + str(t.pid), str(t.ppid), str(t.cpu), f"`{t.task:x}`",
             md.cell(t.state), _opt(t.mem_percent), _opt(t.vsz), _opt(t.rss),
             md.code(f"[{t.comm}]" if t.kthread else t.comm, in_table=True)] for t in shown]
    return ("## Tasks on the CPUs and in D state (`ps`)\n\n`>` marks the task running on its "
            "CPU.\n\n" + md.table(["PID", "PPID", "CPU", "TASK", "ST", "%MEM", "VSZ", "RSS",
                                    "COMM"], rows, ["r", "r", "r", "l", "l", "r", "r", "r", "l"]))


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _modules(a: Analysis) -> str:
    out = ["## Modules and taint"]
    if a.taint_mask is not None:
        letters = taint_letters(a.taint_mask)
        meaning = "; ".join(taint_meanings(a.taint_mask))
        out.append(f"Kernel taint: `{letters}`" + (f" ({meaning})" if meaning else ""))
    if a.modules is None:
        out.append("*Module list not available (see [Notes](#notes)).*")
    elif not a.modules:
        out.append("No modules loaded.")
    else:
        rows = [[md.code(m.name, in_table=True),
                 f"`{m.base:x}`" if m.base is not None else "",
                 str(m.size) if m.size is not None else "",
                 md.code(m.taint, in_table=True), md.cell(module_taint_meaning(m.taint))]
                for m in a.modules]
        out.append(md.table(["Name", "Base", "Size", "Taint", "Meaning"], rows,
                            ["l", "l", "r", "l", "l"]))
        out.append("Taint letters: O out-of-tree, E unsigned, P proprietary.")
    return "\n\n".join(out) if len(out) > 1 else ""


def _log(a: Analysis) -> str:
    out = ["## Kernel log"]
    if a.log_block:
        out.append("### The oops/panic report\n\n" + md.fence(a.log_block, "text"))
    out.append(f"### The last {len(a.log_tail)} lines\n\n" + md.fence(a.log_tail, "text"))
    return "\n\n".join(out)


def _facts(a: Analysis, dump_name: str, vmlinux_name: str | None,
           kos: dict[str, str]) -> str:
    f = a.facts
    level = "unknown" if f.dump_level is None else str(f.dump_level)
    rows = [["Dump file", md.code(dump_name, in_table=True)],
            ["Format", md.cell(f.format)],
            ["Compression", md.cell(", ".join(f.compression) or "none")],
            ["Dump level", level + (" (makedumpfile -d)" if f.dump_level is not None else "")],
            ["Partial", "yes: pages were filtered out" if f.partial else "no"],
            ["Incomplete", "yes: the dump was cut short" if f.incomplete else "no"],
            ["vmlinux", md.code(vmlinux_name, in_table=True) if vmlinux_name else "none"],
            ["Build ID", md.code(f.build_id, in_table=True) if f.build_id else "unknown"]]
    rows += [[f"Debug info of {md.code(name, in_table=True)}", md.code(path, in_table=True)]
             for name, path in kos.items()]
    return "## The dump\n\n" + md.table(["Fact", "Value"], rows)


def _reproduce(dump_name: str, vmlinux_name: str | None, kos: dict[str, str]) -> str:
    args = shlex.quote(dump_name) + (f" {shlex.quote(vmlinux_name)}" if vmlinux_name else "")
    for d in sorted({str(Path(p).parent) for p in kos.values()}):
        args += f" --modules {shlex.quote(d)}"
    cs = " ".join(f"-c {shlex.quote(c)}" for c in REPRODUCE_COMMANDS)
    lines = [f"crashtui {args} {cs}", f"crashtui {args} --json > analysis.json",
             f"crashtui {args} --report report.md"]
    if vmlinux_name:
        then = [f"mod -s {name} {shlex.quote(path)}" for name, path in kos.items()]
        lines.append(f"crash {shlex.quote(vmlinux_name)} {shlex.quote(dump_name)}"
                     "   # then: " + ", ".join([*then, *REPRODUCE_COMMANDS]))
    return "## Reproduce\n\n" + md.fence(lines, "sh")


def _errors(a: Analysis) -> str:
    if not a.errors:
        return ""
    return "## Notes\n\nWhat this report could not include:\n\n" + "\n".join(
        f"- {md.inline(e)}" for e in a.errors)
