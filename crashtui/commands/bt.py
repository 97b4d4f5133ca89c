"""bt and foreach bt: backtraces printed in crash's layout.

`format_backtrace(bt)` renders one Backtrace exactly like crash 8.0's x86-64 `bt`: the task
header, ` #N [sp] function at pc`, exception frames (`[exception RIP: name+decimal offset]`
then the registers), `--- <NMI exception stack> ---` style markers where the trace changes
stacks. crashtui extensions: `-i` also prints the DWARF inline frames of each frame (as
unnumbered `[inline]` lines, innermost first, above the frame they were inlined into) and an
unwind that stops early ends with `bt: <reason>`. With `-l`, the source line under a frame is
that of its call instruction (return address - 1), not of the return address crash uses.

On arm64 the frames follow crash's arm64_print_stackframe_entry: the bracket is the frame
record (x29), a return address is shown as its `bl` (pc - 4), and a trace ends at kthread,
kthreadd, start_kernel or secondary_start_kernel. An exact pc (a CPU's registers, the pc an
EL1 exception interrupted) is shown as it is, where crash subtracts 4 from it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame, Frame, SourceLocation
from crashtui.analysis.backtraces import fill_missing_sources
from crashtui.commands.context import context_address
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task


def format_header(bt: Backtrace) -> str:
    """crash's task header: `PID: 1        TASK: ffff...  CPU: 3    COMMAND: "init"`."""
    return f'PID: {bt.pid:<7}  TASK: {bt.task:x}  CPU: {bt.cpu:<3}  COMMAND: "{bt.command}"'


def _source_text(src: SourceLocation) -> str:
    return f"{src.file}: {src.line}"


def format_registers(ef: ExceptionFrame) -> list[str]:
    """The register block crash prints for an exception frame (pt_regs)."""
    r = ef.registers
    if "pstate" in r:  # arm64 (crashtui.arch.arm64)
        from crashtui.commands.regs_arm64 import format_arm64_registers

        return format_arm64_registers(ef)

    def g(name: str) -> int:
        return r.get(name, 0)

    if ef.partial:  # only the iret frame is known (an entry point interrupted)
        return [f"    RIP: {g('rip'):016x}  RSP: {g('rsp'):016x}  RFLAGS: {g('rflags'):08x}",
                f"    CS: {g('cs'):04x}  SS: {g('ss'):04x}  (iret frame only)"]
    return [
        f"    RIP: {g('rip'):016x}  RSP: {g('rsp'):016x}  RFLAGS: {g('rflags'):08x}",
        f"    RAX: {g('rax'):016x}  RBX: {g('rbx'):016x}  RCX: {g('rcx'):016x}",
        f"    RDX: {g('rdx'):016x}  RSI: {g('rsi'):016x}  RDI: {g('rdi'):016x}",
        f"    RBP: {g('rbp'):016x}   R8: {g('r8'):016x}   R9: {g('r9'):016x}",
        f"    R10: {g('r10'):016x}  R11: {g('r11'):016x}  R12: {g('r12'):016x}",
        f"    R13: {g('r13'):016x}  R14: {g('r14'):016x}  R15: {g('r15'):016x}",
        f"    ORIG_RAX: {g('orig_rax'):016x}  CS: {g('cs'):04x}  SS: {g('ss'):04x}",
    ]


def format_exception(ef: ExceptionFrame, with_lines: bool = False,
                     user_label: bool = False) -> list[str]:
    """`[exception RIP: ...]` (kernel mode) and the registers, like x86_64_exception_frame()."""
    out: list[str] = []
    if "pstate" in ef.registers:  # arm64: crash names the PC in the register block
        pass
    elif not ef.user_mode:
        out.append(f"    [exception RIP: {ef.rip_symbol}]")
    elif user_label:
        out.append("    [exception RIP: user space]")
    out += format_registers(ef)
    if with_lines and not ef.user_mode and ef.function is not None and ef.source is not None:
        out.append(f"    {_source_text(ef.source)}")
    return out


# crash's arm64_print_stackframe_entry ends a trace at these (BACKTRACE_COMPLETE_KERNEL)
ARM64_LAST_FRAMES = frozenset({"start_kernel", "secondary_start_kernel", "kthread", "kthreadd"})


