"""How deep a function's stack is at an address, by following its straight-line x86-64 code
from the start: a small hand decoder (instruction lengths, and the few instructions that move
rsp), so that the unwinder's fallback needs no disassembler. Code it cannot decode (VEX/EVEX,
3DNow!, invalid bytes, odd prefixes on stack instructions) is handed to capstone, which then
gives the same answer as before."""

from __future__ import annotations

_PREFIXES = frozenset((0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67))
_SEG_PREFIXES = frozenset((0x2E, 0x36, 0x3E, 0x26))  # capstone names these (notrack, ...)


class _Undecodable(Exception):
    """An instruction this decoder does not know: let capstone do the whole function."""


def _one_byte_table() -> tuple[list[bool], list[int]]:
    """(has ModRM, immediate kind) per one-byte opcode. Immediate kinds: 0 none, 1 imm8,
    2 imm16, 4 imm32 (imm16 with 0x66), 5 imm32 always, 8 imm32/imm64 with REX.W (B8-BF),
    9 moffs (8 bytes), 3 imm16+imm8 (enter), -1 invalid / not decoded here."""
    modrm = [False] * 256
    imm = [0] * 256
    for row in range(0, 0x40, 8):
        for low in range(8):
            op = row + low
            if low < 4:
                modrm[op] = True
            elif low == 4:
                imm[op] = 1
            elif low == 5:
                imm[op] = 4
            else:
                imm[op] = -1  # push/pop seg, daa, ...: invalid in 64-bit mode (or prefixes)
    imm[0x0F] = 0
    for op in (0x60, 0x61, 0x62, 0x82, 0x9A, 0xC4, 0xC5, 0xCE, 0xD4, 0xD5, 0xD6, 0xEA):
        imm[op] = -1
    for op in (0x63, *range(0x84, 0x90), 0xC0, 0xC1, 0xC6, 0xC7, *range(0xD0, 0xD4),
               *range(0xD8, 0xE0), 0xF6, 0xF7, 0xFE, 0xFF, 0x69, 0x6B, 0x80, 0x81, 0x83):
        modrm[op] = True
    for op in (0x6A, 0x6B, 0x80, 0x83, 0xA8, 0xC0, 0xC1, 0xC6, 0xCD, 0xEB,
               *range(0x70, 0x80), *range(0xB0, 0xB8), *range(0xE0, 0xE8)):
        imm[op] = 1
    for op in (0x68, 0x69, 0x81, 0xA9, 0xC7):
        imm[op] = 4
    for op in (0xE8, 0xE9):
        imm[op] = 5
    for op in range(0xB8, 0xC0):
        imm[op] = 8
    for op in range(0xA0, 0xA4):
        imm[op] = 9
    for op in (0xC2, 0xCA):
        imm[op] = 2
    imm[0xC8] = 3
    return modrm, imm


def _two_byte_table() -> tuple[list[bool], list[int]]:
    """(has ModRM, immediate kind) per 0F xx opcode (kinds as for one byte)."""
    modrm = [True] * 256
    imm = [0] * 256
    for op in (0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37,
               0x77, 0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA, *range(0xC8, 0xD0)):
        modrm[op] = False
    for op in range(0x80, 0x90):
        modrm[op] = False
        imm[op] = 5
    for op in (0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6):
        imm[op] = 1
    for op in (0x04, 0x0A, 0x0C, 0x0E, 0x0F, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3B, 0x3C,
               0x3D, 0x3E, 0x3F, 0x7A, 0x7B, 0xB9, 0xFF):
        imm[op] = -1
    return modrm, imm


_MODRM1, _IMM1 = _one_byte_table()
_MODRM2, _IMM2 = _two_byte_table()


class Insn:
    """One decoded instruction: what the stack simulation needs to know of it."""

    __slots__ = ("length", "op", "map", "modrm", "rex", "opsize", "seg", "imm")

    def __init__(self, length: int, op: int, opmap: int, modrm: int, rex: int, opsize: bool,
                 seg: bool, imm: int) -> None:
        self.length, self.op, self.map, self.modrm = length, op, opmap, modrm
        self.rex, self.opsize, self.imm = rex, opsize, imm
        self.seg = seg  # a segment or rep/bnd prefix: capstone renames some mnemonics


