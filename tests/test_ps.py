"""ps against crash 8.0.6's output on the real dumps, and with damaged task memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, dump_of

from crashtui.analysis.session import Session
from crashtui.errors import KernelReadError

DUMPS = ["6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module", "5.10-sysrq",
         "6.1-bug-kthread", "6.1-softlockup", "6.1-hung-task"]



def crash_ps(name: str) -> list[str]:
    return (SAMPLES / name / "crash" / "ps.txt").read_text().splitlines()


def crashtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", DUMPS)
def test_ps_text_equals_crash(name: str, vmlinux_for: dict[str, Path]) -> None:
    r = crashtui(str(dump_of(name)), str(vmlinux_for[name]), "-c", "ps")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == crash_ps(name)


@pytest.mark.parametrize("name", DUMPS)
def test_ps_rows_json(name: str, vmlinux_for: dict[str, Path]) -> None:
    from crashtui.commands.ps import ps_rows

    rows = ps_rows(Session.open(dump_of(name), vmlinux_for[name]))
    theirs = crash_ps(name)[1:]
    assert len(rows) == len(theirs)
    for row, line in zip(rows, theirs, strict=True):
        f = line[1:].split()
        assert row["active"] == line.startswith(">")
        assert (row["pid"], row["ppid"], row["cpu"], row["task"], row["state"]) == \
            (int(f[0]), int(f[1]), int(f[2]), f[3], f[4])
        assert (row["mem_percent"], row["vsz_kb"], row["rss_kb"]) == \
            (float(f[5]), int(f[6]), int(f[7]))
        comm = line[69:]
        assert row["kernel_thread"] == comm.startswith("[")
        assert row["comm"] == (comm[1:-1] if row["kernel_thread"] else comm)
    # one running task per CPU
    assert sum(r["active"] for r in rows) == len({r["cpu"] for r in rows if r["pid"] == 0})


def test_ps_filters(vmlinux_for: dict[str, Path]) -> None:
    from crashtui.commands import CommandError, run_command

    name = "6.1-test-module"
    session = Session.open(dump_of(name), vmlinux_for[name])
    theirs = crash_ps(name)
    assert run_command(session, "ps 526") == [theirs[0]] + [
        line for line in theirs if line.split()[-1] == "insmod"]
    kthreads = run_command(session, "ps -k")[1:]
    users = run_command(session, "ps -u")[1:]
    assert all(line.endswith("]") for line in kthreads)
    assert not any(line.endswith("]") for line in users)
    assert len(kthreads) + len(users) == len(theirs) - 1
    assert len(run_command(session, "ps init")) == 1 + sum(
        line.split()[-1] == "init" for line in theirs)
    with pytest.raises(CommandError):
        run_command(session, "ps 99999")
    with pytest.raises(CommandError):
        run_command(session, "ps -z")


def test_ps_with_an_unreadable_mm(vmlinux_for: dict[str, Path],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A task whose mm_struct is gone shows zeros and a `ps:` line; the others are intact."""
    from crashtui.commands import run_command

    name = "6.1-sysrq"
    session = Session.open(dump_of(name), vmlinux_for[name])
    victim = next(t for t in session.tasks.tasks if t.comm == "dd")
    k = session.kernel
    real = k.read
    end = victim.mm + k.sizeof("struct mm_struct")

    def read(addr: int, size: int) -> bytes:
        if victim.mm <= addr < end:
            raise KernelReadError(f"cannot read {addr:#x}", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    out = run_command(session, "ps")
    theirs = crash_ps(name)
    assert out[-1].startswith(f"ps: PID {victim.pid} ")
    mine = out[:-1]
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        if b.split()[-1] == "dd":
            assert a.split()[-4:] == ["0.0", "0", "0", "dd"]
        else:
            assert a == b