def format_frame(frame: Frame, arch: str = "x86_64") -> str:
    """` #N [sp] function at pc` (plus ` [module]`), crash's x86_64_print_stack_entry(); on
    arm64 a return address is shown as its `bl` (pc - 4), as arm64_print_stackframe_entry."""
    pc = frame.pc - 4 if arch == "arm64" and frame.return_address else frame.pc
    name = frame.function if frame.function is not None else f"{pc:x}"
    line = f"{' ' if frame.index < 10 else ''}#{frame.index} [{frame.sp:x}] {name} at {pc:x}"
    if frame.module:
        line += f" [{frame.module}]"
    return line


def format_backtrace(bt: Backtrace, with_lines: bool = False, with_inline: bool = False,
                     header: bool = True,
                     words: Callable[[Frame, Frame], list[str]] | None = None) -> list[str]:
    """One backtrace in crash's `bt` layout (inline frames only with `with_inline`; with
    `words` (bt -f), the stack words between each frame and the next before the next)."""
    out = [format_header(bt)] if header else []
    prev: Frame | None = None
    if bt.no_stack:
        return [*out, "(no stack)"]
    if bt.start is not None:
        out += format_exception(bt.start, with_lines, user_label=True)
    marked: set[int] = set()  # frames whose stack marker went before their inline frames
    for i, frame in enumerate(bt.frames):
        if frame.inline:
            if with_inline:
                if i == 0 or not bt.frames[i - 1].inline:  # the group is on the frame's stack
                    owner = next((f for f in bt.frames[i + 1:] if not f.inline), None)
                    if owner is not None and owner.stack_name:
                        out.append(f"--- <{owner.stack_name}> ---")
                        marked.add(id(owner))
                where = f"  {_source_text(frame.source)}" if frame.source else ""
                out.append(f"    [inline] {frame.function or '??'}{where}")
            continue
        if words is not None and prev is not None:
            out += words(prev, frame)
        prev = frame
        if frame.stack_name and id(frame) not in marked:
            out.append(f"--- <{frame.stack_name}> ---")
        out.append(format_frame(frame, bt.arch))
        if with_lines and frame.source is not None:
            out.append(f"    {_source_text(frame.source)}")
        if frame.exception is not None:
            out += format_exception(frame.exception, with_lines)
        if bt.arch == "arm64" and frame.function in ARM64_LAST_FRAMES:
            break  # crash stops here; the app and JSON keep the frames below
    if bt.user_exception is not None:
        out += format_exception(bt.user_exception, with_lines)
    if bt.start is not None and bt.start.user_mode and "pstate" in bt.start.registers \
            and all(f.inline for f in bt.frames):
        # arm64 task stopped in user mode: crash's arm64_back_trace_cmd (BT_USER_SPACE)
        out.append(" #0 [user space]")
    if bt.error:
        out.append(f"bt: {bt.error}")
    return out


