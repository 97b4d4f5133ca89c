"""Frame variables (arguments and locals from DWARF, valued in the dump) against drgn 0.3.0.

tests/crash_outputs/<dump>/drgn-frame-vars.json holds what drgn's `frame.locals()` and
`frame[name]` give for the crashed thread and the scenario's kthreads (recorded by
tests/record_drgn_frame_vars.py). For every drgn frame crashtui also has (same pc), every
variable drgn reads must have the same bytes and type in crashtui, and one drgn calls absent
must not get a value from crashtui, except a parameter's value at function entry
(DW_OP_entry_value), which drgn 0.3.0 does not resolve and crashtui takes from the caller's
DW_TAG_call_site_parameter as gdb does (`x@entry`): those are checked against what the
caller passed (test_entry_values_are_what_the_caller_passed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from crashtui.debuginfo.dwarf.expr import ExprContext, ExprUnknown, evaluate
from crashtui.kernel.framevars import frame_variables

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace
    from crashtui.analysis.session import Session
    from crashtui.analysis.variables import FrameVariables

from tests.conftest import SAMPLES

OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
RECORDED = sorted(p.parent.name for p in OUTPUTS.glob("*/drgn-frame-vars.json"))


def _session(sessions: Any, name: str) -> Session:
    s: Session = sessions[name]
    if not s.modules.debuginfo:
        for d in sorted({ko.parent for ko in (SAMPLES / name).glob("*/*.ko")}):
            s.load_modules_dir(d)
        s.__dict__.pop("backtrace_builder", None)
        s.__dict__.pop("panic_backtrace", None)
        s.__dict__.pop("backtraces", None)
    return s


def _backtrace(s: Session, thread: dict[str, Any]) -> Backtrace | None:
    if thread["why"] == "crashed":
        bt = s.panic_backtrace
        if bt is not None and bt.pid == thread.get("tid"):
            return bt
    task = next((t for t in s.tasks.tasks if t.pid == thread.get("tid")), None)
    return s.backtrace_of(task.address) if task is not None else None


def _crashtui_frames(s: Session, bt: Backtrace) -> dict[tuple[int, bool], FrameVariables]:
    """crashtui's variables by (pc, interrupted) for every frame and exception RIP."""
    out: dict[tuple[int, bool], FrameVariables] = {}
    for f in bt.frames:
        if f.inline:
            continue
        out.setdefault((f.pc, not f.return_address), frame_variables(s, bt, f))
        if f.exception is not None and not f.exception.user_mode:
            out.setdefault((f.exception.rip, True), frame_variables(s, bt, f, exception=True))
    return out


def _compare(name: str, s: Session) -> tuple[int, int, list[str], int]:
    """(values compared equal, absent ones checked, problems, frames compared)."""
    doc = json.loads((OUTPUTS / name / "drgn-frame-vars.json").read_text())
    equal = absent = frames = 0
    problems: list[str] = []
    for thread in doc["threads"]:
        if "frames" not in thread:
            continue
        bt = _backtrace(s, thread)
        if bt is None:
            continue
        ours = _crashtui_frames(s, bt)
        for fr in thread["frames"]:
            fv = ours.get((fr["pc"], fr["interrupted"]))
            if fv is None or fv.error:
                continue
            frames += 1
            group = [v for v in fv.variables
                     if v.function == fr["function"] and v.inlined == fr["inline"]]
            for var, rec in fr["locals"].items():
                where = f"{name} PID {thread['tid']} {fr['function']} {fr['pc']:#x} {var}"
                mine = next((v for v in reversed(group) if v.name == var), None)
                if "error" in rec:
                    continue
                if mine is None:
                    problems.append(f"{where}: not listed by crashtui")
                    continue
                if "type" in rec and mine.type != rec["type"]:
                    problems.append(f"{where}: drgn's type {rec['type']!r}, crashtui's "
                                    f"{mine.type!r}")
                if rec["absent"]:
                    absent += 1
                    # known only as gdb knows `x@entry`: from the caller's call site
                    if mine.known and not mine.location.startswith("entry value"):
                        problems.append(f"{where}: drgn says absent, crashtui says "
                                        f"{mine.display()} ({mine.location})")
                    continue
                want = bytes.fromhex(rec["bytes"])
                if not mine.known or mine.data is None:
                    problems.append(f"{where}: drgn reads {want.hex()}, crashtui says "
                                    f"{mine.display()}")
                elif mine.data[:len(want)] != want:
                    problems.append(f"{where}: drgn reads {want.hex()}, crashtui "
                                    f"{mine.data[:len(want)].hex()}")
                else:
                    equal += 1
    return equal, absent, problems, frames


