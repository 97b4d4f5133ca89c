"""Hostile strings from the dump reach the terminal only as visible text.

A copy of the real test-module dump gets escape sequences, Rich markup, table pipes and HTML
in the panic task's comm, the nodename, a log record and a module name (written into the
pages themselves); every `-c` command's output, the errors and --json must carry them
neutralised (ESC shown as \\x1b) yet literal (`[bold]` stays `[bold]`).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from test_robustness_support import cli, copy_with, plant

from crashtui.commands import command_names
from crashtui.kernel.program import Kernel
from crashtui.kernel.tasks import TaskReader, current_task
from crashtui.textsafe import terminal_safe

pytestmark = pytest.mark.needs_vmlinux

COMM = b"\x1b[2J[b]|<i>\x07"  # 15 bytes with its NUL: fills task_struct.comm
NODENAME = b"\x1b]0;pwned\x07\x1b[31m[bold]red[/bold]|<script>alert(1)</script>\r\x9b2J"
LOGTEXT = b"\x1b[2J\x1b[H[bold]FAKE PANIC[/bold] | <script>x</script>\r\x1b[1A"
MODNAME = b"\x1b[2Jmod[bold]|<b>"
# Bytes that must never reach the terminal raw (as text: C0/C1 controls but TAB and newline).
RAW_CONTROLS = [chr(c) for c in (*range(0, 9), *range(11, 32), *range(0x7F, 0xA0))]


def _module(kernel: Kernel, name: str) -> int:
    from crashtui.kernel.modules import read_modules

    return next(m.address for m in read_modules(kernel).modules if m.name == name)


@pytest.fixture(scope="module")
def hostile_dump(testmod_dump: Path, vmlinux_path: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-module dump with hostile strings planted in its memory."""
    path = copy_with(testmod_dump, tmp_path_factory.mktemp("hostile") / "dump.hostile")
    kernel = Kernel.open(testmod_dump, vmlinux_path)
    try:
        reader = TaskReader(kernel)
        from crashtui.kernel.system import panic_cpu

        cpu = panic_cpu(kernel)
        assert cpu is not None
        task = current_task(kernel, cpu)
        plant(path, kernel, task + reader.o_comm, COMM + b"\0")
        uts = kernel.symbol("init_uts_ns") + kernel.offsetof("uts_namespace", "name")
        plant(path, kernel, uts + 65, NODENAME + b"\0")
        plant(path, kernel, _log_text_address(kernel, len(LOGTEXT)), LOGTEXT)
        module = _module(kernel, "test_module")
        plant(path, kernel, module + kernel.offsetof("module", "name"), MODNAME + b"\0")
    finally:
        kernel.close()
    return path


def _log_text_address(kernel: Kernel, length: int) -> int:
    """Where the text of the 50th record with at least `length` bytes of text lies."""
    vi = kernel.vmcoreinfo
    prb = kernel.read_u64(vi.symbols["prb"])
    count_bits, descs, infos = kernel.read_u32(prb), kernel.read_u64(prb + 8), \
        kernel.read_u64(prb + 16)
    tail = kernel.read_u64(prb + 32) & ((1 << 62) - 1)
    size_bits, data = kernel.read_u32(prb + 48), kernel.read_u64(prb + 56)
    found = 0
    for id_ in range(tail, tail + (1 << count_bits)):
        idx = id_ & ((1 << count_bits) - 1)
        text_len = struct.unpack("<H", kernel.read(infos + idx * 88 + 16, 2))[0]
        begin = kernel.read_u64(descs + idx * 24 + 8)
        if text_len >= length:
            found += 1
            if found == 50:
                return data + (begin & ((1 << size_bits) - 1)) + 8
    raise AssertionError("no long record")


def run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """The real `crashtui` entry point in a child process; output kept as bytes."""
    return subprocess.run([sys.executable, "-m", "crashtui.cli", *map(str, args)],
                          capture_output=True, timeout=300)


def assert_no_raw_controls(text: str) -> None:
    bad = sorted({f"{ord(c):#x}" for c in text if c in RAW_CONTROLS})
    assert not bad, f"raw control characters reached the terminal: {bad}"


