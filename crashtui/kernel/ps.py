"""Process status like crash's `ps`: every task with its memory use and the CPUs' running tasks.

Memory columns follow crash's get_task_mem_usage() (crash memory.c):
  VSZ   mm->total_vm pages, in KiB
  RSS   mm->rss_stat: MM_FILEPAGES + MM_ANONPAGES + MM_SHMEMPAGES, each only if positive
        (the kernel's get_mm_rss(); crash 8.0.6's numbers on the sample dumps need all
        three). 6.1: struct mm_rss_stat { atomic_long_t count[] }; 6.2+: struct
        percpu_counter rss_stat[] (count plus every CPU's delta). With SPLIT_RSS_COUNTING
        (task_struct.rss_stat exists, up to 6.1) each thread of the process also holds
        unsynced deltas in task->rss_stat.count[], added when positive.
  %MEM  RSS * 100 / pages below high_memory (crash's vt->total_pages), "%.1f"
Zombie and exiting tasks, and tasks without an mm (kernel threads), show zeros. Idle tasks
show PPID 0 and kernel threads (PF_KTHREAD, or no mm unless a zombie) their COMM in brackets,
as crash does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError
from crashtui.kernel.tasks import EXIT_ZOMBIE, PF_KTHREAD, Task, TaskList, current_task

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

PF_EXITING = 0x00000004  # include/linux/sched.h


@dataclass(frozen=True, slots=True)
class TaskMemory:
    """One task's memory use in pages, and its share of RAM in percent."""

    rss: int = 0
    total_vm: int = 0
    percent: float = 0.0


@dataclass(frozen=True)
class PsRow:
    """One line of `ps`."""

    task: Task
    active: bool  # the task is running on its CPU (rq->curr)
    memory: TaskMemory

    @property
    def ppid(self) -> int:
        """The parent's PID; 0 for the idle tasks (CPU 1+ idle tasks are forked by init)."""
        return 0 if self.task.pid == 0 else self.task.ppid

    @property
    def kernel_thread(self) -> bool:
        """crash's is_kernel_thread(): PID 0, PF_KTHREAD, or no mm (a zombie has none)."""
        t = self.task
        if t.pid == 0 or t.flags & PF_KTHREAD:
            return True
        return not t.mm and not (t.exit_state & EXIT_ZOMBIE or t.flags & PF_EXITING)


@dataclass
class PsTable:
    """Every task crash's `ps` lists, in its order, and what could not be read."""

    rows: list[PsRow]
    page_size: int = 4096
    errors: list[str] = field(default_factory=list)



