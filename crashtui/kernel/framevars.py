"""A backtrace frame's arguments and locals: DWARF scopes at its pc evaluated in the dump.

The DWARF is the vmlinux's (KASLR slide removed) or a loaded .ko's (placed at the module's
runtime addresses). A return-address frame is looked up at pc - 1 (the call instruction, as
gdb and drgn do); an exception RIP at the RIP itself. Registers are those the frame knows
(Frame.registers, filled by the unwinder; all of pt_regs after an exception, NT_PRSTATUS
for the first frame); rsp of a return-address frame is the slot of its return address + 8.
The CFA (DW_OP_call_frame_cfa, the usual DW_AT_frame_base on x86-64) is the caller's rsp
before the call: the stack slot of this frame's own return address, i.e. the next frame's
sp, + 8. A value no register or memory of the dump gives is "unknown", with the reason;
a variable without location at that pc is "optimized out".
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crashtui.analysis.variables import OPTIMIZED_OUT, FrameVariable, FrameVariables, ValueNode
from crashtui.debuginfo.dwarf.expr import (
    ExprContext,
    ExprUnknown,
    Piece,
    evaluate,
    register_name,
)
from crashtui.debuginfo.dwarf.scopes import ScopeChain, ScopeVariable, scopes_at
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, Frame
    from crashtui.debuginfo.ctype import CType, Types

MAX_VALUE_BYTES = 1 << 16  # a variable bigger than this is shown by address only
MAX_VARIABLES = 512  # per frame

_TYPES: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def debug_info_for(session: Any, pc: int) -> tuple[Any, int] | None:
    """(DwarfLines, runtime - DWARF address) covering a runtime pc: the vmlinux's, or a
    loaded .ko's placed at the module's runtime addresses; None when there is none."""
    kernel = session.kernel
    lo, hi = kernel.symbol_or_none("_text"), kernel.symbol_or_none("_end")
    if lo is not None and hi is not None and lo <= pc < hi:
        vm = kernel.vmlinux
        lines = vm.lines if vm is not None else None
        return (lines, kernel.kaslr_offset) if lines is not None else None
    try:
        table = session.modules
        mod = table.module_at(pc)
        di = table.debuginfo.get(mod.name) if mod is not None else None
    except CrashtuiError:
        return None
    if di is None or not di.ko.has_dwarf:
        return None
    return di.ko.lines(di.section_bases), 0


def _no_dwarf_reason(session: Any, pc: int) -> str:
    """Why no DWARF covers a pc, in one line naming what would give it."""
    kernel = session.kernel
    lo, hi = kernel.symbol_or_none("_text"), kernel.symbol_or_none("_end")
    if lo is not None and hi is not None and lo <= pc < hi:
        if kernel.vmlinux is None:
            return "no DWARF: started without a vmlinux (give the debug vmlinux)"
        return "no DWARF: the vmlinux has no debug info (use the -dbg package's vmlinux)"
    try:
        mod = session.modules.module_at(pc)
    except CrashtuiError:
        mod = None
    if mod is not None:
        return (f"no DWARF: module {mod.name}'s .ko is not loaded "
                f"(mod -s {mod.name} FILE, or --modules DIR)")
    return f"no DWARF covers {pc:#x}"


def frame_variables(session: Any, bt: Backtrace, frame: Frame,
                    exception: bool = False) -> FrameVariables:
    """The variables of `frame` of `bt` (exception=True: of the code interrupted by the
    pt_regs saved after it, crash's `[exception RIP: ...]`)."""
    frames = [f for f in bt.frames if not f.inline]
    pos = next((i for i, f in enumerate(frames) if f is frame), None)
    if pos is None:
        pos = next((i for i, f in enumerate(frames) if f.index == frame.index), 0)
    f = frames[pos] if frames else frame
    if exception and f.exception is not None:
        ef = f.exception
        pc = ef.rip
        regs = dict(ef.registers)
        lookup = pc
        name = ef.function
    else:
        exception = False
        pc = f.pc
        regs = dict(frame_registers(session, bt).get(pos, {}))
        lookup = pc - 1 if f.return_address else pc
        name = f.function
    out = FrameVariables(name, pc, lookup, f.index, exception,
                         registers=tuple(sorted(regs)))
    arch = getattr(getattr(session.kernel, "arch", None), "name", "x86_64")
    if arch != "x86_64":  # the DWARF register numbers and the CFA rule below are x86-64's
        out.error = f"frame variables are read for x86-64 kernels only, not {arch} yet"
        return out
    if exception and f.exception is not None and f.exception.user_mode:
        out.error = "user-mode registers: no kernel variables"
        return out
    cfa = _cfa(frames, pos, exception)
    try:
        found = debug_info_for(session, lookup)
        if found is None:
            out.error = _no_dwarf_reason(session, lookup)
            return out
        lines, slide = found
        chain = scopes_at(lines, lookup - slide)
    except CrashtuiError as exc:
        out.error = str(exc)
        return out
    except (IndexError, KeyError, ValueError, OverflowError, struct.error) as exc:
        out.error = f"damaged DWARF at {lookup:#x}: {exc}"
        return out
    if chain is None:
        out.error = "no DWARF function covers this address"
        return out
    # the next frame calls this one, unless this frame's own pt_regs comes between them
    own_caller = exception or f.exception is None
    _fill(session, out, chain, regs, cfa, slide,
          _entry_values(session, bt, frames, pos, own_caller))
    return out


CALLEE_SAVED = (3, 6, 12, 13, 14, 15)  # rbx rbp r12-r15: kept across calls (psABI)
_CFI: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _cfi_of(lines: Any) -> Any:
    """The CallFrameInfo of a DwarfLines' .debug_frame (indexed once), or None."""
    from crashtui.debuginfo.dwarf.cfi import CallFrameInfo

    if lines not in _CFI:
        buf = getattr(lines.sections, "frame", None)
        try:
            _CFI[lines] = CallFrameInfo(buf, build_id=getattr(lines, "build_id", None)) \
                if buf is not None else None
        except (IndexError, struct.error):
            _CFI[lines] = None
    return _CFI[lines]


def caller_registers(session: Any, pc: int, regs: dict[str, int], interrupted: bool
                     ) -> dict[str, int] | None:
    """The registers of the caller of the code at runtime `pc` with `regs`, by the call
    frame information (.debug_frame): rsp = CFA, rip = the return address, callee-saved
    registers restored or unchanged; None when no CFI covers pc or the CFA is unknown."""
    look = pc if interrupted else pc - 1
    found = debug_info_for(session, look)
    cfi = _cfi_of(found[0]) if found is not None else None
    row = cfi.row_at(look - found[1]) if cfi is not None and found is not None else None
    if row is None:
        return _orc_caller_registers(session, look, regs)
    if row.cfa_expr is not None or row.cfa_reg is None:
        return None
    base = regs.get(register_name(row.cfa_reg))
    if base is None:
        return None
    cfa = (base + row.cfa_offset) & ((1 << 64) - 1)

    def word(addr: int) -> int | None:
        try:
            return int.from_bytes(session.kernel.read(addr, 8), "little")
        except CrashtuiError:
            return None

    out: dict[str, int] = {}
    for r in sorted(set(CALLEE_SAVED) | set(row.rules)):
        if r == 7 or r == row.return_register:
            continue
        name = register_name(r)
        rule = row.rules.get(r)
        value: int | None = None
        if rule is None or rule.kind == "same":
            value = regs.get(name) if r in CALLEE_SAVED else None
        elif rule.kind == "offset":
            value = word(cfa + rule.n)
        elif rule.kind == "val_offset":
            value = cfa + rule.n
        elif rule.kind == "register":
            value = regs.get(register_name(rule.n))
        if value is not None:
            out[name] = value
    ret = row.rules.get(row.return_register)
    rip = word(cfa + ret.n) if ret is not None and ret.kind == "offset" else None
    if rip is None:
        return None
    out["rip"] = rip
    out["rsp"] = cfa
    return out


_CODEMAPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _orc_caller_registers(session: Any, look: int, regs: dict[str, int]
                          ) -> dict[str, int] | None:
    """The caller's registers by ORC where .debug_frame has nothing (assembly code): a
    CALL entry gives rsp and rip, its bp rule rbp; rbx and r12-r15 are kept (as drgn does)."""
    from crashtui.debuginfo.orc import (
        ORC_REG_BP,
        ORC_REG_BP_INDIRECT,
        ORC_REG_PREV_SP,
        ORC_REG_SP,
        ORC_REG_SP_INDIRECT,
        ORC_REG_UNDEFINED,
        OrcType,
    )
    from crashtui.kernel.unwind import CodeMap

    kernel = session.kernel
    code = _CODEMAPS.get(kernel)
    if code is None:
        code = _CODEMAPS[kernel] = CodeMap(kernel)
    try:
        orc = code.lookup(look)
    except CrashtuiError:
        return None
    if orc is None or orc.type != OrcType.CALL:
        return None
    sp, bp = regs.get("rsp"), regs.get("rbp")

    def word(addr: int) -> int:
        return int.from_bytes(kernel.read(addr, 8), "little")

    try:
        if orc.sp_reg == ORC_REG_SP and sp is not None:
            cfa = sp + orc.sp_offset
        elif orc.sp_reg == ORC_REG_BP and bp is not None:
            cfa = bp + orc.sp_offset
        elif orc.sp_reg == ORC_REG_SP_INDIRECT and sp is not None:
            cfa = word(sp) + orc.sp_offset
        elif orc.sp_reg == ORC_REG_BP_INDIRECT and bp is not None:
            cfa = word(bp + orc.sp_offset)
        else:
            return None
        cfa &= (1 << 64) - 1
        out: dict[str, int] = {name: regs[name] for name in ("rbx", "r12", "r13", "r14",
                                                             "r15") if name in regs}
        if orc.bp_reg == ORC_REG_PREV_SP:
            out["rbp"] = word(cfa + orc.bp_offset)
        elif orc.bp_reg == ORC_REG_BP and bp is not None:
            out["rbp"] = word(bp + orc.bp_offset)
        elif orc.bp_reg == ORC_REG_UNDEFINED and bp is not None:
            out["rbp"] = bp
        out["rip"] = word(cfa - 8)
        out["rsp"] = cfa
    except CrashtuiError:
        return None
    return out


def frame_registers(session: Any, bt: Backtrace) -> dict[int, dict[str, int]]:
    """The registers known in each frame (index into the non-inline frames): the frame's
    own (Frame.registers), completed by unwinding with .debug_frame from the nearest full
    register set before it (NT_PRSTATUS, a kernel-mode pt_regs, a rich Frame.registers)."""
    hit: dict[int, dict[str, int]] | None = bt.__dict__.get("_frame_registers")
    if hit is not None:
        return hit
    frames = [f for f in bt.frames if not f.inline]
    known: dict[int, dict[str, int]] = {}
    pending: tuple[int, dict[str, int], bool] | None = None
    start = bt.start
    if start is not None and not start.user_mode and start.rip:
        pending = (start.rip, dict(start.registers), True)
    elif bt.active:
        pending = _prstatus(session, bt.cpu)
    elif bt.task:
        pending = _inactive_task(session, bt.task)
    for pos, f in enumerate(frames):
        regs = dict(f.registers)
        got: dict[str, int] | None = None
        if pending is not None:
            cur: tuple[int, dict[str, int], bool] | None = pending
            for _ in range(6):
                if cur is None:
                    break
                if cur[0] == f.pc:
                    got = cur[1]
                    break
                try:
                    nxt = caller_registers(session, cur[0], cur[1], cur[2])
                except (CrashtuiError, IndexError, KeyError, ValueError, OverflowError,
                        struct.error):
                    nxt = None  # damaged .debug_frame or ORC: this chain ends here
                cur = (nxt["rip"], nxt, False) if nxt is not None else None
        if got is not None:
            regs = {**got, **regs}
        regs.setdefault("rip", f.pc)
        if "rsp" not in regs and f.return_address:
            regs["rsp"] = f.sp + 8
        known[pos] = regs
        if got is not None or len(regs) > 3:
            pending = (f.pc, regs, not f.return_address)
        ef = f.exception
        if ef is not None and not ef.user_mode and ef.rip:
            pending = (ef.rip, dict(ef.registers), True)
    bt.__dict__["_frame_registers"] = known  # computed once per backtrace
    return known


def _prstatus(session: Any, cpu: int) -> tuple[int, dict[str, int], bool] | None:
    """The kernel-mode NT_PRSTATUS registers of a CPU (where a running task stopped)."""
    try:
        notes = session.backtrace_builder.cpu_registers
    except (CrashtuiError, AttributeError):
        return None
    if not 0 <= cpu < len(notes):
        return None
    regs = dict(notes[cpu].registers)
    if not regs.get("rip") or regs.get("cs", 0) & 3:
        return None
    return regs["rip"], regs, True


def _inactive_task(session: Any, task: int) -> tuple[int, dict[str, int], bool] | None:
    """A sleeping task's registers from its `struct inactive_task_frame` at task->thread.sp
    (arch/x86/include/asm/switch_to.h: what __switch_to_asm pushed), returning to ret_addr."""
    k = session.kernel
    try:
        sp = k.read_u64(task + k.offsetof("task_struct", "thread.sp"))
        regs = {name: k.read_u64(sp + k.offsetof("inactive_task_frame", member))
                for name, member in (("rbx", "bx"), ("rbp", "bp"), ("r12", "r12"),
                                     ("r13", "r13"), ("r14", "r14"), ("r15", "r15"))}
        o_ret = k.offsetof("inactive_task_frame", "ret_addr")
        pc = k.read_u64(sp + o_ret)
    except CrashtuiError:
        return None
    regs["rip"] = pc
    regs["rsp"] = sp + o_ret + 8
    return pc, regs, False


def _cfa(frames: list[Frame], pos: int, exception: bool) -> int | None:
    """The caller's rsp before the call: the next frame's return-address slot + 8."""
    f = frames[pos]
    if not exception and f.exception is not None:
        return None  # the next frame is the interrupted code's caller, not this one's
    if pos + 1 >= len(frames):
        return None
    nxt = frames[pos + 1]
    if not nxt.return_address or nxt.stack_name:
        return None
    return nxt.sp + 8


def _context(session: Any, chain: ScopeChain, regs: dict[str, int], cfa: int | None,
             slide: int, entry_value: Callable[[bytes], int] | None = None) -> ExprContext:
    """How DWARF expressions of one frame read its registers, memory, frame base and CFA."""
    kernel = session.kernel

    def read_register(r: int) -> int:
        name = register_name(r)
        if name not in regs:
            raise ExprUnknown(f"register {name} not known in this frame")
        return regs[name]

    def read_memory(addr: int, size: int) -> bytes:
        try:
            return bytes(kernel.read(addr, size))
        except CrashtuiError as exc:
            raise ExprUnknown(f"cannot read memory at {addr:#x}") from exc

    def need_cfa() -> int:
        if cfa is None:
            raise ExprUnknown("frame's CFA not known (no caller frame on this stack)")
        return cfa

    base_ctx = ExprContext(read_register, read_memory, cfa=need_cfa, addrx=chain.addrx,
                           relocate=lambda a: a + slide)

    def frame_base() -> int:
        if chain.frame_base is None:
            raise ExprUnknown("no frame base at this pc")
        pieces = evaluate(chain.frame_base, base_ctx)
        p = pieces[0]
        if p.kind == "memory":
            return p.value
        if p.kind == "register":
            return read_register(p.value)
        if p.kind == "value":
            return p.value
        raise ExprUnknown("frame base not known")

    return ExprContext(read_register, read_memory, frame_base, need_cfa, chain.addrx,
                       lambda a: a + slide, entry_value)


class _EntryValues:
    """A DW_OP_entry_value callback that counts its successful uses."""

    def __init__(self, fn: Callable[[bytes], int]) -> None:
        self.fn = fn
        self.used = 0

    def __call__(self, block: bytes) -> int:
        v = self.fn(block)
        self.used += 1
        return v


def _entry_values(session: Any, bt: Backtrace, frames: list[Frame], pos: int,
                  own_caller: bool) -> _EntryValues:
    """DW_OP_entry_value for frames[pos]: a register's value at the function's entry, from
    the caller's DW_TAG_call_site_parameter (DW_AT_call_value) at the return address of the
    caller frame, evaluated with the caller's registers (as gdb resolves `x@entry`)."""

    def value(block: bytes) -> int:
        if len(block) == 1 and 0x50 <= block[0] <= 0x6F:
            reg = block[0] - 0x50
        else:
            raise ExprUnknown("entry value of something other than a register")
        if pos + 1 >= len(frames) or not own_caller:
            raise ExprUnknown("entry value: no caller frame")
        caller = frames[pos + 1]
        if not caller.return_address or not caller.reliable or not frames[pos].reliable:
            raise ExprUnknown("entry value: the caller frame is not certain")
        found = debug_info_for(session, caller.pc - 1)
        if found is None:
            raise ExprUnknown("entry value: no DWARF for the caller")
        lines, slide = found
        chain = scopes_at(lines, caller.pc - 1 - slide)
        if chain is None:
            raise ExprUnknown("entry value: no DWARF for the caller")
        expr = chain.call_values(caller.pc - slide).get(reg)
        if expr is None:
            raise ExprUnknown(f"entry value: the call site records no value for "
                              f"{register_name(reg)}")
        regs = dict(frame_registers(session, bt).get(pos + 1, {}))
        ctx = _context(session, chain, regs, _cfa(frames, pos + 1, False), slide)
        pieces = evaluate(expr, ctx)
        p = pieces[0]
        if len(pieces) != 1 or p.kind not in ("memory", "value", "register"):
            raise ExprUnknown("entry value: unsupported call value")
        return ctx.read_register(p.value) if p.kind == "register" else p.value

    return _EntryValues(value)


def _fill(session: Any, out: FrameVariables, chain: ScopeChain, regs: dict[str, int],
          cfa: int | None, slide: int, entry_value: Callable[[bytes], int] | None = None
          ) -> None:
    try:
        types: Types | None = session.types
    except CrashtuiError:
        types = None
    ctx = _context(session, chain, regs, cfa, slide, entry_value)
    top = chain.functions[0].name
    count = 0
    for fn in chain.functions:
        for sv in fn.variables:
            count += 1
            if count > MAX_VARIABLES:
                return
            try:
                v = _variable(session, types, chain, sv, fn.name, fn.name != top or fn.inlined,
                              ctx, cfa)
            except (CrashtuiError, IndexError, KeyError, ValueError, OverflowError,
                    struct.error) as exc:
                v = FrameVariable(sv.name, "?", sv.parameter, fn.name, fn.inlined,
                                  state="error", reason=f"damaged DWARF: {exc}")
            out.variables.append(v)


def _dwarf_type(chain: ScopeChain, offset: int | None) -> Any:
    from crashtui.debuginfo.dwarfvars import DwarfType, _type_at

    if offset is None:
        return DwarfType("void", "void")
    cache = _TYPES.setdefault(chain.reader, {})
    t = cache.get(offset)
    if t is None:
        t = cache[offset] = _type_at(chain.reader, offset, 0)
    return t


_NAMES: weakref.WeakKeyDictionary[Any, dict[int | None, str]] = weakref.WeakKeyDictionary()


def _type_name(chain: ScopeChain, offset: int | None) -> str:
    """The type's C spelling as gdb and drgn print it (cached per DWARF reader)."""
    from crashtui.debuginfo.dwarf.typenames import type_name

    cache = _NAMES.setdefault(chain.reader, {})
    name = cache.get(offset)
    if name is None:
        name = cache[offset] = type_name(chain.reader, offset)
    return name


def _ctype(types: Types | None, d: Any) -> CType:
    from crashtui.debuginfo.ctype import CType

    if types is not None:
        try:
            return types.from_dwarf(d)
        except CrashtuiError:
            pass
    return CType("int" if d.tag == "base" else "void", d.name or d.tag, d.size)


def _variable(session: Any, types: Types | None, chain: ScopeChain, sv: ScopeVariable,
              function: str, inlined: bool, ctx: ExprContext, cfa: int | None
              ) -> FrameVariable:
    ct = _ctype(types, _dwarf_type(chain, sv.type_offset))
    v = FrameVariable(sv.name, _type_name(chain, sv.type_offset), sv.parameter, function,
                      inlined, ctype=ct)
    size = ct.size if ct.size is not None else 8
    if sv.expr is None:
        if sv.const_value is not None:
            v.location = "constant"
            c = sv.const_value
            v.data = c[:size] if isinstance(c, bytes) else \
                (c & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            v.state = OPTIMIZED_OUT
            return v
    else:
        entry = ctx.entry_value
        used = entry.used if isinstance(entry, _EntryValues) else 0
        try:
            pieces = evaluate(sv.expr, ctx)
            v.data, v.location, v.address = _assemble(pieces, size, ctx, cfa)
            if isinstance(entry, _EntryValues) and entry.used > used:
                v.location = "entry value (caller's call site)"
        except ExprUnknown as exc:
            if str(exc).startswith("optimized"):
                v.state = OPTIMIZED_OUT
            else:
                v.state, v.reason = "unknown", str(exc)
            return v
        except (IndexError, struct.error, ValueError) as exc:
            v.state, v.reason = "error", f"damaged location expression: {exc}"
            return v
    v.value = summary(session, types, ct, v.data, v.address)
    return v


def _assemble(pieces: list[Piece], size: int, ctx: ExprContext, cfa: int | None
              ) -> tuple[bytes | None, str, int | None]:
    """The variable's bytes from its location pieces, where it is, and its address."""
    if len(pieces) == 1 and pieces[0].size is None:
        p = pieces[0]
        if p.kind == "memory":
            where = "stack" if cfa is not None and cfa - 0x4000 <= p.value < cfa + 0x100 \
                else "memory"
            if size > MAX_VALUE_BYTES:
                return None, where, p.value
            return ctx.read_memory(p.value, size), where, p.value
        if p.kind == "optimized":
            raise ExprUnknown("optimized out")
        data = _piece_bytes(p, size, ctx)
        where = f"register {register_name(p.value)}" if p.kind == "register" else "computed"
        return data, where, None
    out = bytearray()
    kinds: set[str] = set()
    for p in pieces:
        n = p.size or 0
        if p.kind == "optimized":
            raise ExprUnknown("optimized out (part of it)")
        if p.kind == "memory":
            out += ctx.read_memory(p.value, n)
            kinds.add("memory")
        else:
            out += _piece_bytes(p, n, ctx)
            kinds.add("register" if p.kind == "register" else "computed")
    loc = "pieces: " + ", ".join(sorted(kinds))
    return bytes(out[:size]).ljust(size, b"\0"), loc, None


def _piece_bytes(p: Piece, size: int, ctx: ExprContext) -> bytes:
    if p.kind == "register":
        if size > 8:
            raise ExprUnknown(f"{size}-byte value in one register")
        return (ctx.read_register(p.value) & ((1 << 64) - 1)).to_bytes(8, "little")[:size]
    if p.kind == "value":
        return (p.value & ((1 << 64) - 1)).to_bytes(8, "little")[:size].ljust(size, b"\0")
    return p.data[:size].ljust(size, b"\0")


def summary(session: Any, types: Types | None, ct: CType, data: bytes | None,
            address: int | None) -> str:
    """A one-line value: integers in decimal, pointers in hex (with the symbol of a kernel
    address), enums by name, aggregates as `{...}`."""
    if data is None:
        return f"{{...}} at {address:#x}" if address is not None else "{...}"
    kind = ct.kind
    if kind == "int":
        v = int.from_bytes(data[:ct.size or 8], "little", signed=ct.signed)
        if ct.boolean:
            return {0: "false", 1: "true"}.get(v, str(v))
        return str(v)
    if kind == "enum":
        v = int.from_bytes(data[:ct.size or 4], "little", signed=ct.signed)
        if types is not None:
            for name, val in types.enumerators(ct).items():
                if val == v:
                    return name
        return str(v)
    if kind == "ptr":
        v = int.from_bytes(data[:8], "little")
        t = ct.target
        if v and t is not None and t.kind == "int" and t.size == 1 and t.char:
            return f"{v:#x} {_c_string(session, v)}"
        sym = _symbol(session, v) if v else None
        return f"{v:#x} <{sym}>" if sym else f"{v:#x}"
    t = ct.target
    if kind == "array" and t is not None and t.kind == "int" and t.char and t.size == 1:
        whole = data.split(b"\0", 1)[0]
        text = whole[:80].decode("latin-1")
        return '"' + "".join(c if " " <= c < "\x7f" and c not in "\"\\" else
                             f"\\{ord(c):03o}" for c in text) + '"' + \
            ("..." if len(whole) > 80 else "")
    if kind == "float" and ct.size in (4, 8):
        return repr(struct.unpack("<f" if ct.size == 4 else "<d", data[:ct.size])[0])
    return "{...}"


def _c_string(session: Any, addr: int, limit: int = 80) -> str:
    """`"text"` of a C string in the dump (at most `limit` characters, `...` after)."""
    out = b""
    try:
        while len(out) <= limit:
            n = min(64, 0x1000 - ((addr + len(out)) & 0xFFF))
            chunk = bytes(session.kernel.read(addr + len(out), n))
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                break
            out += chunk
    except CrashtuiError:
        if not out:
            return "<cannot read the string>"
    text = out[:limit].decode("latin-1")
    text = "".join(c if " " <= c < "\x7f" and c not in "\"\\" else
                   {"\"": '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}.get(c, f"\\{ord(c):03o}")
                   for c in text)
    return f'"{text}"' + ("..." if len(out) > limit else "")


def _symbol(session: Any, addr: int) -> str | None:
    """`name+off` for an address in the kernel image or a module's text."""
    try:
        hit = session.symbolize(addr)
    except (CrashtuiError, AttributeError):
        return None
    if hit is None:
        return None
    name, off, _module = hit
    k = session.kernel
    lo, hi = k.symbol_or_none("_text"), k.symbol_or_none("_end")
    if _module is None and (lo is None or hi is None or not lo <= addr < hi):
        return None
    return f"{name}+{off:#x}" if off else name


def located_variables(session: Any, bt: Backtrace, skip_waits: bool = False
                      ) -> FrameVariables | None:
    """The variables of a backtrace's culprit frame (crashtui.analysis.culprit.locate: its
    first exception RIP or first frame outside the machinery), or None."""
    from crashtui.analysis.culprit import locate

    at = locate(bt, skip_waits)
    if at is None:
        return None
    return frame_variables(session, bt, at.frame, exception=at.exception)


def culprit_variables(session: Any) -> FrameVariables | None:
    """The variables of the triage's culprit frame (what the report and JSON show)."""
    try:
        c = session.triage.culprit
    except CrashtuiError:
        return None
    if c is None or c.frame is None:
        return None
    try:
        bt = session.panic_backtrace
        if bt is None or (c.task is not None and bt.task != c.task):
            bt = session.backtrace_of(c.task) if c.task is not None else None
    except CrashtuiError:
        return None
    if bt is None:
        return None
    frame = next((f for f in bt.frames if f.index == c.frame and not f.inline), None)
    if frame is None:
        return None
    return frame_variables(session, bt, frame, exception=c.exception)


MAX_CHILDREN = 256  # members or elements listed per expanded node


def expandable(ct: CType | None, data: bytes | None) -> bool:
    """True for a struct/union/array (not a char array) or a non-NULL pointer to one."""
    if ct is None:
        return False
    t = ct.target
    if ct.kind in ("struct", "union"):
        return True
    if ct.kind == "array":
        return not (t is not None and t.kind == "int" and t.char and t.size == 1) and \
            bool(ct.length)
    if ct.kind == "ptr" and t is not None and t.kind in ("struct", "union") and t.size:
        return data is not None and int.from_bytes(data[:8], "little") != 0
    return False


def expand(session: Any, ct: CType, data: bytes | None, address: int | None
           ) -> list[ValueNode]:
    """The children of a value: a struct's members, an array's elements (at most
    MAX_CHILDREN), or for a pointer the members of the struct it points to."""
    types: Types = session.types
    kernel = session.kernel
    if ct.kind == "ptr":
        target = ct.target
        if data is None or target is None or not target.size:
            return []
        ptr = int.from_bytes(data[:8], "little")
        try:
            raw = bytes(kernel.read(ptr, min(target.size, MAX_VALUE_BYTES)))
        except CrashtuiError as exc:
            return [ValueNode(f"*{ct.name}", target.name, f"<{exc.message}>")]
        return expand(session, target, raw, ptr)
    if data is None and address is not None and ct.size:
        try:
            data = bytes(kernel.read(address, min(ct.size, MAX_VALUE_BYTES)))
        except CrashtuiError as exc:
            return [ValueNode("?", ct.name, f"<{exc.message}>")]
    if data is None:
        return []
    out: list[ValueNode] = []
    if ct.kind in ("struct", "union"):
        fields = types.fields(ct)
        for f in fields[:MAX_CHILDREN]:
            off = f.bit_offset // 8
            ft = f.type
            if f.bit_size:
                word = int.from_bytes(data[off:off + 8].ljust(8, b"\0"), "little")
                v = (word >> (f.bit_offset % 8)) & ((1 << f.bit_size) - 1)
                if ft.signed and v >> (f.bit_size - 1):
                    v -= 1 << f.bit_size
                out.append(ValueNode(f.name, f"{ft.name} : {f.bit_size}", str(v)))
                continue
            size = ft.size or 0
            fdata = data[off:off + size] if off + size <= len(data) else None
            addr = address + off if address is not None else None
            out.append(ValueNode(f.name or "<anonymous>", ft.name,
                                 summary(session, types, ft, fdata, addr),
                                 expandable(ft, fdata), ft, fdata, addr))
        if len(fields) > MAX_CHILDREN:
            out.append(_more(MAX_CHILDREN, len(fields), "members"))
        return out
    if ct.kind == "array" and ct.target is not None and ct.target.size:
        elem = ct.target
        esize: int = elem.size or 1
        n = min(ct.length or 0, MAX_CHILDREN, len(data) // esize)
        for i in range(n):
            edata = data[i * esize:(i + 1) * esize]
            addr = address + i * esize if address is not None else None
            out.append(ValueNode(f"[{i}]", elem.name, summary(session, types, elem, edata, addr),
                                 expandable(elem, edata), elem, edata, addr))
        if (ct.length or 0) > n:
            out.append(_more(n, ct.length or 0, "elements"))
    return out


def _more(shown: int, total: int, what: str) -> ValueNode:
    """The row that says an expansion was cut (MAX_CHILDREN, MAX_VALUE_BYTES)."""
    return ValueNode("…", "", f"<first {shown} of {total} {what} shown>")
