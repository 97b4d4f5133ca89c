"""The Markdown report: crash's facts on both real dumps, CommonMark structure, escaping, staleness."""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import dump_of
from markdown_it import MarkdownIt
from markdown_it.token import Token

from crashtui.analysis.session import Session
from crashtui.kernel.printk import KernelLog, LogRecord
from crashtui.report import gather as gather_mod
from crashtui.report import mdescape as md
from crashtui.report.markdown import ReportOptions, build_report
from crashtui.report.regenerate import REPORT_NAME, default_vmlinux, sample_dirs, stable_report

ROOT = Path(__file__).resolve().parent.parent
DUMPS = ["6.1-sysrq", "6.1-test-module"]
HOSTILE = "a|b<script>alert(1)</script>``` `x` *y* _z_ [l](http://e) &amp; #1 ~~s~~ $m$ @u"


def parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


@dataclass
class Parsed:
    """What a CommonMark renderer sees in a document."""

    headings: list[tuple[int, str]] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cell texts
    fences: list[tuple[str, str]] = field(default_factory=list)  # (info, content)
    html_tokens: list[str] = field(default_factory=list)
    html: str = ""


def parse(text: str) -> Parsed:
    mdi = parser()
    tokens = mdi.parse(text)
    out = Parsed(html=mdi.render(text))
    row: list[str] | None = None
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            out.headings.append((int(tok.tag[1]), _text(tokens[i + 1])))
        elif tok.type == "table_open":
            out.tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open") and row is not None:
            row.append(_text(tokens[i + 1]))
        elif tok.type == "tr_close" and row is not None:
            out.tables[-1].append(row)
            row = None
        elif tok.type == "fence":
            out.fences.append((tok.info, tok.content))
        elif tok.type in ("html_block", "html_inline"):
            out.html_tokens.append(tok.content)
        for child in tok.children or []:
            if child.type == "html_inline":
                out.html_tokens.append(child.content)
    return out


def _text(inline: Token) -> str:
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))



def crash_file(name: str, file: str) -> list[str]:
    return (ROOT / "sample-dumps" / name / "crash" / file).read_text().splitlines()


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """crash printed the sample dumps' DATE in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture(scope="module")
def sessions(vmlinux_path: Path) -> dict[str, Session]:
    """Both dumps; the module dump with its .ko loaded (like --modules)."""
    out = {name: Session.open(dump_of(name), vmlinux_path) for name in DUMPS}
    out["6.1-test-module"].load_modules_dir(ROOT / "sample-dumps" / "6.1-test-module")
    return out


@pytest.fixture(scope="module")
def reports(sessions: dict[str, Session]) -> dict[str, str]:
    return {name: build_report(s) for name, s in sessions.items()}


# -- escaping helpers -------------------------------------------------------------------------


def test_inline_text_renders_literally() -> None:
    doc = parse("Value: " + md.inline(HOSTILE))
    assert not doc.html_tokens
    assert "<script>" not in doc.html
    assert html.unescape(re.sub(r"<[^>]+>", "", doc.html)).strip() == "Value: " + HOSTILE


def test_inline_keeps_identifiers_readable() -> None:
    assert md.inline("PREEMPT_DYNAMIC x86_64 TASK_RUNNING") == "PREEMPT_DYNAMIC x86_64 TASK_RUNNING"
    assert md.inline("__init__ _x_") == r"\_\_init\_\_ \_x\_"


def test_control_characters_become_visible() -> None:
    assert md.inline("a\x1b[31mb\nc") == r"a\\x1b\[31mb\\x0ac"
    assert md.fence(["a\rb"]).splitlines()[1] == "a\\x0db"


@pytest.mark.parametrize("text", [HOSTILE, "`", "``x``", "| a |", " ` ", "x`"])
def test_code_span_holds_any_text(text: str) -> None:
    doc = parse("| h |\n| --- |\n| " + md.code(text, in_table=True) + " |")
    assert doc.tables == [[["h"], [text]]]
    assert "<script>" not in doc.html


def test_table_cells_cannot_split_or_escape() -> None:
    rows = [[md.cell(HOSTILE), md.code(HOSTILE, in_table=True)], [md.cell("| x |"), ""]]
    doc = parse(md.table(["a", "b"], rows))
    assert doc.tables == [[["a", "b"], [HOSTILE, HOSTILE], ["| x |", ""]]]
    assert not doc.html_tokens


def test_fence_is_longer_than_any_backtick_run_inside() -> None:
    lines = ["```", "````` five", "<script>alert(1)</script>", "~~~", "    indented"]
    block = md.fence(lines, "text")
    assert block.startswith("``````text\n")
    doc = parse(block + "\n\nafter")
    assert doc.fences == [("text", "\n".join(lines) + "\n")]
    assert "<script>" not in doc.html


def test_fence_info_string_is_sanitised() -> None:
    assert md.fence(["x"], "te`x t").splitlines()[0] == "```text"


# -- the report on the real dumps -------------------------------------------------------------


def crash_panic_message(name: str) -> str:
    line = next(x for x in crash_file(name, "sys.txt") if x.strip().startswith("PANIC:"))
    return line.split('"')[1]


def crash_frames(lines: list[str]) -> list[str]:
    """The function names of crash's `bt` frame lines, in order."""
    return [m.group(1) for x in lines if (m := re.match(r"\s*#\d+ \[[0-9a-f]+\] (\S+) at ", x))]


