"""Regenerate sample-dumps/<dump>/report.md: `python -m crashtui.report.regenerate [DUMP_DIR...]`.

Each sample's vmlinux is the one its MANIFEST names (downloaded once into the tests' cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "sample-dumps"
REPORT_NAME = "report.md"


def sample_dirs() -> list[Path]:
    """Every committed sample dump directory (one with a MANIFEST and a dump.* file)."""
    return sorted(d for d in SAMPLES.iterdir()
                  if (d / "MANIFEST").is_file() and any(d.glob("dump.*")))


def stable_report(sample: Path, vmlinux: Path) -> str:
    """The report of one sample dump (its .ko files loaded), with repository-relative paths and
    no version: reproducible."""
    from crashtui.analysis.session import Session
    from crashtui.report.markdown import ReportOptions, build_report

    os.environ["TZ"] = "UTC"  # crash's DATE is local time; the samples were taken in UTC
    time.tzset()
    dump = next(sample.glob("dump.*"))
    session = Session.open(dump, vmlinux)
    try:
        if any(sample.rglob("*.ko")):
            # like --modules SAMPLE: the module's DWARF, and its source next to the .ko
            session.load_modules_dir(sample)
        options = ReportOptions(relative_to=ROOT, vmlinux_name=vmlinux.name, show_version=False)
        return build_report(session, options)
    finally:
        session.close()


def default_vmlinux(sample: Path) -> Path:
    """The debug vmlinux the sample's MANIFEST names (downloaded once, as the tests do)."""
    from crashtui.debuginfo.debian import fetch_manifest_vmlinux

    env = os.environ.get("CRASHTUI_TEST_CACHE")
    cache = Path(env) if env else Path.home() / ".cache" / "crashtui-tests"
    return fetch_manifest_vmlinux(sample / "MANIFEST", cache)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m crashtui.report.regenerate",
        description="Rewrite sample-dumps/<dump>/report.md for every committed sample dump "
                    "(or only the named ones), with the vmlinux each MANIFEST names.")
    parser.add_argument("dumps", nargs="*", metavar="DUMP_DIR",
                        help="a sample dump directory or its name (e.g. 6.1-sysrq); "
                             "default: all of them")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Write report.md next to every sample dump (or the named ones)."""
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    samples = sample_dirs()
    wanted = {Path(d).name for d in ns.dumps}
    unknown = sorted(wanted - {s.name for s in samples})
    if unknown:
        print(f"regenerate: no such sample dump: {', '.join(unknown)} "
              f"(have: {', '.join(s.name for s in samples)})", file=sys.stderr)
        return 2
    for sample in samples:
        if wanted and sample.name not in wanted:
            continue
        vmlinux = default_vmlinux(sample)
        out = sample / REPORT_NAME
        out.write_text(stable_report(sample, vmlinux), encoding="utf-8")
        print(out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
