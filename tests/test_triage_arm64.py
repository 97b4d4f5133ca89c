"""arm64 triage on real arm64 oopses (QEMU virt, Debian 6.12 cloud-arm64): the culprit is the
oops's own `pc :` (not panic's udelay spin), the kind and address come from the arm64 fault
line, a BUG() (BRK) is found in the module's __bug_table; checked against the console."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SAMPLES, dump_of, vmlinux_of
from tests.test_robustness_support import cli


def console_line(name: str, pattern: str) -> re.Match[str]:
    text = next((SAMPLES / name).glob("console.*")).read_text(errors="replace")
    m = re.search(pattern, text, re.M)
    assert m is not None, pattern
    return m


def triage(name: str, modules: str) -> dict[str, str]:
    r = cli(dump_of(name), vmlinux_of(name), "--modules", SAMPLES / name / modules,
            "-c", "triage")
    assert r.status == 0, r.err
    return dict(line.split(": ", 1) for line in r.out.splitlines() if ": " in line)


@pytest.mark.parametrize(("name", "modules", "kind"), [
    ("6.12-arm64-test-module", "test-module", "null-pointer-dereference"),
    ("6.12-arm64-bug-kthread", "bug-kthread", "bug"),
])
def test_culprit_is_the_oops_pc(name: str, modules: str, kind: str) -> None:
    t = triage(name, modules)
    pc = console_line(name, r"\] pc : (\S+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(\w+)\]")
    assert t["CULPRIT"].startswith(f"{pc.group(1)}+{pc.group(2)} [{pc.group(3)}]")
    assert t["KIND"].endswith(f"({kind})")
    assert "__delay" not in t["SIGNATURE"] and "el1_" not in t["SIGNATURE"]


def test_null_pointer_address_from_the_arm64_fault_line() -> None:
    t = triage("6.12-arm64-test-module", "test-module")
    m = console_line("6.12-arm64-test-module",
                     r"Unable to handle kernel NULL pointer dereference at virtual address "
                     r"([0-9a-f]+)")
    assert int(t["ADDRESS"], 16) == int(m.group(1), 16)
    assert t["EVENT"] == m.group(0)
    assert "test-module.c:" in t["CULPRIT"]


def test_bug_site_from_the_module_bug_table() -> None:
    t = triage("6.12-arm64-bug-kthread", "bug-kthread")
    m = console_line("6.12-arm64-bug-kthread", r"kernel BUG at (\S+):(\d+)!")
    assert t["BUG SITE"] == f"{m.group(1)}:{m.group(2)}"


def test_triage_without_the_vmlinux() -> None:
    """kallsyms and BTF from the dump alone: the same culprit, kind and BUG site."""
    name = "6.12-arm64-bug-kthread"
    r = cli(dump_of(name), "-c", "triage")
    assert r.status == 0, r.err
    t = dict(line.split(": ", 1) for line in r.out.splitlines() if ": " in line)
    pc = console_line(name, r"\] pc : (\S+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(\w+)\]")
    assert t["CULPRIT"] == f"{pc.group(1)}+{pc.group(2)} [{pc.group(3)}]"
    assert t["KIND"].endswith("(bug)")
    m = console_line(name, r"kernel BUG at (\S+):(\d+)!")
    assert t["BUG SITE"] == f"{m.group(1)}:{m.group(2)}"


def test_data_abort_decoded_like_the_kernels_own_report() -> None:
    """The ESR decode says what mem_abort_decode printed (FSC, WnR); the faulting load and
    the register that held the address agree with `dis` and the oops's register dump."""
    name = "6.12-arm64-test-module"
    t = triage(name, "test-module")
    esr = console_line(name, r"ESR = 0x([0-9a-f]+)")
    fsc = console_line(name, r"FSC = 0x[0-9a-f]+: (.+)$")
    wnr = console_line(name, r"WnR = (\d)")
    access = "write" if wnr.group(1) == "1" else "read"
    assert t["PAGE FAULT"] == (f"{access} access in kernel mode, {fsc.group(1).strip()} "
                               f"(ESR {int(esr.group(1), 16):#x}: data abort (current EL))")
    address = t["INSTRUCTION"].split(": ", 1)[0]
    dis = cli(dump_of(name), vmlinux_of(name), "--modules", SAMPLES / name / "test-module",
              "-c", f"dis {address} 1")
    assert dis.status == 0, dis.err
    pc = console_line(name, r"\] pc : (\S+)\+(0x[0-9a-f]+)/")
    assert f"<{pc.group(1)}+{int(pc.group(2), 16)}>" in dis.out  # the oops's pc : line
    insn = dis.out.split(":\t", 1)[1].strip()
    # e.g. "ldr w1, [x1]": dis's "ldr\tw1, [x1]", the tab a space
    assert t["INSTRUCTION"].split(": ", 1)[1] == insn.replace("\t", " ")
    reg = re.search(r"\[(x\d+)\]", insn)
    assert reg is not None
    value = console_line(name, rf"\b{reg.group(1)} ?: ([0-9a-f]{{16}})")
    assert t["BAD REGISTER"] == f"{reg.group(1).upper()} = {int(value.group(1), 16):#x}"


def test_a_brk_is_no_page_fault() -> None:
    t = triage("6.12-arm64-bug-kthread", "bug-kthread")
    assert "PAGE FAULT" not in t
    assert t["INSTRUCTION"].split(": ", 1)[1].startswith("brk")


def test_stack_overflow_blames_the_recursion_not_memset() -> None:
    """The overflow faulted in memset (filling the deepest buffer): the culprit is the
    function the console's call trace shows recursing."""
    name = "6.12-arm64-stack-overflow"
    text = next((SAMPLES / name).glob("console.*")).read_text(errors="replace")
    calls = re.findall(r"\]\s+(\w+)\+0x[0-9a-f]+/0x[0-9a-f]+ \[stack_overflow\]", text)
    assert calls and max(set(calls), key=calls.count) == "stack_overflow_recurse"
    t = triage(name, "stack-overflow")
    assert t["KIND"].endswith("(stack-overflow)")
    assert t["CULPRIT"].startswith("stack_overflow_recurse+") and "[stack_overflow]" in t["CULPRIT"]
    assert "memset" not in t["SIGNATURE"]
