"""search [-s START] [-k | -u | -p] [-e END | -l LENGTH] [-m MASK] [-w | -h] VALUE...: where
memory holds a value, as crash's `search` prints it (memory.c cmd_search()).

Bounded: a byte budget (a `search stopped after N MiB` line says so), and in the app Ctrl+C
ends a running search (the worker's cancellation is polled every 256 pages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.search import Searcher, SearchResult, StringSearcher

USAGE = ("search [-s start] [-k | -K | -V | -u | -p | -t | -T] [-e end | -l length] [-m mask] "
         "[-w | -h | -c] value | symbol | string ...")
THREAD_SIZE = 16384  # x86-64 kernel stacks (THREAD_SIZE_ORDER 2)
USER_END = 0x00007FFFFFFFF000  # TASK_SIZE_MAX (4-level paging)


def _worker_cancelled() -> bool:
    """True when the app's command worker running this search was cancelled (Ctrl+C)."""
    try:
        from textual.worker import get_current_worker

        return bool(get_current_worker().is_cancelled)
    except Exception:  # noqa: BLE001 - not in a worker (crashtui -c, tests)
        return False


def _hex(text: str, what: str) -> int:
    t = text.lower().removeprefix("0x")
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise CommandError(f"search: invalid {what}: {text}")
    return int(t, 16)


def _address(session: Session, text: str, what: str) -> int:
    addr = session.kernel.symbol_or_none(text)
    return addr if addr is not None else _hex(text, what)


def search_lines(session: Session, args: list[str]) -> list[str]:
    from crashtui.kernel.search import (
        ULONG_MAX,
        kernel_pages,
        physical_pages,
        user_pages,
    )

    start: str | None = None
    end: str | None = None
    length: int | None = None
    memtype = "k"
    mask = 0
    size = 8
    values: list[tuple[int, str | None]] = []
    strings: list[str] = []
    skip: tuple[str, ...] = ()
    chars = False
    i = 0
    while i < len(args):
        a = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if a in ("-s", "-e", "-l", "-m"):
            if value is None:
                raise CommandError(f"search: {a} needs a value ({USAGE})")
            if a == "-s":
                start = value
            elif a == "-e":
                end = value
            elif a == "-l":
                try:
                    length = int(value, 0)
                except ValueError:
                    raise CommandError(f"search: invalid length: {value}") from None
            else:
                mask = _hex(value, "mask")
            i += 2
            continue
        if a in ("-k", "-u", "-p", "-t", "-T"):
            memtype = a[1]
        elif a in ("-K", "-V"):  # -k without the vmalloc'd / the unity-mapped ranges
            memtype = "k"
            skip = ("vmalloc", "vmemmap") if a == "-K" else ("unity", "kernel")
        elif a == "-w":
            size = 4
        elif a == "-h":
            size = 2
        elif a == "-c":
            chars = True
        elif a.startswith("-") and len(a) > 1:
            raise CommandError(f"search: unsupported option {a} ({USAGE})")
        elif chars:
            if a:  # crash drops empty strings
                strings.append(a)
        else:
            addr = session.kernel.symbol_or_none(a)
            if addr is not None:
                values.append((addr, None if mask else a))
            else:
                values.append((_hex(a, "value"), None))
        i += 1
    if chars:  # values read before -c are strings too
        strings = [name or f"{v:x}" for v, name in values] + strings
        values = [(0, None)]
    if not values:
        raise CommandError(f"search: no value to search for ({USAGE})")
    if end is not None and length is not None:
        raise CommandError("search: -e and -l are mutually exclusive")
    limit = (1 << (8 * size)) - 1
    for v, _name in values:
        if v > limit:
            kind = "-w" if size == 4 else "-h"
            raise CommandError(f"search: value too large for {kind} option: {v:x}")
    k = session.kernel
    if memtype in ("t", "T"):
        if start is not None or end is not None or length is not None:
            raise CommandError("search: -t and -T take no -s, -e or -l")
        return _stack_lines(session, values, size, mask, memtype == "T", strings)
    if memtype == "p":
        lo = _hex(start, "start") if start is not None else 0
        hi = (_hex(end, "end") if end is not None else
              lo + length if length is not None else (k.dump.info.max_pfn + 1) * 4096)
        pages = physical_pages(k, lo, hi)
    elif memtype == "u":
        from crashtui.commands.task import current_task

        user_end = USER_END
        if k.arch.name == "arm64":  # TASK_SIZE: 1 << vabits_actual
            from crashtui.arch.arm64 import ARM64

            user_end = 1 << ARM64.layout(k).va_bits_actual
        lo = _hex(start, "start") if start is not None else 0
        hi = (_hex(end, "end") if end is not None else
              lo + length if length is not None else user_end)
        if lo >= k.arch.kernel_start or hi > user_end + 0x1000:
            raise CommandError("search: invalid user virtual address range")
        task = current_task(session)
        if not task.mm:
            raise CommandError("search: current context has no user address space")
        pages = user_pages(k, task.address, lo, hi)
    else:
        lo = _address(session, start, "start") if start is not None else k.arch.kernel_start
        hi = (_address(session, end, "end") if end is not None else
              lo + length if length is not None else ULONG_MAX)
        if lo < k.arch.kernel_start:
            raise CommandError(f"search: invalid kernel virtual address: {lo:x}")
        pages = kernel_pages(k, lo, hi, skip)
    if hi <= lo:
        raise CommandError("search: the end is not above the start")
    lo &= ~7  # crash rounds the start down to a long
    searcher = _searcher(values, size, mask, strings)
    try:
        result = searcher.run(page for page in pages if page[0] + len(page[1]) > lo)
    except CrashtuiError as exc:
        raise CommandError(f"search: {exc.message}") from None
    return _hit_lines(result, values)


