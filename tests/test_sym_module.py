"""`sym NAME` finds a loaded module's symbol (its symtab in memory), on x86-64 and arm64."""

from __future__ import annotations

import re

from tests.conftest import SAMPLES, dump_of, vmlinux_of
from tests.test_robustness_support import cli


def test_sym_module_function_on_x86() -> None:
    # crash: `sym <RIP>` = _MODULE_INIT_START_test_module+5; the oops: test_module_init+0x5
    rip = int((SAMPLES / "6.1-test-module" / "crash" / "sym-rip.txt").read_text().split()[0], 16)
    r = cli(dump_of("6.1-test-module"), vmlinux_of("6.1-test-module"), "-c",
            "sym test_module_init")
    assert r.status == 0, r.err
    assert r.out.split() == [f"{rip - 5:x}", "(m)", "test_module_init", "[test_module]"]


def test_sym_module_function_on_arm64_with_its_line() -> None:
    name = "6.12-arm64-test-module"
    console = next((SAMPLES / name).glob("console.*")).read_text(errors="replace")
    m = re.search(r"\] pc : test_module_init\+(0x[0-9a-f]+)/", console)
    assert m is not None
    args = (dump_of(name), vmlinux_of(name), "--modules", SAMPLES / name / "test-module")
    by_name = cli(*args, "-c", "sym test_module_init")
    assert by_name.status == 0, by_name.err
    start = int(by_name.out.split()[0], 16)
    by_addr = cli(*args, "-c", f"sym {start + int(m.group(1), 16):x}")
    assert f"test_module_init+{int(m.group(1), 16)} [test_module]" in by_addr.out
    assert by_name.out.split()[1:4] == ["(m)", "test_module_init", "[test_module]"]
    assert "test-module.c:" in by_name.out.replace(": ", ":")
    assert cli(*args, "-c", "sym no_such_symbol_anywhere").status != 0


def test_dis_symbol_plus_offset() -> None:
    """`dis NAME+OFFSET` (decimal as crash prints it, or 0x) is the address's instruction."""
    name = "6.12-arm64-test-module"
    args = (dump_of(name), vmlinux_of(name), "--modules", SAMPLES / name / "test-module")
    start = int(cli(*args, "-c", "sym test_module_init").out.split()[0], 16)
    want = cli(*args, "-c", f"dis {start + 28:x} 2")
    assert want.status == 0 and "<test_module_init+28>" in want.out
    assert cli(*args, "-c", "dis test_module_init+28 2").out == want.out
    assert cli(*args, "-c", "dis test_module_init+0x1c 2").out == want.out
    bad = cli(*args, "-c", "dis test_module_init+x 1")
    assert bad.status != 0 and "bad offset" in bad.err