@pytest.mark.parametrize("name", RECORDED)
def test_frame_variables_equal_drgn(sessions: Any, name: str) -> None:
    s = _session(sessions, name)
    _equal, _absent, problems, frames = _compare(name, s)
    assert not problems, "\n".join(problems)
    assert frames > 0, f"{name}: no frame of drgn's found in crashtui's backtraces"


def test_every_recording_compares_values(sessions: Any) -> None:
    """Across the recordings, crashtui matches drgn on real values, not only absences."""
    assert len(RECORDED) >= 5
    total = 0
    for name in RECORDED:
        total += _compare(name, _session(sessions, name))[0]
    assert total >= 50


def test_kthread_arguments_6_1_deadlock(sessions: Any) -> None:
    """kthread() of khungtaskd, called through ret_from_fork: its locals come from
    callee-saved registers restored by .debug_frame (drgn's values)."""
    s = _session(sessions, "6.1-deadlock")
    bt = s.panic_backtrace
    assert bt is not None
    frame = next(f for f in bt.frames if f.function == "kthread")
    fv = frame_variables(s, bt, frame)
    threadfn = fv.named("threadfn")
    assert threadfn is not None and threadfn.value is not None
    assert threadfn.value.endswith("<watchdog>")
    assert threadfn.location == "register r15"
    assert threadfn.type == "int (*)(void *)"
    ret = fv.named("ret")
    assert ret is not None and ret.value == "-4"


def test_optimized_out_is_not_invented(sessions: Any) -> None:
    s = _session(sessions, "6.1-deadlock")
    bt = s.panic_backtrace
    assert bt is not None
    frame = next(f for f in bt.frames if f.function == "panic")
    fv = frame_variables(s, bt, frame)
    i = fv.named("i")
    assert i is not None and i.state == "optimized out" and i.display() == "<optimized out>"
    fmt = fv.named("fmt")
    assert fmt is not None and fmt.parameter and fmt.type == "const char *"


def _ctx(regs: dict[int, int], mem: dict[int, bytes]) -> ExprContext:
    def reg(r: int) -> int:
        if r not in regs:
            raise ExprUnknown(f"register {r}")
        return regs[r]

    return ExprContext(reg, lambda a, n: mem[a][:n], frame_base=lambda: 0x1000,
                       cfa=lambda: 0x2000)


def test_expression_evaluator_synthetic() -> None:
    """Error paths and the operations the kernel's DWARF rarely shows, on synthetic bytes."""
    assert evaluate(bytes([0x55]), _ctx({}, {}))[0].kind == "register"  # DW_OP_reg5
    p = evaluate(bytes([0x91, 0x78]), _ctx({}, {}))[0]  # DW_OP_fbreg -8
    assert (p.kind, p.value) == ("memory", 0x1000 - 8)
    p = evaluate(bytes([0x9C, 0x23, 0x10]), _ctx({}, {}))[0]  # call_frame_cfa; plus_uconst 16
    assert p.value == 0x2010
    p = evaluate(bytes([0x31, 0x32, 0x22, 0x9F]), _ctx({}, {}))[0]  # lit1 lit2 plus stack_value
    assert (p.kind, p.value) == ("value", 3)
    pieces = evaluate(bytes([0x50, 0x93, 0x04, 0x51, 0x93, 0x04]), _ctx({}, {}))
    assert [(q.kind, q.value, q.size) for q in pieces] == [("register", 0, 4),
                                                             ("register", 1, 4)]
    with pytest.raises(ExprUnknown, match="entry_value"):
        evaluate(bytes([0xA3, 0x01, 0x55, 0x9F]), _ctx({}, {}))
    with pytest.raises(ExprUnknown, match="register 3"):
        evaluate(bytes([0x73, 0x00]), _ctx({}, {}))  # DW_OP_breg3 0 without rbx
    with pytest.raises(ExprUnknown, match="does not terminate"):
        evaluate(bytes([0x2F, 0xFD, 0xFF]), _ctx({}, {}))  # DW_OP_skip -3: a loop
    with pytest.raises(ExprUnknown, match="underflow"):
        evaluate(bytes([0x22]), _ctx({}, {}))