@pytest.mark.parametrize("name", DUMPS)
def test_report_is_commonmark_with_expected_structure(name: str, sessions: dict[str, Session],
                                                      reports: dict[str, str]) -> None:
    doc = parse(reports[name])
    assert doc.headings[0] == (1, crash_panic_message(name))
    titles = [t for level, t in doc.headings if level == 2]
    want = ["Summary (sys)", "Panic backtrace", "Modules and taint", "Kernel log", "The dump",
            "Reproduce", "Faulting frame", "Exception registers", "Other CPUs"]
    for title in want:
        assert any(t.startswith(title) for t in titles), (title, titles)
    assert not doc.html_tokens, "no raw HTML may reach the renderer"
    for table in doc.tables:
        assert len({len(r) for r in table}) == 1, table[0]
    summary = doc.tables[0]
    assert summary[0] == ["Field", "Value"]
    infos = [info for info, _ in doc.fences]
    assert infos.count("sh") == 1
    assert infos.count("text") >= 2  # oops block, log tail (and the backtraces)


@pytest.mark.parametrize("name", DUMPS)
def test_summary_table_holds_crash_sys(name: str, reports: dict[str, str]) -> None:
    table = dict(parse(reports[name]).tables[0][1:])
    for line in crash_file(name, "sys.txt"):
        key, _, value = line.partition(": ")
        key = key.strip()
        if key in ("KERNEL", "DUMPFILE"):
            continue
        assert table[key] == value, key
    assert table["PANIC"].startswith('"' + crash_panic_message(name))


@pytest.mark.parametrize("name", DUMPS)
def test_log_block_and_tail(name: str, reports: dict[str, str]) -> None:
    doc = parse(reports[name])
    log = crash_file(name, "log.txt")
    message = crash_panic_message(name)
    block = next(c for _, c in doc.fences if message in c and "Call Trace:" in c)
    assert block.splitlines()[-1] in log
    tail = next(c for _, c in doc.fences if c.splitlines() == log[-100:])
    assert tail


def oops_block(report: str) -> str:
    """The fence under the report's "The oops/panic report" heading."""
    section = report.split("### The oops/panic report", 1)[1].split("\n### ", 1)[0]
    return parse(section).fences[0][1]


def test_oops_block_starts_at_the_report(reports: dict[str, str]) -> None:
    block = oops_block(reports["6.1-test-module"])
    assert "BUG: kernel NULL pointer dereference, address: 0000000000000001" in \
        block.splitlines()[0]
    assert "Oops: 0000" in block and "Modules linked in: test_module(OE+)" in block
    block = oops_block(reports["6.1-sysrq"])
    assert block.splitlines()[0].endswith("sysrq: Trigger a crash")
    assert "sysrq triggered crash" in block


