"""kmem -z, kmem -f, sig and irq -s against crash 8.0.6 (5.10, 6.1, 6.12) and drgn (7.3).

crash's outputs are recorded by tests/record_crash_zones.py into tests/crash_outputs/<dump>/
and must be equal line by line; drgn's port of crash (tests/record_drgn_zones.py, files
drgn-*.txt) prints other columns, so on the 7.3 dumps the values are compared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
CRASH_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/kmem-z.txt")
                           if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
DRGN_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/drgn-kmem-z.txt")
                          if (SAMPLES / p.parent.name / "MANIFEST").is_file()))




def recorded(name: str, file: str) -> list[str]:
    return (OUTPUTS / name / file).read_text().rstrip("\n").split("\n")


def pid_of(name: str) -> str:
    return (OUTPUTS / name / "zones-PID").read_text().strip()


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


COMMANDS = [("kmem-z.txt", "kmem -z"), ("kmem-f.txt", "kmem -f"), ("sig.txt", "sig"),
            ("sig-1.txt", "sig 1"), ("sig-pid.txt", "sig {PID}"), ("irq-s.txt", "irq -s")]


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), COMMANDS)
def test_equals_crash(sessions: dict[str, Session], name: str, file: str, cmd: str) -> None:
    line = cmd.format(PID=pid_of(name))
    a, b = mine(sessions[name], line), recorded(name, file)
    assert a == b, f"{name}: {line}: " + first_difference(a, b)


def test_sig_pending_queue_equals_crash(sessions: dict[str, Session]) -> None:
    """6.1-sysrq PID 128 has SIGCHLD queued on its shared pending list (SIGPENDING: yes):
    the queue walk and its siginfo address, as crash prints them."""
    name = "6.1-sysrq"
    pid = (OUTPUTS / name / "zones-PENDING").read_text().strip()
    a, b = mine(sessions[name], f"sig {pid}"), recorded(name, "sig-pending.txt")
    assert "              17  ffff8af3e33f39c8" in b and "SIGPENDING: yes" in b
    assert a == b, first_difference(a, b)


def test_kmem_f_counts_every_free_page(sessions: dict[str, Session]) -> None:
    """The free-list walk agrees with the kernel's own NR_FREE_PAGES counters (crash's
    '(verified)'), and the per-order pages are blocks << order."""
    out = run_command(sessions["6.1-sysrq"], "kmem -f")
    assert out[-1] == "nr_free_pages: 165626  (verified)"
    rows = [r.split() for r in out if re.match(r"^\s*\d+\s+\d+k\s+[0-9a-f]{16}", r)]
    assert len(rows) == 2 * 11 * 5  # DMA and DMA32, MAX_ORDER 11, 5 migrate types
    assert all(int(r[4]) == int(r[3]) << int(r[0]) for r in rows)
    assert sum(int(r[4]) for r in rows) == 165626


def test_kmem_options_refused(sessions: dict[str, Session]) -> None:
    with pytest.raises(CommandError, match="-z takes no argument"):
        run_command(sessions["6.1-sysrq"], "kmem -z 1")
    with pytest.raises(CommandError, match="invalid task or pid"):
        run_command(sessions["6.1-sysrq"], "sig 999999")


# -- 7.3: values against drgn's port ------------------------------------------------------------

def _zones(lines: list[str]) -> dict[str, tuple[str, dict[str, int]]]:
    """{zone header: (size line, {vm_stat item: value})} of a kmem -z output (either tool)."""
    out: dict[str, tuple[str, dict[str, int]]] = {}
    head = ""
    for line in lines:
        if line.startswith("NODE:"):
            head = line
            out[head] = ("", {})
        elif line.startswith("  SIZE:") or line.startswith("  [unpopulated]"):
            out[head] = (line.strip(), out[head][1])
        elif m := re.match(r"^\s*(NR_\w+):?\s+(-?\d+)$", line):
            out[head][1][m.group(1)] = int(m.group(2))
    return out


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_z_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Same zones, sizes, watermarks and vm_stat values as drgn (which also lists the alias
    NR_ZONE_LRU_BASE that crash drops)."""
    a = _zones(mine(sessions[name], "kmem -z"))
    b = _zones(recorded(name, "drgn-kmem-z.txt"))
    assert a.keys() == b.keys() and len(a) >= 4
    for head in a:
        assert a[head][0] == b[head][0], head
        assert a[head][1].items() <= b[head][1].items(), head
    assert any(stats.get("NR_FREE_PAGES") for _s, stats in a.values())


