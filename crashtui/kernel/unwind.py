"""The x86-64 ORC unwinder (arch/x86/kernel/unwind_orc.c), run over a dump's memory.

One step: look up the ORC entry of the pc (at pc - 1 for a return address, since a call to a
noreturn function may be the last instruction of its function; at pc itself for an interrupted
pc), compute the caller's stack pointer from sp_reg + sp_offset, then read either the return
address below it (CALL), a whole `struct pt_regs` at it (REGS: an interrupt, exception, NMI or
syscall entry) or only its iret frame (REGS_PARTIAL). Kernel text uses the vmlinux's tables
(link-time addresses: the KASLR slide is subtracted), module text the tables each module keeps
in memory (`module.arch.orc_unwind_ip/orc_unwind`).

Where ORC knows nothing (functions objtool skips such as __crash_kexec, which is
STACK_FRAME_NON_STANDARD; code without tables) the step falls back to simulating the
function's prologue, then to the frame-pointer chain, then to scanning the stack for the next
text address; such frames are marked unreliable. Every step is bounded: at most MAX_FRAMES
frames, the stack pointer must grow within one stack and stay on a known stack, and any
unreadable word ends the unwind with an error message instead of an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from crashtui.debuginfo.orc import (
    ORC_ENTRY_DTYPE,
    ORC_REG_AX,
    ORC_REG_BP,
    ORC_REG_BP_INDIRECT,
    ORC_REG_DI,
    ORC_REG_DX,
    ORC_REG_PREV_SP,
    ORC_REG_R10,
    ORC_REG_R13,
    ORC_REG_SP,
    ORC_REG_SP_INDIRECT,
    ORC_REG_UNDEFINED,
    OrcEntry,
    OrcTable,
    OrcType,
)
from crashtui.errors import CrashtuiError
from crashtui.kernel.lists import list_for_each
from crashtui.kernel.pagetable import START_KERNEL_MAP
from crashtui.kernel.regs import IRET_FRAME_OFFSET, PtRegsReader, user_mode
from crashtui.kernel.stacks import Stack, StackMap

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_FRAMES = 256
MAX_SCAN_WORDS = 2048  # stack-scan fallback: how far to look for the next return address
MAX_PROLOGUE_BYTES = 4096

# Registers ORC may name as the base of the previous frame's stack (orc_types.h).
_ORC_REG_NAMES = {ORC_REG_R10: "r10", ORC_REG_R13: "r13", ORC_REG_DI: "rdi", ORC_REG_DX: "rdx",
                  ORC_REG_AX: "rax"}

# struct inactive_task_frame (arch/x86/include/asm/switch_to.h, x86-64): r15 r14 r13 r12 bx bp
# ret_addr (plus `flags` first on some 4.x kernels); offsets come from BTF when present.
_INACTIVE_FRAME_DEFAULTS = {"bp": 40, "ret_addr": 48}
# The callee-saved registers __switch_to_asm pushes there (member name -> register name).
_INACTIVE_FRAME_SAVED = (("r15", "r15"), ("r14", "r14"), ("r13", "r13"), ("r12", "r12"),
                         ("bx", "rbx"))

# The registers a frame entered from a full register set knows (pt_regs / NT_PRSTATUS; not
# orig_rax, which is no register, nor the segment bases).
FRAME_REGISTERS = ("rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp",
                   "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "cs", "ss")


@dataclass
class SavedRegs:
    """A `struct pt_regs` found on a stack (full) or only its hardware iret frame (partial)."""

    address: int  # start of the struct pt_regs
    registers: dict[str, int]  # crash's names (regs.REGISTER names); partial: rip cs rflags rsp ss
    partial: bool = False

    @property
    def user_mode(self) -> bool:
        return user_mode(self.registers)


@dataclass
class UnwindFrame:
    """One frame found by the unwinder."""

    pc: int  # return address, or the interrupted/starting pc when `signal`
    sp: int  # what crash prints in brackets: the return address's slot, else the stack pointer
    stack: Stack | None  # the stack `sp` is on
    signal: bool = False  # pc is exact (interrupted or start pc), not a return address
    regs: SavedRegs | None = None  # the pt_regs this frame's code saved (printed after it)
    reliable: bool = True  # False: found by prologue analysis, frame pointer or stack scan
    shown: bool = True  # False: an interrupted pc crash prints only as `[exception RIP: ...]`
    # The registers known in this frame: all of a full register set, else rip, rsp (the
    # callee's CFA) and rbp where ORC or the saved context recovered it (see _known_registers).
    registers: dict[str, int] = field(default_factory=dict)


@dataclass
class UnwindResult:
    """The frames of one unwind and why it stopped early (None: it reached the end)."""

    frames: list[UnwindFrame] = field(default_factory=list)
    error: str | None = None


@dataclass
class _State:
    ip: int
    sp: int
    bp: int
    regs: dict[str, int] | None = None  # registers valid at this frame (from pt_regs/PRSTATUS)
    full_regs: bool = False
    signal: bool = False
    bp_known: bool = False  # bp is this frame's real rbp (not a leftover or a guess)
    saved: dict[str, int] | None = None  # other registers known here (an inactive_task_frame)


def _known_registers(state: _State) -> dict[str, int]:
    """The registers known in the frame `state` describes: a full register set as it is, else
    rip and rsp, the iret frame's rflags/cs/ss, rbp when known and any saved registers."""
    if state.full_regs and state.regs is not None:
        return {k: state.regs[k] for k in FRAME_REGISTERS if k in state.regs}
    out = {"rip": state.ip, "rsp": state.sp}
    if state.regs is not None:  # a partial (iret) frame
        out.update((k, state.regs[k]) for k in ("rflags", "cs", "ss") if k in state.regs)
    if state.bp_known:
        out["rbp"] = state.bp
    if state.saved:
        out.update(state.saved)
    return out


