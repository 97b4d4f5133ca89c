"""crash's current context: the task `bt`, `task`, `vm`, `files` and `vtop` use when given none.

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


def context_address(session: Session) -> int | None:
    """The task_struct address `set` chose, or None (then: the panic task)."""
    return _CONTEXT.get(session)


def set_context_address(session: Session, address: int | None) -> None:
    """Make a task (its task_struct address) the current context; None: back to the panic task."""
    if address is None:
        _CONTEXT.pop(session, None)
    else:
        _CONTEXT[session] = address
