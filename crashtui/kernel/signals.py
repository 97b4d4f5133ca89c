"""A task's signal state (include/linux/sched/signal.h): the thread group's handlers
(sighand_struct.action[]), the task's blocked mask and pending signals (private and shared).

Read as crash's `sig` reads it: one 64-bit word per sigset_t (x86-64's _NSIG_WORDS is 1),
SIGPENDING from thread_info.flags' TIF_SIGPENDING bit (the architecture's: x86-64's 2,
arm64's 0), queues walked bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import list_for_each

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

NSIG = 64
MAX_QUEUED = 1 << 16  # signals on one queue (RLIMIT_SIGPENDING is far below on the samples)


class SignalLayoutError(KernelReadError):
    """task_struct lacks the signal members the walk needs."""


@dataclass(frozen=True)
class SigAction:
    """One sighand_struct.action[sig - 1] (a struct k_sigaction)."""

    signo: int
    address: int
    handler: int
    mask: int
    flags: int


@dataclass(frozen=True)
class SigQueueEntry:
    signo: int
    info: int  # the struct sigqueue's siginfo address


@dataclass
class SignalState:
    """What `sig` shows for one task."""

    task: int
    signal_struct: int
    nr_threads: int | None
    actions: list[SigAction]
    sigpending: bool
    blocked: int
    private_pending: int
    private_queue: list[SigQueueEntry]
    shared_pending: int | None  # None without signal_struct.shared_pending
    shared_queue: list[SigQueueEntry]
    errors: list[str] = field(default_factory=list)


def _queue(kernel: Kernel, head: int, errors: list[str]) -> list[SigQueueEntry]:
    """The sigqueues on a struct sigpending's list (list is sigqueue's first link)."""
    o_list = kernel.offsetof("sigqueue", "list")
    o_info = kernel.offsetof("sigqueue", "info")
    o_signo = kernel.offsetof("kernel_siginfo", "si_signo") \
        if kernel.btf.has_type("struct kernel_siginfo") else 0
    out = []
    try:
        for node in list_for_each(kernel, head, limit=MAX_QUEUED):
            q = node - o_list
            out.append(SigQueueEntry(kernel.read_s32(q + o_info + o_signo), q + o_info))
    except CrashtuiError as exc:
        errors.append(f"signal queue at {head:x}: {exc}")
    return out


def task_signals(kernel: Kernel, task: int) -> SignalState:
    """The signal state of the task_struct at `task`."""
    btf = kernel.btf
    if not btf.has_member("task_struct", "sighand") or \
            not btf.has_member("task_struct", "pending"):
        raise SignalLayoutError("task_struct has no sighand/pending members")
    off = kernel.offsetof
    errors: list[str] = []
    signal = kernel.read_u64(task + off("task_struct", "signal"))
    nr_threads = None
    if signal and btf.has_member("signal_struct", "nr_threads"):
        nr_threads = kernel.read_s32(signal + off("signal_struct", "nr_threads"))
    actions: list[SigAction] = []
    sighand = kernel.read_u64(task + off("task_struct", "sighand"))
    if signal and sighand:
        o_action = off("sighand_struct", "action")
        size = kernel.sizeof("struct k_sigaction")
        o_handler = off("k_sigaction", "sa.sa_handler")
        o_flags = off("k_sigaction", "sa.sa_flags")
        o_mask = off("k_sigaction", "sa.sa_mask")
        raw = kernel.read(sighand + o_action, NSIG * size)
        for i in range(NSIG):
            base = i * size

            def word(at: int, base: int = base) -> int:
                return int.from_bytes(raw[base + at:base + at + 8], "little")
            actions.append(SigAction(i + 1, sighand + o_action + base, word(o_handler),
                                     word(o_mask), word(o_flags)))
    if btf.has_member("task_struct", "thread_info"):
        ti_flags = kernel.read_u64(task + off("task_struct", "thread_info.flags"))
    else:
        ti_flags = kernel.read_u64(kernel.read_u64(task + off("task_struct", "stack")))
    pending = task + off("task_struct", "pending")
    o_sig = off("sigpending", "signal")
    o_plist = off("sigpending", "list")
    shared: int | None = None
    shared_queue: list[SigQueueEntry] = []
    if signal and btf.has_member("signal_struct", "shared_pending"):
        sp = signal + off("signal_struct", "shared_pending")
        shared = kernel.read_u64(sp + o_sig)
        shared_queue = _queue(kernel, sp + o_plist, errors)
    return SignalState(
        task=task, signal_struct=signal, nr_threads=nr_threads, actions=actions,
        sigpending=bool(ti_flags >> kernel.arch.tif_sigpending & 1),
        blocked=kernel.read_u64(task + off("task_struct", "blocked")),
        private_pending=kernel.read_u64(pending + o_sig),
        private_queue=_queue(kernel, pending + o_plist, errors),
        shared_pending=shared, shared_queue=shared_queue, errors=errors)