def decode(code: bytes, pos: int) -> Insn:
    """Decode the instruction at code[pos]; _Undecodable if it is not one this module knows."""
    start = pos
    end = len(code)
    opsize = addr32 = seg = False
    while pos < end and code[pos] in _PREFIXES:
        b = code[pos]
        opsize |= b == 0x66
        addr32 |= b == 0x67
        seg |= b in _SEG_PREFIXES or b in (0xF2, 0xF3)
        pos += 1
        if pos - start > 4:
            raise _Undecodable
    rex = 0
    if pos < end and 0x40 <= code[pos] <= 0x4F:
        rex = code[pos]
        pos += 1
    if pos >= end:
        raise _Undecodable
    op = code[pos]
    pos += 1
    opmap = 1
    if op == 0x0F:
        if pos >= end:
            raise _Undecodable
        op = code[pos]
        pos += 1
        opmap = 2
        if op in (0x38, 0x3A):  # three-byte maps: ModRM, and imm8 for 0F 3A
            opmap = 3 if op == 0x38 else 4
            pos += 1
            has_modrm, kind = True, (1 if opmap == 4 else 0)
        else:
            has_modrm, kind = _MODRM2[op], _IMM2[op]
    else:
        has_modrm, kind = _MODRM1[op], _IMM1[op]
    if kind < 0:
        raise _Undecodable
    modrm = -1
    if has_modrm:
        if pos >= end:
            raise _Undecodable
        modrm = code[pos]
        pos += 1
        mod, rm = modrm >> 6, modrm & 7
        if mod != 3:
            if rm == 4:
                if pos >= end:
                    raise _Undecodable
                sib = code[pos]
                pos += 1
                if mod == 0 and sib & 7 == 5:
                    pos += 4
            elif mod == 0 and rm == 5:
                pos += 4  # rip-relative (or disp32 with 0x67)
            pos += 1 if mod == 1 else 4 if mod == 2 else 0
        if opmap == 1 and op in (0xF6, 0xF7) and (modrm >> 3) & 7 in (0, 1):
            kind = 1 if op == 0xF6 else 4  # test r/m, imm
    size = {0: 0, 1: 1, 2: 2, 3: 3, 4: 2 if opsize else 4, 5: 4,
            8: 8 if rex & 8 else (2 if opsize else 4), 9: 4 if addr32 else 8}[kind]
    imm_at = pos
    pos += size
    if pos > end:
        raise _Undecodable
    imm = int.from_bytes(code[imm_at:pos], "little", signed=True) if size else 0
    return Insn(pos - start, op, opmap, modrm, rex, opsize, seg, imm)


_PUSH, _POP, _RSP_IMM, _RSP_OTHER, _RET, _JMP, _PUSH_RBP = range(7)


def _stack_effect(i: Insn) -> int | None:
    """Which of the simulation's cases an instruction is (None: no effect on the stack)."""
    op, modrm, rex, m = i.op, i.modrm, i.rex, i.map
    reg = (modrm >> 3) & 7 if modrm >= 0 else -1
    rsp_rm = modrm >= 0 and modrm >> 6 == 3 and modrm & 7 == 4 and not rex & 1
    rsp_reg = reg == 4 and not rex & 4
    w = bool(rex & 8)
    if m == 1:
        if op in (0x9C, 0x9D) and (i.opsize or i.seg):
            raise _Undecodable  # pushf / popf with a 16-bit operand
        if 0x50 <= op <= 0x57 or op in (0x68, 0x6A, 0x9C) or (op == 0xFF and reg == 6):
            if i.seg:
                raise _Undecodable
            if op == 0x55 and not rex & 1 and not i.opsize:
                return _PUSH_RBP
            return _PUSH
        if 0x58 <= op <= 0x5F or op == 0x9D or (op == 0x8F and reg == 0):
            return _POP
        if op in (0x81, 0x83) and reg in (0, 5) and rsp_rm and w:
            return _RSP_IMM
        if w and ((op in (0x01, 0x29) and rsp_rm) or (op in (0x03, 0x2B) and rsp_reg)):
            return _RSP_OTHER  # add/sub rsp, register or memory: not followed
        if op == 0xC9:
            return _RSP_OTHER  # leave
        if w and ((op == 0x89 and rsp_rm) or (op in (0x8B, 0x8D) and rsp_reg)
                  or (op == 0xC7 and reg == 0 and rsp_rm)):
            return _RSP_OTHER  # mov rsp, ... / lea rsp, [...]
        if op in (0xC3, 0xC2):
            if i.seg:
                raise _Undecodable
            return _RET
        if op in (0xE9, 0xEB) or (op == 0xFF and reg == 4):
            if i.seg:
                raise _Undecodable  # "notrack jmp"
            return _JMP
        if i.seg and op == 0xFF:
            raise _Undecodable
    elif m == 2 and op in (0xA0, 0xA8):
        return _PUSH  # push fs / gs
    elif m == 2 and op in (0xA1, 0xA9):
        return _POP
    return None


