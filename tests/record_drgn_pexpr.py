#!/usr/bin/env python3
"""Record drgn 0.3.0's values of C expressions crashtui's `p` takes, for the 7.x sample
dumps (crash 8.0.6 cannot open them), into tests/crash_outputs/<dump>/drgn-pexpr.json.

    .venv/bin/python tests/record_drgn_pexpr.py [--drgn /work/drgn-venv/bin/drgn] 7.3-sysrq

Each entry maps crashtui's expression to the integer drgn computes for it with its own
Python API ({TASK}: the panic task's address, from crashtui's summary).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from recording import Sample, write_outputs

# (crashtui's expression, the same in drgn's Python)
EXPRESSIONS = (
    ("init_task.pid", "prog['init_task'].pid"),
    ("init_task.prio*2-1", "prog['init_task'].prio * 2 - 1"),
    ("sizeof(struct task_struct)", "sizeof(prog.type('struct task_struct'))"),
    ("jiffies & 0xff", "prog['jiffies'] & 0xff"),
    ("(unsigned long)init_task.tasks.next", "prog['init_task'].tasks.next"),
    ("init_task.tasks.next->next", "prog['init_task'].tasks.next.next"),
    ("&init_task.tasks", "prog['init_task'].tasks.address_of_()"),
    ("&((struct task_struct *)0)->tasks", "offsetof(prog.type('struct task_struct'), 'tasks')"),
    ("__cpu_online_mask.bits[0]", "prog['__cpu_online_mask'].bits[0]"),
    ("runqueues:1.cpu", "per_cpu(prog['runqueues'], 1).cpu"),
    ("runqueues:1.nr_running", "per_cpu(prog['runqueues'], 1).nr_running"),
    ("((struct task_struct *)0x{TASK})->pid", "Object(prog, 'struct task_struct *', {TASK}).pid"),
    ("((struct task_struct *)0x{TASK})->mm->mmap_base",
     "Object(prog, 'struct task_struct *', {TASK}).mm.mmap_base"),
    ("((struct task_struct *)0x{TASK})->real_parent->pid",
     "Object(prog, 'struct task_struct *', {TASK}).real_parent.pid"),
    ("init_task.se.load.weight", "prog['init_task'].se.load.weight"),
    ("nr_cpu_ids * 10 / 3", "prog['nr_cpu_ids'] * 10 / 3"),
    ("(struct list_head *)0x{TASK} + 2", "Object(prog, 'struct list_head *', {TASK}) + 2"),
    ("init_task.comm[1]", "prog['init_task'].comm[1]"),
)
SCRIPT = """
import json, sys
from drgn import Object, offsetof, sizeof
from drgn.helpers.linux.percpu import per_cpu
out = {}
for ours, theirs in json.loads(sys.argv[1]):
    v = eval(theirs)
    out[ours] = int(v.value_() if hasattr(v, "value_") else v)
print(json.dumps(out, indent=1))
"""


def record(name: str, drgn: str) -> None:
    from crashtui.analysis.session import Session

    s = Sample.get(name)
    session = Session.open(s.dump, s.vmlinux)
    try:
        task = session.summary.panic_task
        assert task is not None, "no panic task"
        addr = task.address
    finally:
        session.close()
    pairs = [(a.replace("{TASK}", f"{addr:x}"), b.replace("{TASK}", hex(addr)))
             for a, b in EXPRESSIONS]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(SCRIPT)
    r = subprocess.run([drgn, "-q", "-c", str(s.dump), "-s", str(s.vmlinux), f.name,
                        json.dumps(pairs)], capture_output=True, text=True, check=True,
                       timeout=1800)
    json.loads(r.stdout)
    write_outputs(name, [("drgn-pexpr.json", r.stdout)])
    print(f"{name}: wrote {len(pairs)} values", flush=True)


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
