"""What crash's sys/bt/bt -a/log/ps/kmem -i/mod print, printed by drgn (the benchmark's drgn side).

Usage: python drgn_equiv.py DUMP VMLINUX SECTION[,SECTION...]
Sections: sys, bt (the crashed thread, every frame with file:line), bta (every CPU), log,
ps, kmem, mod. Each prints roughly the fields crash prints, read through drgn's helpers, so
the time measured is drgn's real cost of answering the same question from Python.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import drgn
from drgn.helpers.linux.cpumask import for_each_online_cpu, num_online_cpus, num_possible_cpus
from drgn.helpers.linux.mm import task_rss, task_vsize, totalram_pages
from drgn.helpers.linux.module import for_each_module
from drgn.helpers.linux.panic import panic_message
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_dmesg
from drgn.helpers.linux.sched import cpu_curr, loadavg, task_cpu, task_state_to_char
from drgn.helpers.linux.timekeeping import ktime_get_real_seconds, uptime_pretty
from drgn.helpers.linux.vmstat import global_node_page_state, global_zone_page_state

PAGE = 4096


def frame_lines(trace: drgn.StackTrace) -> list[str]:
    """One line per frame: number, pc, symbol, file:line (the crashed thread's view)."""
    out = []
    for i, frame in enumerate(trace):
        try:
            name = frame.name or "?"
        except LookupError:
            name = "?"
        try:
            path, line, _col = frame.source()
            where = f"{path}:{line}"
        except LookupError:
            where = "?"
        out.append(f"#{i:<2} {frame.pc:#018x} {name} {where}")
    return out


def section_sys(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """The fields of crash's sys."""
    uts = prog["init_uts_ns"].name
    tasks = sum(1 for _ in for_each_task(prog)) + num_online_cpus(prog) - 1
    msg = panic_message(prog)
    return [
        f"      KERNEL: {vmlinux}",
        f"    DUMPFILE: {dump}",
        f"        CPUS: {num_possible_cpus(prog)} ({num_online_cpus(prog)} online)",
        f"        DATE: {time.strftime('%a %b %e %H:%M:%S UTC %Y', time.gmtime(int(ktime_get_real_seconds(prog))))}",
        f"      UPTIME: {uptime_pretty(prog)}",
        f"LOAD AVERAGE: {', '.join(f'{x:.2f}' for x in loadavg(prog))}",
        f"       TASKS: {tasks}",
        f"    NODENAME: {uts.nodename.string_().decode()}",
        f"     RELEASE: {uts.release.string_().decode()}",
        f"     VERSION: {uts.version.string_().decode()}",
        f"     MACHINE: {uts.machine.string_().decode()}",
        f"      MEMORY: {int(totalram_pages(prog)) * PAGE >> 20} MB",
        f"       PANIC: {msg.decode(errors='replace') if isinstance(msg, bytes) else msg!r}",
    ]


def section_bt(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """The crashed thread's stack trace with file:line."""
    thread = prog.crashed_thread()
    out = [f"PID: {thread.tid}  COMMAND: {thread.object.comm.string_().decode()!r}"]
    return out + frame_lines(thread.stack_trace())


def section_bta(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """Every online CPU's active task, like bt -a."""
    out: list[str] = []
    for cpu in for_each_online_cpu(prog):
        task = cpu_curr(prog, cpu)
        out.append(f"PID: {int(task.pid)}  CPU: {cpu}  COMMAND: {task.comm.string_().decode()!r}")
        try:
            out += frame_lines(prog.stack_trace(task))
        except (drgn.FaultError, ValueError, LookupError) as exc:
            out.append(f"  (no trace: {exc})")
    return out


def section_log(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """The kernel log, like crash's log."""
    return get_dmesg(prog).decode(errors="replace").splitlines()


def section_ps(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """PID, PPID, CPU, TASK, ST, VSZ, RSS, COMM for every task."""
    out = ["   PID    PPID  CPU       TASK        ST     VSZ    RSS  COMM"]
    for task in for_each_task(prog):
        if task.mm:
            rss = task_rss(task)
            rss_kb = (rss.file + rss.anon + rss.shmem) * PAGE >> 10
            vsz_kb = int(task_vsize(task)) >> 10
        else:
            rss_kb = vsz_kb = 0
        out.append(f"{int(task.pid):>6} {int(task.real_parent.pid):>7} {task_cpu(task):>4} "
                   f"{task.value_():x} {task_state_to_char(task)} {vsz_kb:>7} {rss_kb:>6}  "
                   f"{task.comm.string_().decode()}")
    return out


def section_kmem(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """The headline numbers of kmem -i."""
    total = int(totalram_pages(prog))
    free = int(global_zone_page_state(prog, prog["NR_FREE_PAGES"]))
    file_pages = int(global_node_page_state(prog, prog["NR_FILE_PAGES"]))
    shmem = int(global_node_page_state(prog, prog["NR_SHMEM"]))
    slab = int(global_node_page_state(prog, prog["NR_SLAB_RECLAIMABLE_B"])) + int(
        global_node_page_state(prog, prog["NR_SLAB_UNRECLAIMABLE_B"]))
    rows = [("TOTAL MEM", total), ("FREE", free), ("USED", total - free),
            ("SHARED", shmem), ("CACHED", file_pages - shmem), ("SLAB", slab)]
    return [f"{name:>12}  {pages:>10}  {pages * PAGE >> 20:>8} MB" for name, pages in rows]


def section_mod(prog: drgn.Program, dump: str, vmlinux: str) -> list[str]:
    """Loaded modules, like crash's mod."""
    return [f"{mod.value_():x}  {mod.name.string_().decode()}" for mod in for_each_module(prog)]


SECTIONS: dict[str, Any] = {"sys": section_sys, "bt": section_bt, "bta": section_bta,
                            "log": section_log, "ps": section_ps, "kmem": section_kmem,
                            "mod": section_mod}


def main(argv: list[str]) -> int:
    """Open the dump with drgn, load the vmlinux's debug info, print the sections asked for."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dump, vmlinux, names = argv
    prog = drgn.Program()
    prog.set_core_dump(dump)
    prog.load_debug_info([vmlinux])
    out = sys.stdout
    for name in names.split(","):
        out.write("\n".join(SECTIONS[name](prog, dump, vmlinux)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
