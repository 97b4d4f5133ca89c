"""The Variables tab: the selected frame's arguments and locals (DWARF), struct and pointer
values expanded lazily (members, the pointed-to struct), read in a worker via the facade."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from crashtui.analysis.variables import OPTIMIZED_OUT
from crashtui.kernel.framevars import expandable
from crashtui.tui.search import ask, next_match
from crashtui.tui.text import error_text, lit, safe

if TYPE_CHECKING:
    from crashtui.analysis.variables import FrameVariable, FrameVariables, ValueNode
    from crashtui.tui.facade import SessionFacade
    from crashtui.tui.frameref import FrameRef

_REG_UNKNOWN = re.compile(r"register (\w+) not known in this frame")


@dataclass
class NodeValue:
    """What a tree node needs to expand: the value's C type and bytes or address."""

    ctype: Any
    data: bytes | None
    address: int | None
    loaded: bool = False


def variable_label(v: FrameVariable) -> Text:
    """`name = value  type` (arguments marked), the value's state styled."""
    t = Text()
    if v.parameter:
        t.append("arg ", "dim")
    t.append(safe(v.name), "bold")
    t.append(" = ")
    if v.known:
        t.append(safe(with_char(v.value or "", v.ctype)))
    else:
        t.append(safe(short_display(v)), "dim italic")
    t.append(f"  {safe(v.type)}", "dim")
    return t


def short_display(v: FrameVariable) -> str:
    """The stand-in for an unknown value, short enough for 80 columns: `<unknown: rbx not
    recovered>` for the unwinder's "register rbx not known in this frame"."""
    m = _REG_UNKNOWN.fullmatch(v.reason or "")
    if m is not None and v.state != OPTIMIZED_OUT:
        return f"<{v.state}: {m.group(1)} not recovered>"
    return v.display()


def with_char(value: str, ctype: Any) -> str:
    """A char's number and the character, as gdb and `locals` print it: `99 'c'`."""
    if getattr(ctype, "kind", None) != "int" or getattr(ctype, "size", 0) != 1 or \
            not getattr(ctype, "char", False) or not value.lstrip("-").isdigit():
        return value
    c = int(value) & 0xFF
    shown = {0: "\\000", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f",
             13: "\\r", 39: "\\'", 92: "\\\\"}.get(c)
    if shown is None:
        shown = chr(c) if 32 <= c < 127 else f"\\{c:03o}"
    return f"{value} '{shown}'"


def child_label(c: ValueNode) -> Text:
    return Text.assemble((safe(c.name), "bold"), " = ", safe(with_char(c.value, c.ctype)),
                         (f"  {safe(c.type)}", "dim"))


