"""The culprit: the one frame every view points at (triage, report, JSON, the app's landing).

In a backtrace it is the first kernel-mode exception frame's RIP (the code a fault, an
interrupt or an NMI stopped) or the first frame outside the machinery lists
(crashtui.analysis.machinery), whichever comes first; in a blocked task's backtrace the
scheduler's and locks' waits are skipped too. `locate` finds it in any backtrace (the app
lands there on every CPU and task); `culprit_at` names it with its module and source line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crashtui.analysis.backtrace import SourceLocation
from crashtui.analysis.machinery import is_machinery, is_wait
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, Frame
    from crashtui.analysis.session import Session


@dataclass(frozen=True)
class Culprit:
    """The code to blame: a function (and where in it), its module and source line, and the
    task and frame of the backtrace it was found in."""

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
    task: int | None = None  # the task_struct whose backtrace holds it
    pid: int | None = None
    command: str | None = None
    exception: bool = False  # it is the RIP of the pt_regs saved after frame `frame`
    source: SourceLocation | None = None  # file:line as DWARF names it (for finding the file)

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

    @property
    def lookup(self) -> int:
        """The address whose line is meant: a return address's call instruction (pc - 1)."""
        return self.address if self.exception or self.reason == "exception RIP" \
            else self.address - 1


@dataclass(frozen=True)
class Located:
    """Where the culprit is in one backtrace."""

    frame: Frame
    exception: bool  # the frame's exception RIP, not the frame itself
    rest: list[Frame]  # the frames after it (the signature's callers)


def frames_of(bt: Backtrace) -> list[Frame]:
    """The backtrace's real frames (no DWARF inline frames)."""
    return [f for f in bt.frames if not f.inline]


def locate(bt: Backtrace, skip_waits: bool = False) -> Located | None:
    """The culprit of one backtrace: the first kernel-mode exception RIP or the first frame
    outside the machinery (and the waits, for a blocked task), or None."""
    frames = frames_of(bt)
    for i, fr in enumerate(frames):
        exc = fr.exception
        if exc is not None and not exc.user_mode and exc.rip:
            return Located(fr, True, frames[i + 1:])
        if fr.function is None or is_machinery(fr.function):
            continue
        if skip_waits and is_wait(fr.function):
            continue
        return Located(fr, False, frames[i + 1:])
    return None


def culprit_at(session: Session, bt: Backtrace, at: Located, reason: str) -> Culprit:
    """The Culprit for a located frame, named and placed in its source."""
    if at.exception:
        c = _from_exception(session, at.frame)
    else:
        c = _from_frame(session, at.frame, reason)
    return dataclasses.replace(c, task=bt.task, pid=bt.pid, command=bt.command)


def short_path(file: str, comp_dir: str | None) -> str:
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


def _located(session: Session, c: Culprit, lookup: int) -> Culprit:
    """c with file:line moved to the culprit function's own line when code was inlined at
    the address, and the inlined functions listed."""
    chain = _inline_chain(session, lookup, c.module)
    if len(chain) < 2 or not chain[-1].file:
        return c
    comp_dir = c.source.comp_dir if c.source else None
    outer = chain[-1]
    inl = tuple((f.function, short_path(f.file, comp_dir) if f.file else None, f.line)
                for f in chain[:-1])
    return dataclasses.replace(c, file=short_path(outer.file, comp_dir), line=outer.line,
                               inlined=inl,
                               source=SourceLocation(outer.file, outer.line, 0, comp_dir))


def _from_frame(session: Session, fr: Frame, reason: str) -> Culprit:
    src = fr.source
    taints, oot = _module_facts(session, fr.module)
    c = Culprit(fr.function, fr.offset, fr.pc, fr.module,
                short_path(src.file, src.comp_dir) if src else None,
                src.line if src else None, taints, oot, fr.index, reason, source=src)
    return _located(session, c, fr.pc - 1 if fr.return_address else fr.pc)


def _from_exception(session: Session, fr: Frame) -> Culprit:
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
                short_path(src.file, src.comp_dir) if src else None,
                src.line if src else None, taints, oot, fr.index, "exception RIP",
                exception=True, source=src)
    return _located(session, c, ef.rip)
