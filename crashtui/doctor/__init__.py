"""`crashtui doctor`: will this machine capture a kernel crash dump that crashtui can read?

Each area is a module returning `Check`s: reservation.py (crashkernel=, reserved memory, the
capture kernel loaded), service.py (the kdump service and its configuration), panic.py (panic
sysctls), analysis.py (debug vmlinux, BTF/ORC, kernel version), testcrash.py (--test);
render.py prints them. Every read goes through a `Machine` rooted at --root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from crashtui.doctor.check import Check, Machine, os_name, release
from crashtui.doctor.render import DoctorReport, json_document, text_lines


def examine(machine: Machine, test: bool = False) -> DoctorReport:
    """Run every check on the machine (and the test-crash check with test=True)."""
    from crashtui.doctor.analysis import analysis_checks
    from crashtui.doctor.panic import panic_checks
    from crashtui.doctor.reservation import reservation_checks
    from crashtui.doctor.service import config_checks, find_setup, service_checks
    from crashtui.doctor.testcrash import test_checks

    setup = find_setup(machine)
    checks: list[Check] = []
    for area, run in (("capture", lambda: reservation_checks(machine, setup)),
                      ("service", lambda: service_checks(machine, setup)
                       + config_checks(machine, setup)),
                      ("panic", lambda: panic_checks(machine)),
                      ("analysis", lambda: analysis_checks(machine))):
        before = len(machine.denied)
        checks += run()
        for path in dict.fromkeys(machine.denied[before:]):
            checks.append(Check("unreadable", area, "warning",
                                f"{path} is readable by root only: not checked", needs_root=True))
    if test:
        ready = not any(c.status == "problem" for c in checks)
        checks += test_checks(machine, setup, ready)
    rel = release(machine) or "unknown kernel"
    name = os_name(machine) or "unknown distribution"
    as_root = (os.geteuid() == 0) if machine.root == Path("/") else None
    return DoctorReport(str(machine.root), f"{name}, kernel {rel}", setup.tool, tuple(checks),
                        as_root)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crashtui doctor", description="Check that this machine will capture a kernel "
        "crash dump (kdump) and that crashtui can read it: one line per check (ok, warning, "
        "problem) with the command, run as root, that fixes each problem. Most checks need no "
        "root; those that do are marked [root]. Exit status: 0 ready, 1 not ready.")
    p.add_argument("--root", default="/", metavar="DIR",
                   help="read /proc, /sys, /etc, /boot, /var from this directory instead of / "
                   "(a tree recorded from another machine)")
    p.add_argument("--json", action="store_true", help="print the checks as one JSON document")
    p.add_argument("--test", action="store_true",
                   help="also say how to trigger a test crash and, after it, open the newest "
                   "dump in the dump directory")
    return p


def main(argv: list[str]) -> int:
    """`crashtui doctor [--root DIR] [--json] [--test]`."""
    from crashtui.textsafe import terminal_safe

    args = build_parser().parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"crashtui: {root}: --root is not a directory", file=sys.stderr)
        return 2
    report = examine(Machine(root), args.test)
    if args.json:
        json.dump(json_document(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in text_lines(report):
            sys.stdout.write(terminal_safe(line) + "\n")
    return 0 if report.ready else 1
