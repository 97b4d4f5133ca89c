"""The kernel model: a dump's memory seen through its debug info (symbols, types, KASLR)."""

from __future__ import annotations

import struct
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from crashtui.dumpfile import DumpFile, open_dump
from crashtui.errors import (
    CrashtuiError,
    DumpFormatError,
    KernelReadError,
    PageExcludedError,
    VmlinuxMismatchError,
)
from crashtui.kernel.pagetable import PageTableWalker
from crashtui.kernel.vmcoreinfo import VmcoreInfo

if TYPE_CHECKING:
    from crashtui.arch import Arch
    from crashtui.debuginfo.btf import Btf
    from crashtui.debuginfo.orc import OrcTable
    from crashtui.debuginfo.symbols import Symbol, SymbolTable
    from crashtui.debuginfo.vmlinux import Vmlinux
    from crashtui.kernel.debugsources import DebugSources
    from crashtui.kernel.kallsyms_image import DecodedKallsyms

MAX_CPUS = 8192  # x86-64 NR_CPUS at most (MAXSMP)
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


def _plausible_page_offset(base: int) -> bool:
    """page_offset_base can only be a 1 GiB-aligned address in the kernel half (KASLR keeps
    PUD alignment); anything else is damaged memory, and the page tables are used instead."""
    return base >= 0xFF00000000000000 and not base & ((1 << 30) - 1)


