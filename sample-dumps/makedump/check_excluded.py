"""drgn script: did `makedumpfile -d 31` drop only what it should?

    drgn -q -c CHECK_D1_DUMP -s VMLINUX sample-dumps/makedump/check_excluded.py D31_DUMP VMLINUX

CHECK_D1_DUMP is the `-d 1` dump make-dump --check-level 1 saves of the same crash (in its
work directory). For every page the -d 1 dump has and the -d 31 dump lacks, this prints what
the page was (a free buddy block, an LRU or anonymous page: rightly dropped; a tail page of a
slab or other kernel folio: wrongly dropped), then the task count of both dumps.
"""

from __future__ import annotations

import sys
from collections import Counter

import drgn
from drgn.helpers.linux.mm import pfn_to_page
from drgn.helpers.linux.pid import for_each_task

PAGE_SIZE = 4096
d1: drgn.Program = globals()["prog"]
d31 = drgn.Program()
d31.set_core_dump(sys.argv[1])
d31.load_debug_info(sys.argv[2:3])

page_type = d1.type("struct page")
INFO = "compound_info" if page_type.has_member("compound_info") else "compound_head"
# 7.1+ with HugeTLB vmemmap optimisation and a 64-byte struct page: a tail's compound_info
# is a mask (head = page & info), else head + 1 (include/linux/page-flags.h).
MASK_ENCODED = INFO == "compound_info" and page_type.size == 64
PG_LRU = d1["PG_lru"].value_()
PGTY_BUDDY = d1["PGTY_buddy"].value_()
PGTY_SLAB = d1["PGTY_slab"].value_()


def present(p: drgn.Program, pfn: int) -> bool:
    try:
        p.read(pfn * PAGE_SIZE, 8, True)
        return True
    except drgn.FaultError:
        return False


def flags_of(page: drgn.Object) -> int:
    f = page.flags
    return f.f.value_() if f.type_.has_member("f") else f.value_()  # 6.18: memdesc_flags_t


def kind(page: drgn.Object) -> str:
    flags, mapping = flags_of(page), page.mapping.value_()
    ptype = page.page_type.value_() >> 24
    if flags & (1 << PG_LRU):
        return "LRU page (cache or user)"
    if mapping & 1:
        return "anonymous page"
    if ptype == PGTY_SLAB:
        return "slab"
    return f"other kernel page (flags {flags & 0xfffff:#x}, page type {ptype:#x})"


free: set[int] = set()
max_pfn = d1["max_pfn"].value_()
for pfn in range(max_pfn):
    try:
        page = pfn_to_page(d1, pfn)
        if page.page_type.value_() >> 24 == PGTY_BUDDY:
            free.update(range(pfn, pfn + (1 << page.private.value_())))
    except drgn.FaultError:
        pass

counts: Counter[str] = Counter()
example: dict[str, int] = {}
for pfn in range(max_pfn):
    if not present(d1, pfn) or present(d31, pfn):
        continue
    if pfn in free:
        what = "free (in a buddy block)"
    else:
        page = pfn_to_page(d1, pfn)
        info = getattr(page, INFO).value_()
        if info & 1:
            head = page.value_() & info if MASK_ENCODED else info - 1
            what = "tail of " + kind(drgn.Object(d1, "struct page *", head))
        else:
            what = kind(page)
    counts[what] += 1
    example.setdefault(what, pfn)
print("pages in the -d 1 dump that the -d 31 dump lacks:")
for what, n in counts.most_common():
    print(f"{n:8d}  {what}  (e.g. pfn {example[what]:#x})")
print("tasks (for_each_task): -d 1:", sum(1 for _ in for_each_task(d1)))
try:
    print("tasks (for_each_task): -d 31:", sum(1 for _ in for_each_task(d31)))
except drgn.FaultError as exc:
    print("tasks (for_each_task): -d 31: cannot walk the pid table:", exc)
