"""bt -f: the raw stack words of each frame, as crash's x86_64_display_full_frame() prints them.

Between two frames, the words from the slot after the earlier frame's return address up to
and including the later frame's slot are printed before the later frame, two to a line:
`    ADDR: 0000000000000000 ffffffff9f7646b7 `. Nothing is printed when the two frames are on
different stacks (an IRQ or exception stack switch) or implausibly far apart. On arm64 the
words run from the earlier frame's record to the later one's, as crash's arm64 bt -f.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Frame
    from crashtui.analysis.session import Session

MAX_FRAME_BYTES = 32 * 1024  # a kernel stack is 16 KiB; never dump more than two


def frame_words(session: Session, prev: Frame, frame: Frame) -> list[str]:
    """The `bt -f` lines between `prev` and the later `frame`; on arm64 the words from the
    earlier frame record up to the later one (arm64_display_full_frame)."""
    arm64 = session.kernel.arch.name == "arm64"
    start, end = (prev.sp, frame.sp - 8) if arm64 else (prev.sp + 8, frame.sp)
    if end < start or end - start > MAX_FRAME_BYTES:
        return []
    if prev.stack and frame.stack and prev.stack != frame.stack:
        return []
    try:
        raw = session.kernel.read(start, end - start + 8)
    except CrashtuiError:
        return [f"    bt: cannot read the stack at {start:x}"]
    vals = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
    out = []
    for i in range(0, len(vals), 2):
        out.append(f"    {start + 8 * i:x}: " + "".join(f"{v:016x} " for v in vals[i:i + 2]))
    return out
