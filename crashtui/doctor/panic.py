"""The panic policy: which failures panic (and so are captured) and what happens after.

kdump captures only a panic (or die() in interrupt context, or on PID 0/1): the capture kernel
is started from panic() before the `kernel.panic` reboot delay counts
(Documentation/admin-guide/sysctl/kernel.rst, admin-guide/kdump/kdump.rst).
"""

from __future__ import annotations

from crashtui.doctor.check import OK, WARNING, Check, Machine, kernel_config

SYSCTL_FILE = "/etc/sysctl.d/90-crash-capture.conf"
SYSRQ_ENABLE_DUMP = 0x8  # the bit of kernel.sysrq that allows SysRq-c from the keyboard


def persist(name: str, value: int) -> str:
    """The command that sets a sysctl now and at every boot."""
    return f"sysctl -w {name}={value} && echo '{name} = {value}' >> {SYSCTL_FILE}"


# (sysctl, file, what 0 means, what non-zero means, whether 0 is a warning)
WATCHDOGS = (
    ("kernel.panic_on_oops", "/proc/sys/kernel/panic_on_oops",
     "an oops in a process kills that process and the kernel runs on: no dump",
     "an oops or BUG() panics: captured", True),
    ("kernel.softlockup_panic", "/proc/sys/kernel/softlockup_panic",
     "a soft lockup (a CPU stuck in the kernel for 20 s+) is only logged: no dump",
     "a soft lockup panics: captured", False),
    ("kernel.hung_task_panic", "/proc/sys/kernel/hung_task_panic",
     "a task blocked in D state past hung_task_timeout_secs is only logged: no dump",
     "hung tasks panic: captured (panics when this many are found in one scan)", False),
    ("kernel.hardlockup_panic", "/proc/sys/kernel/hardlockup_panic",
     "a hard lockup (interrupts off for 10 s+, NMI watchdog) is only logged: no dump",
     "a hard lockup panics: captured", False),
    ("kernel.panic_on_rcu_stall", "/proc/sys/kernel/panic_on_rcu_stall",
     "an RCU stall is only logged: no dump", "an RCU stall panics: captured", False),
    ("vm.panic_on_oom", "/proc/sys/vm/panic_on_oom",
     "out of memory kills a process (OOM killer): no dump",
     "out of memory panics instead of killing: captured", False),
    ("kernel.unknown_nmi_panic", "/proc/sys/kernel/unknown_nmi_panic",
     "an NMI of unknown source (the NMI button, `virsh inject-nmi`) is only logged: "
     "a hung machine cannot be made to dump that way",
     "an NMI of unknown source (the NMI button, `virsh inject-nmi`) panics: a hung machine "
     "can be made to dump", False),
)


def panic_checks(machine: Machine) -> list[Check]:
    """One line per panic sysctl, saying which crashes it lets kdump capture."""
    checks = []
    for name, path, off, on, warn_if_off in WATCHDOGS:
        value = machine.number(path)
        short = name.split(".", 1)[1]
        if value is None:
            if machine.exists(path):
                continue
            what = {"kernel.hung_task_panic": "no hung-task detector (CONFIG_DETECT_HUNG_TASK)",
                    "kernel.hardlockup_panic": "no hard-lockup detector (NMI watchdog)"}
            if name in what:
                checks.append(Check(short, "panic", OK, f"{name}: absent: {what[name]}"))
            continue
        text = f"{name} = {value}: {on if value else off}"
        if value == 0 and warn_if_off:
            checks.append(Check(short, "panic", WARNING, text, persist(name, 1)))
        else:
            checks.append(Check(short, "panic", OK, text,
                                detail=() if value else (f"to capture these too: "
                                                         f"{persist(name, 1)}",)))
    checks += [c for c in (_warn_check(machine), _panic_delay(machine), _sysrq(machine))
               if c is not None]
    return checks


def _warn_check(machine: Machine) -> Check | None:
    value = machine.number("/proc/sys/kernel/panic_on_warn")
    if value is None:
        return None
    if value:
        return Check("panic_on_warn", "panic", WARNING,
                     f"kernel.panic_on_warn = {value}: every WARN() panics the machine (meant "
                     "for catching one warning in a dump, not for production)",
                     persist("kernel.panic_on_warn", 0))
    return Check("panic_on_warn", "panic", OK,
                 "kernel.panic_on_warn = 0: a WARN() is only logged (set 1 to dump at a WARN)")


def _panic_delay(machine: Machine) -> Check | None:
    value = machine.number("/proc/sys/kernel/panic")
    if value is None:
        return None
    after = "waits forever (until reset)" if value == 0 else \
        "reboots at once" if value < 0 else f"reboots after {value} s"
    return Check("panic", "panic", OK,
                 f"kernel.panic = {value}: the capture kernel starts at the panic, before this "
                 f"delay; without one, a panic {after}")


def _sysrq(machine: Machine) -> Check | None:
    value = machine.number("/proc/sys/kernel/sysrq")
    if value is None:
        if (kernel_config(machine) or {}).get("CONFIG_MAGIC_SYSRQ") == "n" or \
                machine.path("/proc/sys/kernel").is_dir():
            return Check("sysrq", "panic", WARNING,
                         "no magic SysRq in this kernel (CONFIG_MAGIC_SYSRQ): no "
                         "/proc/sysrq-trigger to crash it on purpose for a test")
        return None
    keyboard = value == 1 or bool(value & SYSRQ_ENABLE_DUMP)
    text = (f"kernel.sysrq = {value}: `echo c > /proc/sysrq-trigger` (root) always crashes on "
            "purpose; Alt-SysRq-c on the console " + ("does too" if keyboard else
                                                     "is disabled (bit 8 is not set)"))
    return Check("sysrq", "panic", OK, text)
