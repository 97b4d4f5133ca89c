"""locals: a frame's arguments and local variables (crashtui's own command, after gdb's
`info args` / `info locals` and drgn's `frame.locals()`; crash has none)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from crashtui.commands.context import context_address, context_frame
from crashtui.commands.registry import CommandError, command
from crashtui.commands.struct import types_of
from crashtui.commands.values import Printer, func_pointer_name, string_literal
from crashtui.debuginfo.ctype import CTypeError, Place, member_path
from crashtui.errors import CrashtuiError
from crashtui.kernel.framevars import frame_variables, located_variables

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace
    from crashtui.analysis.session import Session
    from crashtui.analysis.variables import FrameVariable, FrameVariables

_USAGE = "locals [-x] [-e] [FRAME#] [[*]NAME[.member|->member|[index]...]]"


def declaration(type_name: str, name: str) -> str:
    """`char buf[1024]`, `struct kthread *self`, `int ret` from a type spelling and a name."""
    if " [" in type_name:
        base, _, dims = type_name.partition(" [")
        return f"{base} {name}[{dims}"
    if "(*)" in type_name:
        return type_name.replace("(*)", f"(*{name})", 1)
    return f"{type_name}{name}" if type_name.endswith("*") else f"{type_name} {name}"


def _backtrace(session: Session) -> Backtrace:
    chosen = context_address(session)
    if chosen is not None:
        return session.backtrace_of(chosen)
    bt = session.panic_backtrace
    if bt is None:
        backtraces = session.backtraces
        if not backtraces:
            raise CommandError("locals: no CPU registers in the dump")
        bt = backtraces[0]
    return bt


def select_frame(session: Session, bt: Backtrace, number: int | None,
                 exception: bool) -> FrameVariables:
    """The variables of frame `number` (None: the backtrace's culprit frame)."""
    if number is None:
        fv = located_variables(session, bt)
        if fv is None:
            raise CommandError("locals: no frame to show (give a frame number)")
        return fv
    frame = next((f for f in bt.frames if f.index == number and not f.inline), None)
    if frame is None:
        raise CommandError(f"locals: no frame #{number} in PID {bt.pid}'s backtrace")
    if exception and (frame.exception is None or frame.exception.user_mode):
        raise CommandError(f"locals: frame #{number} has no kernel-mode exception RIP")
    return frame_variables(session, bt, frame, exception=exception)


def _value_text(printer: Printer, v: FrameVariable) -> str:
    if not v.known or v.data is None or v.ctype is None:
        return v.display()
    ct = v.ctype
    t = ct.target
    if ct.kind == "array" and t is not None and t.kind == "int" and t.char and t.size == 1 \
            and not printer.hex_ints:
        chars, nul, rest = v.data.partition(b"\0")
        if nul and not rest.strip(b"\0") and len(rest) >= 8:  # gdb's <repeats N times>
            return f"{string_literal(chars)}, '\\000' <repeats {len(rest) + 1} times>"
    try:
        text = printer.top(ct, v.data, v.address or 0)
    except CrashtuiError:
        return v.value or ""
    if ct.kind == "ptr":  # the cast as DWARF spells the type (`int (*)(void *)`)
        for prefix in (f"({ct.name}) ", f"({func_pointer_name(ct)}) "):
            if text.startswith(prefix):
                return f"({v.type}) {text[len(prefix):]}"
    return text


def _member(session: Session, printer: Printer, v: FrameVariable, path: str) -> list[str]:
    """`NAME->a.b` of a variable: a pointer's target or a struct in memory, followed."""
    types = printer.types
    shown = path
    if not v.known or v.ctype is None or v.data is None:
        raise CommandError(f"locals: {v.name} is {v.display()}")
    ct = v.ctype
    if path.startswith("->"):
        if ct.kind != "ptr" or ct.target is None:
            raise CommandError(f"locals: {v.name} is not a pointer")
        start = Place(int.from_bytes(v.data[:8], "little"), ct.target)
        path = "." + path[2:] if len(path) > 2 else ""
        if not path:
            shown = ""
    elif v.address is not None:
        start = Place(v.address, ct)
    else:
        raise CommandError(f"locals: {v.name} is in a register, not in memory: use ->")

    def deref(addr: int) -> int:
        return session.kernel.read_u64(addr)

    try:
        place = member_path(types, start, path, deref)
        size = place.type.size or 0
        data = session.kernel.read(place.address, size) if size else b""
    except CTypeError as exc:
        raise CommandError(f"locals: {exc.message}") from None
    except CrashtuiError as exc:
        raise CommandError(f"locals: {exc.message}") from None
    return f"{v.name}{shown} = {printer.top(place.type, bytes(data), place.address)}" \
        .split("\n")


@command("locals", "crashtui's own: arguments and local variables of a frame (DWARF)", _USAGE)
def cmd_locals(session: Session, args: list[str]) -> list[str]:
    hex_ints = exception = False
    rest: list[str] = []
    for a in args:
        if a == "-x":
            hex_ints = True
        elif a == "-e":
            exception = True
        elif a.startswith("-"):
            raise CommandError(f"locals: unknown option {a} (usage: {_USAGE})")
        else:
            rest.append(a)
    number: int | None = None
    if rest and re.fullmatch(r"#?\d+", rest[0]):
        number = int(rest.pop(0).lstrip("#"))
    if exception and number is None:
        raise CommandError("locals: -e needs a frame number")
    name = rest.pop(0) if rest else None
    if rest:
        raise CommandError(f"locals: too many arguments (usage: {_USAGE})")
    if number is None and not exception and (selected := context_frame(session)) is not None:
        number, exception = selected  # the frame selected in the app (gdb's `frame N`)
    try:
        bt = _backtrace(session)
        fv = select_frame(session, bt, number, exception)
    except CommandError:
        raise
    except CrashtuiError as exc:
        raise CommandError(f"locals: {exc.message}") from None
    printer = Printer(session, types_of(session), hex_ints=hex_ints)
    if name is not None:
        star = name.startswith("*")
        m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name.lstrip("*"))
        if m is None:
            raise CommandError(f"locals: invalid variable name: {name}")
        v = fv.named(m.group(0))
        if v is None:
            raise CommandError(f"locals: no variable {m.group(0)} in this frame")
        path = name.lstrip("*")[m.end():]
        if star:  # *NAME: what the pointer points to (crash's `struct TYPE ADDR`)
            if path:
                raise CommandError("locals: *NAME takes no member path (use NAME->member)")
            lines = _member(session, printer, v, "->")
            return ["*" + lines[0], *lines[1:]]
        if path:
            return _member(session, printer, v, path)
        return f"{v.name} = {_value_text(printer, v)}".split("\n")
    where = f"[exception RIP: {fv.function}]" if fv.exception else (fv.function or "??")
    head = [f"PID: {bt.pid:<7} TASK: {bt.task:x}  CPU: {bt.cpu}  COMMAND: \"{bt.command}\"",
            f" #{fv.frame} {where} at {fv.pc:x}"]
    if fv.error:
        return [*head, f"    ({fv.error})"]
    out = head
    last: tuple[str, bool] | None = None
    for v in fv.variables:
        scope = (v.function, v.inlined)
        if v.inlined and scope != last:
            out.append(f"   inlined {v.function}():")
        last = scope
        pad = "      " if v.inlined else "    "
        text = _value_text(printer, v).replace("\n", "\n" + pad)
        kind = "(arg) " if v.parameter else ""
        out += f"{pad}{kind}{declaration(v.type, v.name)} = {text}".split("\n")
    if not fv.variables:
        out.append("    (no arguments or locals)")
    return out