def _join(blocks: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            out.append("")
        out += block
    return out


def _parse_flags(args: list[str], allowed: str) -> tuple[set[str], list[str], str | None]:
    """Split `-al`-style flags from positional arguments; `-c CPU` takes a value."""
    flags: set[str] = set()
    rest: list[str] = []
    cpu_arg: str | None = None
    it = iter(args)
    for arg in it:
        if arg.startswith("-") and len(arg) > 1 and not arg[1:].isdigit():
            for ch in arg[1:]:
                if ch not in allowed:
                    raise CommandError(f"bt: unsupported option -{ch}")
                if ch == "c":
                    cpu_arg = next(it, None)
                    if cpu_arg is None:
                        raise CommandError("bt: -c needs a CPU number")
                flags.add(ch)
        else:
            rest.append(arg)
    return flags, rest, cpu_arg


def _tasks_matching(session: Session, arg: str) -> list[Task]:
    """Tasks named by a PID (decimal) or a task_struct address (hex)."""
    tasks = session.tasks.tasks
    try:
        if arg.lower().startswith("0x") or (len(arg) > 8 and all(
                c in "0123456789abcdefABCDEF" for c in arg)):
            addr = int(arg, 16)
            found = [t for t in tasks if t.address == addr]
        else:
            pid = int(arg, 10)
            found = [t for t in tasks if t.pid == pid]
    except ValueError:
        raise CommandError(f"bt: invalid task or pid value: {arg}") from None
    if not found:
        raise CommandError(f"bt: invalid task or pid value: {arg}")
    return found


@command("bt", "backtrace of the panic task, every CPU (-a), a PID/task, with -l source lines, "
         "-f stack words", "bt [-a] [-l] [-i] [-f] [-c CPU] [PID | TASK ...]")
def cmd_bt(session: Session, args: list[str]) -> list[str]:
    flags, rest, cpu_arg = _parse_flags(args, "alicf")
    lines, inline = "l" in flags, "i" in flags
    if "a" in flags:
        bts = session.backtraces
    elif cpu_arg is not None:
        try:
            cpus = [int(c) for c in cpu_arg.split(",")]
        except ValueError:
            raise CommandError(f"bt: invalid CPU list: {cpu_arg}") from None
        all_bts = session.backtraces
        for c in cpus:
            if not 0 <= c < len(all_bts):
                raise CommandError(f"bt: invalid cpu: {c}")
        bts = [all_bts[c] for c in cpus]
    elif rest:
        bts = [session.backtrace_of(t.address) for arg in rest
               for t in _tasks_matching(session, arg)]
    elif (chosen := context_address(session)) is not None:  # `set PID`, or the app's task
        bts = [session.backtrace_of(chosen)]
    else:
        bt = session.panic_backtrace
        if bt is None:
            backtraces = session.backtraces
            if not backtraces:
                raise CommandError("bt: no CPU registers in the dump")
            bt = backtraces[0]
        bts = [bt]
    if lines:
        bts = [fill_missing_sources(session.backtrace_builder, bt) for bt in bts]
    if inline:
        bts = [session.with_inline_frames(bt) for bt in bts]
    words = None
    if "f" in flags:
        from crashtui.commands.btfull import frame_words

        def words(a: Frame, b: Frame) -> list[str]:
            return frame_words(session, a, b)
    return _join([format_backtrace(bt, lines, inline, words=words) for bt in bts])


FOREACH_STATES = ("RU", "IN", "UN", "ST", "ZO", "TR", "SW", "DE", "PA", "WA", "ID", "NE")


@command("foreach", "run bt, ps, task, files, vm, sig, net or set for every task, or those "
         "selected", "foreach [PID|TASK|NAME|'REGEX'|kernel|user|gleader|active|STATE ...] "
         "bt [-l] [-i] [-f] | ps | task [-x] | files | vm | sig [-g] | net [-s] | set")
def cmd_foreach(session: Session, args: list[str]) -> list[str]:
    from crashtui.commands.foreach import (
        FOREACH_COMMANDS,
        foreach_lines,
        selected_tasks,
        unknown_selectors,
    )

    keyword = next((i for i, a in enumerate(args) if a in FOREACH_COMMANDS), None)
    if keyword is not None and "bt" not in args[:keyword]:
        selectors = args[:keyword]
        states = {a for a in selectors if a in FOREACH_STATES}
        return foreach_lines(session, states, [a for a in selectors if a not in states],
                             args[keyword], args[keyword + 1:])
    at = args.index("bt") if "bt" in args else None
    if at is None:
        raise CommandError("foreach: supported: foreach [PID|TASK|NAME|kernel|user|gleader|"
                           "active|STATE ...] bt|ps|task|files|vm|sig|net|set")
    tasks = selected_tasks(session, args[:at])
    unknown = unknown_selectors(session, args[:at])
    args = args[at:]
    flags, rest, _ = _parse_flags(args[1:], "lif")
    if rest:
        raise CommandError(f"foreach: unsupported argument {rest[0]}")
    words = None
    if "f" in flags:
        from crashtui.commands.btfull import frame_words

        def words(a: Frame, b: Frame) -> list[str]:
            return frame_words(session, a, b)
    blocks: list[list[str]] = []
    for task in tasks:
        try:
            bt = session.backtrace_of(task.address)
        except CrashtuiError as exc:
            blocks.append([f"bt: task {task.address:x}: {exc.message}"])
            continue
        if "l" in flags:
            bt = fill_missing_sources(session.backtrace_builder, bt)
        if "i" in flags:
            bt = session.with_inline_frames(bt)
        blocks.append(format_backtrace(bt, "l" in flags, "i" in flags, words=words))
    return unknown + _join(blocks)
