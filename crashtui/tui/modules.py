"""The Modules tab: loaded modules, tainting ones flagged; `l` loads a module's .ko."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from crashtui.kernel.modules import Module, ModuleTable
from crashtui.tui.text import lit, safe

KO_SUFFIXES = (".ko",)  # what the module loader reads (a compressed .ko.xz is not listed)
MAX_SCANNED = 5000  # entries read from one directory while completing
MAX_SHOWN = 30


def complete_path(text: str, suffixes: tuple[str, ...] = KO_SUFFIXES) -> tuple[str, list[str]]:
    """A typed path completed as a shell does: (the text extended by what every match shares,
    the matches: sub-directories with a `/`, and files ending with one of `suffixes`). `~`
    stays as typed; hidden entries only when the typed name starts with a dot."""
    head, prefix = os.path.split(text)
    directory = Path(os.path.expanduser(head or "."))
    matches: list[str] = []
    try:
        with os.scandir(directory) as it:
            for n, entry in enumerate(it):
                if n >= MAX_SCANNED:
                    break
                name = entry.name
                if not name.startswith(prefix) or (name.startswith(".") and
                                                   not prefix.startswith(".")):
                    continue
                try:
                    if entry.is_dir():
                        matches.append(name + "/")
                    elif name.endswith(suffixes) and entry.is_file():
                        matches.append(name)
                except OSError:
                    continue
    except OSError:
        return text, []
    matches.sort()
    common = os.path.commonprefix(matches) if matches else ""
    if len(common) <= len(prefix):
        return text, matches
    return os.path.join(head, common) if head else common, matches


class KoPathInput(Input):
    """The `.ko` path prompt: Tab completes directories and .ko files."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self) -> None:
        before = self.value[: self.cursor_position]
        done, matches = complete_path(before)
        if safe(done) == done:  # a name with control characters is listed, never typed in
            self.value = done + self.value[len(before):]
            self.cursor_position = len(done)
        if not matches:
            self.notify(f"no directory or .ko file matches {before or './'}",
                        severity="warning", markup=False, timeout=3)
        elif len(matches) > 1:
            shown = "  ".join(safe(m) for m in matches[:MAX_SHOWN])
            more = f" (the first {MAX_SHOWN})" if len(matches) > MAX_SHOWN else ""
            self.notify(shown, title=f"{len(matches)} matches{more}", markup=False, timeout=5)


class ModulesTable(DataTable[Text]):
    """The module list; `l` asks for the selected module's .ko."""

    BINDINGS = [Binding("l", "load", "Load .ko"),
                Binding("y", "copy_base", "Copy base", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.rows_data: list[Module] = []
        self.objects: dict[str, str] = {}  # module name -> the .ko whose debug info is loaded

    def on_mount(self) -> None:
        for name in ("NAME", "BASE", "SIZE", "FLAGS", "OBJECT FILE"):
            self.add_column(Text(name), key=name)

    def object_file(self, module: Module) -> str:
        """The .ko in use for a module, or "(not loaded)"."""
        return self.objects.get(module.name, "(not loaded)")

    def show(self, table: ModuleTable) -> None:
        """The modules, then one marker line per problem that ended the list early."""
        self.rows_data = list(table.modules)
        self.objects = {name: str(di.path) for name, di in table.debuginfo.items()}
        self.clear()
        for i, m in enumerate(self.rows_data):  # keyed by position: a damaged list can repeat
            bad = bool(m.taints)                 # a name (or an address)
            obj = self.object_file(m)
            self.add_row(lit(m.name, "bold red" if bad else ""), Text(f"{m.base:016x}"),
                         Text(f"{m.size:>7}"),
                         Text.assemble(("! " if bad else "  ", "bold red"),
                                       lit(m.taint_flags, "red")),
                         lit(obj, "dim" if obj.startswith("(") else ""), key=f"\0module{i}")
        for i, error in enumerate(table.errors):  # not a module: selecting it loads nothing
            self.add_row(Text.assemble(("⚠ ", "bold yellow"),
                                       lit(f"{error} — the list may be incomplete",
                                           "italic yellow")),
                         Text(""), Text(""), Text(""), Text(""), key=f"\0error{i}")

    @property
    def current(self) -> Module | None:
        if not 0 <= self.cursor_row < len(self.rows_data):
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.rows_data[int(key.removeprefix("\0module"))] if key else None

    def action_copy_base(self) -> None:
        """The selected module's base address to the clipboard (OSC 52)."""
        module = self.current
        if module is not None:
            self.app.copy_to_clipboard(f"{module.base:016x}")
            self.notify(f"copied {module.base:016x} (OSC 52)", timeout=2)

    def action_load(self) -> None:
        parent = self.parent
        if isinstance(parent, ModulesView):
            parent.ask_ko()


class ModulesView(Vertical):
    """The module table and the `.ko` path input."""

    class LoadModule(Message):
        """Load the debug info of a module from a .ko file."""

        def __init__(self, name: str, path: Path) -> None:
            super().__init__()
            self.name = name
            self.path = path

    def compose(self) -> ComposeResult:
        yield ModulesTable(id="modules-table")
        yield KoPathInput(placeholder="path to the module's .ko (Tab completes, Enter: load, "
                          "Esc: cancel)", id="ko-path")

    def on_mount(self) -> None:
        self.query_one("#ko-path", Input).display = False

    def show(self, table: ModuleTable) -> None:
        self.query_one(ModulesTable).show(table)

    def show_error(self, message: str) -> None:
        table = self.query_one(ModulesTable)
        table.clear()
        table.add_row(lit(message, "italic"), Text(""), Text(""), Text(""), Text(""))

    def ask_ko(self) -> None:
        mod = self.query_one(ModulesTable).current
        if mod is None:
            self.notify("no module selected", severity="warning")
            return
        box = self.query_one("#ko-path", Input)
        box.placeholder = f"path to {mod.name}.ko (Tab completes, Enter: load, Esc: cancel)"
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mod = self.query_one(ModulesTable).current
        event.input.display = False
        self.query_one(ModulesTable).focus()
        if mod is not None and event.value.strip():
            self.post_message(self.LoadModule(mod.name, Path(event.value.strip()).expanduser()))

    def key_escape(self) -> None:
        box = self.query_one("#ko-path", Input)
        if box.display:
            box.display = False
            self.query_one(ModulesTable).focus()
