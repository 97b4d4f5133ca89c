"""p with C expressions, struct/union with -o and member paths, against crash 8.0.6.

crash's outputs are recorded by tests/record_crash_pexpr.py into
tests/crash_outputs/<dump>/pexpr-*.txt (5.10-sysrq, 6.1-sysrq, 6.12-sysrq, one crash session
each) and must be equal line by line once `$N` value-history numbers are normalised (each
test runs one command in a session of its own). Where gdb refuses an expression crash prints
only `p: gdb request failed: p EXPR` on its output (gdb's reason goes to its terminal):
crashtui raises a CommandError with gdb's reason. On 7.3 (crash 8.0.6 cannot open it) the
values are compared with drgn 0.3.0's (tests/crash_outputs/7.3-sysrq/drgn-pexpr.json).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command
from crashtui.kernel.cexpr import ExprError, parse

TESTS = Path(__file__).resolve().parent
OUTPUTS = TESTS / "crash_outputs"
SAMPLES = TESTS.parent / "sample-dumps"
sys.path.insert(0, str(TESTS))
from record_crash_pexpr import COMMANDS  # noqa: E402

DUMPS = tuple(d for d in ("5.10-sysrq", "6.1-sysrq", "6.12-sysrq")
              if (OUTPUTS / d / "pexpr-TASK").is_file())
# gdb's reason for each expression crash's gdb refuses (crash prints "gdb request failed")
REFUSED = {"pexpr-cpumask.txt": 'No symbol "cpu_online_mask" in current context.',
           "pexpr-deref-cpumask.txt": 'No symbol "cpu_online_mask" in current context.',
           "pexpr-nosym.txt": 'No symbol "no_such_symbol_xyz" in current context.',
           "pexpr-nomember.txt": "There is no member named no_such_member."}


# crash's own errors (sample-dumps/<dump>/crash/KNOWN-ERRORS.md): file -> the recorded file
# whose output crashtui's must equal instead. crash drops a lone `-` argument before gdb sees
# the expression (its echo shows `2 1`): `p init_task.prio * 2 - 1` is what crash prints
# for `p init_task.prio*2-1`.
KNOWN = {"pexpr-minus-spaced.txt": "pexpr-arith.txt"}


# value-history commands: what ran before them in crash's session, run first here too
PRELUDE = {"pexpr-hist-last.txt": ["p init_task.signal->rlim[7]"],
           "pexpr-hist-back.txt": ["p init_task.signal->rlim[7]", "p $", "p init_task.pid, 2"]}


def recorded(name: str, file: str) -> list[str]:
    return (OUTPUTS / name / file).read_text().rstrip("\n").split("\n")


def history_free(lines: list[str]) -> list[str]:
    return [re.sub(r"\$\d+ = ", "$N = ", line) for line in lines]


def first_difference(a: list[str], b: list[str]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    return (f"first difference at line {i}: mine {a[i] if i < len(a) else None!r}, "
            f"crash {b[i] if i < len(b) else None!r}")


def test_recorded_where_expected() -> None:
    assert set(DUMPS) == {"5.10-sysrq", "6.1-sysrq", "6.12-sysrq"}
    assert len(COMMANDS) >= 25
    assert (OUTPUTS / "7.3-sysrq" / "drgn-pexpr.json").is_file()


CASES = [(d, f, c) for d in DUMPS for f, c in COMMANDS]


@pytest.mark.parametrize(("name", "file", "cmd"), CASES, ids=[f"{d}:{f}" for d, f, _ in CASES])
def test_equals_crash(name: str, file: str, cmd: str, sessions: dict[str, Session]) -> None:
    s = sessions[name]
    line = cmd.format(TASK=(OUTPUTS / name / "pexpr-TASK").read_text().strip())
    theirs = recorded(name, file)
    for before in PRELUDE.get(file, []):
        run_command(s, before)
    if file in KNOWN:
        assert theirs == [f"p: gdb request failed: {line.replace(' - ', ' ')}"]
        theirs = recorded(name, KNOWN[file])
    if len(theirs) == 1 and theirs[0].startswith("p: ") and "gdb request failed" not in \
            theirs[0]:  # crash's own refusal: the same line
        with pytest.raises(CommandError) as exc:
            run_command(s, line)
        assert exc.value.message == theirs[0]
        return
    if theirs == [f"p: gdb request failed: {line}"]:
        with pytest.raises(CommandError) as exc:
            run_command(s, line)
        if file in REFUSED:
            assert exc.value.message == f"p: {REFUSED[file]}"
        return
    mine = history_free(run_command(s, line))
    theirs = history_free(theirs)
    assert mine == theirs, f"{line}: {first_difference(mine, theirs)}"


def test_value_history_counts_per_percpu_cpu(sessions: dict[str, Session]) -> None:
    """`p VAR:a` takes one $N per CPU, as crash's gdb does."""
    s = sessions["6.1-sysrq"]
    out = run_command(s, "p cpu_number:a")
    nums = [int(m.group(1)) for line in out if (m := re.search(r"\$(\d+) = ", line))]
    assert nums == list(range(nums[0], nums[0] + 4))
    assert run_command(s, "p jiffies")[0].startswith(f"jiffies = ${nums[-1] + 1} = ")


