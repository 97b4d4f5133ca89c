"""arm64 vtop, ptov, kmem ADDR and search -k/-u against crash 9.0.2 (make target=ARM64) on the kdump
sample: outputs recorded by tests/record_crash_arm64.py, one crash session per command.
The walk is the 4-level 4 KiB one (48-bit VAs in use), every entry by its virtual address."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import dump_of, vmlinux_of
from tests.test_robustness_support import cli

NAME = "6.12-arm64-kdump-sysrq"
OUT = Path(__file__).parent / "crash_outputs" / NAME
FILES = ["vtop-text.txt", "vtop-stack.txt", "vtop-task.txt", "vtop-user-sp.txt",
         "vtop-user-text.txt", "ptov.txt", "kmem-task.txt", "search-k.txt", "search-u.txt"]


def recorded(fname: str) -> tuple[str, list[str]]:
    """(the command, crash's lines) of one recording."""
    first, _, rest = (OUT / fname).read_text().partition("\n")
    return first.removeprefix("crash> "), rest.rstrip("\n").split("\n")


@pytest.mark.parametrize("fname", FILES)
def test_equals_crash(fname: str) -> None:
    cmd, theirs = recorded(fname)
    args = [a for c in cmd.split(" ; ") for a in ("-c", c)]
    r = cli(dump_of(NAME), vmlinux_of(NAME), *args)
    assert r.status == 0, r.err
    if fname == "search-k.txt":  # KNOWN-ERRORS.md: crash lists the kernel image's hits twice
        twice = [line for i, line in enumerate(theirs) if line in theirs[:i]]
        assert len(twice) == 6 and all(line.startswith("ffffd72e07") for line in twice)
        theirs = list(dict.fromkeys(theirs))
    assert r.out.rstrip("\n").split("\n") == theirs


def test_a_2mb_block_and_the_user_flags_are_named() -> None:
    """The kernel image is mapped by 2 MiB blocks (PMD level); a user page is USER|NG."""
    assert "  PAGE: 40e00000  (2MB)" in recorded("vtop-text.txt")[1]
    flags = recorded("vtop-user-sp.txt")[1]
    assert any("(VALID|USER|SHARED|AF|NG|PXN|UXN|DIRTY)" in line for line in flags)


def test_lpa2_dump_walks_five_levels() -> None:
    """A 52-bit VA kernel (LPA2, which crash cannot open): PGD, P4D, PUD, PMD, PTE, and the
    physical address the page tables give is the linear map's."""
    dump, vmlinux = dump_of("6.12-arm64-sysrq"), vmlinux_of("6.12-arm64-sysrq")
    task = cli(dump, vmlinux, "-c", "bt").out.split("TASK: ")[1].split()[0]
    out = cli(dump, vmlinux, "-c", f"vtop {task}").out.split("\n")
    levels = [line.split(":")[0].strip() for line in out if line.startswith("   ") and " => " in line]
    assert levels == ["PGD", "P4D", "PUD", "PMD", "PTE"]
    phys = int(out[1].split()[1], 16)
    ptov = cli(dump, vmlinux, "-c", f"ptov {phys:x}").out.split("\n")[1].split()
    assert ptov[0] == task
