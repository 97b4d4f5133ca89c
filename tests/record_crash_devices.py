#!/usr/bin/env python3
"""Record crash 8.0.6's mount, net, net -s, dev, dev -d/-D and swap outputs for sample dumps
into tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made the dumps).

    .venv/bin/python tests/record_crash_devices.py 6.1-sysrq 5.10-sysrq 6.12-sysrq ...

{PID} is the panic task's PID (from the dump's crash/bt.txt), written to devices-PID.
Where tests/crash_outputs/<dump>/sockets-PIDS names the tasks a scenario opened sockets in
(6.1-busy-io), `net -s` of those PIDs goes to net-s-owners.txt and `foreach files` (socket
and pipe files) to foreach-files.txt.
"""
from __future__ import annotations

import re
import sys

from recording import OUTPUTS, Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (
    ("mount.txt", "mount"),
    ("mount-n-1.txt", "mount -n 1"),
    ("net.txt", "net"),
    ("net-n-pid.txt", "net -n {PID}"),
    ("net-s.txt", "net -s"),
    ("net-s-pids.txt", "net -s 1 {PID}"),
    ("dev.txt", "dev"),
    ("dev-d.txt", "dev -d"),
    ("dev-D.txt", "dev -D"),
    ("swap.txt", "swap"),
)
MARKER = "==== record-crash-devices ===="


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    bt = (s.dir / "crash" / "bt.txt").read_text()
    pid = re.search(r"PID: (\d+)", bt)
    assert pid, "crash/bt.txt has no task header"
    commands = list(COMMANDS)
    owners = OUTPUTS / name / "sockets-PIDS"
    if owners.is_file():
        commands.append(("net-s-owners.txt", "net -s " + " ".join(owners.read_text().split())))
        commands.append(("foreach-files.txt", "foreach files"))  # sockfs and pipefs paths
    outputs = crash_outputs(crash, s, [c.format(PID=pid.group(1)) for _f, c in commands],
                            MARKER)
    out = write_outputs(name, zip((f for f, _c in commands), outputs, strict=False))
    (out / "devices-PID").write_text(pid.group(1) + "\n")
    print(f"{name}: wrote {len(commands)} files", flush=True)


def main(args: list[str]) -> int:
    crash = crash_command()
    for name in args:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
