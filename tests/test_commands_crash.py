"""struct, union, p, rd and bt -f against crash 8.0.6's output on the four sample dumps.

The reference files are recorded by sample-dumps/record-crash-commands (its COMMANDS table
is the list compared here, addresses from each dump's crash/COMMANDS-ADDRESSES). Outputs
must be equal line by line, trailing spaces included; the only normalisations are:
- `$N` value-history numbers (crash ran all commands in one session, each test runs one);
- bt -f, where crash's bt is wrong (see test_bt.py and the dumps' KNOWN-ERRORS.md): the
  module RIP named after a layout marker, the marker frame crash invents on 6.12-test-module,
  and the panic frame crash drops on 6.12-sysrq. bt -f is compared as the sequence of frames
  and of (address, word) stack words, so a frame crash dropped only regroups the words.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, command_names, run_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
DUMPS = ("6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module")


def _recorder() -> ModuleType:
    path = SAMPLES / "record-crash-commands"
    loader = importlib.machinery.SourceFileLoader("record_crash_commands", str(path))
    spec = importlib.util.spec_from_loader("record_crash_commands", loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


COMMANDS: tuple[tuple[str, str], ...] = _recorder().COMMANDS


def addresses(name: str) -> dict[str, str]:
    text = (SAMPLES / name / "crash" / "COMMANDS-ADDRESSES").read_text()
    return dict(line.split("=", 1) for line in text.split())


def crash_lines(name: str, file: str) -> list[str]:
    return (SAMPLES / name / "crash" / file).read_text().rstrip("\n").split("\n")


@pytest.fixture(scope="module")
def vmlinux_612() -> Path:
    from tests.conftest import fetch_vmlinux

    try:
        return fetch_vmlinux(SAMPLES / "6.12-sysrq" / "MANIFEST")
    except Exception as exc:  # noqa: BLE001 - unavailable means skip, with the reason
        pytest.skip(f"6.12 debug vmlinux unavailable: {exc}")


@pytest.fixture(scope="module")
def sessions(vmlinux_path: Path) -> Iterator[dict[str, Session]]:
    out = {name: Session.open(next((SAMPLES / name).glob("dump.*")), vmlinux_path)
           for name in DUMPS[:2]}
    yield out
    for s in out.values():
        s.close()


@pytest.fixture(scope="module")
def sessions_612(vmlinux_612: Path) -> Iterator[dict[str, Session]]:
    out = {name: Session.open(next((SAMPLES / name).glob("dump.*")), vmlinux_612)
           for name in DUMPS[2:]}
    yield out
    for s in out.values():
        s.close()


def session_for(name: str, request: pytest.FixtureRequest) -> Session:
    group = "sessions" if name.startswith("6.1-") else "sessions_612"
    return request.getfixturevalue(group)[name]  # type: ignore[no-any-return]


def history_free(lines: list[str]) -> list[str]:
    return [re.sub(r"\$\d+ = ", "$N = ", line) for line in lines]


CASES = [(d, f, c) for d in DUMPS for f, c in COMMANDS if f != "bt-f.txt"]


@pytest.mark.parametrize(("name", "file", "cmd"), CASES,
                         ids=[f"{d}:{f}" for d, f, _ in CASES])
def test_command_equals_crash(name: str, file: str, cmd: str,
                              request: pytest.FixtureRequest) -> None:
    session = session_for(name, request)
    line = cmd.format(**addresses(name))
    mine = history_free(run_command(session, line))
    theirs = history_free(crash_lines(name, file))
    assert mine == theirs, f"{line}: first difference at line " + str(
        next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
             min(len(mine), len(theirs))))


WORD_RE = re.compile(r"^    ([0-9a-f]+): ((?:[0-9a-f]{16} )+)$")
FRAME_RE = re.compile(r"^ ?#\d+ \[([0-9a-f]+)\] (\S+) at ([0-9a-f]+)(.*)$")


def bt_f_tokens(lines: list[str]) -> list[tuple[str, ...]]:
    """Frames without their numbers, stack words one by one, every other line as is."""
    out: list[tuple[str, ...]] = []
    for line in lines:
        w = WORD_RE.match(line)
        f = FRAME_RE.match(line)
        if w:
            addr = int(w.group(1), 16)
            out += [("word", f"{addr + 8 * i:x}", v) for i, v in enumerate(w.group(2).split())]
        elif f:
            out.append(("frame", *f.groups()))
        else:
            out.append(("line", line))
    return out


def crash_bt_f_fixed(name: str) -> list[tuple[str, ...]]:
    """crash's bt -f with its known errors put right (module docstring)."""
    lines = [line.replace("_MODULE_INIT_START_test_module+5", "test_module_init+5")
             .replace("_MODULE_INIT_TEXT_START_test_module+25", "test_module_init+9")
             for line in crash_lines(name, "bt-f.txt")]
    return [t for t in bt_f_tokens(lines)
            if not (t[0] == "frame" and t[2].startswith("_MODULE_INIT_TEXT_START_"))]


