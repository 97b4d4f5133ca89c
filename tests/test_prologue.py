"""The hand decoder of function prologues (crashtui.kernel.prologue) gives what capstone's
disassembly gave: instruction lengths over real kernel text, the stack depth at every
instruction of real functions, and the unwinder's fallback frames on the samples; and a
backtrace imports no disassembler."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import capstone
import pytest
from conftest import ROOT, dump_of

import crashtui.kernel.unwind as unwind
from crashtui.cli import main
from crashtui.errors import CrashtuiError
from crashtui.kernel.program import Kernel
from crashtui.kernel.prologue import (
    _Undecodable,
    decode,
    prologue_depth,
    prologue_depth_capstone,
)

X86 = ["5.10-sysrq", "6.1-sysrq", "6.12-sysrq", "7.3-sysrq"]


def _functions(k: Kernel, every: int) -> list[tuple[int, bytes]]:
    """(address, code) of every `every`-th sized function of the vmlinux, read from the dump."""
    vm = k.vmlinux
    assert vm is not None
    out = []
    funcs = [s for s in vm.symbols if s.kind == "func" and 8 <= s.size <= 4096]
    for sym in funcs[::every]:
        try:
            addr = k.symbol(sym.name)
            out.append((addr, k.read(addr, min(sym.size, 400))))
        except CrashtuiError:
            continue
    return out


@pytest.mark.parametrize("name", ["6.1-sysrq", "7.3-sysrq"])
def test_lengths_and_depths_equal_capstone(name: str, vmlinux_for: dict[str, Path]) -> None:
    k = Kernel.open(dump_of(name), vmlinux_for[name])
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    funcs = _functions(k, 60)
    assert len(funcs) > 300
    whole = insns = 0
    for addr, code in funcs:
        pos = 0
        for ins in md.disasm(code, addr):
            try:
                mine = decode(code, pos)
            except _Undecodable:
                break
            assert mine.length == ins.size, (hex(ins.address), ins.mnemonic, ins.op_str)
            pos += ins.size
            insns += 1
        else:
            whole += 1
        # the depth at each of the first 48 instructions, as the unwinder's fallback asks
        for ins in list(md.disasm(code[:240], addr))[:48]:
            assert prologue_depth(code, addr, ins.address) == \
                prologue_depth_capstone(code, addr, ins.address), hex(ins.address)
    assert whole > 0.95 * len(funcs) and insns > 10000


def test_stack_instructions() -> None:
    """Each stack-moving form, against capstone (synthetic bytes: forms rare in the samples)."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cases = ["55", "4155", "6655", "9c", "ff742408", "6a00", "6800010000", "0fa0",
             "4883ec80", "4881ecf0ffffff", "4883c408", "4881c400010000", "4829c4", "4803e0",
             "4889ec", "488be5", "488d6424f8", "c9", "48c7c400000000", "5d", "415f", "9d",
             "8f0424", "0fa9", "4883ed08", "83ec08", "f3c3", "3effe0"]
    for hexcode in cases:
        body = bytes.fromhex("55" + "4883ec20" + hexcode + "90" * 4 + "e900000000" + "90")
        start = 0xFFFFFFFF81000000
        for ins in md.disasm(body, start):
            assert prologue_depth(body, start, ins.address) == \
                prologue_depth_capstone(body, start, ins.address), (hexcode, ins.mnemonic)


@pytest.mark.parametrize("name", X86)
def test_fallback_frames_of_the_samples(name: str, vmlinux_for: dict[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames whose ORC entry is undefined (sysrq's, on every x86 sample)."""
    calls: list[tuple[bytes, int, int, object]] = []
    real = unwind.prologue_depth

    def recording(code: bytes, start: int, ip: int) -> tuple[int, int | None] | None:
        res = real(code, start, ip)
        calls.append((code, start, ip, res))
        return res

    monkeypatch.setattr(unwind, "prologue_depth", recording)
    with contextlib.redirect_stdout(io.StringIO()):
        main([str(dump_of(name)), str(vmlinux_for[name]), "-c", "bt -a"])
    assert calls
    for code, start, ip, res in calls:
        assert res is not None and res == prologue_depth_capstone(code, start, ip)


def test_sys_bt_imports_no_disassembler(vmlinux_for: dict[str, Path]) -> None:
    name = "6.1-sysrq"
    probe = ("import sys\nfrom crashtui.cli import main\n"
             f"main([{str(dump_of(name))!r}, {str(vmlinux_for[name])!r}, '-c', 'sys', '-c', "
             "'bt'])\n"
             "print('HEAVY', sorted(m for m in ('capstone', 'textual', 'pygments') "
             "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert "sysrq_handle_crash" in out
    assert out.splitlines()[-1] == "HEAVY []"
