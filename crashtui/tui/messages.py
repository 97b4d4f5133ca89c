"""Messages the panes send to the app: show a backtrace, a frame was selected."""

from __future__ import annotations

from textual.message import Message

from crashtui.analysis.backtrace import Backtrace
from crashtui.tui.frameref import FrameRef


class ShowBacktrace(Message):
    """Show this backtrace in the frames pane (from the CPU list)."""

    def __init__(self, backtrace: Backtrace) -> None:
        super().__init__()
        self.backtrace = backtrace


class ShowTask(Message):
    """Show the backtrace of the task at this address (from a task list)."""

    def __init__(self, task: int, pid: int, comm: str, focus_frames: bool = True) -> None:
        super().__init__()
        self.task = task
        self.pid = pid
        self.comm = comm
        self.focus_frames = focus_frames


class FrameSelected(Message):
    """The frames pane's cursor moved onto a frame or an exception RIP."""

    def __init__(self, ref: FrameRef) -> None:
        super().__init__()
        self.ref = ref