def _searcher(values: list[tuple[int, str | None]], size: int, mask: int,
              strings: list[str]) -> Searcher | StringSearcher:
    from crashtui.kernel.search import Searcher, StringSearcher

    if strings:
        return StringSearcher([s.encode("utf-8", "surrogateescape") for s in strings],
                              cancelled=_worker_cancelled)
    return Searcher([v for v, _n in values], size, mask, cancelled=_worker_cancelled)


def _hit_lines(result: SearchResult, values: list[tuple[int, str | None]]) -> list[str]:
    out = []
    for h in result.hits:
        if h.text:
            out.append(f"{h.address:x}: {h.text}")
            continue
        name = values[h.which][1]
        out.append(f"{h.address:x}: {h.value:x} {'(' + name + ')' if name else ''}")
    if result.stopped:
        out.append(f"search: {result.stopped}; narrow it with -s/-e/-l")
    return out


def _stack_lines(session: Session, values: list[tuple[int, str | None]], size: int, mask: int,
                 active_only: bool, strings: list[str]) -> list[str]:
    """crash's -t/-T: each task's kernel stack (-T: the tasks on a CPU), a task header
    before its first hit, a blank line between tasks."""
    from crashtui.commands.sched import task_header
    from crashtui.kernel.pid import running_tasks
    from crashtui.kernel.search import stack_pages

    active = set(running_tasks(session.kernel)) if active_only else set()
    out: list[str] = []
    budget = None
    for t in session.tasks.tasks:
        if not t.stack or (active_only and t.address not in active):
            continue
        searcher = _searcher(values, size, mask, strings)
        if budget is not None:
            searcher.budget = budget
        result = searcher.run(stack_pages(session.kernel, t.stack, t.stack + THREAD_SIZE))
        budget = searcher.budget - result.bytes_read
        if result.hits:
            out += ([""] if out else []) + [task_header(t)]
            out += _hit_lines(result, values)
        elif result.stopped:
            out += _hit_lines(result, values)
        if result.stopped:
            break
    return out


@command("search", "search kernel (-k), user (-u) or physical (-p) memory for values", USAGE)
def cmd_search(session: Session, args: list[str]) -> list[str]:
    return search_lines(session, args)
