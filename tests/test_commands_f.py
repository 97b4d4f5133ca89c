"""kmem -g/-p/-F/-f ADDRESS, irq (table, -u, -a, -b), sig -g and foreach's selectors with
sig/net/ps/bt against crash 8.0.6 (5.10, 6.1, 6.12) and drgn's port (7.3).

crash's outputs are recorded by tests/record_crash_f.py into tests/crash_outputs/<dump>/f-*.txt
and must be equal line by line (`kmem -p`: every 256th line and the line count); drgn's
(tests/record_drgn_f.py, drgn-f-*.txt) print other columns, so on 7.3 the values are compared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from record_crash_f import COMMANDS as RECORDED

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
CRASH_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/f-irq.txt")
                           if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
DRGN_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/drgn-f-irq.txt")
                          if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
EVERY = 256

# the recorder's commands but the two with tests of their own (every 256th line of kmem -p;
# foreach active bt by blocks)
COMMANDS = [c for c in RECORDED
            if c[0] not in ("f-kmem-p-every256.txt", "f-foreach-active-bt.txt")]


def recorded(name: str, file: str) -> list[str]:
    text = (OUTPUTS / name / file).read_text().rstrip("\n")
    return text.split("\n") if text else []


def where(name: str) -> dict[str, str]:
    lines = (OUTPUTS / name / "f-ADDRESSES").read_text().split()
    return dict(line.split("=", 1) for line in lines)


def mine(session: Session, cmd: str) -> list[str]:
    out = run_command(session, cmd)
    while out and out[-1] == "":  # the recorder strips crash's trailing blank lines
        out.pop()
    return out


def first_difference(a: list[str], b: list[str]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    return (f"first difference at line {i}: mine {a[i] if i < len(a) else None!r}, "
            f"reference {b[i] if i < len(b) else None!r}")


def test_recorded_where_expected() -> None:
    assert {"5.10-sysrq", "6.1-sysrq", "6.12-sysrq"} <= set(CRASH_DUMPS)
    assert {"7.3-sysrq", "7.3-softlockup"} <= set(DRGN_DUMPS)


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), COMMANDS)
def test_equals_crash(sessions: dict[str, Session], name: str, file: str, cmd: str) -> None:
    line = cmd.format(**where(name))
    a, b = mine(sessions[name], line), recorded(name, file)
    assert a == b, f"{name}: {line}: " + first_difference(a, b)


@pytest.mark.parametrize("name", CRASH_DUMPS)
def test_kmem_p_equals_crash(sessions: dict[str, Session], name: str) -> None:
    """Every struct page of every present section: crash's line count, and every 256th
    line equal (the whole output is 19 MB on a 1 GiB guest)."""
    out = mine(sessions[name], "kmem -p")
    ref = recorded(name, "f-kmem-p-every256.txt")
    assert ref[-1] == f"lines: {len(out)}"
    a = out[:1] + out[1::EVERY]
    assert a == ref[:-1], first_difference(a, ref[:-1])


@pytest.mark.parametrize("name", CRASH_DUMPS)
def test_foreach_active_bt_selects_as_crash(sessions: dict[str, Session], name: str) -> None:
    """`foreach active bt`: crash's tasks (its PID/TASK headers, in its order), each with the
    block `foreach bt` prints for it (bt's own equality with crash, and where crash is wrong,
    is tests/test_bt.py's)."""
    out = mine(sessions[name], "foreach active bt")
    ref = recorded(name, "f-foreach-active-bt.txt")
    assert [x for x in out if x.startswith("PID:")] == [x for x in ref if x.startswith("PID:")]
    every = "\n".join(mine(sessions[name], "foreach bt")).split("\n\n")
    heads = {x for x in ref if x.startswith("PID:")}
    assert "\n".join(out).split("\n\n") == [b for b in every if b.split("\n")[0] in heads]


def test_kmem_f_address_finds_its_block(sessions: dict[str, Session]) -> None:
    """A page inside a free block names the block's first page and its place in it; a page in
    use (the panic task's) is in no block: nothing printed, as crash does."""
    w = where("6.1-sysrq")
    out = mine(sessions["6.1-sysrq"], f"kmem -f {w['FREEKV']}")
    assert out[-1] == f"{w['FREE']}  ({w['FREEKV']} is 3rd of 32 pages)"
    assert run_command(sessions["6.1-sysrq"], f"kmem -f {w['TASK']}") == []


def test_bad_arguments_are_one_line(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    for line, message in (("kmem -F 1", "no address arguments"), ("kmem -g zz", "invalid"),
                          ("kmem -p xyz", "invalid address"), ("irq -a 1", "usage"),
                          ("irq x", "invalid IRQ"), ("sig -q", "unsupported option"),
                          ("foreach 'bad[' ps", "regular expression"),
                          ("foreach sig -x", "not supported"), ("foreach vtop 1", "supported")):
        with pytest.raises(CommandError, match=message):
            run_command(s, line)


def test_irq_numbers_past_nr_irqs(sessions: dict[str, Session]) -> None:
    out = run_command(sessions["6.1-sysrq"], "irq 1 99999")
    assert out[-1] == "irq: invalid IRQ value: 99999" and out[1].startswith("  1   ")


# -- 7.3: values against drgn's port ------------------------------------------------------------

IRQ_ROW = re.compile(r"^\s*(\d+)\s+([0-9a-f]{16}|\(unused\))\s+([0-9a-f]{16}|\(unused\))"
                     r"\s*(\"[^\"]*\")?\s*$")


def _irq_rows(lines: list[str]) -> list[tuple[str, ...]]:
    return [tuple(m.groups()) for m in map(IRQ_ROW.match, lines) if m]


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_irq_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Every IRQ below nr_irqs (7.2's total_nr_irqs), its descriptor from the sparse_irqs
    maple tree, its irqaction and name, as drgn reads them."""
    a = _irq_rows(mine(sessions[name], "irq"))
    b = _irq_rows(recorded(name, "drgn-f-irq.txt"))
    assert len(a) > 16 and sum(r[3] is not None for r in a) >= 5
    assert a == [(r[0], r[1], r[2], r[3]) for r in b]


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_irq_a_b_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Handler names and affinity lists; the softirq vector's handlers."""
    a = [line.split() for line in mine(sessions[name], "irq -a")[1:]]
    b = [line.split() for line in recorded(name, "drgn-f-irq-a.txt")[1:]]
    assert len(a) >= 5 and a == b
    a = [line.split() for line in mine(sessions[name], "irq -b")[1:]]
    b = [line.split() for line in recorded(name, "drgn-f-irq-b.txt")[1:]]
    assert len(a) == 10 and a == b


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_irq_d_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """The IDT's 256 handlers by symbol+offset (drgn prints crash's format)."""
    a, b = mine(sessions[name], "irq -d"), recorded(name, "drgn-f-irq-d.txt")
    assert len(a) == 256 and a == b


@pytest.mark.parametrize("name", DRGN_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), [("drgn-f-kmem-g.txt", "kmem -g"),
                                           ("drgn-f-kmem-g-flags.txt", "kmem -g 10600")])
def test_kmem_g_7x_equals_drgn(sessions: dict[str, Session], name: str, file: str,
                               cmd: str) -> None:
    """enum pageflags as BTF has it on 7.3 (PG_writeback is bit 1 there), aliases too."""
    def rows(lines: list[str]) -> list[tuple[str, ...]]:
        return [tuple(line.split()) for line in lines if line.strip().startswith("PG_")]
    a, b = rows(mine(sessions[name], cmd)), rows(recorded(name, file))
    assert len(a) >= 3 and a == b


def _free_lists(lines: list[str]) -> dict[str, list[str]]:
    """{free list head: [first page of each block]} of a kmem -F output (either tool)."""
    out: dict[str, list[str]] = {}
    head = None
    for line in lines:
        if m := re.match(r"^\s*\d+\s+\d+k\s+(?:[A-Z]+\s+)?([0-9a-f]{16})\s*$", line):
            head = m.group(1)
            out[head] = []
        elif re.fullmatch(r"[0-9a-f]{16}", line) and head is not None:
            out[head].append(line)
        elif not line.strip() or line.startswith(("ZONE", "ORDER", "AREA")):
            continue
        else:
            head = None
    return out


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_F_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Every free list's blocks, in list order, as drgn walks them; the total verified."""
    out = mine(sessions[name], "kmem -F")
    theirs = recorded(name, "drgn-f-kmem-F.txt")
    a, b = _free_lists(out), _free_lists(theirs)
    assert len(a) > 100 and sum(map(len, a.values())) > 50 and a == b
    assert out[-1] == theirs[-1] and out[-1].endswith("(verified)")
    free = where(name)["FREE"]
    found = mine(sessions[name], f"kmem -f {free}")
    assert found[-1] == f"{free}  ({free} is 1st of {1 << int(found[-2].split()[0])} pages)"


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_p_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """The struct page fields of a free page and of the task_struct's page."""
    w = where(name)

    def rows(lines: list[str]) -> dict[str, list[str]]:
        return {f[0]: f[1:6] for f in (line.split() for line in lines)
                if f and re.fullmatch(r"[0-9a-f]{16}", f[0])}
    a = rows(mine(sessions[name], f"kmem -p {w['FREE']} {w['TASK']}"))
    b = rows(recorded(name, "drgn-f-kmem-p-addrs.txt"))
    assert len(a) == 2 and a == b


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_sig_g_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    def values(lines: list[str]) -> list[tuple[str, ...]]:
        out = []
        for line in lines:
            if m := re.match(r"^\s*\[(\d+)\]\s+([0-9a-f]+)\s+(\S+)\s+([0-9a-f]{16})\s+"
                             r"([0-9a-f]+)", line):
                out.append(m.groups())
            elif m := re.match(r"^\s*(SIGNAL_STRUCT|BLOCKED|SIGNAL|SIGQUEUE|PID):\s*(\S+)",
                               line):
                out.append(m.groups())
        return out
    a = values(mine(sessions[name], f"sig -g {where(name)['PID']}"))
    b = values(recorded(name, "drgn-f-sig-g.txt"))
    assert len(a) > 64 and a == b


@pytest.mark.parametrize("name", DRGN_DUMPS)
@pytest.mark.parametrize("which", ["user", "kernel", "active"])
def test_foreach_selectors_7x_equal_drgn(sessions: dict[str, Session], name: str,
                                         which: str) -> None:
    """The same tasks (PID, task address) selected as drgn's foreach selects them."""
    def tasks(lines: list[str]) -> list[tuple[str, str]]:
        return [(f[0], f[3]) for f in (line.lstrip(">").split() for line in lines[1:]) if f]
    a = tasks(mine(sessions[name], f"foreach {which} ps"))
    b = tasks(recorded(name, f"drgn-f-foreach-{which}-ps.txt"))
    assert a and a == b