class Kernel:
    """One crashed kernel: memory reads by virtual address, runtime symbols, types, per-CPU data."""

    def __init__(self, dump: DumpFile, vmlinux: Vmlinux | None) -> None:
        self.dump = dump
        self.vmlinux = vmlinux
        # where the vmlinux came from (crashtui.kernel.debugsources: given/found/fetched)
        self.vmlinux_origin = "given" if vmlinux is not None else "memory"
        self.vmlinux_place: str | None = None  # where a "found" vmlinux was found
        self._symtab: SymbolTable | None = None
        self._symtab_tried = False
        self.symbols_source = "none"  # what `symbols` was read from, once read
        if dump.vmcoreinfo is None:
            raise DumpFormatError("the dump carries no VMCOREINFO; cannot locate the kernel",
                                  dump.path)
        self.vmcoreinfo = VmcoreInfo.parse(dump.vmcoreinfo)
        if not self.vmcoreinfo.symbols and self.vmcoreinfo.osrelease is None:
            raise DumpFormatError("the dump's VMCOREINFO is damaged (no OSRELEASE= or SYMBOL() "
                                  "lines); cannot locate the kernel", dump.path)
        self.arch = self._check_arch()
        if vmlinux is not None:
            self._check_vmlinux(vmlinux)
        self.kaslr_offset = self.arch.kaslr_offset(self)
        phys_base = self.vmcoreinfo.phys_base
        if phys_base is None:
            phys_base = dump.info.phys_base or 0
        self.phys_base = phys_base
        self.pagetable: PageTableWalker = self.arch.page_table(self)  # type: ignore[assignment]
        if vmlinux is not None:
            self._check_banner(vmlinux)
        base = self.symbol_or_none("page_offset_base")
        if base is not None:
            try:
                offset_base = self.read_u64(base)
            except CrashtuiError:
                offset_base = 0
            if _plausible_page_offset(offset_base) and self._direct_map_agrees(offset_base):
                max_size = 1 << (52 if self.vmcoreinfo.pgtable_l5 else 46)  # MAX_PHYSMEM_BITS
                self.pagetable.set_direct_map(
                    offset_base, min((dump.info.max_pfn + 1) << 12, max_size))

    @classmethod
    def open(cls, dump_path: str | Path, vmlinux_path: str | Path | None = None) -> Kernel:
        """Open a dump and (optionally) its debug vmlinux; raises CrashtuiError on bad input."""
        dump = open_dump(dump_path)
        vmlinux = None
        if vmlinux_path is not None:
            from crashtui.debuginfo.vmlinux import Vmlinux

            vmlinux = Vmlinux(vmlinux_path)
        return cls(dump, vmlinux)

    # -- consistency checks -------------------------------------------------------------

    def _check_arch(self) -> Arch:
        """The dump's architecture (crashtui.arch); DumpFormatError for one it lacks.
        A damaged header field (not an architecture name) is no reason to refuse the dump."""
        from crashtui.arch import arch_of_dump

        arch = arch_of_dump(self.dump, self.vmcoreinfo)
        if isinstance(arch, str):
            raise DumpFormatError(f"the dump is of a {arch} kernel; crashtui supports "
                                  "x86_64 and arm64", self.dump.path)
        return arch

    def _check_vmlinux(self, vmlinux: Vmlinux) -> None:
        if vmlinux.image.machine != self.arch.elf_machine:
            raise VmlinuxMismatchError(
                f"vmlinux is an {vmlinux.image.machine_name} kernel image, but the dump "
                f"{self.dump.path} is of an {self.arch.name} kernel", vmlinux.path)
        vmlinux.check_is_kernel()
        dump_id = self.vmcoreinfo.build_id
        if dump_id and vmlinux.build_id:
            if dump_id.lower() == vmlinux.build_id.lower():
                return
        elif self.vmcoreinfo.osrelease is None or vmlinux.release is None:
            return
        elif vmlinux.release == self.vmcoreinfo.osrelease:
            return
        raise VmlinuxMismatchError(
            f"vmlinux is for kernel {vmlinux.release} (build-id {vmlinux.build_id}), but the "
            f"dump {self.dump.path} is of kernel {self.vmcoreinfo.osrelease} "
            f"(build-id {dump_id})", vmlinux.path)

    def _direct_map_agrees(self, base: int) -> bool:
        """The page tables map `base` to physical 0 (unverifiable if they cannot be read)."""
        try:
            return self.pagetable.walk(base) == 0
        except CrashtuiError:
            return True

    def _kaslr_offset(self) -> int:
        """KERNELOFFSET, or (damaged/missing) the slide of a VMCOREINFO symbol in the vmlinux."""
        offset = self.vmcoreinfo.kerneloffset
        if offset is not None or self.vmlinux is None:
            return offset or 0
        for name in ("_stext", "init_uts_ns", "swapper_pg_dir"):
            runtime = self.vmcoreinfo.symbols.get(name)
            try:
                linked = self.vmlinux.symbols.address_of(name)
            except CrashtuiError:
                return 0
            if runtime is not None and linked is not None and runtime >= linked:
                return runtime - linked
        return 0

    def _check_banner(self, vmlinux: Vmlinux) -> None:
        """VmlinuxMismatchError unless linux_banner in memory is the vmlinux's banner.

        Catches what the build-id check cannot: a dump without BUILD-ID/OSRELEASE, or a
        damaged KERNELOFFSET that would make every symbol address wrong. A banner that
        cannot be read (page filtered or lost) is no evidence either way.
        """
        try:
            banner = vmlinux.banner
            addr = self.symbol_or_none("linux_banner")
        except CrashtuiError:
            return
        if not banner or addr is None:
            return
        expected = banner.encode("utf-8", "replace")[:64]
        try:
            found = self.read(addr, len(expected))
        except CrashtuiError:
            return
        if found != expected:
            shown = found.split(b"\0", 1)[0][:40].decode("ascii", "replace")
            raise VmlinuxMismatchError(
                f"vmlinux does not match the dump's memory: linux_banner reads {shown!r}, "
                f"not {banner[:40]!r} (wrong vmlinux, or a damaged KERNELOFFSET in VMCOREINFO)",
                vmlinux.path)

    # -- symbols --------------------------------------------------------------------------

    @property
    def release(self) -> str:
        return self.vmcoreinfo.osrelease or (self.dump.info.utsname.release
                                             if self.dump.info.utsname else "unknown")

    def symbol_or_none(self, name: str) -> int | None:
        """Runtime address of a kernel symbol, or None if unknown."""
        table = self._symbol_table()
        if table is not None:
            addr = table.address_of(name)
            if addr is not None:
                # Per-CPU symbols are offsets into the per-CPU area (.data..percpu links at 0):
                # only addresses in the kernel image mapping move with KASLR.
                return addr + self.kaslr_offset if addr >= self.arch.image_start else addr
        return self.vmcoreinfo.symbols.get(name)

    def _symbol_table(self) -> SymbolTable | None:
        """The kernel's symbols at link-time addresses, loaded once; None if there are none.

        From the vmlinux's .symtab; without one (or stripped), from the kernel's own kallsyms
        in memory, runtime addresses less the KASLR slide: the same link-time addresses the
        vmlinux would give, so everything above this layer is the same either way.
        """
        if self._symtab_tried:
            return self._symtab
        if self.vmlinux is not None:
            try:
                self._symtab = self.vmlinux.symbols
                self._symtab_tried = True
                self.symbols_source = "vmlinux .symtab"
                return self._symtab
            except CrashtuiError:
                pass
        if "pagetable" not in self.__dict__:  # too early: memory is not readable yet
            return None
        self._symtab_tried = True
        from crashtui.kernel.kallsyms_image import kernel_kallsyms, symbol_table

        try:
            decoded = kernel_kallsyms(self)
        except CrashtuiError:
            decoded = None
        if decoded is not None:
            self._symtab = symbol_table(decoded, self.kaslr_offset, self.arch.image_start)
            self._kallsyms = decoded
            how = decoded.tables.found_by
            self.symbols_source = ("kallsyms in memory" if how == "VMCOREINFO"
                                   else "kallsyms in memory (found by structure)")
        return self._symtab

    _kallsyms: DecodedKallsyms | None = None
    _kallsyms_letters: dict[str, str] | None = None

    def symbol_type(self, name: str) -> str | None:
        """kallsyms' nm-style type letter of a symbol ('T', 't', 'D', 'b', ...) when the
        symbols come from memory; None with a vmlinux (its sections tell) or if unknown.
        Per-CPU variables, which scripts/kallsyms.c retypes 'A' (absolute), read as data."""
        self._symbol_table()
        if self._kallsyms is None:
            return None
        if self._kallsyms_letters is None:
            d = self._kallsyms
            self._kallsyms_letters = {n: chr(c) for n, c in zip(d.names, d.letters, strict=True)}
        letter = self._kallsyms_letters.get(name)
        if letter in ("A", "a") and (self.symbol_or_none(name) or 0) < self.arch.image_start:
            return "D" if letter == "A" else "d"
        return letter

    @property
    def symbols(self) -> SymbolTable:
        """The kernel's symbol table at link-time addresses (vmlinux or in-memory kallsyms)."""
        table = self._symbol_table()
        if table is None:
            raise KernelReadError(
                f"no kernel symbols: no vmlinux, and the kallsyms tables of kernel "
                f"{self.release} are neither named in VMCOREINFO (6.0+) nor found in the "
                "kernel image; give the debug vmlinux (or --fetch)")
        return table

    def symbol(self, name: str) -> int:
        """Runtime address of a kernel symbol; raises KernelReadError if unknown."""
        addr = self.symbol_or_none(name)
        if addr is None:
            raise KernelReadError(f"symbol {name} not found")
        return addr

    def has_symbol(self, name: str) -> bool:
        return self.symbol_or_none(name) is not None

    def symbolize(self, addr: int) -> tuple[Symbol, int] | None:
        """The kernel symbol containing a runtime address, with the offset into it.

        The Symbol carries its link-time address (add kaslr_offset for the runtime one).
        """
        table = self._symbol_table()
        if table is None:
            return None
        return table.nearest(addr - self.kaslr_offset)

    # -- types ----------------------------------------------------------------------------

    @cached_property
    def btf(self) -> Btf:
        """The kernel's BTF type information: the vmlinux's .BTF, else the in-memory copy."""
        if self.vmlinux is not None:
            try:
                btf = self.vmlinux.btf
            except CrashtuiError:
                btf = None
            if btf is not None:
                self.types_source = "vmlinux .BTF"
                return btf
        btf = self._memory_btf()
        if btf is None:
            raise KernelReadError(
                "no type information: " + ("the vmlinux has no .BTF section and " if
                                           self.vmlinux is not None else "") +
                f"kernel {self.release} has no readable BTF in memory (__start_BTF): it "
                "needs CONFIG_DEBUG_INFO_BTF, or give a vmlinux with .BTF")
        self.types_source = "BTF in memory"
        return btf

    types_source = "none"  # what `btf` was read from, once read

    def _memory_btf(self) -> Btf | None:
        """The kernel's own .BTF (include/asm-generic/vmlinux.lds.h: __start_BTF..__stop_BTF,
        read-only data in the image, what /sys/kernel/btf/vmlinux shows), or None."""
        from crashtui.debuginfo.btf import Btf

        start, stop = self.symbol_or_none("__start_BTF"), self.symbol_or_none("__stop_BTF")
        if start is None or stop is None or not 0 < stop - start < 1 << 28:
            return None
        try:
            return Btf(self.read(start, stop - start), path="BTF in memory")
        except CrashtuiError:
            return None

    @cached_property
    def orc(self) -> OrcTable | None:
        """The kernel's ORC unwind table at link-time addresses (like its symbols): the
        vmlinux's, else the in-memory one; None if the kernel has none."""
        if self.vmlinux is not None:
            try:
                orc = self.vmlinux.orc
            except CrashtuiError:
                orc = None
            if orc is not None:
                self.unwind_source = "vmlinux ORC"
                return orc
        orc = self._memory_orc()
        if orc is not None:
            self.unwind_source = "ORC in memory"
        return orc

    unwind_source = "none"  # what `orc` was read from, once read

    def _memory_orc(self) -> OrcTable | None:
        """The in-memory ORC tables (include/asm-generic/vmlinux.lds.h ORC_UNWIND_TABLE:
        __start_orc_unwind_ip..__stop_orc_unwind_ip, s32 each; __start_orc_unwind, 6 bytes
        each; 6.4+ __start_orc_header, the hash of the entry layout), or None."""
        from crashtui.debuginfo.orc import (
            ORC_ENTRY_DTYPE,
            OrcTable,
            orc_version_for_header,
        )

        ip0 = self.symbol_or_none("__start_orc_unwind_ip")
        ip1 = self.symbol_or_none("__stop_orc_unwind_ip")
        entries = self.symbol_or_none("__start_orc_unwind")
        if ip0 is None or ip1 is None or entries is None or not 0 < ip1 - ip0 < 1 << 26:
            return None
        count = (ip1 - ip0) // 4
        header_known = True
        h0, h1 = self.symbol_or_none("__start_orc_header"), self.symbol_or_none("__stop_orc_header")
        try:
            if h0 is not None and h1 is not None and 0 < h1 - h0 <= 64:
                header_known = orc_version_for_header(self.read(h0, h1 - h0)) is not None
            # the layout is read off the entries themselves (OrcTable.detected)
            table = OrcTable.from_raw(self.read(ip0, 4 * count), ip0 - self.kaslr_offset,
                                      self.read(entries, count * ORC_ENTRY_DTYPE.itemsize), 3)
        except CrashtuiError:
            return None
        table.header_known = header_known
        return table

    @property
    def debug_sources(self) -> DebugSources:
        """Which debug info this kernel model uses: what it has read from, and for types and
        unwind tables not read yet, what it would read from (nothing is loaded for this)."""
        from crashtui.kernel.debugsources import DebugSources

        self._symbol_table()
        vm = self.vmlinux
        sections = vm.image.sections if vm is not None else {}
        types, unwind = self.types_source, self.unwind_source
        if "btf" not in self.__dict__:
            types = ("vmlinux .BTF" if ".BTF" in sections else
                     "BTF in memory" if self.has_symbol("__start_BTF") else "none")
        if "orc" not in self.__dict__:
            unwind = ("vmlinux ORC" if ".orc_unwind_ip" in sections else
                      "ORC in memory" if self.has_symbol("__start_orc_unwind_ip") else "none")
        if self.arch.unwinder != "orc":  # arm64: frame records, no tables needed
            unwind = self.arch.unwinder + "s"
        build_id = self.vmcoreinfo.build_id or (vm.build_id if vm is not None else None)
        return DebugSources(self.release, build_id, Path(vm.path) if vm is not None else None,
                            self.vmlinux_origin, self.symbols_source, types, unwind,
                            ".debug_line" in sections, self.vmlinux_place)

    def offsetof(self, struct_name: str, member: str) -> int:
        return self.btf.offsetof(struct_name, member)

    def sizeof(self, type_name: str) -> int:
        return self.btf.sizeof(type_name)

    # -- memory ---------------------------------------------------------------------------

    def translate(self, vaddr: int) -> int:
        return self.pagetable.translate(vaddr)

    def read(self, vaddr: int, size: int) -> bytes:
        """Read kernel virtual memory; raises KernelReadError naming the address on failure."""
        if size < 0 or size > 1 << 30:
            raise KernelReadError(f"refusing to read {size} bytes at {vaddr:#x}", vaddr)
        out = bytearray()
        addr = vaddr
        end = vaddr + size
        while addr < end:
            chunk = min(end - addr, 0x1000 - (addr & 0xFFF))
            paddr = self.pagetable.translate(addr)
            try:
                out += self.dump.read_phys(paddr, chunk)
            except KernelReadError:
                raise
            except PageExcludedError as exc:
                raise KernelReadError(f"cannot read {addr:#x}: {exc.message}"
                                      f"{self._explain_excluded(paddr)}", addr) from exc
            except CrashtuiError as exc:
                raise KernelReadError(f"cannot read {addr:#x}: {exc.message}", addr) from exc
            addr += chunk
        return bytes(out)

    _explaining = False

    def _explain_excluded(self, paddr: int) -> str:
        """Why an excluded page matters, when its struct page says the kernel used it."""
        if self._explaining:  # the struct page itself may be excluded
            return ""
        from crashtui.kernel.pageuse import explain_excluded

        self._explaining = True
        try:
            return explain_excluded(self, paddr)
        finally:
            self._explaining = False

    def read_u64(self, vaddr: int) -> int:
        return int(_U64.unpack(self.read(vaddr, 8))[0])

    def read_s64(self, vaddr: int) -> int:
        return int(_I64.unpack(self.read(vaddr, 8))[0])

    def read_u32(self, vaddr: int) -> int:
        return int(_U32.unpack(self.read(vaddr, 4))[0])

    def read_s32(self, vaddr: int) -> int:
        return int(_I32.unpack(self.read(vaddr, 4))[0])

    def read_int(self, vaddr: int, size: int, signed: bool = False) -> int:
        return int.from_bytes(self.read(vaddr, size), "little", signed=signed)

    def read_cstr(self, vaddr: int, maxlen: int = 256) -> str:
        """Read a NUL-terminated string (decoded leniently: dump text is never trusted)."""
        raw = self.read(vaddr, maxlen)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def member(self, addr: int, struct_name: str, path: str, size: int = 8,
               signed: bool = False) -> int:
        """Read an integer member of a struct at `addr` (offset from BTF)."""
        return self.read_int(addr + self.offsetof(struct_name, path), size, signed)

    def pointer(self, addr: int, struct_name: str, path: str) -> int:
        return self.read_u64(addr + self.offsetof(struct_name, path))

    # -- per-CPU --------------------------------------------------------------------------

    @cached_property
    def per_cpu_offsets(self) -> list[int]:
        """__per_cpu_offset[] for every possible CPU."""
        base = self.symbol("__per_cpu_offset")
        n = self.nr_cpu_ids
        raw = self.read(base, 8 * n)
        return [int(v) for v in struct.unpack(f"<{n}Q", raw)]

    def per_cpu(self, symbol_addr: int, cpu: int) -> int:
        """Address of CPU `cpu`'s copy of a per-CPU variable (KernelReadError for a CPU the
        kernel does not have: a damaged nr_cpu_ids, or a CPU number from damaged memory)."""
        offsets = self.per_cpu_offsets
        if not 0 <= cpu < len(offsets):
            raise KernelReadError(f"CPU {cpu} is not one of the kernel's {len(offsets)} "
                                  "possible CPUs (nr_cpu_ids)")
        # since 6.15 per-CPU symbols are absolute addresses: symbol + offset wraps at 2^64
        return (symbol_addr + offsets[cpu]) & 0xFFFF_FFFF_FFFF_FFFF

    @cached_property
    def nr_cpu_ids(self) -> int:
        addr = self.symbol_or_none("nr_cpu_ids")
        if addr is not None:
            try:
                n = self.read_u32(addr)
                if 0 < n <= MAX_CPUS:
                    return n
            except CrashtuiError:
                pass
        n = self.dump.info.nr_cpus or 1
        return n if 0 < n <= MAX_CPUS else 1

    def cpumask(self, name: str) -> list[int]:
        """The CPUs set in a global cpumask such as __cpu_online_mask."""
        n = self.nr_cpu_ids
        raw = self.read(self.symbol(name), ((n + 63) // 64) * 8)
        bits = int.from_bytes(raw, "little")
        return [cpu for cpu in range(n) if bits >> cpu & 1]

    def close(self) -> None:
        self.dump.close()