def test_report_with_linux_source_installed(sessions: dict[str, Session], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With Debian's linux-source-6.1 where crashtui looks (/usr/src, here CRASHTUI_SRC_ROOT)
    the faulting frame's excerpt quotes sysrq.c, panic string included; the oops block is
    still the log's."""
    tree = tmp_path / "linux-source-6.1"
    (tree / "drivers" / "tty").mkdir(parents=True)
    lines = [f"/* line {n} */" for n in range(1, 200)]
    lines[154] = '\tpanic("sysrq triggered crash\\n");'
    (tree / "drivers" / "tty" / "sysrq.c").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("CRASHTUI_SRC_ROOT", str(tmp_path))
    report = build_report(sessions["6.1-sysrq"])
    fault = report.split("## Faulting frame", 1)[1].split("\n## ", 1)[0]
    info, excerpt = parse(fault).fences[0]
    marked = [x for x in excerpt.splitlines() if x.startswith(">")]
    assert info == "c" and len(marked) == 1
    assert marked[0].split()[1] == "155" and "sysrq triggered crash" in marked[0]
    assert oops_block(report).splitlines()[0].endswith("sysrq: Trigger a crash")


def test_report_names_a_source_tree_of_another_version(
        sessions: dict[str, Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree whose Makefile says 6.1.190 quoted for the 6.1.192 kernel: the excerpt says so
    where it says where the file was found; the matching version says nothing."""
    tree = tmp_path / "linux-source-6.1"
    (tree / "drivers" / "tty").mkdir(parents=True)
    (tree / "drivers" / "tty" / "sysrq.c").write_text("/* */\n" * 200)
    makefile = "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = {}\n"
    monkeypatch.setenv("CRASHTUI_SRC_ROOT", str(tmp_path))
    for sublevel, note in ((190, f"(⚠ {tree} is 6.1.190, the kernel is 6.1.192)"), (192, None)):
        (tree / "Makefile").write_text(makefile.format(sublevel))
        fault = build_report(sessions["6.1-sysrq"]).split("## Faulting frame", 1)[1]
        fault = fault.split("\n## ", 1)[0]
        assert "found" in fault
        assert (note in fault) if note else ("⚠" not in fault)


@pytest.mark.parametrize("name", DUMPS)
def test_dump_facts_and_reproduce(name: str, reports: dict[str, str],
                                  vmlinux_path: Path) -> None:
    doc = parse(reports[name])
    facts = dict(next(t for t in doc.tables if t[0] == ["Fact", "Value"])[1:])
    assert facts["Format"] == "kdump-compressed"
    assert facts["Compression"] == "zlib"
    assert facts["Dump level"].startswith("31")
    assert facts["Partial"].startswith("yes")
    assert facts["Incomplete"] == "no"
    assert facts["vmlinux"] == str(vmlinux_path)
    assert facts["Build ID"] == "3b43fad5034874490492495d552c0af6a5fab235"
    sh = next(c for info, c in doc.fences if info == "sh").splitlines()
    assert sh[0].startswith(f"crashtui {dump_of(name)} {vmlinux_path} ")
    assert sh[0].endswith(" -c sys -c 'bt -a' -c 'kmem -i' -c mod -c ps -c log")
    if name == "6.1-test-module":
        ko_dir = ROOT / "sample-dumps" / name / "test-module"
        assert f" --modules {ko_dir} " in sh[0]
        assert f"mod -s test_module {ko_dir / 'test-module.ko'}" in sh[-1]


@pytest.mark.parametrize("name", DUMPS)
def test_panic_backtrace_frames_in_crash_order(name: str, sessions: dict[str, Session],
                                               reports: dict[str, str]) -> None:
    doc = parse(reports[name])
    want = crash_file(name, "bt.txt")
    block = next(c for _, c in doc.fences if c.startswith(want[0].split("COMMAND")[0]))
    assert crash_frames(block.splitlines()) == crash_frames(want)


@pytest.mark.parametrize("name", DUMPS)
def test_every_other_cpu_has_a_backtrace(name: str, sessions: dict[str, Session],
                                         reports: dict[str, str]) -> None:
    doc = parse(reports[name])
    headers = [x for x in crash_file(name, "bt-a.txt") if x.startswith("PID:")]
    for header in headers:
        assert any(c.startswith(header) for _, c in doc.fences), header


def test_faulting_frame_sysrq(sessions: dict[str, Session], reports: dict[str, str]) -> None:
    text = reports["6.1-sysrq"]
    section = text.split("## Faulting frame", 1)[1].split("\n## ", 1)[0]
    assert "`sysrq_handle_crash+0x16`" in section
    assert "sysrq.c:155`" in section  # crash: sym ffffffff9fca8a06 -> drivers/tty/sysrq.c: 155
    info, block = parse(section).fences[0]
    marked = [x for x in block.splitlines() if x.startswith(">")]
    assert len(marked) == 1
    if info == "c":  # a kernel source tree was found (--source, CRASHTUI_SOURCE, /usr/src)
        assert marked[0].split()[1] == "155" and "panic(" in marked[0]
    else:  # crash's dis -l: the call to panic() before the return address is marked
        assert "dis -l sysrq_handle_crash" in section
        assert marked[0].endswith("call   0xffffffff9ffccf31 <panic>")
        assert "sysrq.c: 155" in block


def test_faulting_frame_test_module(sessions: dict[str, Session],
                                    reports: dict[str, str]) -> None:
    section = reports["6.1-test-module"].split("## Faulting frame", 1)[1].split("\n## ", 1)[0]
    assert "`test_module_init+0x5` (exception RIP" in section  # not crash's _MODULE_INIT_START
    assert "0xffffffffc03c4005" in section
    if "test-module.c" not in section:
        pytest.skip("backend: no module debug info for the faulting frame's file:line yet")
    assert "test-module.c:9`" in section
    info, block = parse(section).fences[0]
    assert info == "c"
    marked = [x for x in block.splitlines() if x.startswith(">")]
    assert marked == ['>  9          printk("%d\\n", *p);']


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_totals(name: str, sessions: dict[str, Session], reports: dict[str, str]) -> None:
    table = next((t for t in parse(reports[name]).tables if t[0][1:] == ["Pages", "Total",
                                                                          "Percentage"]), None)
    assert table is not None
    mine = {r[0]: r[1:] for r in table[1:]}
    for line in crash_file(name, "kmem-i.txt"):
        m = re.match(r"\s*([A-Z][A-Z ]+?)\s{2,}(\d+)\s+(\S+(?: [KMG]B)?)\s", line + " ")
        if m and m.group(1) in ("TOTAL MEM", "FREE", "USED", "TOTAL SWAP", "COMMIT LIMIT"):
            assert mine[m.group(1)][:2] == [m.group(2), m.group(3)], line


def test_modules_show_taint_flags(sessions: dict[str, Session],
                                  reports: dict[str, str]) -> None:
    text = reports["6.1-test-module"]
    assert "Kernel taint: `G           OE     `" in text
    table = next((t for t in parse(text).tables if t[0][:2] == ["Name", "Base"]), None)
    assert table is not None
    rows = {r[0]: r for r in table[1:]}
    names = [x.split()[1] for x in crash_file("6.1-test-module", "mod.txt")[1:]]
    assert sorted(rows) == sorted(names)
    assert rows["test_module"][3] == "OE"
    assert "out-of-tree" in rows["test_module"][4] and "unsigned" in rows["test_module"][4]


# -- hostile strings from the dump ------------------------------------------------------------


def test_hostile_strings_come_out_escaped(vmlinux_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    tasks = session.tasks
    victim = next(t for t in tasks.tasks if t.comm == "dd")
    tasks.tasks[tasks.tasks.index(victim)] = dataclasses.replace(victim, comm=HOSTILE)
    log = session.log
    extra = LogRecord(10**9, 9 * 10**9, HOSTILE + "\n<img src=x onerror=alert(1)>", 0)
    session.__dict__["log"] = KernelLog([*log.records, extra], log.error)
    session.summary.fields["NODENAME"] = HOSTILE
    session.summary.panic_message = HOSTILE
    mods = session.modules.modules
    mods[0] = dataclasses.replace(mods[0], name=HOSTILE)
    doc = parse(build_report(session))
    assert doc.headings[0] == (1, HOSTILE)
    assert not doc.html_tokens
    assert "<script" not in doc.html and "<img" not in doc.html
    for table in doc.tables:
        assert len({len(r) for r in table}) == 1, table
    cells = [c for t in doc.tables for r in t for c in r]
    assert HOSTILE in cells  # NODENAME, the task's COMM and the module name, intact
    assert cells.count(HOSTILE) >= 3
    blocks = [c for _, c in doc.fences if "<img src=x onerror=alert(1)>" in c]
    assert len(blocks) == 2 and all(HOSTILE in c for c in blocks)  # oops block, last lines
    assert any(f'COMMAND: "{HOSTILE}"' in c for _, c in doc.fences)
    session.close()


# -- committed reports, CLI -------------------------------------------------------------------


@pytest.mark.parametrize("sample", sample_dirs(), ids=lambda p: p.name)
def test_committed_report_is_fresh(sample: Path) -> None:
    try:
        vmlinux = default_vmlinux(sample)
    except Exception as exc:  # noqa: BLE001 - no network, no package: skip with the reason
        pytest.skip(f"debug vmlinux of {sample.name} unavailable: {exc}")
    committed = sample / REPORT_NAME
    assert committed.is_file(), f"missing {committed}: run python -m crashtui.report.regenerate"
    assert committed.read_text() == stable_report(sample, vmlinux), \
        f"{committed} is stale: run python -m crashtui.report.regenerate"


def test_regenerate_help_writes_nothing() -> None:
    """`python -m crashtui.report.regenerate --help` prints its usage and rewrites no report;
    an unknown sample name is an error, not a silent no-op."""
    reports = {s: (s / REPORT_NAME).stat().st_mtime_ns for s in sample_dirs()}
    r = subprocess.run([sys.executable, "-m", "crashtui.report.regenerate", "--help"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m crashtui.report.regenerate") and "DUMP_DIR" in r.stdout
    r = subprocess.run([sys.executable, "-m", "crashtui.report.regenerate", "no-such-dump"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "no such sample dump: no-such-dump" in r.stderr
    assert r.stdout == ""
    assert {s: (s / REPORT_NAME).stat().st_mtime_ns for s in sample_dirs()} == reports


def test_cli_report_to_stdout_and_file(tmp_path: Path, vmlinux_path: Path) -> None:
    dump = dump_of("6.1-sysrq")
    run = [sys.executable, "-m", "crashtui.cli", str(dump), str(vmlinux_path), "--report"]
    r = subprocess.run([*run, "-"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Kernel panic - not syncing: sysrq triggered crash\n")
    out = tmp_path / "r.md"
    r = subprocess.run([*run, str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert out.read_text() == r.stdout or out.read_text().startswith("# Kernel panic")


def test_source_excerpt_from_a_source_tree(sessions: dict[str, Session], tmp_path: Path) -> None:
    src = tmp_path / "drivers" / "tty" / "sysrq.c"
    src.parent.mkdir(parents=True)
    src.write_text("".join(f"line {n} ```<b>\n" for n in range(1, 301)))
    text = build_report(sessions["6.1-sysrq"], ReportOptions(sources=(str(tmp_path),)))
    section = text.split("## Faulting frame", 1)[1].split("\n## ", 1)[0]
    info, block = parse(section).fences[0]
    assert info == "c"
    numbers = [int(x[1:].split()[0]) for x in block.splitlines()]
    assert numbers == list(range(145, 166))  # ±10 lines around sysrq.c:155
    assert [x for x in block.splitlines() if x.startswith(">")] == ["> 155  line 155 ```<b>"]
    assert "<b>" not in parse(section).html


def test_build_id_without_a_vmlinux() -> None:
    """The dump's own BUILD-ID (VMCOREINFO) names the kernel when no vmlinux is given."""
    dump_dir = ROOT / "sample-dumps" / "6.1-sysrq"
    manifest = dict(line.split("=", 1) for line in (dump_dir / "MANIFEST").read_text()
                    .splitlines() if "=" in line)
    session = Session.open(next(dump_dir.glob("dump.*")))
    try:
        facts = gather_mod.dump_facts(session)
        assert facts.vmlinux is None
        assert facts.build_id == manifest["vmlinux_build_id"]
        assert f"`{facts.build_id}`" in build_report(session, ReportOptions())
    finally:
        session.close()
