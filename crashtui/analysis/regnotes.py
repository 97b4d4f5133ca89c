"""What a register's value points at, in a few words: `symbol+off` (kernel or module text and
data), `[slab cache]` object, `task PID (comm)`, `stack of PID n`, `IRQ stack of CPU n`, user
address, NULL or an ERR_PTR's errno, list poison, non-canonical; decoded RFLAGS.

Each note costs a few reads at most (the slab cache of a page, not `kmem`'s walk of the whole
slab); the facts needed for every value (task and stack ranges) are gathered once per
annotator. A value that cannot be looked up gets no note: `note()` never raises.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crashtui.errors import CrashtuiError
from crashtui.kernel.pagetable import MODULES_VADDR, START_KERNEL_MAP

# asm-generic/errno-base.h and errno.h, 1..133 ("" where none), then the kernel-internal ones
# of include/linux/errno.h (512..).
_ERRNO = ("EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES "
          "EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY "
          "ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG "
          "ENOLCK ENOSYS ENOTEMPTY ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG "
          "EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR "
          "ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO "
          "EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN "
          "ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE "
          "EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT "
          "EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED "
          "ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED "
          "EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM "
          "EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED "
          "EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON").split()
_KERNEL_ERRNO = {512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND",
                 515: "ENOIOCTLCMD", 516: "ERESTART_RESTARTBLOCK", 517: "EPROBE_DEFER",
                 518: "EOPENSTALE", 519: "ENOPARAM", 521: "EBADHANDLE", 522: "ENOTSYNC",
                 523: "EBADCOOKIE", 524: "ENOTSUPP", 525: "ETOOSMALL", 526: "ESERVERFAULT",
                 527: "EBADTYPE", 528: "EJUKEBOX", 529: "EIOCBQUEUED", 530: "ERECALLCONFLICT",
                 531: "ENOGRACE"}
MAX_ERRNO = 4095  # include/linux/err.h: ERR_PTR(-1) .. ERR_PTR(-4095)
U64 = (1 << 64) - 1
USER_TOP = 1 << 47  # x86-64 4-level TASK_SIZE_MAX rounded up (5-level: 1 << 56)
KERNEL_BOTTOM = 0xFFFF800000000000  # the lowest canonical kernel address (4-level)
ARM64_USER_TOP = 1 << 52  # TTBR0 addresses, 52-bit VA at most
# include/linux/poison.h with x86-64's POISON_POINTER_DELTA (CONFIG_ILLEGAL_POINTER_VALUE)
_POISON = {0xDEAD000000000100: "LIST_POISON1", 0xDEAD000000000122: "LIST_POISON2"}
# RFLAGS bits (arch/x86/include/uapi/asm/processor-flags.h) shown by name, high to low
_RFLAGS = ((21, "ID"), (18, "AC"), (17, "VM"), (16, "RF"), (14, "NT"), (11, "OF"), (10, "DF"),
           (9, "IF"), (8, "TF"), (7, "SF"), (6, "ZF"), (4, "AF"), (2, "PF"), (0, "CF"))
NOT_ADDRESSES = frozenset({"cs", "ss", "ds", "es", "fs", "gs", "orig_rax", "pstate", "orig_x0",
                           "syscallno"})
MAX_NAME = 64


def errno_name(n: int) -> str:
    """`ENOMEM` for 12, the kernel-internal names from 512, else `errno 600`."""
    if 1 <= n <= len(_ERRNO) and _ERRNO[n - 1] != "-":
        return _ERRNO[n - 1]
    return _KERNEL_ERRNO.get(n, f"errno {n}")


def rflags_names(value: int) -> str:
    """The set RFLAGS bits by name (`IF ZF PF`), plus IOPL when not 0."""
    names = [name for bit, name in _RFLAGS if value >> bit & 1]
    iopl = value >> 12 & 3
    if iopl:
        names.append(f"IOPL={iopl}")
    return " ".join(names)


@dataclass(frozen=True)
class RegisterNote:
    """One register of a frame: its value and what the value is (empty: nothing known)."""

    name: str
    value: int
    note: str = ""


@dataclass(frozen=True)
class _Range:
    start: int
    end: int
    text: str


class RegisterAnnotator:
    """Notes for register values of one dump (built on a Session: kernel, tasks, stacks)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.kernel = session.kernel
        self._slab_names: dict[int, str | None] = {}  # kmem_cache address -> name
        arch = getattr(self.kernel, "arch", None)
        self.x86 = arch is None or getattr(arch, "name", "x86_64") == "x86_64"
        self.pc_name: str = getattr(arch, "pc", "rip") if arch is not None else "rip"
        self.kernel_start: int = getattr(arch, "kernel_start", KERNEL_BOTTOM) \
            if arch is not None else KERNEL_BOTTOM

    # -- facts gathered once ------------------------------------------------------------------

    @cached_property
    def _tasks(self) -> list[Any]:
        try:
            return list(self.session.tasks.tasks)
        except (CrashtuiError, AttributeError):
            return []

    @cached_property
    def _task_at(self) -> dict[int, Any]:
        return {t.address: t for t in self._tasks}

    @cached_property
    def _image(self) -> tuple[int, int] | None:
        lo, hi = self.kernel.symbol_or_none("_text"), self.kernel.symbol_or_none("_end")
        return (lo, hi) if lo is not None and hi is not None and lo < hi else None

    @cached_property
    def _ranges(self) -> tuple[list[int], list[_Range]]:
        """Task stacks, CPU stacks and task_structs as sorted ranges (first one wins)."""
        from crashtui.kernel.memaddr import task_struct_size, thread_size

        out: list[_Range] = []
        try:
            size = thread_size(self.kernel)
            for t in self._tasks:
                if t.stack:
                    out.append(_Range(t.stack, t.stack + size, f"stack of PID {t.pid}"))
        except CrashtuiError:
            pass
        try:
            for s in self.session.backtrace_builder.stacks.cpu_stacks:
                what = "IRQ stack" if s.kind == "irq" else s.label
                out.append(_Range(s.begin, s.end, f"{what} of CPU {s.cpu}"))
        except (CrashtuiError, AttributeError):
            pass
        try:
            tsize = task_struct_size(self.kernel)
            for t in self._tasks:
                out.append(_Range(t.address, t.address + tsize, f"in task {t.pid} ({t.comm})"))
        except CrashtuiError:
            pass
        out.sort(key=lambda r: (r.start, r.end))
        return [r.start for r in out], out

    @cached_property
    def _slab(self) -> tuple[Any, frozenset[int]] | None:
        """The SLUB layout and the kmem_cache addresses on slab_caches (None: no SLUB info)."""
        from crashtui.kernel.slab import SlubLayout, cache_addresses

        try:
            layout = SlubLayout(self.kernel)
            addrs, _ = cache_addresses(self.kernel, layout)
        except CrashtuiError:
            return None
        return layout, frozenset(addrs)

    # -- notes --------------------------------------------------------------------------------

    def notes(self, registers: dict[str, int]) -> list[RegisterNote]:
        """A note for each register, in the dict's order."""
        return [RegisterNote(k, v, self.note(v, k)) for k, v in registers.items()]

    def note(self, value: int, register: str = "") -> str:
        """What `value` is ("" when nothing is known); never raises."""
        try:
            return self._note(value & U64, register)
        except (CrashtuiError, ValueError, IndexError, KeyError, OverflowError, struct.error,
                UnicodeError):
            return ""

    def _note(self, value: int, register: str) -> str:
        if register in NOT_ADDRESSES:
            return ""
        if self.x86 and register in ("rflags", "eflags"):
            return rflags_names(value)
        if value == 0:
            return "NULL"
        if value > U64 - MAX_ERRNO:
            return f"-{errno_name(U64 + 1 - value)}"
        if value < 0x1000:
            return "near NULL"
        if value in _POISON:
            return _POISON[value]
        if value < (USER_TOP if self.x86 else ARM64_USER_TOP):
            return "user address"
        if value < self.kernel_start:
            return "non-canonical" if self.x86 else ""
        if self.x86 and START_KERNEL_MAP <= value:  # the image and modules: text and data
            return self._symbol(value)
        return self._symbol(value) or self._kernel_data(value)

    def _symbol(self, value: int) -> str:
        """`name+0xoff` in the kernel image or `name+0xoff [module]` in a module."""
        image = self._image
        if image is not None and image[0] <= value < image[1]:
            found = self.kernel.symbolize(value)
            if found is None:
                return ""
            sym, off = found
            if sym.name.startswith("$"):  # an arm64 mapping symbol ($x, $d), no name
                return ""
            return f"{sym.name}+{off:#x}" if off else sym.name
        if self.x86 and value < MODULES_VADDR:
            return ""
        from crashtui.kernel.modules import module_symbolize

        hit = module_symbolize(self.session, value)
        if hit is None:
            return ""
        name, off, module = hit
        return f"{name}+{off:#x} [{module}]" if off else f"{name} [{module}]"

    def _kernel_data(self, value: int) -> str:
        """A task_struct, a stack, a slab object (direct map or vmalloc'd stack)."""
        task = self._task_at.get(value)
        if task is not None:
            return f"task {task.pid} ({task.comm})"
        starts, ranges = self._ranges
        i = bisect.bisect_right(starts, value)
        # ranges may nest (a stack inside nothing else; task_structs in the direct map):
        # look back over the ones starting at or below value for one that holds it
        for r in reversed(ranges[max(0, i - 8):i]):
            if r.start <= value < r.end:
                return r.text if not r.text.startswith("in task") \
                    else f"{r.text} +{value - r.start:#x}"
        name = self._slab_cache(value)
        return f"[{name}]" if name else ""

    def _slab_cache(self, value: int) -> str | None:
        """The slab cache whose slab holds a direct-map address (None: not a slab page)."""
        from crashtui.kernel.memaddr import compound_head, direct_map, page_of_phys
        from crashtui.kernel.pageuse import page_use

        dm = direct_map(self.kernel)
        if dm is None or not dm.contains(value):
            return None
        phys = dm.to_phys(value)
        if page_use(self.kernel, phys >> 12) != "slab":
            return None
        slab = self._slab
        page = page_of_phys(self.kernel, phys)
        if slab is None or page is None:
            return None
        layout, caches = slab
        cache = self.kernel.read_u64(compound_head(self.kernel, page) + layout.slab_cache)
        if cache not in caches:
            return None
        if cache not in self._slab_names:
            try:
                name = self.kernel.read_cstr(self.kernel.read_u64(cache + layout.name), MAX_NAME)
                self._slab_names[cache] = name if name.isprintable() else None
            except CrashtuiError:
                self._slab_names[cache] = None
        return self._slab_names[cache]