# Command lines worth running on the hostile dump; every other registered command runs bare.
COMMAND_LINES = ["sys", "log", "ps", "mod", "bt", "bt -a", "foreach bt", "kmem -i", "help",
                 "sym test_module_init", "dis -l test_module_init", "mod -s test_module x",
                 "bt 999999", "sym \x1b[2J", "p init_uts_ns", "rd -a init_uts_ns 400",
                 "struct new_utsname init_uts_ns"]


def command_lines() -> list[str]:
    """COMMAND_LINES, then each command they do not use (so all that exist are checked)."""
    used = {line.split()[0] for line in COMMAND_LINES}
    return COMMAND_LINES + [name for name in command_names() if name not in used]


def test_every_command_is_covered() -> None:
    assert set(command_names()) <= {line.split()[0] for line in command_lines()}


def test_cli_end_to_end(hostile_dump: Path, vmlinux_path: Path) -> None:
    args: list[str | Path] = [hostile_dump, vmlinux_path]
    for line in command_lines():
        args += ["-c", line]
    result = run(*args)
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode in (0, 1), err
    assert "Traceback" not in err
    assert_no_raw_controls(out)
    assert_no_raw_controls(err)
    shown_node = terminal_safe(NODENAME.decode("utf-8", "replace"))
    assert f"    NODENAME: {shown_node}" in out.splitlines()
    assert "[bold]red[/bold]|<script>alert(1)</script>" in out
    assert terminal_safe(LOGTEXT.decode()) in out  # the log line, verbatim but visible
    shown_comm = terminal_safe(COMM.decode())
    assert any(line.startswith(">") and line.endswith(f"  {shown_comm}")
               for line in out.splitlines())  # ps
    assert f'COMMAND: "{shown_comm}"' in out  # bt header
    assert terminal_safe(MODNAME.decode()) in out  # mod: the name is refused as damaged
    assert "sym: \\x1b[2J: symbol not found" in err  # the hostile argument, escaped


def test_json_escapes_everything(hostile_dump: Path, vmlinux_path: Path) -> None:
    result = run(hostile_dump, vmlinux_path, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout.decode()
    assert_no_raw_controls(text)
    doc = json.loads(text)
    assert doc["summary"]["NODENAME"] == NODENAME.decode("utf-8", "replace")


def test_hostile_file_names(tmp_path: Path, vmlinux_path: Path) -> None:
    """Paths are shown neutralised too (they come from the user, but may come from a dump
    directory someone else named)."""
    evil = tmp_path / "dump.\x1b[2J\x07"
    result = cli(evil, vmlinux_path, "-c", "sys")
    assert result.status == 2
    assert_no_raw_controls(result.err)
    assert "dump.\\x1b[2J\\x07: dump file not found" in result.err


@pytest.mark.parametrize("text,shown", [
    ("\x1b[2J", "\\x1b[2J"), ("a\rb", "a\\x0db"), ("bell\x07", "bell\\x07"),
    ("\x9b31m", "\\x9b31m"), ("tab\tok", "tab\tok"), ("two\nlines", "two\\x0alines"),
    ("del\x7f", "del\\x7f"), ("rlo\u202etxt.exe", "rlo\\u202etxt.exe"),
    ("zero\u200bwidth", "zero\\u200bwidth"), ("ls\u2028sep", "ls\\u2028sep"),
    ("[bold]|<script>", "[bold]|<script>"), ("ünïcödé ✓", "ünïcödé ✓"),
])
def test_terminal_safe(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_markdown_report_to_stdout(hostile_dump: Path, vmlinux_path: Path) -> None:
    """The report engineer escapes Markdown; here only: no raw control reaches a terminal."""
    result = run(hostile_dump, vmlinux_path, "--report", "-")
    assert result.returncode == 0, result.stderr[-2000:]
    assert_no_raw_controls(result.stdout.decode("utf-8", "replace"))


def test_dumpfile_tool_output(sysrq_dump: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m crashtui.dumpfile` prints the header's utsname and VMCOREINFO lines."""
    from crashtui.dumpfile.__main__ import main

    path = copy_with(sysrq_dump, tmp_path / "dump", {12 + 65: NODENAME[:64] + b"\0"})
    assert main([str(path), "-n", "200"]) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert "\\x1b]0;pwned" in out