def test_locals_command(sessions: Any) -> None:
    """`locals` prints the culprit frame of the current context, `locals N NAME->member`
    follows a pointer, bad input is one CommandError line."""
    from crashtui.commands import CommandError, run_command

    s = _session(sessions, "6.1-deadlock")
    out = run_command(s, "locals")
    assert out[1].startswith(" #4 kthread at ")
    assert "    (arg) void *_create = (void *) 0xffff8bac812930c0" in out
    assert "    int ret = -4" in out
    assert "    int (*threadfn)(void *) = (int (*)(void *)) 0xffffffffa0595200 <watchdog>" \
        in out
    assert run_command(s, "locals 2 fmt") == [
        'fmt = 0xffffffffa16f6ee0 "hung_task: blocked tasks"']
    assert run_command(s, "locals 2 buf") == [
        "buf = \"hung_task: blocked tasks\", '\\000' <repeats 1000 times>"]
    assert run_command(s, "locals 2 i") == ["i = <optimized out>"]
    assert run_command(s, "locals 4 param.sched_priority") == ["param.sched_priority = 0"]
    assert run_command(s, "locals -x 4 ret") == ["ret = 0xfffffffc"]
    star = run_command(s, "locals 4 *self")
    assert star[0] == "*self = {" and "  threadfn = 0xffffffffa0595200 <watchdog>," in star
    for bad, msg in (("locals 99", "no frame #99"), ("locals 2 nosuch", "no variable nosuch"),
                     ("locals -e 2", "no kernel-mode exception RIP"),
                     ("locals -q", "unknown option -q"),
                     ("locals 4 *ret", "ret is not a pointer")):
        with pytest.raises(CommandError, match=msg):
            run_command(s, bad)


def test_locals_exception_rip(sessions: Any) -> None:
    """The culprit of a fault is the code at the exception RIP: test_module_init's `p`."""
    from crashtui.commands import run_command

    s = _session(sessions, "6.1-test-module")
    out = run_command(s, "locals")
    assert out[1] == " #6 [exception RIP: test_module_init] at ffffffffc03c4005"
    assert out[2] == "    int *p = (int *) 0x1"


def test_json_culprit_variables(sessions: Any) -> None:
    """--json: triage.culprit.variables, valid against docs/crashtui.schema.json."""
    import jsonschema

    from crashtui.report.jsondoc import build_document

    s = _session(sessions, "6.1-deadlock")
    doc = build_document(s)
    schema = json.loads((SAMPLES.parent / "docs" / "crashtui.schema.json").read_text())
    jsonschema.validate(doc, schema)
    fv = doc["triage"]["culprit"]["variables"]
    assert fv["function"] == "take_both.cold" and fv["error"] is None
    by_name = {v["name"]: v for v in fv["variables"]}
    assert by_name["first"]["value"] == "0xffffffffc028d000 <lock_b>"
    assert by_name["first"]["kind"] == "parameter"
    assert by_name["who"]["value"] == '0xffffffffc028c091 "deadlock_ba"'


