"""What the source pane shows for a frame or a symbol: its file (read out of a source tarball
if need be), else the function's disassembly with a hint. Runs in the app's source worker;
every change to the screen goes through the app's _ui (the UI thread)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from crashtui.analysis.backtrace import SourceLocation
from crashtui.analysis.source import (
    SourceResult,
    display_path,
    kernel_upstream_version,
    read_source,
    tree_relative_candidates,
    version_note,
)
from crashtui.tui.frameref import FrameRef
from crashtui.tui.source import SourceView, highlight_source, hint_lines, hint_subtitle
from crashtui.tui.text import error_text, lit

if TYPE_CHECKING:
    from crashtui.tui.app import CrashtuiApp


_NOTED: WeakKeyDictionary[CrashtuiApp, set[str]] = WeakKeyDictionary()


@dataclass
class SourceRequest:
    """What the source pane should show: a location, else the function's disassembly."""

    title: str
    loc: SourceLocation | None
    module: str | None
    function: str | None
    target: int | None  # the instruction to mark
    user_mode: bool = False


class SourceLoader:
    """Finds and shows what the source pane should show (call from a worker thread)."""

    def __init__(self, app: CrashtuiApp) -> None:
        self.app = app
        self._noted = _NOTED.setdefault(app, set())  # one loader per request, one toast per app

    def show(self, req: SourceRequest, ref: FrameRef | None = None) -> None:
        """Find and show a location's source; else the disassembly with a hint."""
        be = self.app.facade
        view = self.app.query_one(SourceView)
        if req.user_mode:
            self.app._ui(view.show_message, "user space", [  # short lines: 80 columns
                lit(f"RIP {req.target or 0:#x}", "italic"),
                lit("is a user-space address:", "italic"),
                lit("no kernel source.", "italic")])
            return
        loc, module, function = req.loc, req.module, req.function
        if ref is not None:
            try:
                loc = be.location(ref)
                module = be.module_of(ref)
                function = be.function_of(ref)
            except Exception:  # noqa: BLE001 - fall back to the disassembly
                loc = None
        if loc is not None:
            if self._show_file(loc, module):
                return
        self._show_disassembly(req, loc, function, module)

    def _show_file(self, loc: SourceLocation, module: str | None) -> bool:
        """Show the location's file if it can be found (reading a tarball if need be)."""
        be = self.app.facade
        view = self.app.query_one(SourceView)
        comp_dir = loc.comp_dir
        name = display_path(loc.file, comp_dir)
        res = be.find_source(loc, module, fetch=False)
        if res.path is None and res.pending:
            tarballs = ", ".join(tb.path.name for tb, _ in res.pending)
            self.app._ui(view.show_loading, f"{name}:{loc.line}",
                     [f"reading {name}", f"from {tarballs}…",
                      "(the first read indexes the tarball;", "later reads are quick)"])
            wanted = set(tree_relative_candidates(loc.file, comp_dir))
            shown: list[Path] = []

            def progress(frac: float, label: str) -> None:
                # tarball progress is shared: shown even if this frame was left meanwhile
                try:
                    self.app.call_from_thread(view.show_progress, f"{label} {int(frac * 100)}%")
                except RuntimeError:
                    pass

            def found(rel: str, path: Path) -> None:
                if rel in wanted and not shown:
                    shown.append(path)
                    self._display_file(path, name, loc.line, f"tarball {tarballs}")

            with be.lock:  # file:line are looked up on first read (facade.frame_source)
                others = [(fr.source.file, fr.source.comp_dir) for bt in self.app.backtraces
                          for fr in bt.frames if fr.source is not None]
            try:
                be.finder.prefetch([(loc.file, comp_dir), *others], progress, found)
                res = be.find_source(loc, module, progress, fetch=True)
            except Exception as exc:  # noqa: BLE001 - a bad tarball: say so, show disassembly
                self.app._ui(self.app.notify, f"source tarball: {error_text(exc)}", severity="warning",
                         markup=False)
                return False
            if shown and res.path == shown[0]:
                self.app._ui(view.show_progress, self._origin(res))
                return True
        if res.path is None:
            return False
        return self._display_file(res.path, name, loc.line, self._origin(res))

    def _origin(self, res: SourceResult) -> str:
        """The pane's subtitle: where the file came from, first a note when that tree or
        tarball is of another kernel version than the dump's (said once in a toast too)."""
        place = (res.tarball.path.name if res.tarball is not None
                 else str(res.tree) if res.tree is not None else "")
        summary = self.app.facade.summary()
        kernel = kernel_upstream_version(summary.fields.get("RELEASE"),
                                         summary.fields.get("VERSION"))
        tree = res.tree_version
        note = version_note(place, tree, kernel)
        if not note:
            return res.origin
        if note not in self._noted:
            self._noted.add(note)
            self.app._ui(self.app.notify, note, title="source of another version",
                         severity="warning", markup=False, timeout=15)
        return f"⚠ {tree}, kernel {kernel} · {res.origin}"

    def _display_file(self, path: Path, name: str, line: int, origin: str) -> bool:
        try:
            text = read_source(path)
        except OSError as exc:
            self.app._ui(self.app.notify, f"{path}: {exc}", severity="warning", markup=False)
            return False
        lines = highlight_source(text, str(path), line)
        self.app._ui(self.app.query_one(SourceView).show_source, name, lines, line, origin)
        return True

    def _show_disassembly(self, req: SourceRequest, loc: SourceLocation | None,
                          function: str | None, module: str | None = None) -> None:
        view = self.app.query_one(SourceView)
        file = loc.file if loc is not None else None
        line = loc.line if loc is not None else None
        debug_hint = None if file or module else self.app._debug_hint()
        hint = hint_lines(file, line, module, debug_hint)
        if not function:
            self.app._ui(view.show_message, req.title,
                     [*hint, lit("(no function known at this address)", "italic")])
            return
        try:
            dis = self.app.facade.disassembly(function)
        except Exception as exc:  # noqa: BLE001
            self.app._ui(view.show_message, f"{function} (no source)",
                     [*hint, lit(f"disassembly: {error_text(exc)}", "italic")])
            return
        self.app._ui(view.show_disassembly, f"{function} · disassembly", hint, dis, req.target,
                 hint_subtitle(file, module, debug_hint))

    def show_symbol(self, name: str) -> None:
        """A function's source, else its disassembly."""
        loc = None
        try:
            addr = self.app.facade.symbol_address(name)
            if addr is not None:
                loc = self.app.facade.source_line(addr)
        except Exception:  # noqa: BLE001 - no location: disassembly
            loc = None
        if loc is not None and self._show_file(loc, None):
            return
        self._show_disassembly(SourceRequest(name, loc, None, name, None), loc, name)
