"""A row of the frames pane as the app passes it around: a frame, or an exception RIP."""

from __future__ import annotations

from dataclasses import dataclass

from crashtui.analysis.backtrace import Backtrace, ExceptionFrame, Frame


@dataclass
class FrameRef:
    """A frame of a backtrace, or the exception RIP of one of its exception frames."""

    backtrace: Backtrace
    frame: Frame | None
    exception: ExceptionFrame | None = None

    @property
    def pc(self) -> int:
        if self.exception is not None:
            return self.exception.rip
        return self.frame.pc if self.frame is not None else 0

    @property
    def exact(self) -> bool:
        """True when pc is the faulting instruction, not a return address."""
        if self.exception is not None:
            return True
        return self.frame is not None and not self.frame.return_address

    @property
    def lookup(self) -> int:
        """The address whose line is the row's (a return address's call: pc - 1)."""
        return self.pc if self.exact else self.pc - 1