class _MemoryReader:
    """Reads mm_struct counters with BTF offsets resolved once."""

    def __init__(self, kernel: Kernel, tasks: list[Task]) -> None:
        self.k = kernel
        btf = kernel.btf
        off = kernel.offsetof
        self.o_total_vm = off("mm_struct", "total_vm")
        self.o_rss_stat = off("mm_struct", "rss_stat")
        self.items = [btf.enumerator(n) for n in ("MM_FILEPAGES", "MM_ANONPAGES")]
        if "MM_SHMEMPAGES" in btf.enumerators():
            self.items.append(btf.enumerator("MM_SHMEMPAGES"))
        rss_type = btf.member_type("mm_struct", "rss_stat").resolved()
        self.percpu = rss_type.kind == "array"  # 6.2+: struct percpu_counter rss_stat[]
        if self.percpu:
            self.counter_size = kernel.sizeof("struct percpu_counter")
            self.o_count = off("percpu_counter", "count")
            self.o_counters = off("percpu_counter", "counters")
        else:
            self.o_count = off("mm_rss_stat", "count")
        self.o_task_rss = (off("task_struct", "rss_stat.count")
                           if btf.has_member("task_struct", "rss_stat") else None)
        self.total_pages = _physmem_pages(kernel)
        self._groups: dict[int, list[Task]] = {}
        for t in tasks:
            self._groups.setdefault(t.tgid, []).append(t)
        self._split_cache: dict[int, int] = {}

    def usage(self, task: Task) -> TaskMemory:
        """crash's get_task_mem_usage() for one task."""
        if task.exit_state & EXIT_ZOMBIE or task.flags & PF_EXITING or not task.mm:
            return TaskMemory()
        k = self.k
        total_vm = k.read_u64(task.mm + self.o_total_vm)
        rss = 0
        for item in self.items:
            if self.percpu:
                rss += self._percpu_sum(task.mm + self.o_rss_stat + item * self.counter_size)
            else:
                rss += max(k.read_s64(task.mm + self.o_rss_stat + self.o_count + 8 * item), 0)
        if self.o_task_rss is not None:
            rss += self._split_rss(task.tgid)
        if (task.pid == 0 or task.flags & PF_KTHREAD) and not rss:
            return TaskMemory(0, total_vm, 0.0)
        pct = rss * 100 / self.total_pages if self.total_pages else 0.0
        return TaskMemory(rss, total_vm, pct)

    def _percpu_sum(self, fbc: int) -> int:
        """percpu_counter_sum_positive(): count plus every possible CPU's s32 delta."""
        k = self.k
        total = k.read_s64(fbc + self.o_count)
        counters = k.read_u64(fbc + self.o_counters)
        if counters:
            for cpu in range(k.nr_cpu_ids):
                try:
                    total += k.read_s32(k.per_cpu(counters, cpu))
                except CrashtuiError:
                    continue
        return max(total, 0)

    def _split_rss(self, tgid: int) -> int:
        """Unsynced per-thread rss deltas of a thread group (SPLIT_RSS_COUNTING)."""
        if tgid not in self._split_cache:
            assert self.o_task_rss is not None
            total = 0
            for t in self._groups.get(tgid, []):
                try:
                    raw = self.k.read(t.address + self.o_task_rss, 4 * (max(self.items) + 1))
                except CrashtuiError:
                    continue
                for i in self.items:
                    v = int.from_bytes(raw[4 * i:4 * i + 4], "little", signed=True)
                    total += max(v, 0)
            self._split_cache[tgid] = total
        return self._split_cache[tgid]


def _physmem_pages(kernel: Kernel) -> int:
    """crash's vt->total_pages: the page frame number of high_memory (its VTOP(), the
    linear map's arithmetic, as high_memory itself is one past the end of RAM)."""
    dm = kernel.pagetable.direct_map
    try:
        high = kernel.read_u64(kernel.symbol("high_memory"))
    except CrashtuiError:
        return 0
    if dm is None or not dm.virt < high <= dm.virt + dm.size + (1 << 30):
        return 0
    return dm.to_phys(high) >> 12


def active_tasks(kernel: Kernel) -> set[int]:
    """The task running on each CPU at the dump (rq->curr)."""
    out = set()
    for cpu in range(kernel.nr_cpu_ids):
        try:
            out.add(current_task(kernel, cpu))
        except CrashtuiError:
            continue
    return out


def read_ps(kernel: Kernel, tasks: TaskList) -> PsTable:
    """The `ps` table for every task (memory columns zero where they cannot be read)."""
    errors = list(tasks.errors)
    active = active_tasks(kernel)
    reader: _MemoryReader | None = None
    try:
        reader = _MemoryReader(kernel, tasks.tasks)
    except CrashtuiError as exc:
        errors.append(f"memory columns unavailable: {exc.message}")
    rows = []
    for t in tasks.tasks:
        mem = TaskMemory()
        if reader is not None:
            try:
                mem = reader.usage(t)
            except CrashtuiError as exc:
                errors.append(f"PID {t.pid} ({t.address:#x}): mm unreadable: {exc.message}")
        rows.append(PsRow(t, t.address in active, mem))
    return PsTable(rows, kernel.vmcoreinfo.page_size, errors)