FREE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)k\s+(?:[A-Z]+\s+)?([0-9a-f]{16})\s+(\d+)\s+(\d+)$")


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_f_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Every free list (by its list head's address): the same blocks and pages as drgn, and
    the total is verified against the kernel's NR_FREE_PAGES in both."""
    out = mine(sessions[name], "kmem -f")
    theirs = recorded(name, "drgn-kmem-f.txt")
    a = {m.group(3): m.groups() for m in map(FREE_ROW.match, out) if m}
    b = {m.group(3): m.groups() for m in map(FREE_ROW.match, theirs) if m}
    assert len(a) > 100 and a == b
    assert out[-1] == theirs[-1] and out[-1].endswith("(verified)")


def _sig_values(lines: list[str]) -> list[tuple[str, ...]]:
    out = []
    for line in lines:
        if m := re.match(r"^\s*\[(\d+)\]\s+([0-9a-f]+)\s+(\S+)\s+([0-9a-f]{16})\s+([0-9a-f]+)",
                         line):
            out.append(m.groups())
        elif m := re.match(r"^\s*(SIGNAL_STRUCT|BLOCKED|SIGNAL|SIGQUEUE):\s*(\S+)", line):
            out.append(m.groups())
    return out


@pytest.mark.parametrize("name", DRGN_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), [("drgn-sig-1.txt", "sig 1"),
                                           ("drgn-sig-pid.txt", "sig {PID}")])
def test_sig_7x_equals_drgn(sessions: dict[str, Session], name: str, file: str,
                            cmd: str) -> None:
    """Handlers, masks and flags of the 64 signals, blocked and pending sets as drgn reads
    them (drgn prints no SIGPENDING line)."""
    a = _sig_values(mine(sessions[name], cmd.format(PID=pid_of(name))))
    b = _sig_values(recorded(name, file))
    assert len([x for x in a if x[0].isdigit()]) == 64 and a == b


def _irq_rows(lines: list[str], ncpu: int) -> list[tuple[int, tuple[int, ...], str, str]]:
    """(irq, counts, chip, handler names) of each irq -s row (crash's chip-flow or drgn's chip)."""
    out = []
    for line in lines[1:]:
        f = line.split()
        out.append((int(f[0].rstrip(":")), tuple(int(x) for x in f[1:1 + ncpu]),
                    f[1 + ncpu], f[-1]))
    return out


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_irq_s_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """Same IRQs, counts per CPU, chips and handlers as drgn (7.2+: total_nr_irqs, the
    sparse_irqs maple tree); crash adds the flow name to the chip (IO-APIC-edge)."""
    a, b = mine(sessions[name], "irq -s"), recorded(name, "drgn-irq-s.txt")
    assert a[0].split() == b[0].split()
    ncpu = len(a[0].split())
    rows, theirs = _irq_rows(a, ncpu), _irq_rows(b, ncpu)
    assert len(rows) >= 5 and sum(sum(r[1]) for r in rows) > 0
    assert [(r[0], r[1], r[3]) for r in rows] == [(t[0], t[1], t[3]) for t in theirs]
    assert all(r[2].startswith(t[2] + "-") for r, t in zip(rows, theirs, strict=True))


def test_irq_s_cpu_choice(sessions: dict[str, Session]) -> None:
    out = run_command(sessions["6.1-sysrq"], "irq -s -c 1,3")
    assert out[0] == "           CPU1       CPU3 "
    assert out[1] == "  0:          0          0  IO-APIC-edge     timer"
    with pytest.raises(CommandError, match="usage"):
        run_command(sessions["6.1-sysrq"], "irq -a 1")
