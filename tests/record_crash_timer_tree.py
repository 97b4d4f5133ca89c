#!/usr/bin/env python3
"""Record crash 8.0.6's timer, waitq, tree, search and list (-r, -O, -l, -x) outputs for
sample dumps into tests/crash_outputs/<dump>/ (sample-dumps/ belongs to whoever made them).

    .venv/bin/python tests/record_crash_timer_tree.py 6.1-sysrq 5.10-sysrq 6.12-sysrq ...

{NAME} placeholders are addresses found with crashtui's own reading (written to
timer-ADDRESSES); a command whose placeholder this kernel has no value for is left out.
"""
from __future__ import annotations

import sys
from pathlib import Path

from recording import Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (
    ("timer.txt", "timer"),
    ("timer-r.txt", "timer -r"),
    ("timer-C1.txt", "timer -C 1"),
    ("timer-r-C2.txt", "timer -r -C 2"),
    ("waitq-sym.txt", "waitq khugepaged_wait"),
    ("waitq-sym2.txt", "waitq oom_reaper_wait"),
    ("waitq-empty.txt", "waitq log_wait"),
    ("waitq-addr.txt", "waitq {KHUGEWQ}"),
    ("waitq-member.txt", "waitq pglist_data.kswapd_wait {PGDAT}"),
    ("tree-hrtimer.txt", "tree -t rbtree -r hrtimer_clock_base.active -o hrtimer.node {HRBASE}"),
    ("tree-hrtimer-p.txt", "tree -t rbtree -r hrtimer_clock_base.active -o hrtimer.node -p "
                           "{HRBASE}"),
    ("tree-hrtimer-l-s.txt", "tree -t rbtree -l -s hrtimer.function -r "
                             "hrtimer_clock_base.active -o hrtimer.node {HRBASE}"),
    ("tree-hrtimer-N.txt", "tree -t rbtree -o hrtimer.node -N {HRNODE}"),
    ("tree-xarray-p.txt", "tree -t xarray -p {IRQXA}"),
    ("tree-radix.txt", "tree -t radix {IRQXA}"),
    ("tree-xarray-N.txt", "tree -t x -N {XAHEAD} -p"),
    ("tree-xarray-s.txt", "tree -t xarray -s irq_desc.depth,tot_count {IRQXA}"),
    ("tree-mm-rb.txt", "tree -t rbtree -r mm_struct.mm_rb -o vm_area_struct.vm_rb {MMRB}"),
    ("tree-mm-rb-p.txt", "tree -t rbtree -r mm_struct.mm_rb -o vm_area_struct.vm_rb -p {MMRB}"),
    ("tree-mm-rb-l-s.txt", "tree -t rbtree -l -s vm_area_struct.vm_start -r mm_struct.mm_rb "
                           "-o vm_area_struct.vm_rb {MMRB}"),
    ("tree-maple.txt", "tree -t maple -r mm_struct.mm_mt {MMMT}"),
    ("tree-maple-p-s.txt", "tree -t maple -r mm_struct.mm_mt -p -x "
                           "-s vm_area_struct.vm_start,vm_end {MMMT}"),
    ("tree-maple-irq.txt", "tree -t maple -p {IRQMT}"),
    ("tree-maple-v.txt", "tree -t maple -v -p -r mm_struct.mm_mt {MMMT}"),
    ("tree-maple-irq-v.txt", "tree -t maple -v {IRQMT}"),
    ("list-r-H.txt", "list -r -H modules"),
    ("list-r-h.txt", "list -o task_struct.tasks -r -h init_task"),
    ("list-l-s.txt", "list {TASKSNEXT} -l task_struct.tasks -s task_struct.comm"),
    ("list-O.txt", "list -o task_struct.sibling -O task_struct.children "
                   "-s task_struct.comm -h {KTHREADD}"),
    ("list-x.txt", "list task_struct.tasks -s task_struct.pid -x -h init_task"),
    ("list-S.txt", "list task_struct.tasks -S task_struct.pid,comm,stack,mm,flags -h init_task"),
    ("list-S-x.txt", "list -x -H modules -o module.list -S module.name,init,state"),
    ("tree-hrtimer-S.txt", "tree -t rbtree -S hrtimer.function,_softexpires,base -r "
                           "hrtimer_clock_base.active -o hrtimer.node {HRBASE}"),
    ("search-k.txt", "search -k {TASK}"),
    ("search-k-range.txt", "search -s {STACK} -l 16384 {TASK}"),
    ("search-p-mask.txt", "search -p -m ffff {TASK}"),
    ("search-u.txt", "search -u -w 464c457f"),
    ("search-p-w.txt", "search -p -w 464c457f"),
    ("search-t.txt", "search -t {TASK}"),
    ("search-T.txt", "search -T {TASK}"),
    ("search-T-x.txt", "search -T -w {TASKLOW}"),
    ("search-c.txt", 'search -k -c "sysrq triggered" Linux'),
    ("search-p-c.txt", 'search -p -c "sysrq triggered"'),
    ("search-t-c.txt", "search -t -c panic"),
    ("search-K.txt", "search -K {TASK}"),
    ("search-V.txt", "search -V {TASK}"),
)
MARKER = "==== record-crash-timer-tree ===="


