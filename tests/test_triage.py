"""Triage on the real dumps (kind, culprit file:line, the faulting instruction, signature),
the kinds from synthetic kernel logs, the page-fault decoding and the instruction decoder.

The sample test module dereferences `(int *)1`: gcc folds the constant into the instruction,
`mov 0x1,%esi` (8b 34 25 01 00 00 00, no base or index register), so no register held the
bad pointer. The triage says exactly that (origin.absolute, bad_register None) instead of
naming %esi, which is where the loaded value was going (see crashtui/analysis/triage.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.analysis.triage import (
    KINDS,
    PageFault,
    Triage,
    build_triage,
    classify_log,
    decode_origin,
    triage_to_json,
)
from crashtui.commands import run_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"


def dump(name: str) -> Path:
    return next((SAMPLES / name).glob("dump.*"))


@pytest.fixture(scope="module")
def vmlinux_612() -> Path:
    from tests.conftest import fetch_vmlinux

    try:
        return fetch_vmlinux(SAMPLES / "6.12-sysrq" / "MANIFEST")
    except Exception as exc:  # noqa: BLE001 - unavailable means skip, with the reason
        pytest.skip(f"6.12 debug vmlinux unavailable: {exc}")


def _open(name: str, vmlinux: Path | None) -> Session:
    s = Session.open(dump(name), vmlinux)
    for ko_dir in (SAMPLES / name).glob("*/"):
        if any(ko_dir.glob("*.ko")):
            s.load_modules_dir(ko_dir)
    return s


@pytest.fixture(scope="module")
def triages(vmlinux_path: Path) -> Iterator[dict[str, Triage]]:
    sessions = {n: _open(n, vmlinux_path) for n in ("6.1-sysrq", "6.1-test-module")}
    yield {n: build_triage(s) for n, s in sessions.items()}
    for s in sessions.values():
        s.close()


@pytest.fixture(scope="module")
def triages_612(vmlinux_612: Path) -> Iterator[dict[str, Triage]]:
    sessions = {n: _open(n, vmlinux_612) for n in ("6.12-sysrq", "6.12-test-module")}
    yield {n: build_triage(s) for n, s in sessions.items()}
    for s in sessions.values():
        s.close()


def test_sysrq_dump(triages: dict[str, Triage]) -> None:
    t = triages["6.1-sysrq"]
    assert t.kind == "sysrq" and t.title == KINDS["sysrq"]
    c = t.culprit
    assert c is not None
    assert (c.function, c.module, c.file, c.line) == \
        ("sysrq_handle_crash", None, "drivers/tty/sysrq.c", 155)
    assert c.location == "drivers/tty/sysrq.c:155"
    assert t.bad_register is None and t.origin is None and t.page_fault is None
    assert (t.pid, t.command, t.cpu) == (1, "init", 3)
    assert t.event == "sysrq: Trigger a crash"
    assert "SysRq" in t.summary and "drivers/tty/sysrq.c:155" in t.summary
    assert t.signature_frames == ["sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger"]


def test_test_module_dump(triages: dict[str, Triage]) -> None:
    t = triages["6.1-test-module"]
    assert t.kind == "null-pointer-dereference"
    c = t.culprit
    assert c is not None
    assert (c.function, c.offset, c.module) == ("test_module_init", 5, "test_module")
    assert c.file is not None and c.file.endswith("test-module.c") and c.line == 9
    assert c.module_taints == "OE" and c.out_of_tree is True
    assert c.reason == "exception RIP"
    assert t.fault_address == 0x1
    pf = t.page_fault
    assert pf is not None and pf.error_code == 0
    assert (pf.access, pf.mode, pf.cause) == ("read", "kernel", "not-present page")
    o = t.origin
    assert o is not None
    assert o.instruction == "mov    0x1,%esi" and o.address == 0xFFFFFFFFC03C4005
    assert o.absolute and o.effective_address == 0x1 and o.operand == "0x1"
    assert o.access == "read"
    assert "encoded in the instruction itself" in o.explanation
    # No register held the pointer: not %esi (the load's destination), not any other.
    assert t.bad_register is None
    assert "test_module_init+0x5 [test_module]" in t.summary
    assert "test-module.c:9" in t.summary
    assert t.signature_frames == ["test_module_init", "do_one_initcall", "do_init_module"]


def test_612_dumps_agree(triages_612: dict[str, Triage], triages: dict[str, Triage]) -> None:
    s, m = triages_612["6.12-sysrq"], triages_612["6.12-test-module"]
    assert s.kind == "sysrq" and s.culprit is not None
    assert (s.culprit.function, s.culprit.file) == ("sysrq_handle_crash", "drivers/tty/sysrq.c")
    assert m.kind == "null-pointer-dereference" and m.culprit is not None
    assert (m.culprit.function, m.culprit.offset, m.culprit.line) == ("test_module_init", 9, 9)
    assert m.origin is not None and m.origin.absolute and m.bad_register is None
    # kernel-version independent: the same crash on 6.1 and 6.12 has one signature
    assert s.signature == triages["6.1-sysrq"].signature
    assert m.signature == triages["6.1-test-module"].signature


def test_signatures_are_distinct_and_stable(triages: dict[str, Triage],
                                            vmlinux_path: Path) -> None:
    a, b = triages["6.1-sysrq"].signature, triages["6.1-test-module"].signature
    assert a != b and len(a) == len(b) == 16
    for name, sig in (("6.1-sysrq", a), ("6.1-test-module", b)):
        again = Session.open(dump(name), vmlinux_path)  # no .ko: names from memory
        try:
            assert build_triage(again).signature == sig
        finally:
            again.close()
        bare = Session.open(dump(name), None)  # no vmlinux: the dump's own kallsyms
        try:
            assert build_triage(bare).signature == sig
        finally:
            bare.close()


def test_triage_json(triages: dict[str, Triage]) -> None:
    d = triage_to_json(triages["6.1-test-module"])
    assert d["kind"] == "null-pointer-dereference"
    assert d["culprit"]["function"] == "test_module_init" and d["culprit"]["line"] == 9
    assert d["culprit"]["module"] == "test_module" and d["culprit"]["out_of_tree"] is True
    assert d["bad_register"] is None
    assert d["origin"]["absolute"] is True and d["origin"]["effective_address"] == "0x1"
    assert d["page_fault"] == {"error_code": "0x0", "access": "read", "mode": "kernel",
                               "cause": "not-present page"}
    assert d["signature"] == triages["6.1-test-module"].signature
    s = triage_to_json(triages["6.1-sysrq"])
    assert s["culprit"]["file"] == "drivers/tty/sysrq.c" and s["origin"] is None


def test_triage_command(vmlinux_path: Path) -> None:
    s = _open("6.1-test-module", vmlinux_path)
    try:
        out = run_command(s, "triage")
        assert out[0] == "KIND: NULL pointer dereference (null-pointer-dereference)"
        assert any(line.startswith("CULPRIT: test_module_init+0x5 [test_module] at ")
                   for line in out)
        assert "INSTRUCTION: ffffffffc03c4005: mov    0x1,%esi" in out
        assert run_command(s, "triage -s") == [build_triage(s).signature]
    finally:
        s.close()


def test_signature_cli(vmlinux_path: Path, vmlinux_612: Path) -> None:
    names = ("6.1-sysrq", "6.1-test-module", "6.12-sysrq", "6.12-test-module")
    argv = [sys.executable, "-m", "crashtui.cli", "--signature", "--vmlinux", str(vmlinux_path),
            "--vmlinux", str(vmlinux_612), *(str(dump(n)) for n in names)]
    runs = [subprocess.run(argv, capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout  # the same dumps, the same lines
    lines = runs[0].stdout.splitlines()
    assert len(lines) == 4
    cols = [line.split("  ") for line in lines]
    assert [c[1] for c in cols] == ["sysrq", "null-pointer-dereference"] * 2
    assert cols[0][2] == "sysrq_handle_crash+0x16 at drivers/tty/sysrq.c:155"
    assert cols[1][2] == "test_module_init+0x5 [test_module]"
    assert [c[-1] for c in cols] == [str(dump(n)) for n in names]
    assert cols[0][0] != cols[1][0] and cols[0][0] == cols[2][0] and cols[1][0] == cols[3][0]
    bad = subprocess.run([sys.executable, "-m", "crashtui.cli", "--signature", "/nonexistent",
                          str(dump("6.1-sysrq")), "--vmlinux", str(vmlinux_path)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "dump file not found" in bad.stderr
    assert bad.stdout.startswith(cols[0][0])


def test_bug_table_lookup(vmlinux_path: Path) -> None:
    """__bug_table entries lead back to a ud2 with the file:line the WARN()/BUG() names."""
    import struct

    from crashtui.kernel.bugtable import bug_site

    s = Session.open(dump("6.1-sysrq"), vmlinux_path)
    try:
        k = s.kernel
        start = k.symbol("__start___bug_table")
        text = range(k.symbol("_stext"), k.symbol("_etext"))  # init text is freed (int3s)
        raw = k.read(start, 12 * 200)
        hits = 0
        for i in range(0, len(raw), 12):
            disp = struct.unpack_from("<i", raw, i)[0]
            addr = start + i + disp
            site = bug_site(s.kernel, addr)
            assert site is not None and site.address == addr
            if site.file and addr in text:
                assert site.line and site.file.endswith((".c", ".h"))
                assert k.read(addr, 2) == b"\x0f\x0b"  # ud2
                hits += 1
        assert hits > 40
        assert bug_site(k, k.symbol("sysrq_handle_crash")) is None
    finally:
        s.close()


# -- kinds from the log ------------------------------------------------------------------------

LOGS: dict[str, tuple[list[str], str | None, int | None]] = {
    "general-protection-fault": ([
        "general protection fault, probably for non-canonical address 0xdead000000000122: "
        "0000 [#1] PREEMPT SMP NOPTI",
        "CPU: 0 PID: 1 Comm: foo Not tainted 6.1.0 #1", "RIP: 0010:list_del+0x10/0x20",
        "Kernel panic - not syncing: Fatal exception"], None, 0xDEAD000000000122),
    "bug": ([
        "------------[ cut here ]------------", "kernel BUG at mm/slub.c:379!",
        "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", "RIP: 0010:kfree+0x1/0x2",
        "Kernel panic - not syncing: Fatal exception"], "invalid opcode", None),
    "warn-panic": ([
        "------------[ cut here ]------------",
        "WARNING: CPU: 1 PID: 123 at drivers/foo/bar.c:42 foo_probe+0x12/0x30 [foo]",
        "Modules linked in: foo(O)", "RIP: 0010:foo_probe+0x12/0x30 [foo]",
        "Kernel panic - not syncing: kernel: panic_on_warn set ..."], "invalid opcode", None),
    "soft-lockup": ([
        "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [softlockup_spin:123]",
        "Modules linked in: softlockup(OE)", "RIP: 0010:spin+0x5/0x10 [softlockup]",
        "Kernel panic - not syncing: softlockup: hung tasks"], "interrupt", None),
    "hard-lockup": ([
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 2",
        "Kernel panic - not syncing: Hard LOCKUP"], "NMI", None),
    "rcu-stall": ([
        "rcu: INFO: rcu_preempt self-detected stall on CPU",
        "rcu: \t2-....: (21002 ticks this GP) idle=8a4/1/0x4000000000000000 softirq=1/1 fqs=5000",
        "\t(t=21003 jiffies g=1161 q=159 ncpus=4)",
        "CPU: 2 PID: 130 Comm: spin Tainted: G           OE      6.1.0-56-cloud-amd64 #1",
        "Kernel panic - not syncing: RCU Stall"], "interrupt", None),
    "hung-task": ([
        "INFO: task hung_task:123 blocked for more than 5 seconds.",
        "      Tainted: G           OE      6.1.0 #1",
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
        "task:insmod          state:D stack:0     pid:123   ppid:1      flags:0x00004000",
        "Call Trace:", " <TASK>", " __schedule+0x34d/0x9e0",
        "Kernel panic - not syncing: hung_task: blocked tasks"], None, None),
    "out-of-memory": ([
        "bash invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), "
        "order=0, oom_score_adj=0",
        "Mem-Info:", "active_anon:1 inactive_anon:2",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled"],
        None, None),
    "stack-overflow": ([
        "BUG: stack guard page was hit at 00000000a1b2c3d4 (stack is "
        "0000000011223344..0000000055667788)",
        "stack guard page: 0000 [#1] PREEMPT SMP NOPTI",
        "Kernel panic - not syncing: Fatal exception"], "double fault", 0xA1B2C3D4),
    "double-fault": ([
        "traps: PANIC: double fault, error_code: 0x0", "double fault: 0000 [#1] SMP NOPTI",
        "Kernel panic - not syncing: Fatal exception in interrupt"], "double fault", None),
    "divide-error": ([
        "Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI", "RIP: 0010:div+0x3/0x9",
        "Kernel panic - not syncing: Fatal exception"], "divide error", None),
    "invalid-opcode": ([
        "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        "Kernel panic - not syncing: Fatal exception"], "invalid opcode", None),
    "machine-check": ([
        "mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 4: b200000000070005",
        "Kernel panic - not syncing: Fatal machine check"], "machine check", None),
    "paging-request": ([
        "BUG: unable to handle page fault for address: ffffc90000a3b000",
        "#PF: supervisor write access in kernel mode",
        "#PF: error_code(0x0002) - not-present page", "Oops: 0002 [#1] PREEMPT SMP NOPTI",
        "Kernel panic - not syncing: Fatal exception"], "page fault", 0xFFFFC90000A3B000),
    "null-pointer-dereference": ([
        "BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "#PF: supervisor instruction fetch in kernel mode",
        "#PF: error_code(0x0010) - not-present page", "Oops: 0010 [#1] PREEMPT SMP NOPTI",
        "CR2: 0000000000000000"], "page fault", 0),
    "panic": ([
        "VFS: Cannot open root device \"vda1\" or unknown-block(0,0): error -6",
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"],
        None, None),
    "sysrq": ([
        "sysrq: Trigger a crash", "Kernel panic - not syncing: sysrq triggered crash"],
        None, None),
}


@pytest.mark.parametrize("kind", sorted(LOGS))
def test_kind_from_log(kind: str) -> None:
    lines, vector, address = LOGS[kind]
    noise = ["random: crng init done", "WARNING: CPU: 0 PID: 9 at old/warning.c:1 x+0x1/0x2",
             "audit: type=1400"] + [f"filler {i}" for i in range(20)]
    got_kind, event, got_address, _ = classify_log(noise + lines, vector)
    assert got_kind == kind
    assert event and event in "\n".join(lines) or kind == "panic" and event.startswith("Kernel")
    assert got_address == address
    assert kind in KINDS


def test_old_warning_before_the_real_report_is_ignored() -> None:
    old = ["WARNING: CPU: 0 PID: 9 at old/warning.c:1 x+0x1/0x2"] + ["..."] * 30
    kind, _, _, _ = classify_log(old + LOGS["general-protection-fault"][0])
    assert kind == "general-protection-fault"


def test_vector_alone_without_a_log() -> None:
    assert classify_log([], "page fault")[0] == "paging-request"
    assert classify_log([], "general protection")[0] == "general-protection-fault"
    assert classify_log([], None)[0] == "unknown"


def test_page_fault_error_code_bits() -> None:
    assert PageFault(0x0, None).text() == "read access in kernel mode, not-present page " \
        "(error code 0x0000)"
    w = PageFault(0x3, 0x10)
    assert (w.access, w.mode, w.cause) == ("write", "kernel", "protection violation")
    f = PageFault(0x11, 0)
    assert (f.access, f.cause) == ("instruction fetch", "protection violation")
    u = PageFault(0x6, 0)
    assert (u.access, u.mode, u.cause) == ("write", "user", "not-present page")
    assert PageFault(0x9, 0).cause == "reserved bit set in a page table entry"
    assert PageFault(0x21, 0).cause == "protection-key violation"
    assert classify_log(LOGS["paging-request"][0])[3] == 0x2


RIP = 0xFFFFFFFF81000000


def test_decode_register_base() -> None:
    o = decode_origin(bytes.fromhex("c60001") + bytes(13), RIP, {"rax": 0}, 0)
    assert o is not None and o.register is not None
    assert (o.register.name, o.register.value) == ("rax", 0)
    assert o.access == "write" and o.effective_address == 0 and not o.absolute
    assert "RAX = 0x0 (NULL)" in o.explanation
    o = decode_origin(bytes.fromhex("488b4708") + bytes(12), RIP, {"rdi": 0, "rax": 5}, 8)
    assert o is not None and o.register is not None
    assert (o.register.name, o.register.value, o.effective_address) == ("rdi", 0, 8)
    assert o.access == "read" and o.operand == "0x8(%rdi)"


def test_decode_32bit_register_maps_to_pt_regs_name() -> None:
    o = decode_origin(bytes.fromhex("8b4010") + bytes(13), RIP, {"rax": 0}, 0x10)
    assert o is not None and o.register is not None and o.register.name == "rax"


def test_decode_absolute_rip_relative_and_gs() -> None:
    o = decode_origin(bytes.fromhex("8b342501000000") + bytes(9), RIP, {}, 1)
    assert o is not None and o.absolute and o.register is None and o.effective_address == 1
    o = decode_origin(bytes.fromhex("488b0510000000") + bytes(9), RIP, {}, None)
    assert o is not None and not o.absolute and o.register is None
    assert o.effective_address == RIP + 7 + 0x10 and "%rip-relative" in o.explanation
    o = decode_origin(bytes.fromhex("65488b042528000000") + bytes(7), RIP, {}, None)
    assert o is not None and o.register is None and "%gs" in o.explanation


def test_decode_bad_index_register() -> None:
    regs = {"rax": 0xFFFF888000000000, "rcx": 0xDEAD000000000122}
    o = decode_origin(bytes.fromhex("488b04c8") + bytes(12), RIP, regs, None)
    assert o is not None and o.register is not None
    assert o.register.name == "rcx" and "list poison" in o.explanation


def test_decode_no_memory_operand() -> None:
    o = decode_origin(bytes.fromhex("31c0") + bytes(14), RIP, {}, None)
    assert o is not None and o.register is None and "no memory operand" in o.explanation


# -- more kinds, where the sample dumps for them exist --------------------------------------------

MORE = {  # dump: (kind, culprit function, module, file suffix, line, signature frames)
    "5.10-sysrq": ("sysrq", "sysrq_handle_crash", None, "drivers/tty/sysrq.c", 154,
                   ["sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger"]),
    "6.1-bug-kthread": ("bug", "bug_kthread_fn", "bug_kthread", "bug-kthread.c", 13,
                        ["bug_kthread_fn"]),
    "6.1-hung-task": ("hung-task", "hung_task_init", "hung_task", "hung-task.c", 13,
                      ["hung_task_init", "do_one_initcall", "do_init_module"]),
    "6.1-softlockup": ("soft-lockup", "softlockup_spin_fn", "softlockup", "softlockup.c", 18,
                       ["softlockup_spin_fn"]),
}


@pytest.mark.parametrize("name", sorted(MORE))
def test_more_kinds_on_real_dumps(name: str, triages: dict[str, Triage]) -> None:
    from tests.conftest import fetch_vmlinux

    if not (SAMPLES / name / "MANIFEST").is_file():
        pytest.skip(f"no sample dump {name}")
    try:
        vmlinux = fetch_vmlinux(SAMPLES / name / "MANIFEST")
    except Exception as exc:  # noqa: BLE001 - unavailable means skip, with the reason
        pytest.skip(f"debug vmlinux of {name} unavailable: {exc}")
    kind, function, module, suffix, line, frames = MORE[name]
    s = _open(name, vmlinux)
    try:
        t = build_triage(s)
    finally:
        s.close()
    assert t.kind == kind
    c = t.culprit
    assert c is not None and (c.function, c.module) == (function, module)
    assert c.file is not None and c.file.endswith(suffix) and c.line == line
    assert t.signature_frames == frames
    if module is not None:
        assert c.out_of_tree and c.module_taints == "OE"
    if kind == "sysrq":
        assert t.signature == triages["6.1-sysrq"].signature  # 5.10, 6.1, 6.12 alike
    if kind == "bug":
        assert t.bug is not None and not t.bug.warning
        assert t.bug.file is not None and t.bug.file.endswith(suffix) and t.bug.line == line
        assert t.origin is not None and t.origin.instruction == "ud2"
        assert t.origin.explanation == "" and t.bad_register is None
    if kind == "hung-task":
        assert "insmod (PID 121) was blocked" in t.summary and t.command == "khungtaskd"
    if kind == "soft-lockup":  # the spin loop's cpu_relax() is inlined at the RIP
        assert [f for f, _, _ in c.inlined] == ["cpu_relax"]


# -- views ----------------------------------------------------------------------------------------

def test_triage_in_the_json_document_validates(vmlinux_path: Path) -> None:
    import json

    import jsonschema

    from crashtui.report.jsondoc import build_document

    schema = json.loads((SAMPLES.parent / "docs" / "crashtui.schema.json").read_text())
    s = _open("6.1-test-module", vmlinux_path)
    try:
        doc = build_document(s)
        jsonschema.validate(doc, schema)
        # the JSON adds the culprit frame's variables and registers to the triage's own
        culprit = {k: v for k, v in doc["triage"]["culprit"].items()
                   if k not in ("variables", "registers")}
        assert dict(doc["triage"], culprit=culprit) == triage_to_json(build_triage(s))
        assert doc["triage"]["culprit"]["registers"] is not None
        assert list(doc)[list(doc).index("panic") + 1] == "triage"
    finally:
        s.close()


def test_report_starts_with_the_triage(vmlinux_path: Path) -> None:
    from crashtui.report.markdown import build_report

    s = _open("6.1-test-module", vmlinux_path)
    try:
        text = build_report(s)
    finally:
        s.close()
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads[0] == "## Triage: NULL pointer dereference"
    assert heads[1].startswith("## Summary")
    assert "- **Faulting instruction:** `ffffffffc03c4005: mov    0x1,%esi`" in text
    assert "- **Signature:** `d708b8660f752058`" in text


def test_triage_view_shows_dump_strings_literally() -> None:
    import asyncio

    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from crashtui.analysis.triage import BadRegister, Culprit
    from crashtui.tui.triage_view import TriageView, triage_text

    hostile = "[bold red]x[/] \x1b[31m"
    t = Triage("null-pointer-dereference", KINDS["null-pointer-dereference"], f"in {hostile}",
               culprit=Culprit(hostile, 5, 0x10, module="m[o]d", file="a.c", line=3,
                               module_taints="OE", out_of_tree=True),
               bad_register=BadRegister("rax", 0), signature="0123456789abcdef",
               signature_frames=[hostile], event=hostile)
    text = triage_text(t).plain
    assert "[bold red]x[/]" in text and "\x1b" not in text and "\\x1b" in text
    assert "RAX = 0x0" in text and "m[o]d" in text and "a.c:3" in text

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TriageView(id="triage")

    async def run() -> str:
        app = Host()
        async with app.run_test() as pilot:
            app.query_one(TriageView).show(t)
            await pilot.pause()
            return str(app.query_one("#triage-body", Static).render())

    shown = asyncio.run(run())
    assert "[bold red]x[/]" in shown and "Signature" in shown


def test_damaged_memory_degrades_gracefully(testmod_dump: Path, vmlinux_path: Path) -> None:
    """Unreadable code at RIP, an unreadable log: the triage still answers from the rest."""
    from test_robustness_support import overlay

    rip = 0xFFFFFFFFC03C4005
    s = Session.open(testmod_dump, vmlinux_path)
    try:
        with overlay(s.kernel) as view:
            view.hole(rip - 0x100, 0x200)
            t = build_triage(s)
        assert t.kind == "null-pointer-dereference" and t.origin is None
        assert t.bad_register is None and t.culprit is not None
        assert any("could not be read" in n for n in t.notes)
    finally:
        s.close()
    s = Session.open(testmod_dump, vmlinux_path)
    try:
        with overlay(s.kernel) as view:
            for name in ("prb", "printk_rb_static", "printk_rb_dynamic"):
                addr = s.kernel.symbol_or_none(name)
                if addr is not None:
                    view.hole(addr, 64)
            t = build_triage(s)
        assert t.kind == "null-pointer-dereference"  # the vector and the operand's address
        assert t.fault_address == 1 and t.page_fault is None and t.event == ""
        assert t.vector == "page fault" and t.culprit is not None
        assert t.culprit.function == "test_module_init"
        assert t.origin is not None and t.origin.absolute
    finally:
        s.close()
