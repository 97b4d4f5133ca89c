"""arm64 (AArch64) with 4 KiB pages: address layout from VMCOREINFO, page tables, registers.

VMCOREINFO (arch/arm64/kernel/vmcore_info.c) gives NUMBER(VA_BITS) (the configured size),
NUMBER(TCR_EL1_T1SZ) (64 - the kernel VA bits in use: 52-bit kernels fall back to 48 on CPUs
without LPA2), NUMBER(kimage_voffset) (kernel image virtual - physical), NUMBER(PHYS_OFFSET)
(memstart_addr), KERNELOFFSET (the KASLR slide) and NUMBER(KERNELPACMASK) (the pointer
authentication bits of kernel return addresses).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crashtui.arch.base import Arch, DirectMap, Translator
from crashtui.errors import CrashtuiError, DumpFormatError, KernelReadError

if TYPE_CHECKING:
    from crashtui.dumpfile import ElfNote
    from crashtui.kernel.program import Kernel
    from crashtui.kernel.regs import CpuRegisters
    from crashtui.kernel.vmcoreinfo import VmcoreInfo

EM_AARCH64 = 183
_U64 = (1 << 64) - 1
PAGE_SHIFT = 12
NT_PRSTATUS = 1
# struct elf_prstatus (include/linux/elfcore.h): pr_pid at 32, pr_reg at 112; arm64's
# elf_gregset_t is struct user_pt_regs (arch/arm64/include/uapi/asm/ptrace.h): regs[31], sp,
# pc, pstate.
PRSTATUS_PID_OFFSET = 32
PRSTATUS_REG_OFFSET = 112
REGISTERS = tuple(f"x{i}" for i in range(31)) + ("sp", "pc", "pstate")
_USER_REGS = struct.Struct(f"<{len(REGISTERS)}Q")
PSR_MODE_MASK = 0xF  # pstate M[3:0]; 0 = EL0t (user mode)

ReadPhys = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Layout:
    """The kernel's virtual address layout, as VMCOREINFO gives it."""

    va_bits: int  # CONFIG_ARM64_VA_BITS
    va_bits_actual: int  # 64 - TCR_EL1.T1SZ
    kimage_voffset: int
    phys_offset: int
    kaslr_offset: int
    pac_mask: int

    @property
    def page_offset(self) -> int:
        """Start of the linear map: _PAGE_OFFSET(VA_BITS) = -(1 << VA_BITS) (5.4+)."""
        return -(1 << self.va_bits) & _U64

    @property
    def levels(self) -> int:
        """Page-table levels in use: 9 index bits per level above the 12-bit page offset."""
        return -(-(self.va_bits_actual - PAGE_SHIFT) // 9)

    def lm_to_phys(self, vaddr: int) -> int:
        """__lm_to_phys (arch/arm64/include/asm/memory.h)."""
        return (vaddr - self.page_offset + self.phys_offset) & _U64

    def strip_pac(self, addr: int) -> int:
        """ptrauth_strip_kernel_insn_pac: set the PAC bits of a kernel address (bit 55)."""
        if not self.pac_mask:
            return addr
        return addr | self.pac_mask if addr >> 55 & 1 else addr & ~self.pac_mask & _U64


def layout_of(vi: VmcoreInfo) -> Layout:
    """The Layout from VMCOREINFO (DumpFormatError naming what is missing)."""
    n = vi.numbers
    missing = [k for k in ("VA_BITS", "kimage_voffset", "PHYS_OFFSET") if k not in n]
    if missing:
        raise DumpFormatError("the arm64 dump's VMCOREINFO lacks "
                              + ", ".join(f"NUMBER({k})" for k in missing)
                              + "; cannot translate kernel addresses")
    va_bits = n["VA_BITS"]
    if not 36 <= va_bits <= 52:
        raise DumpFormatError(f"the arm64 dump's VMCOREINFO has NUMBER(VA_BITS)={va_bits}")
    t1sz = n.get("TCR_EL1_T1SZ")
    actual = 64 - t1sz if t1sz is not None and 36 <= 64 - t1sz <= 52 else va_bits
    try:
        kaslr = int(vi.raw.get("KERNELOFFSET", "0"), 16)
    except ValueError:
        kaslr = 0
    if not 0 <= kaslr < 1 << 48:
        kaslr = 0
    return Layout(va_bits, actual, n["kimage_voffset"] & _U64, n["PHYS_OFFSET"] & _U64, kaslr,
                  n.get("KERNELPACMASK", 0) & _U64)


@dataclass(frozen=True)
class Descriptor:
    """One level's descriptor on a walk: where it was read and whether the walk ends there
    (bit 0 valid; bit 1 table/page versus a 1 GiB or 2 MiB block)."""

    level: int
    shift: int  # log2 of the span one entry of this level maps
    index: int
    value: int
    last: bool  # the last level: a page descriptor

    @property
    def valid(self) -> bool:
        return bool(self.value & 1)

    @property
    def leaf(self) -> bool:
        """A page or block: the walk ends with an output address here."""
        return self.valid and (self.last or not self.value & 2)


class Arm64PageTable:
    """Kernel (TTBR1) translation by swapper_pg_dir: 4 KiB granule, 3 to 5 levels; with
    52-bit VAs (FEAT_LPA2, TCR_EL1.DS) output address bits 51:50 sit in descriptor bits 9:8."""

    def __init__(self, read_phys: ReadPhys, layout: Layout, pgd_phys: int,
                 cache_pages: int = 65536) -> None:
        self._read_phys = read_phys
        self.layout = layout
        self.pgd_phys = pgd_phys
        self.direct_map: DirectMap | None = None  # once verified
        self._lpa2 = layout.va_bits_actual == 52
        self._cache: OrderedDict[int, int] = OrderedDict()
        self._cache_pages = cache_pages

    def set_direct_map(self, base: int, size: int) -> None:
        """Translate [base, base + size) by __lm_to_phys instead of walking."""
        self.direct_map = DirectMap(base, self.layout.lm_to_phys(base), size)

    def translate(self, vaddr: int) -> int:
        vaddr &= _U64
        if self.direct_map is not None and self.direct_map.contains(vaddr):
            return self.direct_map.to_phys(vaddr)
        page = vaddr & ~0xFFF
        hit = self._cache.get(page)
        if hit is not None:
            self._cache.move_to_end(page)
            return hit | (vaddr & 0xFFF)
        paddr = self._walk(vaddr)
        self._cache[page] = paddr & ~0xFFF
        if len(self._cache) > self._cache_pages:
            self._cache.popitem(last=False)
        return paddr

    def walk(self, vaddr: int) -> int:
        return self._walk(vaddr & _U64)

    def _entry(self, table: int, index: int) -> int:
        try:
            raw = self._read_phys(table + 8 * index, 8)
        except CrashtuiError as exc:
            raise KernelReadError(f"page table page {table:#x} unreadable: {exc.message}") \
                from exc
        return int.from_bytes(raw, "little")

    def descriptor_address(self, desc: int) -> int:
        """The output address of a table, block or page descriptor."""
        return self._address(desc)

    def _address(self, desc: int) -> int:
        if self._lpa2:
            return (desc & 0x0003FFFFFFFFF000) | ((desc >> 8) & 3) << 50
        return desc & 0x0000FFFFFFFFF000

    def descriptors(self, vaddr: int, table: int | None = None) -> Iterator[Descriptor]:
        """The descriptors a walk of `vaddr` reads from the top table at `table` (default
        swapper_pg_dir; a task's mm->pgd for TTBR0), ending at an invalid one or a leaf."""
        bits = self.layout.va_bits_actual
        levels = self.layout.levels
        table = self.pgd_phys if table is None else table
        for level in range(levels):
            shift = PAGE_SHIFT + 9 * (levels - 1 - level)
            index = (vaddr >> shift) & ((1 << min(9, bits - shift)) - 1)
            d = Descriptor(level, shift, index, self._entry(table, index), level == levels - 1)
            yield d
            if not d.valid or d.leaf:
                return
            table = self._address(d.value)

    def _walk(self, vaddr: int) -> int:
        if vaddr >> 63 == 0:
            raise KernelReadError(f"address {vaddr:#x} is a user address", vaddr)
        for d in self.descriptors(vaddr):
            if d.leaf:
                mask = (1 << d.shift) - 1
                return (self._address(d.value) & ~mask) | (vaddr & mask)
        raise KernelReadError(f"address {vaddr:#x} is not mapped", vaddr)


@dataclass(frozen=True)
class Arm64Arch(Arch):
    """arm64 with 4 KiB pages."""

    def layout(self, kernel: Kernel) -> Layout:
        cached = kernel.__dict__.get("_arm64_layout")
        if cached is None:
            cached = layout_of(kernel.vmcoreinfo)
            kernel.__dict__["_arm64_layout"] = cached
        return cached

    def kaslr_offset(self, kernel: Kernel) -> int:
        return self.layout(kernel).kaslr_offset

    def page_table(self, kernel: Kernel) -> Translator:
        """swapper_pg_dir's physical address by kimage_voffset; the linear map's fast path
        once a walk agrees with __lm_to_phys."""
        layout = self.layout(kernel)
        pgd = kernel.vmcoreinfo.symbols.get("swapper_pg_dir")
        if pgd is None:
            pgd = kernel.symbol_or_none("swapper_pg_dir")
        if pgd is None:
            raise DumpFormatError("VMCOREINFO names no swapper_pg_dir; cannot walk page tables",
                                  kernel.dump.path)
        walker = Arm64PageTable(kernel.dump.read_phys, layout, (pgd - layout.kimage_voffset)
                                & _U64)
        # The linear map's alias of swapper_pg_dir's page: if the walk agrees with
        # __lm_to_phys there, the linear map is translated by arithmetic. It spans from
        # -(1 << VA bits in use) (a 52-bit kernel on 48 bits moved memstart_addr instead of
        # PAGE_OFFSET) to the end of RAM (QEMU's kdump-zlib files count 64 KiB pages).
        probe = (walker.pgd_phys - layout.phys_offset + layout.page_offset) & _U64
        try:
            agrees = walker.walk(probe) == walker.pgd_phys
        except CrashtuiError:
            agrees = False
        base = max(layout.page_offset, -(1 << layout.va_bits_actual) & _U64)
        end_phys = (kernel.dump.info.max_pfn + 1) * kernel.dump.info.page_size
        end = (end_phys - layout.phys_offset + layout.page_offset) & _U64
        if agrees and base <= probe < end:
            walker.set_direct_map(base, end - base)
        return walker

    def prstatus_registers(self, notes: list[ElfNote]) -> list[CpuRegisters]:
        """Every CPU's NT_PRSTATUS registers, in note order."""
        from crashtui.kernel.regs import CpuRegisters

        out: list[CpuRegisters] = []
        for note in notes:
            if note.type != NT_PRSTATUS or note.name not in ("CORE", "LINUX"):
                continue
            end = PRSTATUS_REG_OFFSET + _USER_REGS.size
            if len(note.desc) < end:
                continue
            pid = int(struct.unpack_from("<i", note.desc, PRSTATUS_PID_OFFSET)[0])
            values = _USER_REGS.unpack_from(note.desc, PRSTATUS_REG_OFFSET)
            out.append(CpuRegisters(len(out), pid,
                                    dict(zip(REGISTERS, map(int, values), strict=True))))
        return out

    def user_mode(self, registers: dict[str, int]) -> bool:
        return "pstate" in registers and registers["pstate"] & PSR_MODE_MASK == 0


ARM64 = Arm64Arch(name="arm64", elf_machine=EM_AARCH64, uts_machines=("aarch64", "arm64"),
                  register_names=REGISTERS, pc="pc", sp="sp", unwinder="frame pointer",
                  image_start=1 << 63, kernel_start=1 << 63, tif_sigpending=0)