def addresses(dump: Path, vmlinux: Path) -> dict[str, str]:
    """The placeholders' values on this dump (crashtui's own reading)."""
    from crashtui.analysis.session import Session

    s = Session.open(dump, vmlinux)
    k = s.kernel
    try:
        off = k.offsetof
        t1 = next(t for t in s.tasks.tasks if t.pid == 1)
        t2 = next(t for t in s.tasks.tasks if t.pid == 2)
        out = {"TASK": f"{t1.address:x}", "TASKLOW": f"{t1.address & 0xFFFFFFFF:x}", "STACK": f"{t1.stack:x}",
               "KTHREADD": f"{t2.address:x}",
               "KHUGEWQ": f"{k.symbol('khugepaged_wait'):x}",
               "TASKSNEXT": f"{k.read_u64(k.symbol('init_task') + off('task_struct', 'tasks')):x}"}
        node_data = k.symbol_or_none("node_data")
        if node_data is not None:
            out["PGDAT"] = f"{k.read_u64(node_data):x}"
        hr = (k.per_cpu(k.symbol("hrtimer_bases"), 0) & (1 << 64) - 1) + off(
            "hrtimer_cpu_base", "clock_base")
        out["HRBASE"] = f"{hr:x}"
        node = k.read_u64(hr + off("hrtimer_clock_base", "active"))
        if node:
            out["HRNODE"] = f"{node:x}"
        if k.has_symbol("irq_desc_tree"):
            out["IRQXA"] = "irq_desc_tree"
            xa = k.symbol("irq_desc_tree") + off("xarray", "xa_head")
            out["XAHEAD"] = f"{k.read_u64(xa):x}"
        if k.has_symbol("sparse_irqs"):
            out["IRQMT"] = "sparse_irqs"
        if k.btf.has_member("mm_struct", "mm_rb"):
            out["MMRB"] = f"{t1.mm:x}"
        if k.btf.has_member("mm_struct", "mm_mt"):
            out["MMMT"] = f"{t1.mm:x}"
        return out
    finally:
        s.close()


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    where = addresses(s.dump, s.vmlinux)
    commands = []
    for f, c in COMMANDS:
        try:
            commands.append((f, c.format(**where)))
        except KeyError:
            continue
    outputs = crash_outputs(crash, s, [c for _f, c in commands], MARKER)
    out = write_outputs(name, zip((f for f, _c in commands), outputs, strict=False))
    (out / "timer-ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in sorted(where.items())))
    print(f"{name}: wrote {len(commands)} files", flush=True)


def main(args: list[str]) -> int:
    crash = crash_command()
    for name in args:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
