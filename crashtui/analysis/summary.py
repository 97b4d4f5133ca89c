"""The crash summary: what crash prints on opening a dump (`sys` plus the panic task)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError
from crashtui.kernel import system
from crashtui.kernel.printk import KernelLog
from crashtui.kernel.tasks import Task, TaskList, TaskReader, current_task

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

# crash's get_panicmsg() (task.c): the first of these found in the log, in this order.
PANIC_MESSAGES = (
    "SysRq : Crash", "SysRq : Trigger a crash", "SysRq : Netdump", "Kernel panic: ",
    "Kernel panic - ", "Kernel BUG at", "kernel BUG at",
    "Unable to handle kernel paging request", "Unable to handle kernel NULL pointer dereference",
    "BUG: unable to handle kernel ", "general protection fault: ", "double fault: ",
    "divide error: ", "stack segment: ", "[Hardware Error]: ", "Bad mode in ", "Oops: ",
)
# crash adds "(check log for details)" after messages that only start an oops report; not
# after "kernel BUG at FILE:LINE!" (6.1-bug-kthread/crash/sys.txt).
_SEE_LOG = ("Unable to handle", "BUG: unable to handle", "general protection fault",
            "double fault", "divide error", "stack segment", "Bad mode in ", "Oops: ")

FIELD_NAMES = ("KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS",
               "NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY", "PANIC",
               "PID", "COMMAND", "TASK", "CPU", "STATE")
SYS_FIELDS = FIELD_NAMES[:13]
MAX_WARNINGS = 20
DAMAGED = "  [DAMAGED]"


@dataclass
class Summary:
    """One value per crash `sys` field, formatted as crash formats it; errors say what is missing."""

    fields: dict[str, str]
    panic_message: str = ""
    panic_cpu: int | None = None
    panic_task: Task | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # damage found outside the fields

    def sys_lines(self) -> list[str]:
        """crash's `sys` output, then one WARNING line per problem met (a bounded number)."""
        lines = [f"{name:>12}: {self.fields.get(name, '(unknown)')}" for name in SYS_FIELDS]
        problems = self.warnings + self.errors
        lines += [f"{'WARNING':>12}: {w}" for w in problems[:MAX_WARNINGS]]
        if len(problems) > MAX_WARNINGS:
            lines.append(f"{'WARNING':>12}: ... and {len(problems) - MAX_WARNINGS} more")
        return lines

    def banner_lines(self) -> list[str]:
        """crash's start-up banner: `sys` and the panic task."""
        lines = self.sys_lines()
        if self.panic_task is not None:
            t = self.panic_task
            lines += [f"{'PID':>12}: {t.pid}", f"{'COMMAND':>12}: \"{t.comm}\"",
                      f"{'TASK':>12}: {t.address:x}  [THREAD_INFO: {t.address:x}]",
                      f"{'CPU':>12}: {t.cpu}", f"{'STATE':>12}: {self.fields['STATE']}"]
        return lines


def find_panic_message(log: KernelLog) -> str:
    """The log line crash reports as PANIC (crash's get_panicmsg())."""
    texts = [r.text for r in log.records]
    for msg in PANIC_MESSAGES:
        for text in texts:
            for line in text.split("\n"):
                i = line.find(msg)
                if i >= 0:
                    return line[i:].rstrip()
    return ""


def format_panic(message: str) -> str:
    if not message:
        return '""'
    suffix = " (check log for details)" if message.startswith(_SEE_LOG) else ""
    return f'"{message}"{suffix}'


def build_summary(kernel: Kernel, log: KernelLog, tasks: TaskList,
                  kernel_path: str, dump_path: str) -> Summary:
    """Compute every summary field; a field that cannot be read says so, the rest still show."""
    f: dict[str, str] = {}
    errors: list[str] = []

    def attempt(name: str, fn):  # type: ignore[no-untyped-def]
        try:
            f[name] = fn()
        except CrashtuiError as exc:
            f[name] = "(unavailable)"
            errors.append(f"{name}: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - one field's bug must not hide the others
            if os.environ.get("CRASHTUI_DEBUG"):
                raise
            f[name] = "(unavailable)"
            errors.append(f"{name}: internal error: {type(exc).__name__}: {exc}")

    attempt("KERNEL", lambda: kernel_path + ("  [TAINTED]" if system.tainted_mask(kernel) else ""))
    info = kernel.dump.info
    f["DUMPFILE"] = (dump_path + ("  [PARTIAL DUMP]" if info.partial else "")
                     + ("  [INCOMPLETE]" if info.incomplete else ""))
    warnings = dump_warnings(kernel)

    def cpus() -> str:
        online = kernel.cpumask("__cpu_online_mask")
        present = kernel.cpumask("__cpu_present_mask")
        offline = len(present) - len(online)
        return f"{len(present)}" + (f" [OFFLINE: {offline}]" if offline > 0 else "")

    attempt("CPUS", cpus)
    attempt("DATE", lambda: time.strftime("%a %b %e %H:%M:%S %Z %Y",
                                          time.localtime(system.xtime_sec(kernel))))
    attempt("UPTIME", lambda: system.format_uptime(system.uptime_seconds(kernel)))
    attempt("LOAD AVERAGE", lambda: ", ".join(system.load_average(kernel)))
    f["TASKS"] = ("(unavailable)" if tasks.unknown_layout
                  else str(len(tasks.tasks)) + (DAMAGED if tasks.errors else ""))
    warnings += [f"TASKS: {e}" for e in tasks.errors]
    try:
        uts = system.read_utsname(kernel)
        f.update(NODENAME=uts.nodename, RELEASE=uts.release, VERSION=uts.version)
        mhz = system.cpu_mhz(kernel)
        # crash's display_sys_stats(): "(unknown Mhz)" when the speed is not known
        # (arm64_processor_speed() always returns 0)
        f["MACHINE"] = uts.machine + (f"  ({mhz} Mhz)" if mhz else "  (unknown Mhz)")
    except CrashtuiError as exc:
        f.update({k: "(unavailable)" for k in ("NODENAME", "RELEASE", "VERSION", "MACHINE")})
        errors.append(f"utsname: {exc.message}")
    attempt("MEMORY", lambda: system.pages_to_size(system.memory_size(kernel) // 4096))
    message = find_panic_message(log)
    f["PANIC"] = format_panic(message)
    if log.error:
        warnings.append(f"log: {log.error}")
    if log.damaged:
        warnings.append(f"log: {log.damaged} damaged record(s), marked in place")
    if (log.error or log.damaged) and not message:
        f["PANIC"] += DAMAGED

    cpu = system.panic_cpu(kernel)
    task = None
    if cpu is not None:
        try:
            task = TaskReader(kernel).read(current_task(kernel, cpu))
        except CrashtuiError as exc:
            errors.append(f"panic task: {exc.message}")
    if task is not None:
        f.update(PID=str(task.pid), COMMAND=f'"{task.comm}"', TASK=f"{task.address:x}",
                 CPU=str(cpu), STATE=task.state_name + " (PANIC)")
    return Summary(f, message, cpu, task, errors, warnings)


def dump_warnings(kernel: Kernel) -> list[str]:
    """What the dump file itself says is wrong with it (incomplete, cut short)."""
    info = kernel.dump.info
    out = []
    if info.incomplete:
        out.append("the dump is incomplete: the capture stopped early (disk full?); "
                   "pages it did not write read as missing")
    if info.lost_pages:
        out.append(f"DUMPFILE: {info.lost_pages} dumped pages are not in the file "
                   "(truncated copy?); reads of them fail")
    return out