def _simulate(code: bytes, start: int, ip: int) -> tuple[int, int | None] | None:
    depth = 0
    body_depth = 0
    rbp_at: int | None = None
    pos = 0
    while pos < len(code):
        if start + pos >= ip:
            return depth, rbp_at
        i = decode(code, pos)
        pos += i.length
        kind = _stack_effect(i)
        if kind == _PUSH or kind == _PUSH_RBP:
            depth += 8
            if kind == _PUSH_RBP and rbp_at is None:
                rbp_at = depth
        elif kind == _POP:
            depth -= 8
        elif kind == _RSP_IMM:
            depth += i.imm if (i.modrm >> 3) & 7 == 5 else -i.imm
        elif kind == _RSP_OTHER:
            return None
        elif kind == _RET:
            depth = body_depth  # code after an epilogue runs at the body's depth
            continue
        elif kind == _JMP and depth < body_depth:
            depth = body_depth  # tail call after a partial epilogue
            continue
        if depth < 0:
            return None
        body_depth = max(body_depth, depth)
    raise _Undecodable  # ran out of code: capstone's way of ending is the reference


def prologue_depth(code: bytes, start: int, ip: int) -> tuple[int, int | None] | None:
    """Bytes a function has pushed/allocated on the stack when it reaches `ip`, simulating the
    straight-line instructions from its start (push/pop, sub/add rsp), and where it saved rbp
    (offset below the return address' slot, or None). None if the code cannot be followed."""
    try:
        return _simulate(code, start, ip)
    except _Undecodable:
        return prologue_depth_capstone(code, start, ip)


def prologue_depth_capstone(code: bytes, start: int, ip: int) -> tuple[int, int | None] | None:
    """prologue_depth by capstone's disassembly (the reference, and the fallback)."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.skipdata = True
    depth = 0
    body_depth = 0
    rbp_at: int | None = None
    for ins in md.disasm(code, start):
        if ins.address >= ip:
            return depth, rbp_at
        mnem, ops = ins.mnemonic, ins.op_str.replace(" ", "")
        if mnem == "push" or mnem == "pushfq":
            depth += 8
            if ops == "rbp" and rbp_at is None:
                rbp_at = depth
        elif mnem == "pop" or mnem == "popfq":
            depth -= 8
        elif mnem in ("sub", "add") and ops.startswith("rsp,"):
            try:
                imm = int(ops[4:], 0)
            except ValueError:
                return None
            depth += imm if mnem == "sub" else -imm
        elif mnem in ("leave", "ret") or (mnem == "mov" and ops.startswith("rsp,")) or (
                mnem == "lea" and ops.startswith("rsp,")):
            if mnem == "ret":
                depth = body_depth  # code after an epilogue runs at the body's depth
                continue
            return None
        elif mnem == "jmp" and depth < body_depth:
            depth = body_depth  # tail call after a partial epilogue
            continue
        if depth < 0:
            return None
        body_depth = max(body_depth, depth)
    return None
