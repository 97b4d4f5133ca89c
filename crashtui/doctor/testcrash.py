"""`crashtui doctor --test`: how to crash on purpose, and afterwards the newest dump opened."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crashtui.doctor.analysis import running_kernel
from crashtui.doctor.check import OK, PROBLEM, WARNING, Check, Machine
from crashtui.doctor.service import OPENED_WHOLE, WHOLE_FILE, KdumpSetup

TRIGGER = "sync; echo c > /proc/sysrq-trigger"
_STAMP = re.compile(r"(\d{12})$")  # kdump-tools' date +%Y%m%d%H%M, maybe after "<host>-"
_RHEL_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}-\d{2}:\d{2}:\d{2})$")


@dataclass(frozen=True)
class FoundDump:
    """A saved dump: its machine path, the path under the root, and when it was taken."""

    shown: str
    path: Path
    stamp: str


def newest_dump(machine: Machine, setup: KdumpSetup) -> FoundDump | None:
    """The newest dump in the dump directory (kdump-tools' <stamp>/dump.<stamp>[.ext] or
    vmcore.<stamp> after a makedumpfile failure; RHEL's <host>-<date>/vmcore)."""
    found: list[tuple[str, str]] = []
    for name in machine.listdir(setup.coredir):
        stamp = _STAMP.search(name) or _RHEL_STAMP.search(name)
        if stamp is None:
            continue
        key = re.sub(r"\D", "", stamp.group(1))
        d = f"{setup.coredir.rstrip('/')}/{name}"
        files = machine.listdir(d)
        for want in [f"dump.{stamp.group(1)}", f"vmcore.{stamp.group(1)}", "vmcore"]:
            hits = [f for f in files if f == want or
                    any(f == want + ext for _, ext in WHOLE_FILE.values())]
            if hits:
                found.append((key, f"{d}/{hits[0]}"))
                break
    if not found:
        return None
    key, shown = max(found)
    return FoundDump(shown, machine.path(shown), key)


def test_checks(machine: Machine, setup: KdumpSetup, ready: bool) -> list[Check]:
    """Open the newest dump (if any) and say how to make one."""
    how = (f"to test: as root, `{TRIGGER}` crashes this machine now; the capture kernel saves "
           f"the dump to {setup.coredir} and reboots; then run `crashtui doctor --test` again")
    dump = newest_dump(machine, setup)  # without a kdump service: in /var/crash
    if dump is None:
        status = WARNING
        text = f"no dump in {setup.coredir} yet"
        if not ready:
            text += "; fix the problems above first, a test crash now would save nothing"
        denied = [p for p in machine.denied if p.startswith(setup.coredir)]
        if denied:
            text += f" ({denied[0]} is readable by root only)"
        return [Check("test-dump", "test", status, text, needs_root=True,
                      detail=(how,) if ready else ())]
    for codec, (tool, ext) in WHOLE_FILE.items():
        if not dump.shown.endswith(ext):
            continue
        if codec in OPENED_WHOLE:  # not opened here: decompressing a full dump takes minutes
            text = (f"newest dump {dump.shown} is compressed as a whole: `crashtui "
                    f"{dump.shown}` decompresses a copy into its cache first (or run `{tool} "
                    f"{dump.shown}`, then `crashtui {dump.shown[:-len(ext)]}`)")
        else:
            text = (f"newest dump {dump.shown} is compressed as a whole: run "
                    f"`{tool} {dump.shown}`, then `crashtui {dump.shown[:-len(ext)]}`")
        return [Check("test-dump", "test", WARNING, text, needs_root=True)]
    return [_open_check(machine, dump)]


def _open_check(machine: Machine, dump: FoundDump) -> Check:
    """Open the dump as `crashtui DUMP` would and give its signature line."""
    from crashtui.analysis.session import Session
    from crashtui.analysis.triage import signature_line
    from crashtui.debuginfo.locate import locate_vmlinux
    from crashtui.dumpfile import open_dump
    from crashtui.errors import CrashtuiError
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

    kernel = running_kernel(machine)
    try:
        opened = open_dump(dump.path)
        try:
            info = VmcoreInfo.parse(opened.vmcoreinfo or "")
        finally:
            opened.close()
        rel = info.osrelease
        found = locate_vmlinux(rel, info.build_id, roots=[machine.root])
        session = Session.open(dump.path, found.path if found else None)
        try:
            line = signature_line(session, dump.shown)
            sources = "debug vmlinux" if found else "kernel's own symbols in the dump"
        finally:
            session.close()
    except PermissionError:
        return Check("test-dump", "test", WARNING, f"newest dump {dump.shown} is readable by "
                     "root only: run `crashtui doctor --test` as root", needs_root=True)
    except (CrashtuiError, OSError) as exc:
        return Check("test-dump", "test", PROBLEM,
                     f"newest dump {dump.shown} does not open: {exc}", needs_root=True)
    same = " (this kernel)" if rel == kernel.release else f" (kernel {rel})"
    return Check("test-dump", "test", OK,
                 f"newest dump {dump.shown}{same} opens with the {sources}: {line}",
                 needs_root=True, detail=(f"explore it: crashtui {dump.shown}",))
