"""README's key table is complete and true: every key the app binds (its widgets' BINDINGS,
their key_* handlers, and the Textual keys the README chooses to name) is in the table's first
column, and every key there is bound somewhere (issue 17)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

from conftest import ROOT
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

import crashtui.tui

NAMES = {
    "up": "↑", "down": "↓", "left": "←", "right": "→", "enter": "Enter", "escape": "Esc",
    "tab": "Tab", "shift+tab": "Shift+Tab", "pageup": "PgUp", "pagedown": "PgDn",
    "home": "Home", "end": "End", "space": "Space", "question_mark": "?", "colon": ":",
    "slash": "/", "full_stop": ".",
}
# Textual's own keys the README names (the rest of Textual's defaults, e.g. super+c, it
# leaves to Textual's documentation)
TEXTUAL_KEYS = {"tab", "shift+tab", "ctrl+q", App.COMMAND_PALETTE_BINDING}


def readable(key: str) -> str:
    """A Textual key name as the README writes it: `ctrl+z` is `Ctrl+Z`, `slash` is `/`."""
    if key in NAMES:
        return NAMES[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + key.removeprefix("ctrl+").upper()
    return key


def own_bindings() -> dict[str, set[str]]:
    """Every key crashtui's app and widgets bind -> where (class names)."""
    keys: dict[str, set[str]] = {}
    modules = [importlib.import_module(f"crashtui.tui.{m.name}")
               for m in pkgutil.iter_modules(crashtui.tui.__path__)]
    for module in modules:
        for cls in vars(module).values():
            if not inspect.isclass(cls) or not cls.__module__.startswith("crashtui."):
                continue
            for b in cls.__dict__.get("BINDINGS", []):
                binding = b if isinstance(b, Binding) else Binding(*b)
                for key in binding.key.split(","):
                    keys.setdefault(key.strip(), set()).add(cls.__name__)
            for name in cls.__dict__:
                if name.startswith("key_"):
                    keys.setdefault(name.removeprefix("key_"), set()).add(cls.__name__)
    return keys


def textual_bindings() -> set[str]:
    keys = {k.strip() for b in [*App.BINDINGS, *Screen.BINDINGS]
            for k in (b if isinstance(b, Binding) else Binding(*b)).key.split(",")}
    return keys | {App.COMMAND_PALETTE_BINDING}


def documented() -> dict[str, list[str]]:
    """The README key table's first column: key -> the rows naming it (`1` … `8` expanded)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| key | does |", 1)[1].split("\n\n", 1)[0]
    keys: dict[str, list[str]] = {}
    for row in table.splitlines()[2:]:
        first = row.split(" | ", 1)[0].removeprefix("| ")
        tokens = re.findall(r"`([^`]+)`", first)
        if "…" in first and len(tokens) == 2 and all(t.isdigit() for t in tokens):
            tokens = [str(i) for i in range(int(tokens[0]), int(tokens[1]) + 1)]
        for token in tokens:
            keys.setdefault(token, []).append(row[:60])
    return keys


def test_every_binding_is_in_the_readme_key_table() -> None:
    doc = documented()
    bound = own_bindings()
    missing = {readable(k): sorted(where) for k, where in bound.items()
               if readable(k) not in doc}
    assert not missing, f"bound but not in README's key table: {missing}"
    for key in TEXTUAL_KEYS:
        assert readable(key) in doc, key


def test_every_key_in_the_readme_is_bound() -> None:
    bound = {readable(k) for k in [*own_bindings(), *textual_bindings()]}
    stray = sorted(set(documented()) - bound)
    assert not stray, f"in README's key table but bound nowhere: {stray}"


def test_the_comparison_can_fail() -> None:
    """The parse sees the table: the app's keys are there, and one not bound is not."""
    doc = documented()
    assert {"q", "Ctrl+Q", "z", "/", "?", ":", "1", "9", "Enter", "Tab"} <= set(doc)
    assert "0" not in doc and "x" not in doc
    assert readable("ctrl+z") == "Ctrl+Z" and readable("question_mark") == "?"


def test_the_help_screen_names_every_key_of_the_readme() -> None:
    """`?` in the app lists the same keys as the README's table (`1 … 9` as a range)."""
    from crashtui.tui.help import KEYS

    shown = {tok for key, _ in KEYS for tok in key.replace("…", " ").split()}
    shown |= {str(i) for i in range(1, 10)} if "1" in shown and "9" in shown else set()
    missing = sorted(k for k in documented() if k not in shown and k != "mouse drag")
    assert not missing, f"in README's key table but not in the help screen: {missing}"