@pytest.mark.parametrize(("line", "message"), [
    ("p 1 +", "A syntax error in expression, near `'."),
    ("p (struct no_such_struct *)0", "No struct type named no_such_struct."),
    ("p *jiffies_64@0", "Invalid number 0 of repetitions."),
    ("p 1/0", "Division by zero"),
    ("p *(int *)0", "Cannot access memory at address 0x0"),
    ("p &1", "Attempt to take address of value not located in memory."),
    ("p *init_task.tasks", "Attempt to take contents of a non-pointer value."),
    ("p init_task.pid[1]", "cannot subscript something of type `pid_t'"),
    ("p init_task.pid.x", "Attempt to extract a component of a value that is not a "
                          "structure."),
    ("p runqueues.nr_running", "runqueues is a per-CPU variable: give the CPU "
                               "(runqueues:N)"),
    ("p " + "(" * 100 + "1" + ")" * 100, "expression nested deeper than 64 levels"),
    ("p " + "1+" * 600 + "1", "expression longer than 1024 characters"),
    ("p $999999", "History has not yet reached $999999."),
])
def test_errors_are_one_line(line: str, message: str, sessions: dict[str, Session]) -> None:
    with pytest.raises(CommandError) as exc:
        run_command(sessions["6.1-sysrq"], line)
    assert exc.value.message == f"p: {message}"


def test_arithmetic_follows_c(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]

    def p(expr: str) -> str:
        return history_free(run_command(s, "p " + expr))[-1].split("$N = ", 1)[1]

    assert p("-7 / 2") == "-3" and p("-7 % 2") == "-1"
    assert p("(unsigned char)300") == "44 ','"
    assert p("0xffffffff + 1") == "0"  # a hex literal that fits is an unsigned int, as in C
    assert p("4294967295 + 1") == "4294967296"  # a decimal one a long
    assert p("(unsigned int)0xffffffff + 1") == "0"
    assert p("~0") == "-1" and p("!5") == "0" and p("1L << 40") == "1099511627776"
    assert p("(long *)0x1000 + 3") == "(long *) 0x1018"
    assert p("(void *)0x1000 + 3") == "(void *) 0x1003"
    assert p("sizeof(long)") == "8" and p("'A'") == "65 'A'"
    task = (OUTPUTS / "6.1-sysrq" / "pexpr-TASK").read_text().strip()
    assert p(f"((struct task_struct *)0x{task})->pid") == \
        p(f"(*(struct task_struct *)0x{task}).pid") == "1"
    assert p(f"&((struct task_struct *)0x{task})->comm[0]").endswith('"init"')


def test_parse_shapes() -> None:
    tree = parse("(struct task_struct *)0x10", lambda _n: False)
    assert type(tree).__name__ == "Cast"
    assert type(parse("(jiffies)", lambda _n: False)).__name__ == "Ident"
    assert type(parse("(u64)x", lambda n: n == "u64")).__name__ == "Cast"
    assert type(parse("a - -1")).__name__ == "Binary"
    with pytest.raises(ExprError):
        parse("a..b")
    with pytest.raises(ExprError):
        parse("")


def drgn_values(name: str) -> dict[str, int]:
    return {k: int(v) for k, v in
            json.loads((OUTPUTS / name / "drgn-pexpr.json").read_text()).items()}


DRGN_DUMPS = tuple(d for d in ("7.3-sysrq",) if (OUTPUTS / d / "drgn-pexpr.json").is_file())


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_values_equal_drgn_on_7x(name: str, sessions: dict[str, Session]) -> None:
    s = sessions[name]
    for expr, value in drgn_values(name).items():
        out = history_free(run_command(s, "p -d " + expr.split(" # ")[0]))
        got = out[-1].split("$N = ", 1)[1]
        got = got.split(") ", 1)[1] if got.startswith("(") else got
        got = got.split(" ", 1)[0]
        assert int(got, 0) == value, f"{expr}: {got} != drgn {value}"


def test_cpuspecs_and_aliases(sessions: dict[str, Session]) -> None:
    """crash's cpuspec (`:` the current task's CPU, `1,3`, `1-3`, `a`) and px/pd."""
    s = sessions["6.1-sysrq"]
    cpu = s.summary.panic_task.cpu if s.summary.panic_task else 0
    assert history_free(run_command(s, "p cpu_number:")) == [
        f"per_cpu(cpu_number, {cpu}) = $N = {cpu}"]
    assert history_free(run_command(s, "p cpu_number:0,2-3")) == [
        f"per_cpu(cpu_number, {c}) = $N = {c}" for c in (0, 2, 3)]
    assert run_command(s, "p runqueues:2.cpu")[0].endswith(" = 2")
    for bad in ("p cpu_number:0-100000000", "p cpu_number:3-1", "p cpu_number:9"):
        with pytest.raises(CommandError, match="invalid cpu"):
            run_command(s, bad)
    assert history_free(run_command(s, "px jiffies")) == history_free(
        run_command(s, "p -x jiffies"))
    assert history_free(run_command(s, "pd jiffies")) == history_free(
        run_command(s, "p jiffies"))


def test_value_history_and_formats(sessions: dict[str, Session]) -> None:
    """`$`, `$N`, `$$N` name earlier values; -x is gdb's output radix 16 (char arrays stay
    strings, enumerators named), p/x formats everything, pointers bare."""
    s = sessions["6.1-sysrq"]
    first = run_command(s, "p init_task.comm")[0]
    n = int(first.split("$", 1)[1].split(" ", 1)[0])
    assert run_command(s, f"p ${n}")[0].split(" = ", 1)[1] == first.split(" = ", 1)[1]
    assert run_command(s, "p $")[0].split(" = ", 1)[1] == first.split(" = ", 1)[1]
    run_command(s, "p 7")
    assert run_command(s, "p $$1")[0].endswith('"swapper/0\\000\\000\\000\\000\\000\\000"')
    assert run_command(s, "p -x (enum pid_type)1")[0].endswith(" = PIDTYPE_TGID")
    assert run_command(s, "p/x (enum pid_type)1")[0].endswith(" = 0x1")
    assert run_command(s, "p/x init_task.comm")[0].endswith("0x30" + ", 0x0" * 7 + "}")
