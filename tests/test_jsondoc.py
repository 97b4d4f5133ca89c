"""The --json document: valid against docs/crashtui.schema.json on both dumps, facts equal crash's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import dump_of

from crashtui.report.regenerate import default_vmlinux, sample_dirs

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "crashtui.schema.json"
DUMPS = ["6.1-sysrq", "6.1-test-module"]



def crash_file(name: str, file: str) -> list[str]:
    return (ROOT / "sample-dumps" / name / "crash" / file).read_text().splitlines()


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def docs(vmlinux_path: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name in DUMPS:
        r = subprocess.run([sys.executable, "-m", "crashtui.cli", str(dump_of(name)),
                            str(vmlinux_path), "--json"], capture_output=True, text=True,
                           timeout=120, cwd=ROOT, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        out[name] = json.loads(r.stdout)
    return out


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_docs_describe_every_top_level_key() -> None:
    text = (ROOT / "docs" / "json.md").read_text()
    for key in json.loads(SCHEMA.read_text())["properties"]:
        assert f"`{key}`" in text, key


@pytest.mark.parametrize("name", DUMPS)
def test_json_validates_against_schema(name: str, docs: dict[str, dict[str, Any]]) -> None:
    errors = sorted(validator().iter_errors(docs[name]), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize("sample", sample_dirs(), ids=lambda p: p.name)
def test_every_sample_dump_validates(sample: Path) -> None:
    """Every dump in sample-dumps/ (with the vmlinux its MANIFEST names), --modules included."""
    try:
        vmlinux = default_vmlinux(sample)
    except Exception as exc:  # noqa: BLE001 - no network, no package: skip with the reason
        pytest.skip(f"debug vmlinux of {sample.name} unavailable: {exc}")
    extra = ["--modules", str(sample)] if any(sample.rglob("*.ko")) else []
    r = subprocess.run([sys.executable, "-m", "crashtui.cli", str(next(sample.glob("dump.*"))),
                        str(vmlinux), "--json", *extra], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert doc["backtraces"] is None or sum(bt["panic"] for bt in doc["backtraces"]) == 1


def test_schema_rejects_a_broken_document(docs: dict[str, dict[str, Any]]) -> None:
    doc = json.loads(json.dumps(docs["6.1-sysrq"]))
    doc["schema"] = 2
    del doc["log"]
    doc["tasks"][0]["task"] = 123
    messages = [e.message for e in validator().iter_errors(doc)]
    assert len(messages) == 3, messages


@pytest.mark.parametrize("name", DUMPS)
def test_dump_facts(name: str, docs: dict[str, dict[str, Any]], vmlinux_path: Path) -> None:
    d = docs[name]
    assert d["schema"] == 1
    assert d["tool"]["name"] == "crashtui"
    assert d["dump"] == {"path": str(dump_of(name)), "format": "kdump-compressed",
                         "compression": ["zlib"], "dump_level": 31, "partial": True,
                         "incomplete": False, "page_size": 4096, "vmlinux": str(vmlinux_path),
                         "build_id": "3b43fad5034874490492495d552c0af6a5fab235"}
    assert d["triage"]["kind"] in ("sysrq", "null-pointer-dereference")  # test_triage.py


@pytest.mark.parametrize("name", DUMPS)
def test_tasks_equal_crash_ps(name: str, docs: dict[str, dict[str, Any]]) -> None:
    ps = crash_file(name, "ps.txt")[1:]
    tasks = docs[name]["tasks"]
    assert len(tasks) == len(ps)
    for t, line in zip(tasks, ps, strict=True):
        cols = line[1:].split(None, 8)
        comm = f"[{t['command']}]" if t["kthread"] else t["command"]
        mine = [t["pid"], t["ppid"], t["cpu"], t["task"], t["state"], f"{t['mem_percent']:.1f}",
                t["vsz"], t["rss"], comm, t["active"]]
        want = [int(cols[0]), int(cols[1]), int(cols[2]), "0x" + cols[3], cols[4], cols[5],
                int(cols[6]), int(cols[7]), cols[8], line.startswith(">")]
        assert mine == want, line


@pytest.mark.parametrize("name", DUMPS)
def test_errors_explain_every_missing_section(name: str, docs: dict[str, dict[str, Any]]) -> None:
    d = docs[name]
    for key in ("backtraces", "kmem", "modules", "tasks"):
        if d[key] is None:
            assert any(e.startswith(key + ":") for e in d["errors"]), key


@pytest.mark.parametrize("name", DUMPS)
def test_backtraces_equal_crash_bt_a(name: str, docs: dict[str, dict[str, Any]]) -> None:
    bts = docs[name]["backtraces"]
    assert bts is not None
    crash = crash_file(name, "bt-a.txt")
    headers = [x for x in crash if x.startswith("PID:")]
    assert len(bts) == len(headers)
    by_cpu = {bt["cpu"]: bt for bt in bts}
    for header in headers:
        m = re.match(r"PID: (\d+)\s+TASK: (\S+)\s+CPU: (\d+)", header)
        assert m is not None, header
        pid, task, cpu = m.groups()
        bt = by_cpu[int(cpu)]
        assert (bt["pid"], bt["task"]) == (int(pid), "0x" + task)
    panic = [bt for bt in bts if bt["panic"]]
    assert len(panic) == 1
    want = [m.group(1) for x in crash_file(name, "bt.txt")
            if (m := re.match(r"\s*#\d+ \[[0-9a-f]+\] (\S+) at ", x))]
    frames = [f for f in panic[0]["frames"] if not f["inline"]]  # inline frames: crashtui's own
    assert [f["function"] for f in frames] == want
    assert [f["index"] for f in frames] == list(range(len(want)))


def test_inline_frames_where_bt_i_prints_them(vmlinux_path: Path) -> None:
    """QA: --json had no inline frames although `bt -i` prints `[inline] __run_hrtimer`. Each
    backtrace holds them, in bt -i's order, with the index, sp and address of the frame they
    were inlined into; the other frames keep crash's numbering."""
    sample = ROOT / "sample-dumps" / "6.1-softlockup"
    args = [sys.executable, "-m", "crashtui.cli", str(dump_of("6.1-softlockup")),
            str(vmlinux_path), "--modules", str(sample / "softlockup")]
    r = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert validator().is_valid(doc)
    r = subprocess.run([*args, "-c", "bt -a -i"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    bt_i: dict[int, list[tuple[str, int | None, str]]] = {}
    cpu = -1
    for line in r.stdout.splitlines():
        if m := re.match(r"PID: .* CPU: (\d+) ", line):
            cpu = int(m.group(1))
            bt_i[cpu] = []
        elif m := re.match(r"\s*#(\d+) \[[0-9a-f]+\] (\S+) at ", line):
            bt_i[cpu].append(("frame", int(m.group(1)), m.group(2)))
        elif m := re.match(r"\s+\[inline\] (\S+)", line):
            bt_i[cpu].append(("inline", None, m.group(1)))
    total = 0
    for bt in doc["backtraces"]:
        frames = bt["frames"]
        mine = [("inline", None, f["function"]) if f["inline"] else
                ("frame", f["index"], f["function"]) for f in frames]
        assert mine == bt_i[bt["cpu"]], bt["cpu"]
        physical = [f for f in frames if not f["inline"]]
        assert [f["index"] for f in physical] == list(range(len(physical)))
        for i, f in enumerate(frames):
            if f["inline"]:
                total += 1
                owner = next(g for g in frames[i + 1:] if not g["inline"])
                assert (f["index"], f["sp"], f["address"], f["return_address"]) == (
                    owner["index"], owner["sp"], owner["address"], owner["return_address"])
                assert f["offset"] == 0 and f["exception"] is None and f["stack"] is None
                assert f["file"] and f["line"]
    panic = next(bt for bt in doc["backtraces"] if bt["panic"])
    pairs = [(f["function"], f["index"], f["inline"]) for f in panic["frames"]]
    assert pairs.index(("__run_hrtimer", 4, True)) + 1 == pairs.index(
        ("__hrtimer_run_queues", 4, False))
    assert total == 20


@pytest.mark.parametrize("name", DUMPS)
def test_kmem_equals_crash(name: str, docs: dict[str, dict[str, Any]]) -> None:
    kmem = docs[name]["kmem"]
    assert kmem is not None
    for line in crash_file(name, "kmem-i.txt"):
        m = re.match(r"\s*([A-Z][A-Z ]+?)\s{2,}(\d+)\s", line)
        # crash is wrong about COMMITTED (test_kmem.py); SHARED only with kmem -i=shared
        if m and m.group(1) not in ("COMMITTED", "SHARED"):
            assert kmem[m.group(1)]["pages"] == int(m.group(2)), line
    assert "SHARED" not in kmem
    assert kmem["TOTAL MEM"]["bytes"] == kmem["TOTAL MEM"]["pages"] * 4096


def test_modules_carry_taint(docs: dict[str, dict[str, Any]]) -> None:
    d = docs["6.1-test-module"]
    assert d["panic"]["taint"] == "G           OE     "
    assert d["modules"] is not None
    mods = {m["name"]: m for m in d["modules"]}
    assert mods["test_module"]["taint"] == "OE"
    assert mods["test_module"]["base"] == "0xffffffffc03b9000"