@dataclass(frozen=True)
class ModuleText:
    """A loaded module's text range with its ORC table (runtime addresses)."""

    name: str
    start: int
    end: int
    orc: OrcTable | None


class UnwindError(CrashtuiError):
    """One unwind step failed (bad pointer, unreadable stack, no way to find the caller)."""


class CodeMap:
    """Kernel and module text ranges, and the ORC entry covering a runtime address."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.slide = kernel.kaslr_offset
        ranges = []
        for lo, hi in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            a, b = kernel.symbol_or_none(lo), kernel.symbol_or_none(hi)
            if a is not None and b is not None and a < b:
                ranges.append((a, b))
        self.kernel_ranges = ranges

    @cached_property
    def orc(self) -> OrcTable | None:
        """The kernel's ORC table (link-time addresses; the vmlinux's or the in-memory one)."""
        try:
            return self.kernel.orc
        except CrashtuiError:
            return None

    @cached_property
    def modules(self) -> list[ModuleText]:
        """Text ranges and ORC tables of every module on the `modules` list (empty if unknown)."""
        try:
            return _read_module_texts(self.kernel)
        except CrashtuiError:
            return []

    def in_kernel_text(self, addr: int) -> bool:
        return any(lo <= addr < hi for lo, hi in self.kernel_ranges)

    def module_at(self, addr: int) -> ModuleText | None:
        if addr < START_KERNEL_MAP:  # modules live in the top 2 GiB (above the kernel image)
            return None
        for mod in self.modules:
            if mod.start <= addr < mod.end:
                return mod
        return None

    def is_text(self, addr: int) -> bool:
        """True for an address inside kernel or module text."""
        return self.in_kernel_text(addr) or self.module_at(addr) is not None

    def lookup(self, addr: int) -> OrcEntry | None:
        """The ORC entry covering runtime address `addr`, or None."""
        if self.in_kernel_text(addr):
            return self.orc.lookup(addr - self.slide) if self.orc is not None else None
        mod = self.module_at(addr)
        if mod is not None and mod.orc is not None:
            return mod.orc.lookup(addr)
        return None

    def code(self, addr: int, size: int) -> bytes:
        """Instruction bytes: the vmlinux's for kernel text (exact even if the page was
        filtered out), else memory."""
        vm = self.kernel.vmlinux
        if vm is not None and self.in_kernel_text(addr):
            try:
                return vm.read_at(addr - self.slide, size)
            except CrashtuiError:
                pass
        return self.kernel.read(addr, size)


def _read_module_texts(kernel: Kernel) -> list[ModuleText]:
    """Walk `modules` (kernel/module/main.c): name, text layouts and mod->arch ORC tables."""
    head = kernel.symbol_or_none("modules")
    if head is None:
        return []
    o_list = kernel.offsetof("module", "list")
    o_name = kernel.offsetof("module", "name")
    layouts: list[tuple[int, int]] = []  # (offset of base, offset of text size)
    if kernel.btf.has_member("module", "core_layout"):  # 4.5 .. 6.3
        for lay in ("core_layout", "init_layout"):
            o = kernel.offsetof("module", lay)
            layouts.append((o + kernel.offsetof("module_layout", "base"),
                            o + kernel.offsetof("module_layout", "text_size")))
    elif kernel.btf.has_member("module", "mem"):  # 6.4+: mem[MOD_TEXT], mem[MOD_INIT_TEXT]
        o = kernel.offsetof("module", "mem")
        esize = kernel.sizeof("struct module_memory")
        kinds = kernel.btf.enum("mod_mem_type")
        for kind in ("MOD_TEXT", "MOD_INIT_TEXT"):
            if kind in kinds:
                base = o + kinds[kind] * esize
                layouts.append((base + kernel.offsetof("module_memory", "base"),
                                base + kernel.offsetof("module_memory", "size")))
    o_arch = kernel.offsetof("module", "arch")
    has_orc = kernel.btf.has_member("mod_arch_specific", "num_orcs")
    out: list[ModuleText] = []
    for node in list_for_each(kernel, head, limit=65536):
        mod = node - o_list
        try:
            name = kernel.read_cstr(mod + o_name, 56)
            orc = _module_orc(kernel, mod + o_arch) if has_orc else None
            for o_base, o_size in layouts:
                base = kernel.read_u64(mod + o_base)
                size = kernel.read_u32(mod + o_size)
                if base and size:
                    out.append(ModuleText(name, base, base + size, orc))
        except CrashtuiError:
            continue
    return out


def _module_orc(kernel: Kernel, arch: int) -> OrcTable | None:
    """A module's ORC table from struct mod_arch_specific (runtime addresses)."""
    num = kernel.read_u32(arch + kernel.offsetof("mod_arch_specific", "num_orcs"))
    ip_addr = kernel.read_u64(arch + kernel.offsetof("mod_arch_specific", "orc_unwind_ip"))
    orc_addr = kernel.read_u64(arch + kernel.offsetof("mod_arch_specific", "orc_unwind"))
    if not num or not ip_addr or not orc_addr or num > 1 << 20:
        return None
    ip_bytes = kernel.read(ip_addr, 4 * num)
    entries = np.frombuffer(kernel.read(orc_addr, ORC_ENTRY_DTYPE.itemsize * num),
                            dtype=ORC_ENTRY_DTYPE)
    rel = np.frombuffer(ip_bytes, dtype="<i4").astype(np.int64).astype(np.uint64)
    ips = np.uint64(ip_addr) + np.arange(num, dtype=np.uint64) * np.uint64(4) + rel
    if kernel.orc is None:
        return OrcTable.detected(ips, entries, 1)
    return OrcTable.detected(ips, entries, kernel.orc.version, kernel.orc.numbering)


