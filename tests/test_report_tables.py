"""The report's ps, kmem -i and mod sections come from the Session's model, problems included."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import dump_of

from crashtui.analysis.session import Session
from crashtui.errors import KernelReadError
from crashtui.report.gather import gather
from crashtui.report.jsondoc import build_document
from crashtui.report.markdown import build_report


def test_ps_kmem_and_module_problems_reach_the_report(vmlinux_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What `ps`, `kmem -i` and `mod` print after their tables is in the report's Notes and
    the JSON's errors (it was dropped when the report read the rows through guessed names)."""
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    k = session.kernel
    real = k.read
    committed = k.symbol("vm_committed_as")

    def read(addr: int, size: int) -> bytes:
        if committed <= addr < committed + 64:
            raise KernelReadError(f"cannot read {addr:#x}", addr)
        return real(addr, size)

    monkeypatch.setattr(k, "read", read)
    kmem_error = next(e for e in session.kmem.errors if e.startswith("COMMIT LIMIT:"))
    # the walks' own error paths, as a damaged dump makes them
    session.ps.errors.append("PID 1 (0xffff8880031a8000): mm unreadable: test")
    session.modules.errors.append("module list ends early: test")
    a = gather(session, excerpt=False)
    assert f"kmem: {kmem_error}" in a.errors
    assert "tasks: PID 1 (0xffff8880031a8000): mm unreadable: test" in a.errors
    assert "modules: module list ends early: test" in a.errors
    assert a.kmem is not None and "COMMITTED" not in a.kmem and a.kmem["FREE"]["pages"]
    assert a.tasks is not None and len(a.tasks) == len(session.ps.rows)
    assert a.modules is not None and [m.name for m in a.modules] == \
        [m.name for m in session.modules.modules]
    notes = build_report(session).split("## Notes", 1)[1]
    assert "COMMIT LIMIT" in notes and "mm unreadable: test" in notes
    assert "module list ends early: test" in notes
    errors = build_document(session)["errors"]
    assert f"kmem: {kmem_error}" in errors
    assert "modules: module list ends early: test" in errors
    session.close()


def test_no_problems_no_notes(vmlinux_path: Path) -> None:
    """A dump read to its end gives no ps, kmem or module notes."""
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    errors = gather(session, excerpt=False).errors
    assert not [e for e in errors if e.split(":")[0] in ("tasks", "kmem", "modules")], errors
    session.close()
