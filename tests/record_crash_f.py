#!/usr/bin/env python3
"""Record crash 8.0.6's kmem -g/-p/-F/-f ADDRESS, irq (table, -u, -a, -b, -d), sig -g and
foreach selectors with sig/net/ps/bt/set for sample dumps into tests/crash_outputs/<dump>/
(files f-*.txt; sample-dumps/ belongs to whoever made the dumps).

    .venv/bin/python tests/record_crash_f.py 6.1-sysrq 5.10-sysrq 6.12-sysrq ...

{PID} is the panic task's PID (from the dump's crash/bt.txt), {TASK} its task_struct;
{FREE} the first page of the first free block of order 1 or more, {FREE2} its second page's
physical address, {FREEKV} its third page's kernel virtual address (found with crashtui's
own reading; crash must agree or print nothing). `kmem -p` prints every struct page (19 MB
on a 1 GiB guest): f-kmem-p-every256.txt keeps crash's header line, then every 256th line
and the line count ("lines: N").
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from recording import Sample, crash_command, crash_outputs, write_outputs

COMMANDS = (
    ("f-kmem-g.txt", "kmem -g"),
    ("f-kmem-g-flags.txt", "kmem -g 10600"),
    ("f-kmem-F.txt", "kmem -F"),
    ("f-kmem-f-page.txt", "kmem -f {FREE}"),
    ("f-kmem-f-phys.txt", "kmem -f {FREE2}"),
    ("f-kmem-f-kvaddr.txt", "kmem -f {FREEKV}"),
    ("f-kmem-f-task.txt", "kmem -f {TASK}"),
    ("f-kmem-p-addrs.txt", "kmem -p {FREE} {FREE2} {TASK}"),
    ("f-kmem-p-every256.txt", "kmem -p"),
    ("f-irq.txt", "irq"),
    ("f-irq-u.txt", "irq -u"),
    ("f-irq-1.txt", "irq 1 4"),
    ("f-irq-a.txt", "irq -a"),
    ("f-irq-b.txt", "irq -b"),
    ("f-irq-d.txt", "irq -d"),
    ("f-sig-g.txt", "sig -g {PID}"),
    ("f-foreach-user-sig.txt", "foreach user sig"),
    ("f-foreach-RU-sig-g.txt", "foreach RU sig -g"),
    ("f-foreach-kernel-ps.txt", "foreach kernel ps"),
    ("f-foreach-user-ps.txt", "foreach user ps"),
    ("f-foreach-gleader-ps.txt", "foreach gleader ps"),
    ("f-foreach-active-ps.txt", "foreach active ps"),
    ("f-foreach-regex-ps.txt", "foreach 'kworker/[01]:.*' ps"),
    ("f-foreach-pid-name-ps.txt", "foreach 2 init ps"),
    ("f-foreach-active-bt.txt", "foreach active bt"),
    ("f-foreach-user-net-s.txt", "foreach user net -s"),
    ("f-foreach-net.txt", "foreach 1 net"),
    ("f-foreach-active-set.txt", "foreach active set"),
    ("f-foreach-unknown-ps.txt", "foreach 1 99999 nosuchname ps"),
    ("f-foreach-UN-ps.txt", "foreach UN ps"),
    ("f-foreach-UN-sig.txt", "foreach UN sig"),
)
MARKER = "==== record-crash-f ===="
EVERY = 256


def free_pages(dump_dir: Path, vmlinux: Path) -> dict[str, str]:
    """{FREE}, {FREE2}, {FREEKV}: pages of the first free block of order >= 1."""
    from crashtui.analysis.session import Session
    from crashtui.kernel.pageuse import vmemmap_base
    from crashtui.kernel.zones import free_list_pages, memory_zones, zone_free_lists

    s = Session.open(next(dump_dir.glob("dump.*")), vmlinux)
    try:
        k = s.kernel
        size = k.sizeof("struct page")
        base = vmemmap_base(k)
        assert base is not None
        for z in memory_zones(k).zones:
            for fl in zone_free_lists(k, z):
                if fl.order >= 2 and fl.blocks:
                    head = free_list_pages(k, fl, z)[0]
                    pfn = (head - base) // size
                    direct = k.pagetable.direct_map
                    assert direct is not None
                    return {"FREE": f"{head:x}", "FREE2": f"{(pfn + 1) << 12:x}",
                            "FREEKV": f"{direct.virt + ((pfn + 2) << 12):x}"}
        raise AssertionError("no free block of order >= 2")
    finally:
        s.close()


def sampled(text: str) -> str:
    """The header, every EVERY-th line after it and the line count."""
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[:1] + lines[1::EVERY] + [f"lines: {len(lines)}"]) + "\n"


def record(name: str, crash: list[str]) -> None:
    s = Sample.get(name)
    bt = (s.dir / "crash" / "bt.txt").read_text()
    head = re.search(r"PID: (\d+)\s+TASK: ([0-9a-f]+)", bt)
    assert head, "crash/bt.txt has no task header"
    where = {"PID": head.group(1), "TASK": head.group(2), **free_pages(s.dir, s.vmlinux)}
    outputs = crash_outputs(crash, s, [c.format(**where) for _f, c in COMMANDS], MARKER)
    files = []
    for (f, _c), text in zip(COMMANDS, outputs, strict=False):
        files.append((f, sampled(text) if f == "f-kmem-p-every256.txt" else text))
    out = write_outputs(name, files)
    (out / "f-ADDRESSES").write_text("".join(f"{k}={v}\n" for k, v in where.items()))
    print(f"{name}: wrote {len(files)} files", flush=True)


def main(args: list[str]) -> int:
    crash = crash_command()
    for name in args:
        record(name, crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
