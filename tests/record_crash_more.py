#!/usr/bin/env python3
"""Record crash 8.0.6's kmem -s, kmem ADDR, whatis, vtop/ptov, task, files, vm, list and
foreach outputs for sample dumps into tests/crash_outputs/<dump>/ (sample-dumps/ belongs to
whoever made the dumps).

    .venv/bin/python tests/record_crash_more.py 6.1-sysrq 5.10-sysrq 6.12-sysrq ...
    .venv/bin/python tests/record_crash_more.py --only=kmem-page.txt 6.1-sysrq  (one file)

{TASK} is the panic task and {SP0} frame #0's stack slot (from the dump's crash/bt.txt),
{PID} the panic task's PID; each sample's values are written to more-ADDRESSES.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from recording import Sample, crash_command, crash_outputs, run_crash, write_outputs

COMMANDS = (
    ("kmem-s.txt", "kmem -s"),
    ("kmem-s-name.txt", "kmem -s task_struct"),
    ("kmem-s-names.txt", "kmem -s dentry kmalloc-64"),
    ("kmem-task.txt", "kmem {TASK}"),
    ("kmem-stack.txt", "kmem {SP0}"),
    ("kmem-sym.txt", "kmem linux_banner"),
    ("kmem-symaddr.txt", "kmem {BANNER}"),
    ("whatis-var.txt", "whatis jiffies"),
    ("whatis-struct.txt", "whatis list_head"),
    ("whatis-struct2.txt", "whatis struct list_head"),
    ("whatis-func.txt", "whatis panic"),
    ("whatis-task.txt", "whatis init_task"),
    ("vtop-task.txt", "vtop {TASK}"),
    ("vtop-banner.txt", "vtop linux_banner"),
    ("ptov.txt", "ptov 1000000"),
    ("task.txt", "task"),
    ("task-1.txt", "task 1"),
    ("files.txt", "files"),
    ("files-1.txt", "files 1"),
    ("vm.txt", "vm"),
    ("vm-1.txt", "vm 1"),
    ("list-h.txt", "list task_struct.tasks -h init_task"),
    ("list-h-s.txt", "list task_struct.tasks -s task_struct.pid,comm -h init_task"),
    ("list-o.txt", "list -o task_struct.tasks -h init_task"),
    ("list-H.txt", "list -H modules"),
    ("list-start.txt", "list task_struct.tasks init_task"),
    ("foreach-ps.txt", "foreach ps"),
    ("foreach-files.txt", "foreach files"),
    ("foreach-vm.txt", "foreach vm"),
    ("foreach-1-task.txt", "foreach 1 task"),
    ("foreach-RU-ps.txt", "foreach RU ps"),
    ("foreach-init-files.txt", "foreach init files"),
    ("whatis-banner.txt", "whatis linux_banner"),
    ("whatis-syscalls.txt", "whatis sys_call_table"),
    ("whatis-percpu.txt", "whatis runqueues"),
    ("kmem-free-cpu.txt", "kmem {FREECPU}"),
    ("kmem-free-slab.txt", "kmem {FREESLAB}"),
    ("kmem-page.txt", "kmem {PAGE}"),
    ("kmem-module.txt", "kmem {MODULE}"),
    ("vtop-user.txt", "vtop -c 1 400000"),
    ("vtop-user-stack.txt", "vtop -c {PID} {SP0}"),
)
MARKER = "==== record-crash-more ===="


def addresses(dump_dir: Path) -> dict[str, str]:
    """TASK, PID and SP0 from crash's bt of the panic task, BANNER from sym."""
    bt = (dump_dir / "crash" / "bt.txt").read_text()
    task = re.search(r"PID: (\d+)\s+TASK: ([0-9a-f]+)", bt)
    frame = re.search(r"#\d+ \[([0-9a-f]+)\]", bt)
    assert task and frame, "crash/bt.txt has no task header or frames"
    return {"PID": task.group(1), "TASK": task.group(2), "SP0": frame.group(1)}


def free_objects(dump_dir: Path, vmlinux: Path) -> dict[str, str]:
    """FREECPU: an object on a CPU's lockless freelist (kmalloc-256), FREESLAB: a free object
    of a slab on a node's partial list, PAGE: the struct page heading TASK's slab, MODULE: the
    first module's list node (found with crashtui's own walks)."""
    from crashtui.analysis.session import Session
    from crashtui.kernel.slab import SlubLayout, cache_addresses

    s = Session.open(next(dump_dir.glob("dump.*")), vmlinux)
    try:
        k = s.kernel
        lay = SlubLayout(k)
        addrs, _ = cache_addresses(k, lay)
        cache = next(a for a in addrs if k.read_cstr(k.read_u64(a + lay.name)) == "kmalloc-256")
        base = k.read_u64(cache + lay.cpu_slab)
        cpu = next((k.read_u64(k.per_cpu(base, c) + lay.c_freelist)
                    for c in range(k.nr_cpu_ids)
                    if k.read_u64(k.per_cpu(base, c) + lay.c_freelist)), 0)
        slab = 0
        for a in addrs:  # the first cache with a partial slab whose freelist is not empty
            head = k.read_u64(a + lay.nodes) + lay.partial
            first = k.read_u64(head)
            if first != head and k.read_u64(first - lay.slab_list + lay.slab_freelist):
                slab = k.read_u64(first - lay.slab_list + lay.slab_freelist)
                break
        from crashtui.kernel.memaddr import slab_object

        task = int(addresses(dump_dir)["TASK"], 16)
        head = slab_object(k, task)
        modules = k.symbol("modules")
        module = k.read_u64(modules)
        return {"FREECPU": f"{cpu:x}", "FREESLAB": f"{slab:x}",
                "PAGE": f"{head.slab:x}" if head is not None else "0",
                "MODULE": f"{module:x}" if module != modules else "0"}
    finally:
        s.close()


def record(name: str, crash: list[str], only: set[str] | None = None) -> None:
    s = Sample.get(name)
    where = addresses(s.dir)
    banner = run_crash(crash, s.vmlinux, s.dir, s.manifest["dump"], ["sym linux_banner"])
    where["BANNER"] = banner.split()[0]
    where.update(free_objects(s.dir, s.vmlinux))
    # an address not found (no free object of that kind) leaves its command out
    commands = [(f, c) for f, c in COMMANDS
                if not any(f"{{{k}}}" in c and v == "0" for k, v in where.items())
                and (only is None or f in only)]
    outputs = crash_outputs(crash, s, [c.format(**where) for _f, c in commands], MARKER)
    out = write_outputs(name, zip((f for f, _c in commands), outputs, strict=False),
                        s.vmlinux.parent.parent.parent)
    (out / "more-ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in sorted(where.items())))
    print(f"{name}: wrote {len(commands)} files", flush=True)


def main(args: list[str]) -> int:
    only = {a.removeprefix("--only=") for a in args if a.startswith("--only=")} or None
    crash = crash_command()
    for name in (a for a in args if not a.startswith("--")):
        record(name, crash, only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