def _cfi_section() -> bytes:
    """A .debug_frame with one CIE (CFA = rsp+8, return address at CFA-8) and one FDE for
    [0x1000, 0x1010): push %rbx at 0x1001 (CFA = rsp+16, rbx at CFA-16)."""
    import struct as st

    cie_body = (st.pack("<I", 0xFFFFFFFF) + bytes([4]) + b"\0" + bytes([8, 0]) +
                bytes([1, 0x78, 16]) +  # code align 1, data align -8, return register 16
                bytes([0x0C, 7, 8, 0x90, 1]))  # def_cfa rsp+8; offset r16 at cfa-8
    cie_body += b"\0" * (-len(cie_body) % 8)
    cie = st.pack("<I", len(cie_body)) + cie_body
    fde_body = (st.pack("<I", 0) + st.pack("<QQ", 0x1000, 0x10) +
                bytes([0x41, 0x0E, 16, 0x83, 2]))  # advance 1; cfa offset 16; rbx at cfa-16
    fde_body += b"\0" * (-len(fde_body) % 8)
    return cie + st.pack("<I", len(fde_body)) + fde_body


def test_call_frame_information_synthetic() -> None:
    from crashtui.debuginfo.dwarf.cfi import CallFrameInfo

    cfi = CallFrameInfo(_cfi_section())
    assert len(cfi) == 1
    row = cfi.row_at(0x1000)
    assert row is not None and (row.cfa_reg, row.cfa_offset) == (7, 8) and 3 not in row.rules
    row = cfi.row_at(0x1005)
    assert row is not None and (row.cfa_reg, row.cfa_offset) == (7, 16)
    assert row.rules[3].kind == "offset" and row.rules[3].n == -16
    assert row.rules[16].n == -8
    assert cfi.row_at(0x1010) is None and cfi.row_at(0xFFF) is None
    # truncated or garbage sections index what they can, never raise
    assert len(CallFrameInfo(_cfi_section()[:-7])) == 0
    assert len(CallFrameInfo(bytes(range(256)) * 4)) >= 0


def test_no_dwarf_is_one_line_naming_what_is_missing() -> None:
    """Without the vmlinux, or without the module's .ko: one line saying which, no values."""
    from crashtui.analysis.session import Session
    from crashtui.commands import run_command
    from crashtui.kernel.framevars import culprit_variables
    from tests.conftest import dump_of, vmlinux_of

    s = Session.open(dump_of("6.1-deadlock"), None)
    try:
        assert run_command(s, "locals 2")[-1] == \
            "    (no DWARF: started without a vmlinux (give the debug vmlinux))"
    finally:
        s.close()
    s = Session.open(dump_of("6.1-deadlock"), vmlinux_of("6.1-deadlock"))
    try:
        fv = culprit_variables(s)
        assert fv is not None and not fv.variables
        assert fv.error == ("no DWARF: module deadlock's .ko is not loaded "
                            "(mod -s deadlock FILE, or --modules DIR)")
    finally:
        s.close()


def test_culprit_frames_equal_drgn(sessions: Any) -> None:
    """The triage's culprit frame (what the report and JSON show) against drgn's frame at
    the same pc: every variable drgn reads equal, none it calls absent invented. drgn 0.3.0
    names no code in a 6.1 module's init section, so 6.1-test-module and 6.1-hung-task are
    checked by their source instead (test_locals_exception_rip: `int *p = (int *)1`)."""
    from crashtui.kernel.framevars import culprit_variables

    compared = []
    for name in RECORDED:
        s = _session(sessions, name)
        fv = culprit_variables(s)
        assert fv is not None and fv.error is None, name
        doc = json.loads((OUTPUTS / name / "drgn-frame-vars.json").read_text())
        pid = s.triage.culprit.pid if s.triage.culprit is not None else None
        frames = [fr for th in doc["threads"] if th.get("tid") == pid
                  for fr in th.get("frames", []) if fr["pc"] == fv.pc and fr["interrupted"] == fv.exception
                  and not fr["function"].startswith("0x")]
        for fr in frames:
            for var, rec in fr["locals"].items():
                mine = next((v for v in reversed(fv.variables) if v.name == var
                             and v.function.split(".")[0] == fr["function"]), None)
                assert mine is not None, (name, var)
                if rec.get("absent"):
                    assert not mine.known or mine.location.startswith("entry value"), \
                        (name, var, mine.display())
                elif "bytes" in rec:
                    want = bytes.fromhex(rec["bytes"])
                    assert mine.data is not None and mine.data[:len(want)] == want, (name, var)
                    compared.append((name, var))
    assert len({n for n, _ in compared}) >= 6, compared


