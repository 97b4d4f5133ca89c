"""waitq SYMBOL | STRUCT.MEMBER ADDR | ADDR: the tasks queued on a wait queue, as crash
prints them (kernel.c cmd_waitq(), dump_waitq())."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.tasks import Task

USAGE = "waitq [ symbol ] | [ struct.member struct_addr ] | [ address ]"
THREAD_SIZE = 16384  # x86-64 kernel stacks (THREAD_SIZE_ORDER 2)


def _hex(text: str) -> int | None:
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        return None
    return int(t, 16)


def _task_of(session: Session, value: int) -> Task | None:
    """crash's task_to_context(), then task_to_context(stkptr_to_task())."""
    tasks = session.tasks.tasks
    for t in tasks:
        if t.address == value:
            return t
    for t in tasks:
        if t.stack and t.stack <= value < t.stack + THREAD_SIZE:
            return t
    return None


def waitq_lines(session: Session, args: list[str]) -> list[str]:
    from crashtui.commands.sched import task_header
    from crashtui.kernel.waitq import wait_queue

    if not 1 <= len(args) <= 2:
        raise CommandError(f"waitq: usage: {USAGE}")
    k = session.kernel
    name: str | None = None
    first = args[0]
    q = _hex(first) if len(first) > 8 or first.startswith("0x") else None
    if q is None and "." not in first:
        q = k.symbol_or_none(first)
        if q is None:
            q = _hex(first)
            if q is None:
                raise CommandError(f"waitq: invalid symbol or address: {first}")
        else:
            name = first
    elif q is None:
        struct_name, _dot, member = first.partition(".")
        if len(args) != 2:
            return [f"must supply an address for {struct_name}"]
        base = _hex(args[1])
        if base is None:
            raise CommandError(f"waitq: invalid address: {args[1]}")
        if not k.btf.has_member(struct_name, member):
            return [f"{member} is not a member of {struct_name}"]
        q = base + k.offsetof(struct_name, member)
    try:
        wq = wait_queue(k, q)
    except CrashtuiError as exc:
        raise CommandError(f"waitq: {exc.message}") from None
    if not wq.waiters:
        if wq.error:
            raise CommandError(f"waitq: {wq.error}")
        return [f'wait queue "{name}" ({q:x}) is empty' if name else
                f"wait queue {q:x} is empty"]
    out: list[str] = []
    for private in wq.waiters:
        t = _task_of(session, private)
        if t is None:  # crash stops at the first entry that is not a task
            break
        out.append(task_header(t))
    if wq.error:
        out.append(f"waitq: {wq.error}")
    return out


@command("waitq", "the tasks waiting on a wait queue (a symbol, struct.member ADDR or address)",
         USAGE)
def cmd_waitq(session: Session, args: list[str]) -> list[str]:
    return waitq_lines(session, args)