def prologue_depth(code: bytes, start: int, ip: int) -> tuple[int, int | None] | None:
    """Bytes a function has pushed/allocated on the stack when it reaches `ip`, simulating the
    straight-line instructions from its start (push/pop, sub/add rsp), and where it saved rbp
    (offset below the return address' slot, or None). None if the code cannot be followed.
    Decoded by hand (crashtui.kernel.prologue): no disassembler is loaded for a backtrace."""
    from crashtui.kernel import prologue

    return prologue.prologue_depth(code, start, ip)


class Unwinder:
    """ORC unwinding over a kernel's memory, with bounded fallbacks."""

    def __init__(self, kernel: Kernel, stacks: StackMap | None = None,
                 code: CodeMap | None = None) -> None:
        self.kernel = kernel
        self.stacks = stacks or StackMap(kernel)
        self.code = code or CodeMap(kernel)
        self.pt_regs = PtRegsReader(kernel)

    # -- starting points ------------------------------------------------------------------

    def from_return_address(self, slot: int, task_stack: Stack | None, bp: int = 0,
                            saved: dict[str, int] | None = None) -> UnwindResult:
        """Unwind starting at a return address stored at `slot` (crash's frame #0 found by
        scanning the stack, e.g. machine_kexec or crash_nmi_callback). `saved`: registers
        known in that frame (rbp among them makes `bp` known)."""
        try:
            ip = self._read_u64(slot)
        except UnwindError as exc:
            return UnwindResult([], exc.message)
        state = _State(ip, slot + 8, bp, bp_known=saved is not None and "rbp" in saved,
                       saved=saved)
        first = UnwindFrame(ip, slot, self.stacks.find(slot, task_stack),
                            registers=_known_registers(state))
        return self._run(state, first, task_stack)

    def from_registers(self, registers: dict[str, int], task_stack: Stack | None) -> UnwindResult:
        """Unwind from a full register set (NT_PRSTATUS or a pt_regs): the pc is exact."""
        state = _State(registers["rip"], registers["rsp"], registers.get("rbp", 0),
                       dict(registers), True, True, bp_known="rbp" in registers)
        first = UnwindFrame(state.ip, state.sp, self.stacks.find(state.sp, task_stack),
                            signal=True, registers=_known_registers(state))
        return self._run(state, first, task_stack)

    def from_inactive_task(self, thread_sp: int, task_stack: Stack | None) -> UnwindResult:
        """Unwind a task that is not running: task->thread.sp points at its
        `struct inactive_task_frame`, whose ret_addr returns into __schedule (or is
        ret_from_fork for a task that never ran)."""
        try:
            o_ret = self.kernel.offsetof("inactive_task_frame", "ret_addr")
            o_bp = self.kernel.offsetof("inactive_task_frame", "bp")
        except CrashtuiError:
            o_ret, o_bp = _INACTIVE_FRAME_DEFAULTS["ret_addr"], _INACTIVE_FRAME_DEFAULTS["bp"]
        try:
            bp = self._read_u64(thread_sp + o_bp)
            ip = self._read_u64(thread_sp + o_ret)
        except UnwindError as exc:
            return UnwindResult([], exc.message)
        saved = self._inactive_saved(thread_sp)
        saved["rbp"] = bp
        if ip in self.fork_entries:  # unwind_orc.c __unwind_start: signal = ip == ret_from_fork
            state = _State(ip, thread_sp + o_ret + 8, bp, signal=True, bp_known=True,
                           saved=saved)
            first = UnwindFrame(ip, thread_sp + o_ret, self.stacks.find(thread_sp, task_stack),
                                signal=True, registers=_known_registers(state))
            return self._run(state, first, task_stack)
        return self.from_return_address(thread_sp + o_ret, task_stack, bp, saved)

    def _inactive_saved(self, thread_sp: int) -> dict[str, int]:
        """rbx, r12-r15 as __switch_to_asm pushed them in the `struct inactive_task_frame`
        (only members BTF names; nothing when it has none or a word is unreadable)."""
        out: dict[str, int] = {}
        for member, name in _INACTIVE_FRAME_SAVED:
            try:
                off = self.kernel.offsetof("inactive_task_frame", member)
                out[name] = self.kernel.read_u64(thread_sp + off)
            except CrashtuiError:
                continue
        return out

    @cached_property
    def fork_entries(self) -> frozenset[int]:
        """Where a new task starts (ret_from_fork; ret_from_fork_asm since 6.7)."""
        names = ("ret_from_fork", "ret_from_fork_asm")
        return frozenset(a for a in (self.kernel.symbol_or_none(n) for n in names) if a)

    # -- the walk -------------------------------------------------------------------------

    def _read_u64(self, addr: int) -> int:
        try:
            return self.kernel.read_u64(addr)
        except CrashtuiError as exc:
            raise UnwindError(f"cannot read stack at {addr:#x}: {exc.message}") from None

    def _run(self, state: _State, first: UnwindFrame, task_stack: Stack | None) -> UnwindResult:
        result = UnwindResult([first])
        if first.stack is None:
            result.error = f"stack pointer {first.sp:#x} is not on a known kernel stack"
            return result
        frame = first
        while True:
            if len(result.frames) >= MAX_FRAMES:
                result.error = f"stopped after {MAX_FRAMES} frames"
                return result
            try:
                step = self._step(state, frame, task_stack)
            except UnwindError as exc:
                result.error = exc.message
                return result
            if step is None:
                return result
            state, next_frame = step
            if next_frame is None:  # reached a user-mode pt_regs: the end of a kernel stack
                return result
            frame = next_frame
            result.frames.append(frame)

    def _step(self, state: _State, frame: UnwindFrame,
              task_stack: Stack | None) -> tuple[_State, UnwindFrame | None] | None:
        """One unwind step from `state` (whose frame is `frame`); None at the end of the stack,
        (state, None) when the frame's pt_regs is a user-mode entry."""
        orc = self.code.lookup(state.ip if state.signal else state.ip - 1)
        if orc is None or (orc.type == OrcType.UNDEFINED and not orc.end):
            return self._fallback(state, frame, task_stack)
        if orc.type == OrcType.END_OF_STACK or orc.sp_reg == ORC_REG_UNDEFINED:
            return None

        # Find the previous frame's stack (unwind_orc.c: "Find the previous frame's stack").
        reg, off = orc.sp_reg, orc.sp_offset
        if reg == ORC_REG_SP:
            sp = state.sp + off
        elif reg == ORC_REG_BP:
            sp = state.bp + off
        elif reg == ORC_REG_SP_INDIRECT:
            sp = self._read_u64(state.sp) + off
        elif reg == ORC_REG_BP_INDIRECT:
            sp = self._read_u64(state.bp + off)
        elif reg in _ORC_REG_NAMES:
            name = _ORC_REG_NAMES[reg]
            if not state.full_regs or state.regs is None or name not in state.regs:
                raise UnwindError(f"missing {name.upper()} value at {state.ip:#x}")
            sp = state.regs[name]
        else:
            raise UnwindError(f"unknown ORC sp register {reg} at {state.ip:#x}")
        sp &= (1 << 64) - 1

        if orc.type == OrcType.CALL:
            slot = sp - 8
            new = _State(self._read_u64(slot), sp, state.bp, bp_known=state.bp_known)
            shown_sp, signal = slot, False
        elif orc.type == OrcType.REGS:
            try:
                regs = self.pt_regs.read(sp)
            except CrashtuiError as exc:
                raise UnwindError(f"cannot read pt_regs at {sp:#x}: {exc.message}") from None
            frame.regs = SavedRegs(sp, regs)
            if user_mode(regs):
                return state, None
            new = _State(regs["rip"], regs["rsp"], state.bp, regs, True, True, bp_known=True)
            shown_sp, signal = regs["rsp"], True
        elif orc.type == OrcType.REGS_PARTIAL:
            try:
                iret = self.pt_regs.read_iret(sp)
            except CrashtuiError as exc:
                raise UnwindError(f"cannot read iret frame at {sp:#x}: {exc.message}") from None
            frame.regs = SavedRegs(sp - IRET_FRAME_OFFSET, iret, partial=True)
            if user_mode(iret):
                return state, None
            new = _State(iret["rip"], iret["rsp"], state.bp, iret, False, True,
                         bp_known=state.bp_known)
            shown_sp, signal = iret["rsp"], True
        else:
            raise UnwindError(f"unknown ORC entry type {orc.type} at {state.ip:#x}")

        # Find BP.
        if orc.bp_reg == ORC_REG_UNDEFINED:
            if new.full_regs and new.regs is not None:
                new.bp = new.regs["rbp"]
        elif orc.bp_reg == ORC_REG_PREV_SP:
            new.bp = self._read_u64(sp + orc.bp_offset)
            new.bp_known = True
        elif orc.bp_reg == ORC_REG_BP:
            new.bp = self._read_u64(state.bp + orc.bp_offset)
            new.bp_known = state.bp_known
        else:
            raise UnwindError(f"unknown ORC bp register {orc.bp_reg} at {state.ip:#x}")
        return new, self._new_frame(new, shown_sp, signal, frame, state.sp, task_stack,
                                    reliable=True)

    def _new_frame(self, new: _State, shown_sp: int, signal: bool, prev: UnwindFrame,
                   old_sp: int, task_stack: Stack | None, reliable: bool) -> UnwindFrame:
        """The frame for `new`, after checking its stack pointer moved up a known stack."""
        stack = self.stacks.find(shown_sp, task_stack)
        if stack is None and signal:
            # an exception (#DF) taken on an overflow into the guard page below a stack: the
            # stack it overflowed is the next page up (dumpstack.c show_trace_log_lvl)
            stack = self.stacks.find((shown_sp + 0xFFF) & ~0xFFF, task_stack)
        if stack is None:
            raise UnwindError(f"stack pointer {new.sp:#x} (after {prev.pc:#x}) is not on a "
                              "known kernel stack")
        if self.stacks.find(old_sp - 8, task_stack) == stack and new.sp <= old_sp:
            raise UnwindError(f"stack going in the wrong direction at {prev.pc:#x}")
        shown = True
        if signal and prev.regs is not None:
            # crash prints an interrupted pc as a frame of its own only when the pt_regs and
            # the interrupted stack differ (an IST exception stack); otherwise only as
            # "[exception RIP: ...]".
            shown = self.stacks.find(prev.regs.address, task_stack) != stack
        return UnwindFrame(new.ip, shown_sp, stack, signal=signal, reliable=reliable,
                           shown=shown, registers=_known_registers(new))

    # -- fallbacks where ORC has no entry ---------------------------------------------------

    def _fallback(self, state: _State, frame: UnwindFrame,
                  task_stack: Stack | None) -> tuple[_State, UnwindFrame | None]:
        """Find the caller without ORC: prologue analysis, frame pointer, then a stack scan."""
        stack = frame.stack
        for method in (self._by_prologue, self._by_frame_pointer, self._by_scan):
            found = method(state, stack)
            if found is None:
                continue
            slot, bp, bp_known = found
            try:
                ip = self._read_u64(slot)
            except UnwindError:
                continue
            if not self.code.is_text(ip):
                continue
            new = _State(ip, slot + 8, bp, bp_known=bp_known)
            try:
                return new, self._new_frame(new, slot, False, frame, state.sp, task_stack,
                                            reliable=False)
            except UnwindError:
                continue
        raise UnwindError(f"no unwind information for {state.ip:#x} and no caller found")

    def _by_prologue(self, state: _State, stack: Stack | None) -> tuple[int, int, bool] | None:
        """The caller's return-address slot and rbp by simulating the prologue (rbp known
        when the function saved it, or when it was known and the function left it alone)."""
        k = self.kernel
        look = state.ip if state.signal else state.ip - 1
        hit = k.symbolize(look)
        if hit is None or not self.code.in_kernel_text(look):
            return None
        sym, off = hit
        if off > MAX_PROLOGUE_BYTES:
            return None
        start = look - off
        try:
            code = self.code.code(start, state.ip - start + 16)
        except CrashtuiError:
            return None
        res = prologue_depth(code, start, state.ip)
        if res is None:
            return None
        depth, rbp_at = res
        slot = state.sp + depth
        bp, bp_known = state.bp, state.bp_known
        if rbp_at is not None:
            try:
                bp = self._read_u64(slot - rbp_at)
            except UnwindError:
                return None
            bp_known = True
        return slot, bp, bp_known

    def _by_frame_pointer(self, state: _State, stack: Stack | None
                          ) -> tuple[int, int, bool] | None:
        """The frame-pointer chain's next frame (its rbp a guess: not known)."""
        bp = state.bp
        if stack is None or not stack.contains(bp, 16) or bp < state.sp:
            return None
        try:
            return bp + 8, self._read_u64(bp), False
        except UnwindError:
            return None

    def _by_scan(self, state: _State, stack: Stack | None) -> tuple[int, int, bool] | None:
        """The next text address on the stack (frames may be skipped: rbp not known)."""
        if stack is None or not stack.contains(state.sp):
            return None
        end = min(stack.end, state.sp + 8 * MAX_SCAN_WORDS)
        pos = state.sp & ~7
        while pos < end:  # page by page: stop at the first unreadable one
            chunk = min(end - pos, 0x1000 - (pos & 0xFFF))
            try:
                raw = self.kernel.read(pos, chunk)
            except CrashtuiError:
                return None
            for i, (word,) in enumerate(struct.iter_unpack("<Q", raw[:(len(raw) // 8) * 8])):
                if self.code.is_text(word):
                    return pos + 8 * i, state.bp, False
            pos += chunk
        return None