class VariablesView(Tree[NodeValue | None]):
    """The selected frame's variables; Enter/Space expands a struct or a pointer."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("y", "copy_value", "Copy value", show=False),
        Binding("Y", "copy_all", "Copy all", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("n", "next(1)", "Next", show=False),
        Binding("N", "next(0)", "Previous", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("Variables", **kwargs)
        self.show_root = True
        self.guide_depth = 2
        self._token = 0
        self._user_mode = False  # the frames row shown is a user-mode entry's registers
        self._pc_name = "RIP"  # "PC" on arm64
        self.search_term = ""
        self.values: dict[int, str] = {}  # node id -> the value it shows (for y)

    @property
    def facade(self) -> SessionFacade:
        facade: SessionFacade = self.app.facade  # type: ignore[attr-defined]
        return facade

    def load(self, ref: FrameRef) -> None:
        """Show the variables of a frames-pane row (read in a worker)."""
        self._token += 1
        self._user_mode = ref.exception is not None and ref.exception.user_mode
        self._pc_name = ref.exception.pc_name if ref.exception is not None else "RIP"
        self.clear()
        self.root.set_label(lit("reading the frame's variables...", "italic"))
        self._read(ref, self._token)

    @work(thread=True, group="variables", exclusive=True, description="read variables")
    def _read(self, ref: FrameRef, token: int) -> None:
        try:
            fv = self.facade.frame_variables(ref)
            error = None
        except Exception as exc:  # noqa: BLE001 - shown in the pane
            fv, error = None, error_text(exc)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, fv, error, token)

    def show(self, fv: FrameVariables | None, error: str | None = None,
             token: int | None = None) -> None:
        """Fill the tree (from the UI thread)."""
        if token is not None and token != self._token:
            return
        self.clear()
        self.values = {}
        if fv is None:
            self.root.set_label(lit(error or "no frame selected", "italic"))
            return
        if fv.exception and self._user_mode:  # not an exception RIP: user space's pc
            head = f"#{fv.frame} user space at {fv.pc:x}"
        else:
            where = f"exception {self._pc_name} " if fv.exception else ""
            head = f"#{fv.frame} {where}{fv.function or '??'} at {fv.pc:x}"
        if fv.error:  # under the head: at 80 columns a reason after it is cut
            self.root.set_label(Text(safe(head), "bold"))
            self.root.add_leaf(lit(fv.error, "italic"))
            self.root.expand()
            return
        self.root.set_label(Text.assemble((safe(head), "bold"),
                                          (f"  {len(fv.variables)} variable"
                                           f"{'' if len(fv.variables) == 1 else 's'}", "dim")))
        parent: TreeNode[NodeValue | None] = self.root
        scope: tuple[str, bool] | None = None
        for v in fv.variables:
            if v.inlined and (v.function, True) != scope:
                parent = self.root.add(Text.assemble(("inlined ", "dim"),
                                                     (safe(v.function) + "()", "bold")),
                                       expand=True)
            elif not v.inlined:
                parent = self.root
            scope = (v.function, v.inlined)
            if v.known and expandable(v.ctype, v.data):
                node = parent.add(variable_label(v), NodeValue(v.ctype, v.data, v.address))
            else:
                node = parent.add_leaf(variable_label(v), None)
            if v.known:
                self.values[node.id] = v.value or ""
        if not fv.variables:
            self.root.add_leaf(lit("no arguments or locals", "italic"))
        self.root.expand()

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeValue | None]) -> None:
        nv = event.node.data
        if nv is None or nv.loaded:
            return
        nv.loaded = True
        event.node.add_leaf(lit("reading...", "italic"))
        self._expand(event.node, nv)

    @work(thread=True, group="variables-expand", description="expand a value")
    def _expand(self, node: TreeNode[NodeValue | None], nv: NodeValue) -> None:
        try:
            children = self.facade.expand_value(nv.ctype, nv.data, nv.address)
            error = None
        except Exception as exc:  # noqa: BLE001
            children, error = [], error_text(exc)
        self.app.call_from_thread(self._fill_node, node, children, error)

    def _fill_node(self, node: TreeNode[NodeValue | None], children: list[ValueNode],
                      error: str | None) -> None:
        node.remove_children()
        if error:
            node.add_leaf(lit(error, "italic"))
        for c in children:
            if c.expandable:
                child = node.add(child_label(c), NodeValue(c.ctype, c.data, c.address))
            else:
                child = node.add_leaf(child_label(c), None)
            self.values[child.id] = c.value
        if not children and not error:
            node.add_leaf(lit("(nothing to show)", "italic"))

    def action_copy_value(self) -> None:
        """The value under the cursor to the clipboard (OSC 52): a pointer's address alone
        (`0xffff... <lock_b>` copies `0xffff...`), a struct in memory its address, else the
        value as shown."""
        node = self.cursor_node
        value = self.values.get(node.id) if node is not None else None
        if value is None:
            self.notify("no value on this line", timeout=2)
            return
        first = value.split(" ", 1)[0]
        if first.startswith("0x") and len(first) > 2:
            value = first
        elif value.startswith("{") and node is not None and node.data is not None \
                and node.data.address is not None:  # a struct in memory: its address
            value = f"{node.data.address:#x}"
        self.app.copy_to_clipboard(value)
        self.notify(f"copied {value} (OSC 52)", timeout=2)

    def action_copy_all(self) -> None:
        """The tree as shown (expanded nodes, indented) to the clipboard (OSC 52)."""
        lines: list[str] = []

        def walk(node: TreeNode[NodeValue | None], depth: int) -> None:
            lines.append("  " * depth + str(node.label))
            if node.is_expanded:
                for child in node.children:
                    walk(child, depth + 1)

        walk(self.root, 0)
        self.app.copy_to_clipboard("\n".join(lines) + "\n")
        self.notify("copied the variables (OSC 52)", timeout=2)

    def action_search(self) -> None:
        """`/`: the next shown line (expanded nodes) containing a term, any case."""
        ask(self, "find in Variables", self.find)

    def action_next(self, forward: int) -> None:
        if self.search_term:
            self.find(self.search_term, bool(forward))

    def find(self, term: str, forward: bool = True) -> bool:
        """Move the cursor to the next shown line containing term (wraps); False if none."""
        self.search_term = term
        texts = []
        for line in range(self.last_line + 1):
            node = self.get_node_at_line(line)
            texts.append(str(node.label) if node is not None else "")
        found = next_match(texts, term, self.cursor_line, forward)
        if found is None:
            return False
        self.move_cursor_to_line(found)
        return True
