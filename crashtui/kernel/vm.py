"""A task's address space: its mm_struct, page directory and VMAs (mm->mmap's list up to
6.0, the mm_mt maple tree from 6.1), each with its flags and mapped file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.files import dentry_path

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_VMAS = 1 << 20
MAX_MAPLE_DEPTH = 16
MAX_MAPLE_NODES = 1 << 18
ULONG_MAX = (1 << 64) - 1
# include/linux/maple_tree.h: enum maple_type and the encoded node pointer
MAPLE_DENSE, MAPLE_LEAF_64, MAPLE_RANGE_64, MAPLE_ARANGE_64 = range(4)
MAPLE_NODE_MASK = 0xFF
MAPLE_ROOT_NODE = 0x02


@dataclass(frozen=True)
class VmArea:
    """One vm_area_struct."""

    address: int
    start: int
    end: int
    flags: int
    file: str  # the mapped file's path ("" for anonymous memory)


@dataclass
class TaskVm:
    """A task's mm (0 for a kernel thread), its PGD and its VMAs in address order."""

    mm: int
    pgd: int
    areas: list[VmArea] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def maple_entries(kernel: Kernel, tree: int, limit: int = MAX_VMAS) -> list[int]:
    """The non-NULL entries of a maple tree, in index order (bounded, pivots followed)."""
    off = kernel.offsetof
    root = kernel.read_u64(tree + off("maple_tree", "ma_root"))
    if not root:
        return []
    if root & 3 != MAPLE_ROOT_NODE or root < 4096:
        return [root]  # a single entry stored in the root
    r64_pivot, r64_slot = off("maple_range_64", "pivot"), off("maple_range_64", "slot")
    a64_pivot, a64_slot = off("maple_arange_64", "pivot"), off("maple_arange_64", "slot")
    dense_slot = off("maple_node", "slot")
    out: list[int] = []
    seen: set[int] = set()

    def walk(enode: int, node_max: int, depth: int) -> None:
        node = enode & ~MAPLE_NODE_MASK
        kind = (enode >> 3) & 0xF
        if depth > MAX_MAPLE_DEPTH or node in seen or len(seen) >= MAX_MAPLE_NODES:
            raise KernelReadError(f"maple tree at {tree:#x}: too deep, cyclic or too large")
        seen.add(node)
        if kind == MAPLE_DENSE:
            raw = kernel.read(node + dense_slot, 8 * 31)
            out.extend(v for v in (int.from_bytes(raw[i:i + 8], "little")
                                   for i in range(0, len(raw), 8)) if v)
            return
        if kind == MAPLE_ARANGE_64:
            pivots, slots, npiv = a64_pivot, a64_slot, 9
        elif kind in (MAPLE_LEAF_64, MAPLE_RANGE_64):
            pivots, slots, npiv = r64_pivot, r64_slot, 15
        else:
            raise KernelReadError(f"maple node {node:#x}: unknown type {kind}")
        piv = kernel.read(node + pivots, 8 * npiv)
        slot = kernel.read(node + slots, 8 * (npiv + 1))
        for i in range(npiv + 1):
            p = int.from_bytes(piv[8 * i:8 * i + 8], "little") if i < npiv else node_max
            if i and i < npiv and p == 0:
                break
            entry = int.from_bytes(slot[8 * i:8 * i + 8], "little")
            if entry:
                if kind == MAPLE_LEAF_64:
                    if entry & 3 == 0 and len(out) < limit:
                        out.append(entry)
                else:
                    walk(entry, p, depth + 1)
            if p >= node_max:
                break

    walk(root & ~MAPLE_ROOT_NODE, ULONG_MAX, 0)
    return out


def _vma_addresses(kernel: Kernel, mm: int) -> list[int]:
    btf = kernel.btf
    if btf.has_member("mm_struct", "mm_mt"):
        return maple_entries(kernel, mm + kernel.offsetof("mm_struct", "mm_mt"))
    out: list[int] = []
    seen: set[int] = set()
    vma = kernel.read_u64(mm + kernel.offsetof("mm_struct", "mmap"))
    o_next = kernel.offsetof("vm_area_struct", "vm_next")
    while vma and vma not in seen and len(out) < MAX_VMAS:
        seen.add(vma)
        out.append(vma)
        vma = kernel.read_u64(vma + o_next)
    return out


def task_vm(kernel: Kernel, task: int) -> TaskVm:
    """The address space of a task (mm 0: a kernel thread, no VMAs)."""
    off = kernel.offsetof
    mm = kernel.read_u64(task + off("task_struct", "mm"))
    if not mm:
        return TaskVm(0, 0)
    out = TaskVm(mm, kernel.read_u64(mm + off("mm_struct", "pgd")))
    try:
        vmas = _vma_addresses(kernel, mm)
    except CrashtuiError as exc:
        out.errors.append(f"VMAs of mm {mm:#x}: {exc.message}")
        return out
    o_start, o_end = off("vm_area_struct", "vm_start"), off("vm_area_struct", "vm_end")
    o_flags, o_file = off("vm_area_struct", "vm_flags"), off("vm_area_struct", "vm_file")
    o_mm = off("vm_area_struct", "vm_mm")
    o_path = off("file", "f_path")
    for vma in vmas:
        try:
            if kernel.read_u64(vma + o_mm) != mm:
                out.errors.append(f"VMA {vma:#x} belongs to another mm")
                continue
            f = kernel.read_u64(vma + o_file)
            path = ""
            if f:
                mnt = kernel.read_u64(f + o_path + off("path", "mnt"))
                dentry = kernel.read_u64(f + o_path + off("path", "dentry"))
                path = dentry_path(kernel, mnt, dentry) if dentry else ""
            out.areas.append(VmArea(vma, kernel.read_u64(vma + o_start),
                                    kernel.read_u64(vma + o_end),
                                    kernel.read_u64(vma + o_flags), path))
        except CrashtuiError as exc:
            out.errors.append(f"VMA {vma:#x}: {exc.message}")
    out.areas.sort(key=lambda a: a.start)
    return out
