"""crashtui never writes to its inputs, never runs or unpickles what they hold, and writes
its reports and caches with the user's umask."""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import mmap
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_robustness_support import cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crashtui"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def stamp(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode


class OpenLog:
    """Every open of a file, with how it was opened, during a run."""

    def __init__(self) -> None:
        self.opens: list[tuple[str, str]] = []

    def record(self, path: object, how: str) -> None:
        if isinstance(path, (str, bytes, os.PathLike)):
            self.opens.append((os.path.realpath(os.fsdecode(path)), how))


@pytest.fixture
def open_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenLog]:
    log = OpenLog()
    real_open, real_os_open, real_mmap = builtins.open, os.open, mmap.mmap

    def logged_open(file: object, mode: str = "r", *a: object, **kw: object) -> object:
        log.record(file, f"open:{mode}")
        return real_open(file, mode, *a, **kw)  # type: ignore[call-overload]

    def logged_os_open(path: object, flags: int, *a: object, **kw: object) -> int:
        log.record(path, "os.open:" + ("write" if flags & WRITE_FLAGS else "read"))
        return real_os_open(path, flags, *a, **kw)  # type: ignore[arg-type]

    def logged_mmap(fileno: int, length: int, *a: object, **kw: object) -> mmap.mmap:
        access = kw.get("access", mmap.ACCESS_DEFAULT)
        target = os.readlink(f"/proc/self/fd/{fileno}") if fileno >= 0 else "<anonymous>"
        log.record(target, "mmap:" + ("read" if access == mmap.ACCESS_READ else "write"))
        return real_mmap(fileno, length, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", logged_open)
    monkeypatch.setattr(io, "open", logged_open)
    monkeypatch.setattr(os, "open", logged_os_open)
    monkeypatch.setattr(mmap, "mmap", logged_mmap)
    yield log


@pytest.mark.needs_vmlinux
def test_inputs_opened_read_only_and_unchanged(sysrq_dump: Path, vmlinux_path: Path,
                                               tmp_path: Path, open_log: OpenLog) -> None:
    """A run of every command and the JSON document: inputs only ever opened for reading."""
    dump_sum, dump_stamp, vm_stamp = sha256(sysrq_dump), stamp(sysrq_dump), stamp(vmlinux_path)
    args: list[str | Path] = [sysrq_dump, vmlinux_path]
    for line in ("sys", "log", "ps", "mod", "bt -a", "kmem -i", "sym schedule"):
        args += ["-c", line]
    assert cli(*args).status in (0, 1)
    assert cli(sysrq_dump, vmlinux_path, "--json").status == 0
    assert cli(sysrq_dump, vmlinux_path, "--report", tmp_path / "r.md").status == 0
    inputs = {os.path.realpath(sysrq_dump), os.path.realpath(vmlinux_path)}
    used = [(p, how) for p, how in open_log.opens if p in inputs]
    assert {p for p, _ in used} == inputs, "the run did not go through the logged calls"
    assert all(how in ("open:r", "open:rb", "os.open:read", "mmap:read") for _p, how in used), used
    assert sha256(sysrq_dump) == dump_sum
    assert stamp(sysrq_dump) == dump_stamp and stamp(vmlinux_path) == vm_stamp


# --- nothing from the inputs is executed or unpickled -------------------------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle",
                     "joblib", "ctypes", "code", "codeop"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
# Modules allowed to start processes, and why: they run fixed tools on file names the user or
# a sample MANIFEST gives, never anything read from a dump or a vmlinux.
PROCESS_ALLOWED = {"crashtui/debuginfo/debian.py": "apt-get/dpkg-deb/tar for the test vmlinux"}
# importlib.import_module is allowed with a constant "crashtui." name, or in these modules,
# which pick module names from a fixed table of crashtui modules.
DYNAMIC_IMPORT_ALLOWED: set[str] = set()
PROCESS_CALLS = {("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execve"),
                 ("os", "execvp"), ("os", "spawnv"), ("os", "posix_spawn"), ("pty", "spawn")}


def _problems(path: Path) -> Iterator[str]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text("utf-8"), filename=rel)
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    yield f"{where}: imports {name}"
                if top in ("subprocess", "pty") and rel not in PROCESS_ALLOWED:
                    yield f"{where}: imports {name} (starts processes)"
        elif isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id in FORBIDDEN_CALLS:
                yield f"{where}: calls {fn.id}()"
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                pair = (fn.value.id, fn.attr)
                if pair in PROCESS_CALLS and rel not in PROCESS_ALLOWED:
                    yield f"{where}: calls {fn.value.id}.{fn.attr}()"
                if fn.attr in ("load", "unsafe_load", "full_load") and fn.value.id == "yaml":
                    yield f"{where}: calls yaml.{fn.attr}()"
                if fn.attr == "load" and fn.value.id in ("np", "numpy"):
                    safe = any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant)
                               and k.value.value is False for k in node.keywords)
                    if not safe:
                        yield f"{where}: np.load without allow_pickle=False"
            if isinstance(fn, ast.Attribute) and fn.attr == "import_module":
                arg = node.args[0] if node.args else None
                constant = isinstance(arg, ast.Constant) and str(arg.value).startswith(
                    "crashtui.")
                if not constant and rel not in DYNAMIC_IMPORT_ALLOWED:
                    yield f"{where}: import_module with a computed name"
            for k in node.keywords:
                if k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant)
                                                    and k.value.value is False):
                    yield f"{where}: allow_pickle is not False"


def test_nothing_is_executed_or_unpickled() -> None:
    """No eval/exec/compile, pickle-like loaders, or process starts in crashtui's code."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    problems = [p for f in files for p in _problems(f)]
    assert problems == []


def test_the_scan_sees_what_it_forbids(tmp_path: Path) -> None:
    bad = PACKAGE / "__scan_probe__.py"
    source = ("import pickle\nimport subprocess\nimport numpy as np\n"
              "x = eval('1')\nnp.load('f.npy')\nnp.load('f.npy', allow_pickle=True)\n")
    bad.write_text(source)
    try:
        found = list(_problems(bad))
    finally:
        bad.unlink()
    assert len(found) == 6, found


# --- umask ------------------------------------------------------------------------------------

@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.needs_vmlinux
def test_report_written_with_the_umask(sysrq_dump: Path, vmlinux_path: Path, tmp_path: Path,
                                       umask_027: None) -> None:
    report = tmp_path / "report.md"
    assert cli(sysrq_dump, vmlinux_path, "--report", report).status == 0
    assert report.stat().st_mode & 0o777 == 0o640


def test_array_cache_written_with_the_umask(tmp_path: Path, umask_027: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from crashtui.debuginfo import cache

    monkeypatch.setenv("CRASHTUI_CACHE", str(tmp_path / "cache"))
    assert cache.save_arrays("0123456789abcdef", "units", [1], {"a": np.arange(3)})
    path = cache.entry_path("0123456789abcdef", "units")
    assert path is not None and path.stat().st_mode & 0o777 == 0o640


def test_source_cache_written_with_the_umask(tmp_path: Path, umask_027: None) -> None:
    from crashtui.analysis.source import SourceTarball

    member = tmp_path / "hello.c"
    member.write_text("int main(void) { return 0; }\n")
    tarball = tmp_path / "linux-source-6.1.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        tar.add(member, arcname="linux-source-6.1/hello.c")
    source = SourceTarball(tarball, cache_root=tmp_path / "cache")
    extracted = source.extract(["hello.c"])
    assert extracted, "nothing extracted"
    for path in extracted.values():
        assert path.stat().st_mode & 0o777 == 0o640
