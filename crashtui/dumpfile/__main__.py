"""`python -m crashtui.dumpfile DUMP`: print what the dump says about itself (for debugging)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from datetime import UTC, datetime

from crashtui.dumpfile import open_dump
from crashtui.errors import CrashtuiError
from crashtui.textsafe import terminal_safe


def _say(text: str) -> None:
    """Print a line of what the dump says, control characters neutralised."""
    print(terminal_safe(text))


def main(argv: list[str] | None = None) -> int:
    """Print DumpInfo, the notes and the first lines of VMCOREINFO of each dump given."""
    parser = argparse.ArgumentParser(prog="python -m crashtui.dumpfile")
    parser.add_argument("dumps", nargs="+", metavar="DUMP")
    parser.add_argument("-n", "--lines", type=int, default=10,
                        help="lines of VMCOREINFO to print (default 10)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.dumps:
        try:
            with open_dump(path) as dump:
                _say(f"{dump.path}:")
                for field in dataclasses.fields(dump.info):
                    value = getattr(dump.info, field.name)
                    if isinstance(value, frozenset):
                        value = ",".join(sorted(value)) or "-"
                    elif field.name == "phys_base" and value is not None:
                        value = hex(value)
                    elif field.name == "timestamp" and value is not None:
                        when = datetime.fromtimestamp(value, UTC)
                        value = f"{value} ({when:%Y-%m-%d %H:%M:%S} UTC)"
                    _say(f"  {field.name:15} {value}")
                kinds = Counter(f"{n.name}/{n.type}" for n in dump.notes)
                _say(f"  {'notes':15} " + (", ".join(f"{k} x{v}" for k, v in kinds.items())
                                           or "-"))
                lines = (dump.vmcoreinfo or "").splitlines()
                print(f"  VMCOREINFO ({len(lines)} lines):")
                for line in lines[:args.lines]:
                    _say(f"    {line}")
        except CrashtuiError as exc:
            print(terminal_safe(f"crashtui: {exc}"), file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
