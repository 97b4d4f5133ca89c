"""kmem ADDRESS: what an address is (symbol, stack, vmalloc area, slab object, task, page), as
crash prints it (the facts are crashtui.kernel.memaddr's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemslab import SLAB_HEADER, slab_cache_line
from crashtui.commands.registry import CommandError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.memaddr import PageInfo, SlabObject
    from crashtui.kernel.tasks import Task

PAGE_HEADER = "      PAGE       PHYSICAL      MAPPING       INDEX CNT FLAGS"
VMAP_HEADER = ("   VMAP_AREA         VM_STRUCT                 ADDRESS RANGE                SIZE")
SLAB_LINE_HEADER = "  SLAB              MEMORY            NODE  TOTAL  ALLOCATED  FREE"


def context_lines(session: Session, t: Task) -> list[str]:
    """crash's show_context(): PID, COMMAND, TASK, CPU, STATE (PANIC/ACTIVE when running)."""
    state = t.state_name
    panic = session.summary.panic_task
    active = {r.task.address for r in session.ps.rows if r.active}
    if panic is not None and panic.address == t.address:
        state += " (PANIC)"
    elif t.address in active:
        state += " (ACTIVE)"
    return [f"    PID: {t.pid}", f'COMMAND: "{t.comm}"',
            f"   TASK: {t.address:x}  [THREAD_INFO: {t.address:x}]", f"    CPU: {t.cpu}",
            f"  STATE: {state}"]


def page_lines(p: PageInfo) -> list[str]:
    """crash's mem_map header and line for one page."""
    flags = f"{p.flags:x}" + (" " + ",".join(p.flag_names) if p.flag_names else "")
    return [PAGE_HEADER, f"{p.page:<16x} {p.phys:8x} {p.mapping:16x} {p.index:8x} "
            f"{p.count:2d} {flags}"]


def slab_lines(s: SlabObject) -> list[str]:
    """crash's dump_kmem_cache_slub() for an address: the cache, its slab, the object."""
    out = [SLAB_HEADER, slab_cache_line(s.cache), SLAB_LINE_HEADER,
           f"  {s.slab:<16x}  {s.memory:<16x}  {s.node:4d}  {s.objects:5d}  {s.inuse:9d}  "
           f"{s.objects - s.inuse:4d}", "  FREE / [ALLOCATED]"]
    if s.every_object:
        for i in range(s.objects):
            obj = s.memory + i * s.object_size + s.red_left_pad
            out.append(_object_line(obj, obj in s.free_objects, s.cpu))
    elif s.object is not None:
        out.append(_object_line(s.object, s.free, s.cpu))
    return out


def _object_line(obj: int, free: bool, cpu: int | None) -> str:
    """`  [addr]` allocated, `   addr  ` free (`(cpu N cache)` on a CPU's current slab)."""
    if not free:
        return f"  [{obj:x}]"
    return f"   {obj:x}  " + (f"(cpu {cpu} cache)" if cpu is not None else "")


def module_symbol_line(session: Session, addr: int) -> str | None:
    """crash's show_symbol() for a module address: its letter is the in-memory symtab's
    st_info as crash decodes it (symbols.c Elf64_Sym_to_common: STT_FUNC local 't', global
    'T', any other '?'), `m` for crash's own _MODULE_*_START markers."""
    from crashtui.kernel.modules import module_symbol

    hit = module_symbol(session.kernel, addr)
    if hit is None:
        return None
    letter = "m" if hit.name.startswith("_MODULE_") else \
        hit.kind if hit.kind in ("t", "T") else "?"
    text = f"{addr:x} ({letter}) {hit.name}" + (f"+{hit.offset}" if hit.offset else "")
    src = session.source_line(addr)
    return f"{text} [{hit.module}]" + (f" {src.file}: {src.line}" if src is not None else "")


def kmem_address_lines(session: Session, arg: str) -> list[str]:
    """crash's `kmem ADDRESS`."""
    from crashtui.commands.sym import _in_vmlinux, sym_line
    from crashtui.kernel.memaddr import describe_address

    text = arg.lower().removeprefix("0x")
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise CommandError(f"kmem: invalid address: {arg} (kmem ADDRESS takes a hex address)")
    addr = int(text, 16)
    in_image = _in_vmlinux(session, addr) or session.symbolize(addr) is not None
    info = describe_address(session.kernel, session.tasks.tasks, addr, in_image)
    out: list[str] = []
    if in_image:
        line = module_symbol_line(session, addr)
        try:
            out += [line or sym_line(session, addr), ""]
        except CommandError:
            pass
    if info.vmap is not None:
        if info.stack_of is not None:
            out += context_lines(session, info.stack_of) + [""]
        v = info.vmap
        out += [VMAP_HEADER, f"{v.address:<16x}  {v.vm:<16x}  {v.start:>16x} - {v.end:<16x}  "
                f"{v.end - v.start:7d}", ""]
    else:
        if info.slab is not None:
            out += slab_lines(info.slab) + [""]
        who = info.task or info.stack_of
        if who is not None:
            out += context_lines(session, who) + [""]
    if info.page is None:
        return out + [f"{addr:x}: kernel virtual address not found in mem map"]
    return out + page_lines(info.page)