@pytest.mark.parametrize("name", DUMPS)
def test_bt_f_equals_crash(name: str, request: pytest.FixtureRequest) -> None:
    session = session_for(name, request)
    mine = run_command(session, "bt -f")
    numbers = [int(m.group(1)) for line in mine if (m := re.match(r"^ ?#(\d+) ", line))]
    assert numbers == list(range(len(numbers)))
    tokens = bt_f_tokens(mine)
    if name == "6.12-sysrq":  # crash drops panic(), whose last instruction calls vpanic()
        assert sum(1 for t in tokens if t[0] == "frame" and t[2] == "panic") == 1
        tokens = [t for t in tokens if not (t[0] == "frame" and t[2] == "panic")]
    assert tokens == crash_bt_f_fixed(name)


def test_bt_f_words_span_the_frames(sessions: dict[str, Session]) -> None:
    """Each frame's words run from the slot after the previous frame's up to its own slot,
    whose word is the frame's return address."""
    session = sessions["6.1-sysrq"]
    lines = run_command(session, "bt -f")
    toks = bt_f_tokens(lines)
    frames = [i for i, t in enumerate(toks) if t[0] == "frame"]
    for a, b in zip(frames, frames[1:], strict=False):
        words = [t for t in toks[a + 1:b] if t[0] == "word"]
        assert words[0][1] == f"{int(toks[a][1], 16) + 8:x}"
        assert words[-1][1] == toks[b][1] and words[-1][2] == f"{int(toks[b][3], 16):016x}"


def test_foreach_bt_equals_crash_on_every_task(sessions: dict[str, Session]) -> None:
    """foreach bt covers every task crash shows, in the same order and with the same frames
    (crash's frame quirks on other dumps are test_bt.py's business)."""
    session = sessions["6.1-sysrq"]
    mine = run_command(session, "foreach bt")
    theirs = crash_lines("6.1-sysrq", "foreach-bt.txt")
    heads = [line for line in mine if line.startswith("PID:")]
    assert heads == [line for line in theirs if line.startswith("PID:")]
    assert len(heads) == len(session.tasks.tasks)
    assert mine == theirs


def test_p_counts_like_gdb_value_history(vmlinux_path: Path) -> None:
    """$N goes up by one per p in a session, like crash's (recorded in one session)."""
    name = "6.1-sysrq"
    s = Session.open(next((SAMPLES / name).glob("dump.*")), vmlinux_path)
    try:
        where = addresses(name)
        for file, cmd in COMMANDS:
            if cmd.startswith("p "):
                assert run_command(s, cmd.format(**where)) == crash_lines(name, file)
    finally:
        s.close()


def test_new_commands_are_registered() -> None:
    names = command_names()
    for cmd in ("struct", "union", "p", "rd", "triage", "bt", "foreach", "help"):
        assert cmd in names
    assert "bt -f" not in names