def _drgn_value(name: str, tid: int, function: str, var: str) -> bytes:
    doc = json.loads((OUTPUTS / name / "drgn-frame-vars.json").read_text())
    for th in doc["threads"]:
        if th.get("tid") != tid:
            continue
        for fr in th.get("frames", []):
            if fr["function"] == function and var in fr["locals"]:
                return bytes.fromhex(fr["locals"][var]["bytes"])
    raise KeyError((name, tid, function, var))


def test_entry_values_are_what_the_caller_passed(sessions: Any) -> None:
    """DW_OP_entry_value parameters, resolved through the caller's call site: a kthread's
    function gets kthread()'s `data` (drgn's value), a softlockup's watchdog_timer_fn the
    `timer` __run_hrtimer passed (drgn's value), sysrq's handler the key `c` written to
    /proc/sysrq-trigger."""
    checks = 0
    for name, fn, param, caller, var in (
            ("6.1-bug-kthread", "bug_kthread_fn", "data", "kthread", "data"),
            ("6.1-softlockup", "softlockup_spin_fn", "data", "kthread", "data"),
            ("6.1-softlockup", "watchdog_timer_fn", "hrtimer", "__run_hrtimer", "timer"),
            ("6.12-softlockup", "softlockup_spin_fn", "data", "kthread", "data"),
            ("7.3-bug-kthread", "bug_kthread_fn", "data", "kthread", "data")):
        s = _session(sessions, name)
        bt = s.panic_backtrace
        assert bt is not None
        for f in bt.frames:
            if f.inline:
                continue
            fvs = [frame_variables(s, bt, f)]
            if f.exception is not None and not f.exception.user_mode:
                fvs.append(frame_variables(s, bt, f, exception=True))
            for fv in fvs:
                v = fv.named(param)
                if v is None or v.function.split(".")[0] != fn:
                    continue
                assert v.location.startswith("entry value"), (name, fn, v.location)
                assert v.data == _drgn_value(name, bt.pid, caller, var), (name, fn, param)
                checks += 1
    assert checks >= 5
    s = _session(sessions, "6.1-sysrq")
    bt = s.panic_backtrace
    assert bt is not None
    frame = next(f for f in bt.frames if f.function == "sysrq_handle_crash")
    key = frame_variables(s, bt, frame).named("key")
    assert key is not None and key.value == str(ord("c"))
    assert key.location == "entry value (caller's call site)"


def test_expansion_says_where_it_was_cut(sessions: Any) -> None:
    """__per_cpu_offset (unsigned long[NR_CPUS = 8192] on Debian's 6.1) expanded in the
    Variables tree: the first MAX_CHILDREN elements, then a row saying how many there are."""
    from crashtui.kernel.cvalue import variable_type
    from crashtui.kernel.framevars import MAX_CHILDREN, expand

    s = _session(sessions, "6.1-sysrq")
    ct = variable_type(s.kernel, s.types, "__per_cpu_offset")
    assert ct is not None and ct.kind == "array" and (ct.length or 0) > MAX_CHILDREN
    rows = expand(s, ct, None, s.kernel.symbol("__per_cpu_offset"))
    assert [r.name for r in rows[:2]] == ["[0]", "[1]"]
    assert len(rows) == MAX_CHILDREN + 1 or rows[-1].value.startswith("<first ")
    assert rows[-1].name == "…" and rows[-1].value.endswith(f" of {ct.length} elements shown>")
