"""The app's one door (tui/facade.py): the model's own objects, --source, .ko files, registers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, dump_of

from crashtui.analysis.backtraces import BacktraceBuilder
from crashtui.analysis.session import Session
from crashtui.kernel.mm import KmemInfo
from crashtui.kernel.modules import ModuleTable
from crashtui.kernel.ps import PsTable
from crashtui.kernel.regs import prstatus_registers
from crashtui.tui.facade import SessionFacade
from crashtui.tui.registers import format_registers, registers_for

pytestmark = pytest.mark.needs_vmlinux



def test_facts_are_the_models_own(vmlinux_path: Path, tmp_path: Path) -> None:
    """ps, kmem -i and mod come as the Session's dataclasses, not re-parsed text."""
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    facade = SessionFacade(session, cache_root=tmp_path, auto_source=False)
    assert isinstance(facade.ps(), PsTable) and facade.ps() is session.ps
    assert isinstance(facade.kmem(), KmemInfo) and facade.kmem() is session.kmem
    assert isinstance(facade.modules(), ModuleTable) and facade.modules() is session.modules
    panic = next(bt for bt in facade.backtraces() if bt.panic)
    assert facade.symbolize(panic.frames[0].pc) == session.symbolize(panic.frames[0].pc)[0] \
        + f"+{panic.frames[0].offset:#x}"  # type: ignore[index]
    session.close()


def test_registers_tab_shows_the_cpus_own_registers(vmlinux_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace that starts from the CPU's NT_PRSTATUS registers (crash found no NMI or kexec
    frame to start from) shows those registers, not an exception frame's."""
    monkeypatch.setattr(BacktraceBuilder, "_crash_start", lambda self, cpu, stack, panic: None)
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    bt = next(b for b in session.backtraces if b.cpu == 1)
    assert bt.start is not None
    found = registers_for(bt, None)
    assert found is not None
    title, regs = found
    assert title.startswith("CPU 1: its registers when it stopped")
    note = prstatus_registers(session.kernel.dump.notes)[1].registers
    assert regs["rip"] == note["rip"] and regs["rsp"] == note["rsp"]
    first = format_registers(regs)[0].plain
    assert f"RIP: {note['rip']:016x}" in first and f"RSP: {note['rsp']:016x}" in first
    session.close()


def test_export_from_the_app_uses_source(vmlinux_path: Path, tmp_path: Path) -> None:
    """`e` in the app writes the report with the excerpt found through --source."""
    tree = tmp_path / "tree"
    (tree / "drivers" / "tty").mkdir(parents=True)
    lines = [f"/* line {n} */" for n in range(1, 200)]
    lines[154] = '\tpanic("sysrq triggered crash\\n");'
    (tree / "drivers" / "tty" / "sysrq.c").write_text("\n".join(lines) + "\n")
    session = Session.open(dump_of("6.1-sysrq"), vmlinux_path)
    facade = SessionFacade(session, source=str(tree), cache_root=tmp_path, auto_source=False)
    out = tmp_path / "report.md"
    assert facade.export(str(out)) == str(out)
    fault = out.read_text().split("## Faulting frame", 1)[1].split("\n## ", 1)[0]
    assert "Source `debian/build/build_amd64_none_cloud-amd64/drivers/tty/sysrq.c:155`" in fault
    assert f"found tree {tree}" in fault
    assert '> 155          panic("sysrq triggered crash\\n");' in fault
    session.close()


def test_ko_files_are_loaded_once(vmlinux_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`crashtui DUMP VMLINUX --modules DIR` loads each matching .ko once: the app does."""
    import crashtui.tui.app as app_mod
    from crashtui import cli

    loads: list[str] = []
    real = ModuleTable.load_debuginfo

    def load(self: ModuleTable, name: str, path: str | Path) -> Any:
        loads.append(name)
        return real(self, name, path)

    monkeypatch.setattr(ModuleTable, "load_debuginfo", load)
    seen: dict[str, Any] = {}

    def run_headless(session: Session, source: str | None = None,
                     modules: list[str] | None = None) -> int:
        app = app_mod.make_app(session, source, modules or [])

        async def main() -> None:
            async with app.run_test(size=(120, 36)):
                await app.settle()
                seen["objects"] = dict(session.modules.debuginfo)
                seen["row"] = app.query_one(app_mod.FramesView).rows[0].symbol

        asyncio.run(main())
        return 0

    monkeypatch.setattr(app_mod, "run_app", run_headless)
    testmod = SAMPLES / "6.1-test-module"
    assert cli.main([str(dump_of("6.1-test-module")), str(vmlinux_path),
                     "--modules", str(testmod)]) == 0
    assert loads == ["test_module"]
    assert list(seen["objects"]) == ["test_module"]
