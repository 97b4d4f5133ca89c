"""crash's current context: the task `bt`, `task`, `vm`, `files` and `vtop` use when given none,
and the frame `locals` shows when given none.

It starts as the panic task (`task.current_task`); `set PID|TASK` and the app (selecting a
CPU or a task) move it. Kept per Session, outside it: the context is the command line's, not
a fact of the dump.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

_CONTEXT: WeakKeyDictionary[Session, int] = WeakKeyDictionary()
# the frame selected in the context's backtrace: (frame number, its exception RIP or not)
_FRAME: WeakKeyDictionary[Session, tuple[int, bool]] = WeakKeyDictionary()


def context_address(session: Session) -> int | None:
    """The task_struct address `set` chose, or None (then: the panic task)."""
    return _CONTEXT.get(session)


def set_context_address(session: Session, address: int | None) -> None:
    """Make a task (its task_struct address) the current context; None: back to the panic task.
    The selected frame goes with the task it was of."""
    _FRAME.pop(session, None)
    if address is None:
        _CONTEXT.pop(session, None)
    else:
        _CONTEXT[session] = address


def context_frame(session: Session) -> tuple[int, bool] | None:
    """The frame the app selected in the current task's backtrace (number, exception RIP)."""
    return _FRAME.get(session)


def set_context_frame(session: Session, number: int | None, exception: bool = False) -> None:
    """Select a frame of the current task's backtrace (gdb's `frame N`); None: the culprit."""
    if number is None:
        _FRAME.pop(session, None)
    else:
        _FRAME[session] = (number, exception)