@pytest.mark.parametrize("line", ["struct no_such_struct", "struct task_struct.nope ffffffff81000000",
                                  "p no_such_symbol_anywhere", "rd", "rd zzz", "rd jiffies 0",
                                  "struct", "p", "rd -q jiffies", "p jiffies:1",
                                  "struct list_head 1 0", "struct -o list_head.next ffffffff81000000"])
def test_command_misuse_is_a_command_error(line: str, sessions: dict[str, Session]) -> None:
    with pytest.raises(CommandError):
        run_command(sessions["6.1-sysrq"], line)


def test_unreadable_address_says_seek_error(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    out = run_command(s, "rd 0xffffffffff000000 2")
    assert out == ['rd: seek error: kernel virtual address: ffffffffff000000  '
                   'type: "64-bit KVADDR"']
    out = run_command(s, "struct list_head 0xffffffffff000000")
    assert out[0].startswith("struct: seek error: kernel virtual address: ffffffffff000000")


# what crash 8.0.6 printed for these on 6.1-sysrq (crash glues an error to the units printed
# before it on the same line; crashtui gives it its own line)
RD_EXCLUDED = {
    "rd -p 3e000000 2": ['rd: page excluded: physical address: 3e000000  type: "64-bit PHYSADDR"'],
    "rd -32 -p 3e000000 2": [
        'rd: page excluded: physical address: 3e000000  type: "32-bit PHYSADDR"'],
    "rd -a -p 3e000000": ['rd: page excluded: physical address: 3e000000  type: "ascii"'],
    "rd -p 3dfffff8 4": ['rd: seek error: physical address: 3dfffff8  type: "64-bit PHYSADDR"'],
    "rd ffff8af3fe000000 2": [
        'rd: page excluded: kernel virtual address: ffff8af3fe000000  type: "64-bit KVADDR"'],
    "rd -a ffff8af3fe000000": [
        'rd: page excluded: kernel virtual address: ffff8af3fe000000  type: "ascii"'],
    "rd ffff8af3fdfffff8 4": [
        'rd: seek error: kernel virtual address: ffff8af3fdfffff8  type: "64-bit KVADDR"'],
    "rd -p 1000 4": ["            1000:  0000000000000000 0000000000000000   ................",
                     "            1010:  0000000000000000 0000000000000000   ................"],
    "rd -x -p 1000 3": ["            1000:  0000000000000000 0000000000000000 ",
                        "            1010:  0000000000000000 "],
    "rd -8 -p 1000 20": [
        "            1000:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   ................",
        "            1010:  00 00 00 00                                       ...."],
    "rd -p 22f7ff0 4": [
        "         22f7ff0:  0000000000000000 0000000000000000   ................",
        'rd: page excluded: physical address: 22f8000  type: "64-bit PHYSADDR"'],
    "rd -32 -p 22f7ff8 4": ["         22f7ff8:  00000000 00000000",
                            'rd: page excluded: physical address: 22f8000  type: "32-bit PHYSADDR"'],
    "rd ffff8af3c22f7ff8 4": [
        "ffff8af3c22f7ff8:  0000000000000000",
        'rd: page excluded: kernel virtual address: ffff8af3c22f8000  type: "64-bit KVADDR"'],
    "rd -a -p 22b1ffe0 40": ["        22b1ffe0:  Linux version 6.1.0-56-cloud-amd64 (debi"],
}


@pytest.mark.parametrize("line", RD_EXCLUDED)
def test_rd_excluded_page_and_physical_addresses_as_crash(line: str,
                                                          sessions: dict[str, Session]) -> None:
    """A page the dump filtered out is `page excluded` (physical or kernel virtual, at the first
    unit that cannot be read), memory it does not hold a `seek error`; -p addresses are
    right-aligned to 16 characters."""
    assert run_command(sessions["6.1-sysrq"], line) == RD_EXCLUDED[line]


def test_struct_count_and_hex(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    where = addresses("6.1-sysrq")
    two = run_command(s, f"struct list_head {where['SP0']} 2")
    assert two[:4] == crash_lines("6.1-sysrq", "struct-list-head-addr.txt")
    assert len(two) == 9 and two[4] == "" and two[5] == "struct list_head {"  # as crash
    hexed = run_command(s, f"struct task_struct.pid -x {where['TASK']}")
    assert hexed == ["  pid = 0x1,"]
    assert run_command(s, "union rcu_special")[0] == "union rcu_special {"


def test_rd_symbol_plus_offset_and_physical(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    a = run_command(s, "rd jiffies+8")[0]
    addr = s.kernel.symbol("jiffies") + 8
    assert a.startswith(f"{addr:x}:  ")
    phys = s.kernel.translate(addr)
    b = run_command(s, f"rd -p {phys:x}")[0]
    assert b.split(":", 1)[1] == a.split(":", 1)[1]


def test_values_string_and_char_rules() -> None:
    from crashtui.commands.values import char_literal, string_literal
    from crashtui.debuginfo.ctype import gdb_spelling

    assert string_literal(b"ab\0\x01") == '"ab\\000\\001"'
    assert string_literal(b"\x00\x30x") == '"\\000\\060x"'  # a digit after an octal escape
    assert string_literal(b'q"\\\n') == '"q\\"\\\\\\n"'
    assert char_literal(0) == "'\\000'" and char_literal(ord("s")) == "'s'"
    assert char_literal(ord("'")) == "'\\''"
    assert gdb_spelling("long unsigned int x") == "unsigned long x"
    assert gdb_spelling("long long int y") == "long long y"
    assert gdb_spelling("short unsigned int z") == "unsigned short z"


def test_foreach_bt_f_has_each_tasks_words(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    plain = run_command(s, "foreach bt")
    full = run_command(s, "foreach bt -f")
    assert [x for x in full if not WORD_RE.match(x)] == plain
    assert sum(1 for x in full if WORD_RE.match(x)) > len(s.tasks.tasks)


def test_the_cli_serves_the_same_commands(vmlinux_path: Path) -> None:
    """`crashtui DUMP VMLINUX -c CMD` prints what the command layer returns."""
    import subprocess
    import sys

    name = "6.1-sysrq"
    where = addresses(name)
    cmds = [("p-jiffies.txt", "p jiffies"), ("rd-s.txt", f"rd -s {where['SP0']} 8"),
            ("struct-task-comm-pid.txt", f"struct task_struct.comm,pid {where['TASK']}")]
    argv = [sys.executable, "-m", "crashtui.cli", str(next((SAMPLES / name).glob("dump.*"))),
            str(vmlinux_path)]
    for _, c in cmds:
        argv += ["-c", c]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    want = [line for f, _ in cmds for line in crash_lines(name, f)]
    assert history_free(r.stdout.rstrip("\n").split("\n")) == history_free(want)
    bad = subprocess.run([*argv[:5], "-c", "struct no_such_struct"], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1
    assert "invalid data structure reference: no_such_struct" in bad.stderr


def test_without_a_vmlinux() -> None:
    """With the dump's own kallsyms and BTF: struct, rd and per-CPU p work; p of a global
    needs the vmlinux's DWARF and says so."""
    name = "6.1-sysrq"
    where = addresses(name)
    s = Session.open(next((SAMPLES / name).glob("dump.*")), None)
    try:
        assert run_command(s, f"struct task_struct.comm,pid {where['TASK']}") == \
            crash_lines(name, "struct-task-comm-pid.txt")
        assert run_command(s, f"rd -s {where['SPF']} 16") == crash_lines(name, "rd-s-fault.txt")
        assert run_command(s, "struct -o pt_regs") == crash_lines(name, "struct-o-pt-regs.txt")
        assert run_command(s, "p runqueues") == crash_lines(name, "p-percpu.txt")
        with pytest.raises(CommandError, match="no type information for this variable "
                                               "without the debug vmlinux"):
            run_command(s, "p jiffies")
    finally:
        s.close()
