"""crashtui's command line: the app by default, crash-style text with -c, JSON with --json."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

EPILOG = """\
examples:
  crashtui /var/crash/202611261023/dump.202611261023 vmlinux-6.1.0-56-cloud-amd64
  crashtui dump.202611261023 vmlinux -c sys -c 'bt -a'
  crashtui dump.202611261023 vmlinux --json > analysis.json
  crashtui dump.202611261023 vmlinux --report report.md
  crashtui dump.202611261053 vmlinux --modules ./test-module -c 'bt'
  crashtui dump.202611261023 -c 'bt -a'          # no vmlinux: found by build-id, or in memory
  DEBUGINFOD_URLS=https://debuginfod.debian.net crashtui dump.202611261023 --fetch
  crashtui --signature --vmlinux vmlinux /var/crash/*/dump.*   # one line per dump
  crashtui doctor [--root DIR] [--json] [--test]   # will this machine capture a dump?
"""


def _quiet_blas_threads() -> None:
    """One BLAS thread: crashtui does no linear algebra, and OpenBLAS' pool costs ~55 ms CPU."""
    # numpy's OpenBLAS starts a thread per CPU on import, which spin on the other cores and
    # compete with us on a small VM; an explicit setting by the user is kept.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crashtui", description="Explore a Linux kernel crash dump (kdump-compressed, "
        "flattened or ELF vmcore) in the terminal.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="the crash dump, e.g. /var/crash/<date>/dump.<date>")
    p.add_argument("vmlinux", nargs="?", help="the matching debug vmlinux (with DWARF/BTF), e.g. "
                   "/usr/lib/debug/boot/vmlinux-$(uname -r); if omitted, looked for by build-id "
                   "in /usr/lib/debug, /boot and the debuginfod cache, else the kernel's own "
                   "kallsyms, BTF and ORC in the dump are used (no source lines)")
    p.add_argument("-c", "--command", action="append", metavar="CMD", default=[],
                   help="run a crash-style command and print its output instead of starting the "
                   "app; repeatable (e.g. -c sys -c 'bt -a')")
    p.add_argument("--json", action="store_true",
                   help="print the whole analysis as one JSON document (see docs/json.md)")
    p.add_argument("--report", metavar="FILE.md",
                   help="write a Markdown incident report to FILE.md ('-' for stdout)")
    p.add_argument("--source", metavar="DIR", help="kernel source tree or source tarball "
                   "(e.g. /usr/src/linux-source-6.1.tar.xz) for the source pane")
    p.add_argument("--modules", metavar="DIR", action="append", default=[],
                   help="directory searched for .ko files with debug info (like crash's mod -s); "
                   "repeatable")
    p.add_argument("--fetch", action="store_true",
                   help="if no VMLINUX is given or installed, download it by build-id from the "
                   "debuginfod servers in $DEBUGINFOD_URLS (cached in ~/.cache/crashtui)")
    p.add_argument("--signature", action="store_true",
                   help="crashtui --signature [--vmlinux PATH ...] [--modules DIR] DUMP...: "
                   "print each dump's crash signature, kind and culprit, one line per dump")
    return p


def build_signature_parser() -> argparse.ArgumentParser:
    """`crashtui --signature DUMP...`: the triage signature of many dumps."""
    p = argparse.ArgumentParser(prog="crashtui --signature", description="Print a stable crash "
                                "signature, the kind of crash and the culprit of each dump "
                                "(signature, kind, culprit, dump; one line per dump).")
    p.add_argument("--signature", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("dumps", nargs="+", metavar="DUMP")
    p.add_argument("--vmlinux", action="append", default=[], metavar="PATH",
                   help="debug vmlinux to try for each dump (repeatable: the one whose build-id "
                   "matches is used); else found by build-id or the dump's own symbols")
    p.add_argument("--modules", metavar="DIR", action="append", default=[],
                   help="directory searched for .ko files (for the culprit's file:line)")
    return p


def _signatures(argv: list[str]) -> int:
    """One `signature  kind  culprit  dump` line per dump; status 1 if any dump failed."""
    from crashtui.analysis.triage import signature_line
    from crashtui.errors import CrashtuiError, VmlinuxMismatchError
    from crashtui.textsafe import terminal_safe

    args = build_signature_parser().parse_args(argv)
    # crash's habit (`crash vmlinux vmcore`): a kernel image among the dumps is a --vmlinux
    images = {d for d in args.dumps if _is_kernel_image(d)}
    args.vmlinux += [d for d in args.dumps if d in images]
    args.dumps = [d for d in args.dumps if d not in images]
    status = 0
    for dump in args.dumps:
        try:
            path = _check_file(dump, "dump file")
            session = None
            for v in args.vmlinux:
                try:
                    session = _open(path, _check_file(v, "vmlinux"))
                    break
                except VmlinuxMismatchError:
                    continue
            if session is None:
                session = _open(path, None)
            for problem in (p for d in args.modules for p in session.load_modules_dir(d)):
                _error(f"crashtui: {problem}")
            sys.stdout.write(terminal_safe(signature_line(session, dump)) + "\n")
            session.close()
        except CrashtuiError as exc:
            _error(f"crashtui: {exc}")
            status = 1
    return status


def _open(dump: Path, vmlinux: Path | None) -> Session:
    """A Session on dump (without a vmlinux: found by build-id, else the dump's own symbols)."""
    from crashtui.analysis.session import Session

    if vmlinux is not None:
        return Session.open(dump, vmlinux)
    from crashtui.kernel.debugsources import choose_vmlinux

    choice = choose_vmlinux(dump, False, None)
    session = Session.open(dump, choice.vmlinux)
    session.kernel.vmlinux_origin = choice.origin
    return session


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `crashtui` console script."""
    _quiet_blas_threads()
    process = argv is None  # the whole process (console script, python -m), not a caller's call
    argv = sys.argv[1:] if argv is None else argv
    # `crashtui doctor`: the subcommand, unless a dump file is named doctor (`./doctor` is one)
    doctor = argv[:1] == ["doctor"] and not os.path.isfile("doctor")
    args = None
    if "--signature" not in argv and not doctor:
        parser = build_parser()
        args = parser.parse_args(argv)
        if sum((bool(args.command), args.json, args.report is not None)) > 1:
            parser.error("-c, --json and --report each print the whole output: use one at a time")
    status = _main(argv, args, doctor)
    if process and args is not None and (args.command or args.json or args.report is not None):
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process once -c/--json/--report output is out, without the interpreter's
    teardown: freeing the indexes and caches of a session object by object costs ~25 ms CPU
    of a ~330 ms report, and nothing is left to do (files are closed, cache entries written
    whole)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `| head` has all it wanted
        pass
    except (OSError, ValueError) as exc:  # e.g. a full disk under `> file`
        _error(f"crashtui: cannot write the output: {getattr(exc, 'strerror', None) or exc}")
        status = status or 1
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(status)


def _main(argv: list[str], args: argparse.Namespace | None, doctor: bool) -> int:
    """main's work: the subcommand, the signatures or the dump; errors as one line."""
    from crashtui.errors import CrashtuiError

    try:
        if doctor:
            from crashtui.doctor import main as doctor_main

            return doctor_main(argv[1:])
        return _signatures(argv) if args is None else _run(args)
    except CrashtuiError as exc:
        _error(f"crashtui: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("CRASHTUI_DEBUG"):
            raise
        _error(f"crashtui: internal error: {type(exc).__name__}: {exc} "
               "(set CRASHTUI_DEBUG=1 for details)")
        return 3


def _is_kernel_image(path: str | None) -> bool:
    """True for an ELF executable (a vmlinux: e_type ET_EXEC), not for a dump or ELF vmcore."""
    import stat

    if path is None:
        return False
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never open a FIFO or device to look
            return False
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") == 2


def _check_file(path: str, what: str) -> Path:
    """The path if it names a readable file; else CrashtuiError saying what is wrong."""
    import errno
    import stat

    from crashtui.errors import CrashtuiError

    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise CrashtuiError(f"{what} not found", p) from None
        raise CrashtuiError(f"cannot open {what}: {exc.strerror or exc}", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise CrashtuiError(f"{what} is a directory, not a file", p)
    if not os.access(p, os.R_OK):
        raise CrashtuiError(f"{what} is not readable (permission denied)", p)
    return p


def _check_output(path: str, what: str) -> None:
    """Fail early, in one line, if a file cannot be written at path."""
    from crashtui.errors import CrashtuiError

    p = Path(path)
    if p.is_dir():
        raise CrashtuiError(f"{what} path is a directory", p)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise CrashtuiError(f"cannot write the {what}: directory {parent} does not exist", p)
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise CrashtuiError(f"cannot write the {what}: permission denied", p)


def _error(message: str) -> None:
    """Print one error line on stderr, control characters neutralised."""
    from crashtui.textsafe import terminal_safe

    print(terminal_safe(message), file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from crashtui.analysis.session import Session
    from crashtui.textsafe import terminal_safe

    if _is_kernel_image(args.dump) and not _is_kernel_image(args.vmlinux):
        args.dump, args.vmlinux = args.vmlinux, args.dump  # crash's order: vmlinux first
        if args.dump is None:
            from crashtui.errors import CrashtuiError

            raise CrashtuiError("this is a kernel image (vmlinux); give the dump file too",
                                args.vmlinux)
    dump = _check_file(args.dump, "dump file")
    vmlinux = _check_file(args.vmlinux, "vmlinux") if args.vmlinux else None
    if args.source:  # the analysis goes on without it (the app says it again in a toast)
        from crashtui.analysis.source import source_problem

        problem = source_problem(args.source)
        if problem is not None:
            _error(f"crashtui: warning: {problem}")
    if args.report is not None and args.report != "-":
        _check_output(args.report, "report")
    modules = list(args.modules)
    if vmlinux is None:
        from crashtui.debuginfo.debuginfod import progress_bar
        from crashtui.kernel.debugsources import choose_vmlinux

        choice = choose_vmlinux(dump, args.fetch, progress_bar(sys.stderr, "crashtui: fetching"))
        for problem in choice.problems:
            _error(f"crashtui: {problem}")
        session = Session.open(dump, choice.vmlinux)
        session.kernel.vmlinux_origin = choice.origin
        session.kernel.vmlinux_place = choice.place
        _error(f"crashtui: {session.kernel.debug_sources.describe()}")
        if not modules:
            from crashtui.debuginfo.locate import module_debug_dirs

            modules = [str(d) for d in module_debug_dirs(session.kernel.release)]
    else:
        session = Session.open(dump, vmlinux)
    if args.command or args.json or args.report:  # the app loads them itself, in a worker
        for problem in (p for d in modules for p in session.load_modules_dir(d)):
            _error(f"crashtui: {problem}")
    out = sys.stdout
    if args.command:
        from crashtui.commands import run_command

        status = 0
        for line in args.command:
            try:
                for text in run_command(session, line):
                    out.write(terminal_safe(text) + "\n")
            except Exception as exc:
                from crashtui.errors import CrashtuiError

                if not isinstance(exc, CrashtuiError):
                    raise
                name, message = (line.split() or [""])[0], str(exc)
                # the command's own prefix once: `crashtui: bt: unsupported option -z`
                _error(f"crashtui: {message}" if message.startswith(f"{name}:")
                       else f"crashtui: {line}: {message}")
                status = 1
        return status
    if args.json:
        import json

        from crashtui.report.jsondoc import build_document

        json.dump(build_document(session), out, indent=2)
        out.write("\n")
        return 0
    if args.report:
        from crashtui.report.markdown import ReportOptions, write_report

        sources = (args.source,) if args.source else ()
        try:
            write_report(session, args.report, ReportOptions(sources=sources))
        except OSError as exc:
            from crashtui.errors import CrashtuiError

            raise CrashtuiError(f"cannot write the report: {exc.strerror or exc}",
                                args.report) from None
        return 0
    from crashtui.tui.app import run_app

    return run_app(session, source=args.source, modules=modules)


if __name__ == "__main__":
    sys.exit(main())