# The registers of a frame in display order (crash's pt_regs order without orig_rax).
DISPLAY_ORDER = ("rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                 "r9", "r10", "r11", "r12", "r13", "r14", "r15", "cs", "ss")
FULL_SET = 17  # a frame knowing this many registers had a whole register set saved


@dataclass(frozen=True)
class FrameRegisters:
    """The registers of one frame (or of an exception frame's interrupted code), annotated."""

    title: str  # which frame: "#7 do_one_initcall+0x59", "exception RIP test_module_init+5"
    origin: str  # how the values are known
    known: tuple[RegisterNote, ...]
    unknown: tuple[str, ...]  # registers of DISPLAY_ORDER this frame does not know

    def as_json(self) -> dict[str, Any]:
        """The JSON form (docs/json.md, `triage.culprit.registers`)."""
        return {"title": self.title, "origin": self.origin,
                "values": [{"name": n.name, "value": f"{n.value:#x}", "note": n.note or None}
                           for n in self.known],
                "unknown": list(self.unknown)}


def _ordered(regs: dict[str, int], x86: bool = True) -> dict[str, int]:
    if not x86:
        return dict(regs)
    out = {k: regs[k] for k in DISPLAY_ORDER if k in regs}
    out.update((k, v) for k, v in regs.items() if k not in out and k != "orig_rax")
    return out


def known_registers(session: Any, bt: Any, frame: Any) -> tuple[dict[str, int], bool]:
    """The registers known in `frame` of `bt`: its own (Frame.registers, from the unwinder)
    completed with callee-saved registers from .debug_frame where the CFI recovers them
    (crashtui.kernel.framevars.frame_registers); True when the CFI added some."""
    own = dict(frame.registers)
    try:
        from crashtui.kernel.framevars import frame_registers

        plain = [f for f in bt.frames if not f.inline]
        pos = next(i for i, f in enumerate(plain) if f.index == frame.index)
        completed = frame_registers(session, bt).get(pos, {})
    except (CrashtuiError, StopIteration, ImportError, AttributeError, KeyError, ValueError,
            IndexError, struct.error):
        return own, False
    merged = {**completed, **own}
    return merged, len(merged) > len(own)


def frame_registers(session: Any, annotator: RegisterAnnotator, bt: Any, frame: Any,
                    exception: Any = None) -> FrameRegisters:
    """The annotated registers of a frame, or of an exception frame's interrupted code when
    `exception` (an ExceptionFrame) is given."""
    x86 = annotator.x86
    if exception is not None:
        regs = _ordered(exception.registers, x86)
        where = f"pt_regs at {exception.address:x}" if exception.address else "NT_PRSTATUS"
        if exception.partial:
            origin = f"iret frame at {exception.address:x}: the rest was not saved"
        elif exception.user_mode:
            origin = f"saved at kernel entry ({where})"
        else:
            origin = f"saved ({where})"
        if exception.user_mode:
            title = "user space"
        elif exception.function is not None:
            title = f"exception {exception.pc_name} {exception.rip_symbol}"
        else:
            title = f"exception {exception.pc_name} {exception.rip:#x}"
    else:
        own = len(frame.registers)
        if x86:
            regs, cfi = known_registers(session, bt, frame)
        else:  # no CFI completion (crashtui.kernel.framevars reads x86-64 CFI)
            regs, cfi = {annotator.pc_name: frame.pc, **frame.registers}, False
        regs = _ordered(regs, x86)
        title = f"#{frame.index} {frame.symbol}" + (" (inline)" if frame.inline else "")
        if own >= FULL_SET:
            origin = "the saved register set (NT_PRSTATUS or pt_regs)"
        elif cfi:
            origin = "unwound: ORC, callee-saved registers from .debug_frame"
        elif x86:
            origin = "unwound: ORC (only rip, rsp and rbp can be known)"
        else:
            origin = "unwound by frame pointer"
    known = tuple(annotator.notes(regs))
    unknown = tuple(k for k in DISPLAY_ORDER if k not in regs) if x86 else ()
    return FrameRegisters(title, origin, known, unknown)
