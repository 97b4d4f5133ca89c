"""Backtraces as plain data: what `bt` shows for one CPU or task, ready for any view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The order crash prints pt_regs in an exception frame.
REGISTER_ORDER = ("rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp",
                  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "orig_rax", "cs", "ss")


@dataclass(frozen=True)
class SourceLocation:
    """A file and line from the DWARF line table (file as the line table names it)."""

    file: str
    line: int
    column: int = 0
    comp_dir: str | None = None


@dataclass
class ExceptionFrame:
    """A saved `struct pt_regs` on the stack: an interrupt, exception, NMI or syscall entry."""

    address: int  # where the pt_regs sits on the stack
    registers: dict[str, int]  # names from REGISTER_ORDER
    user_mode: bool  # CS has RPL 3: the frame returns to user space
    kind: str = ""  # e.g. "NMI exception stack", "IRQ stack", "syscall"
    partial: bool = False  # only the hardware iret frame (rip cs rflags rsp ss) is valid
    function: str | None = None  # the symbol holding RIP (kernel mode), crash's exception RIP
    offset: int = 0  # RIP - function start
    module: str | None = None  # module holding RIP, if any
    source: SourceLocation | None = None  # file:line of RIP
    lr_symbol: str | None = None  # arm64: the link register's name+offset (crash prints it)

    @property
    def rip(self) -> int:
        """The interrupted program counter (x86-64 rip, arm64 pc)."""
        return self.registers.get("rip", self.registers.get("pc", 0))

    @property
    def pc_name(self) -> str:
        """What the architecture calls the program counter: "RIP" (x86-64) or "PC" (arm64)."""
        return "PC" if "pc" in self.registers and "rip" not in self.registers else "RIP"

    @property
    def rip_symbol(self) -> str:
        """crash's `[exception RIP: ...]` text: name+decimal offset."""
        if self.function is None:
            return "unknown or invalid address"
        return f"{self.function}+{self.offset}" if self.offset else self.function


@dataclass
class Frame:
    """One line of a backtrace."""

    index: int
    sp: int  # stack address crash prints in brackets
    pc: int  # the address crash prints after "at"
    function: str | None  # symbol name (None: unknown address)
    offset: int = 0  # pc - symbol start
    module: str | None = None  # module name when the pc is in a module
    source: SourceLocation | None = None
    inline: bool = False  # a frame that exists only in the DWARF inline info
    exception: ExceptionFrame | None = None  # the pt_regs printed after this frame
    reliable: bool = True  # False when found by frame pointer / stack scan, not ORC
    stack_name: str | None = None  # "--- <NMI exception stack> ---" style marker BEFORE this frame
    stack: str | None = None  # the stack this frame's sp is on ("process stack", "IRQ stack", ...)
    # pc is a return address: function and source are those of pc - 1, the call instruction
    # (False for an interrupted pc, whose own instruction is meant).
    return_address: bool = True
    # Registers known in this frame (DWARF register names as crash prints them: rip, rsp, rbp,
    # rbx, ...): all of them in a frame entered from pt_regs or NT_PRSTATUS, otherwise only what
    # unwinding recovered (rip, rsp and, where the unwinder found it, rbp). Filled by the unwinder.
    registers: dict[str, int] = field(default_factory=dict)

    @property
    def symbol(self) -> str:
        """`function+offset` (hex offset, like the kernel's own traces), or the raw address."""
        if self.function is None:
            return f"{self.pc:#x}"
        return f"{self.function}+{self.offset:#x}" if self.offset else self.function

    def resolve_source_later(self, lookup: Callable[[], SourceLocation | None]) -> None:
        """Find `source` with `lookup` when it is first read: file:line costs a DWARF line
        table each, and `bt` without -l prints none."""
        self._source_lookup = lookup


def _get_source(self: Frame) -> SourceLocation | None:
    state = self.__dict__
    lookup = state.pop("_source_lookup", None)
    if lookup is not None:
        state["_source"] = lookup()
    found: SourceLocation | None = state.get("_source")
    return found


def _set_source(self: Frame, value: SourceLocation | None) -> None:
    self.__dict__.pop("_source_lookup", None)
    self.__dict__["_source"] = value


# Frame.source: a plain dataclass field to every reader and writer, resolved on first read
# when the builder deferred it (resolve_source_later).
Frame.source = property(_get_source, _set_source)  # type: ignore[assignment]


@dataclass
class Backtrace:
    """The frames of one task (on one CPU, or sleeping)."""

    pid: int
    command: str
    task: int
    cpu: int
    frames: list[Frame] = field(default_factory=list)
    error: str | None = None  # why the unwind stopped early, shown as a marker line
    active: bool = False  # running on a CPU at the time of the dump
    panic: bool = False  # the task that panicked
    # Registers printed before the first frame when the trace starts from the CPU's
    # NT_PRSTATUS registers (crash's "[exception RIP: ...]" header, or "user space").
    start: ExceptionFrame | None = None
    # The user-mode pt_regs at the top of a user task's stack, printed after the frames when
    # no frame's exception already shows it (e.g. a forked task that has not run yet).
    user_exception: ExceptionFrame | None = None
    no_stack: bool = False  # the task has no kernel stack any more (it exited): "(no stack)"
    arch: str = "x86_64"  # crashtui.arch name: crash's bt prints frames per architecture
