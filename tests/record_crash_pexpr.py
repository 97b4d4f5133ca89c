#!/usr/bin/env python3
"""Record crash 8.0.6's `p` with C expressions, `struct`/`union` with -o and member paths,
for sample dumps into tests/crash_outputs/<dump>/pexpr-*.txt.

    .venv/bin/python tests/record_crash_pexpr.py 6.1-sysrq 5.10-sysrq 6.12-sysrq

{TASK} is the panic task (from the dump's crash/bt.txt). All commands run in one crash
session, so `$N` value-history numbers follow the order below.
"""
from __future__ import annotations

import re
import sys

from recording import Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (
    ("pexpr-comm.txt", "p init_task.comm"),
    ("pexpr-cast-pid.txt", "p ((struct task_struct *)0x{TASK})->pid"),
    ("pexpr-cast-comm.txt", "p ((struct task_struct *)0x{TASK})->comm"),
    ("pexpr-cast.txt", "p (struct task_struct *)0x{TASK}"),
    ("pexpr-cast-mm.txt", "p ((struct task_struct *)0x{TASK})->mm"),
    ("pexpr-mm-anon.txt", "p ((struct task_struct *)0x{TASK})->mm->mmap_base"),
    ("pexpr-deref-mm.txt", "p *((struct task_struct *)0x{TASK})->active_mm"),
    ("pexpr-cpumask.txt", "p cpu_online_mask->bits[0]"),
    ("pexpr-deref-cpumask.txt", "p *cpu_online_mask"),
    ("pexpr-percpu-1.txt", "p cpu_number:1"),
    ("pexpr-percpu-a.txt", "p cpu_number:a"),
    ("pexpr-percpu-rq.txt", "p runqueues:1"),
    ("pexpr-sizeof.txt", "p sizeof(struct task_struct)"),
    ("pexpr-slash-x.txt", "p/x jiffies"),
    ("pexpr-x-pid.txt", "p -x init_task.pid"),
    ("pexpr-arith.txt", "p init_task.prio*2-1"),
    ("pexpr-shift.txt", "p 1 << 4"),
    ("pexpr-and.txt", "p jiffies & 0xff"),
    ("pexpr-ulong.txt", "p (unsigned long)init_task.tasks.next"),
    ("pexpr-next-next.txt", "p init_task.tasks.next->next"),
    ("pexpr-deref-list.txt", "p *init_task.tasks.next"),
    ("pexpr-addr-member.txt", "p &init_task.tasks"),
    ("pexpr-addr-char.txt", "p &init_task.comm[1]"),
    ("pexpr-offsetof.txt", "p &((struct task_struct *)0)->tasks"),
    ("pexpr-ptr-arith.txt", "p (struct list_head *)0x{TASK} + 2"),
    ("pexpr-weight.txt", "p init_task.se.load.weight"),
    ("pexpr-div.txt", "p nr_cpu_ids * 10 / 3"),
    ("pexpr-neg.txt", "p (long)-1"),
    ("pexpr-char-cast.txt", "p (char)65"),
    ("pexpr-deref-sysname.txt", "p *init_uts_ns.name.sysname@3"),
    ("pexpr-nosym.txt", "p no_such_symbol_xyz"),
    ("pexpr-nomember.txt", "p init_task.no_such_member"),
    ("pexpr-enum.txt", "p init_task.sched_class->enqueue_task"),
    ("pexpr-struct-o.txt", "struct task_struct -o"),
    ("pexpr-struct-members.txt", "struct task_struct.pid,comm {TASK}"),
    ("pexpr-struct-mm-x.txt", "struct task_struct.mm {TASK} -x"),
    ("pexpr-struct-o-addr.txt", "struct -o list_head {TASK}"),
    ("pexpr-union.txt", "union sigval"),
    ("pexpr-union-o.txt", "union -o sigval"),
    ("pexpr-struct-nested.txt", "struct task_struct.se.load {TASK}"),
    ("pexpr-mask-bits.txt", "p __cpu_online_mask.bits[0]"),
    ("pexpr-mask-x.txt", "p/x __cpu_online_mask"),
    ("pexpr-func.txt", "p schedule"),
    ("pexpr-sizeof-var.txt", "p sizeof(init_task)"),
    ("pexpr-typedef-cast.txt", "p (u64)jiffies"),
    ("pexpr-const-ptr.txt", "p init_task.sched_class"),
    ("pexpr-ptr-diff.txt", "p &init_task.tasks-&init_task.children"),
    ("pexpr-minus-spaced.txt", "p init_task.prio * 2 - 1"),
    ("pexpr-struct-o-task-addr.txt", "struct -o task_struct {TASK}"),
    ("pexpr-union-addr.txt", "union sigval {TASK}"),
    ("pexpr-struct-count.txt", "struct list_head {TASK} 2"),
    ("pexpr-stack.txt", "p init_task.stack"),
    ("pexpr-addr-jiffies.txt", "p &jiffies"),
    ("pexpr-enumerator.txt", "p PIDTYPE_TGID"),
    ("pexpr-enum-cast.txt", "p (enum pid_type)1"),
    ("pexpr-at-comm.txt", "p *init_task.comm@20"),
    ("pexpr-percpu-member.txt", "p runqueues:1,2.nr_running"),
    ("pexpr-compare.txt", "p init_task.pid == 0"),
    ("pexpr-char-literal.txt", "p 'a'"),
    ("pexpr-init-task.txt", "p init_task"),
    ("pexpr-sched-class.txt", "p *init_task.sched_class"),
    ("pexpr-char-ptr-cast.txt", "p (char *)linux_banner"),
    ("pexpr-at-chars.txt", "p *(char *)linux_banner@5000"),
    ("pexpr-at-chars-runs.txt", "p *(char *)&init_task@20000"),
    ("pexpr-at-ints.txt", "p *(int *)&init_task@300"),
    ("pexpr-px.txt", "px jiffies"),
    ("pexpr-x-comm.txt", "p -x init_task.comm"),
    ("pexpr-slash-x-comm.txt", "p/x init_task.comm"),
    ("pexpr-x-char.txt", "p -x init_task.comm[0]"),
    ("pexpr-x-enum.txt", "p -x (enum pid_type)1"),
    ("pexpr-slash-x-enum.txt", "p/x (enum pid_type)1"),
    ("pexpr-slash-x-ptr.txt", "p/x init_task.sched_class"),
    ("pexpr-struct-x-comm.txt", "struct task_struct.comm,in_execve -x {TASK}"),
    ("pexpr-hist-rlim.txt", "p init_task.signal->rlim[7]"),
    ("pexpr-hist-last.txt", "p $"),
    ("pexpr-hist-comma.txt", "p init_task.pid, 2"),
    ("pexpr-hist-back.txt", "p $$2"),
    ("pexpr-struct-deep-member.txt", "struct task_struct.se.load.weight {TASK}"),
    ("pexpr-struct-members-count.txt", "struct task_struct.pid,comm {TASK} 2"),
    ("pexpr-struct-o-member.txt", "struct -o task_struct.se,comm,tasks.next"),
    ("pexpr-struct-o-ptr-member.txt", "struct -o task_struct.mm,sched_class,comm"),
    ("pexpr-struct-o-fnptr-member.txt", "struct -o sched_class.enqueue_task"),
    ("pexpr-index-expr.txt", "p init_task.comm[1+2]"),
)
MARKER = "==== record-crash-pexpr ===="


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    bt = (s.dir / "crash" / "bt.txt").read_text()
    task = re.search(r"TASK: ([0-9a-f]+)", bt)
    assert task, "crash/bt.txt has no task header"
    outputs = crash_outputs(crash, s, [c.format(TASK=task.group(1)) for _f, c in COMMANDS],
                            MARKER)
    out = write_outputs(name, zip((f for f, _c in COMMANDS), outputs, strict=False))
    (out / "pexpr-TASK").write_text(task.group(1) + "\n")
    print(f"{name}: wrote {len(COMMANDS)} files", flush=True)


def main(args: list[str]) -> int:
    crash = crash_command()
    for name in args:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
