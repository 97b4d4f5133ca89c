#!/usr/bin/env python3
"""Record drgn's view of mounts, network devices, swap, disks and sockets for the 7.x sample
dumps (crash 8.0.6 cannot open them) into tests/crash_outputs/<dump>/drgn-*.txt.

    .venv/bin/python tests/record_drgn_devices.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq

drgn 0.3.0's port of crash has mount, net and swap (run as `crash <command>`); it has no
`dev -d` nor `net -s`, so drgn-disks.txt is written by drgn's block helpers (for_each_disk,
request_queue_busy_iter with driver tags: the requests in state MQ_RQ_IN_FLIGHT, read or
write by op_is_write, as the kernel's blk_mq_in_flight() counts them) and drgn-sockets.txt by
its fs helpers (every task's fds whose inode is a socket: fd, struct socket, struct sock).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

from recording import Sample, drgn_outputs, write_outputs

COMMANDS = (("drgn-mount.txt", "mount"), ("drgn-net.txt", "net"), ("drgn-swap.txt", "swap"))
MARKER = "==== record-drgn-devices ===="
HELPERS = """
from drgn.helpers.linux.block import for_each_disk, disk_name, request_queue_busy_iter, op_is_write
from drgn.helpers.linux.fs import for_each_file
from drgn.helpers.linux.pid import for_each_task
from drgn import container_of, cast
print("DISKS")
for disk in for_each_disk(prog):
    name = disk_name(disk).decode()
    if name.startswith(("ram", "loop")):
        continue
    q = disk.queue
    counts = [0, 0]
    for rq in request_queue_busy_iter(q, "driver"):
        if rq and rq.q == q and rq.state.value_() == 1:
            counts[int(op_is_write(rq.cmd_flags))] += 1
    print(disk.major.value_(), hex(disk.value_()), name, hex(q.value_()), *counts)
print("SOCKETS")
for task in for_each_task(prog):
    for fd, file in for_each_file(task):
        inode = file.f_inode
        if inode.i_mode.value_() & 0o170000 != 0o140000:
            continue
        sock = container_of(inode, "struct socket_alloc", "vfs_inode").socket.address_of_()
        print(task.pid.value_(), fd, hex(sock.value_()), hex(sock.sk.value_()),
              sock.sk.__sk_common.skc_family.value_(), sock.sk.sk_type.value_())
"""


def record(name: str, drgn: str) -> None:
    s = Sample.get(name)
    outputs = drgn_outputs(drgn, s.dump, s.vmlinux, [c for _f, c in COMMANDS], MARKER)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(HELPERS)
    r = subprocess.run([drgn, "-q", "-c", str(s.dump), "-s", str(s.vmlinux), f.name],
                       capture_output=True, text=True, check=True, timeout=1800)
    disks, sockets = r.stdout.split("DISKS\n", 1)[1].split("SOCKETS\n", 1)
    files = [*zip((f for f, _c in COMMANDS), outputs, strict=False),
             ("drgn-disks.txt", disks), ("drgn-sockets.txt", sockets)]
    write_outputs(name, files)
    print(f"{name}: wrote {len(files)} files", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--drgn", default="/work/drgn-venv/bin/drgn")
    p.add_argument("dumps", nargs="+")
    args = p.parse_args()
    for name in args.dumps:
        record(name, args.drgn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
