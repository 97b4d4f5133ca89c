"""vtop and ptov: kernel virtual to physical (with the page-table walk) and back, as crash
prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.pagewalk import PageWalk
    from crashtui.kernel.tasks import Task

ADDR_HEADER = f"{'VIRTUAL':<16}  {'PHYSICAL':<16}"


def _hex_arg(cmd: str, arg: str) -> int:
    text = arg.lower().removeprefix("0x")
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise CommandError(f'{cmd}: invalid input: "{arg}"')
    return int(text, 16)


def _centered(text: str, width: int) -> str:
    """crash's mkstring(CENTER|LJUST)."""
    return (" " * ((width - len(text)) // 2) + text).ljust(width)


def pte_lines(pte: int, phys: int, arch: str = "x86_64") -> list[str]:
    """crash's x86_64_translate_pte() / arm64_translate_pte(): the entry, the physical page
    and the flag names."""
    if arch == "arm64":
        from crashtui.kernel.vtop_arm64 import pte_flag_names
    else:
        from crashtui.kernel.vtop import pte_flag_names

    p, ph = f"{pte:x}", f"{phys:x}"
    w1, w2 = max(len(p), 3), max(len(ph), 8)
    return [f"{_centered('PTE', w1)}  {_centered('PHYSICAL', w2)}  FLAGS",
            f"{p:>{w1}}  {ph:>{w2}}  ({'|'.join(pte_flag_names(pte))})"]


def level_lines(w: PageWalk, arch: str = "x86_64", small_page: str = "  ") -> list[str]:
    """Each entry of a walk, then the page and its PTE (`small_page`: what follows a 4 KiB
    page's address, where a large one gets `  (2MB)`)."""
    out = [f"   {e.level}: {e.address:x} => {e.value:x}" for e in w.entries]
    if w.page is None:
        return out
    size = {1 << 30: "  (1GB)", 1 << 21: "  (2MB)"}.get(w.page_size, small_page)
    return out + [f"  PAGE: {w.page:x}{size}", ""] + pte_lines(w.leaf, w.page, arch)


def arm64_walk_lines(w: PageWalk) -> list[str]:
    """The verbose walk as crash's arm64_vtop_4level_4k(verbose) prints it."""
    return [f"PAGE DIRECTORY: {w.pgd:x}"] + level_lines(w, "arm64")


def walk_lines(w: PageWalk) -> list[str]:
    """The verbose walk (x86_64_kvtop(verbose))."""
    return [f"PGD DIRECTORY: {w.pgd:x}", f"PAGE DIRECTORY: {w.pgd_entry:x}"] + \
        level_lines(w, small_page="")


def user_vtop_lines(session: Session, addr: int, task: Task) -> list[str]:
    """crash's `vtop [-c TASK] ADDRESS` for a user address: the task's page tables, the VMA
    holding the address and its page."""
    from crashtui.commands.kmemaddr import page_lines
    from crashtui.kernel.memaddr import page_info
    from crashtui.kernel.vm import task_vm
    from crashtui.kernel.vtop import walk_user_address

    k = session.kernel
    tv = task_vm(k, task.address)
    if not tv.mm:
        raise CommandError(f"vtop: PID {task.pid} is a kernel thread: no user address space")
    arm64 = k.arch.name == "arm64"
    try:
        walk = walk_user_address(k, tv.pgd, addr)
    except CrashtuiError as exc:
        raise CommandError(f"vtop: {exc.message}") from None
    value = f"{walk.phys:x}" if walk.phys is not None else "(not mapped)"
    out = [f"{'VIRTUAL':<10}  {'PHYSICAL':<16}", f"{addr:<10x}  {value:<16}", ""]
    out += arm64_walk_lines(walk) if arm64 else level_lines(walk)
    vma = next((a for a in tv.areas if a.start <= addr < a.end), None)
    if vma is not None:
        from crashtui.commands.vm import VMA_HEADER

        out += ["", VMA_HEADER, f"{vma.address:x} {vma.start:10x} {vma.end:10x} "
                f"{vma.flags:6x} {vma.file}"]
    page = page_info(k, walk.phys) if walk.phys is not None else None
    return out + ([""] + page_lines(page) if page is not None else [])


def vtop_lines(session: Session, arg: str, task: Task | None = None) -> list[str]:
    """crash's `vtop ADDRESS`: a kernel address, or a user one in a task's context."""
    from crashtui.commands.kmemaddr import page_lines
    from crashtui.commands.task import current_task
    from crashtui.kernel.memaddr import page_info
    from crashtui.kernel.vtop import walk_kernel_address

    addr = _hex_arg("vtop", arg)
    k = session.kernel
    if k.arch.is_user_address(addr):
        return user_vtop_lines(session, addr, task or current_task(session))
    try:
        walk = walk_kernel_address(k, addr)
    except CrashtuiError as exc:
        raise CommandError(f"vtop: {exc.message}") from None
    dm = k.pagetable.direct_map
    phys = walk.phys
    if phys is None and dm is not None and dm.contains(addr):
        phys = dm.to_phys(addr)
    value = f"{phys:x}" if phys is not None else "(not mapped)"
    lines = arm64_walk_lines(walk) if k.arch.name == "arm64" else walk_lines(walk)
    out = [ADDR_HEADER, f"{addr:<16x}  {value:<16}", ""] + lines
    if phys is None:
        return out
    page = page_info(k, phys)
    return out + ([""] + page_lines(page) if page is not None else [])


def ptov_lines(session: Session, arg: str) -> list[str]:
    """crash's `ptov PHYSICAL`: its direct-map address."""
    phys = _hex_arg("ptov", arg)
    dm = session.kernel.pagetable.direct_map
    virt = dm.to_virt(phys) if dm is not None else None
    if virt is None:
        raise CommandError(f"ptov: {phys:x}: not in the direct map")
    return [ADDR_HEADER, f"{virt:<16x}  {phys:<16x}"]


@command("vtop", "translate a virtual address to physical, showing the page tables "
         "(user addresses in the panic task's or -c PID's context)",
         "vtop [-c PID|TASK] ADDRESS ...")
def cmd_vtop(session: Session, args: list[str]) -> list[str]:
    from crashtui.commands.task import select_tasks

    task = None
    if args[:1] == ["-c"]:
        if len(args) < 2:
            raise CommandError("vtop: -c needs a PID or task address")
        task = select_tasks(session, [args[1]], "vtop")[0]
        args = args[2:]
    if not args:
        raise CommandError("vtop: needs an address")
    out: list[str] = []
    for a in args:
        if out:
            out.append("")
        out += vtop_lines(session, a, task)
    return out


@command("ptov", "translate a physical address to its kernel (direct map) virtual address",
         "ptov PHYSICAL ...")
def cmd_ptov(session: Session, args: list[str]) -> list[str]:
    if not args:
        raise CommandError("ptov: needs a physical address")
    out: list[str] = []
    for a in args:
        if out:
            out.append("")
        out += ptov_lines(session, a)
    return out
