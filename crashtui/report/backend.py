"""Finding optional backend pieces (backtraces, kmem, modules, ...) that may not exist yet."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crashtui.errors import CrashtuiError

T = TypeVar("T")

# Where the backend's engineers put (or will put) each function the report uses.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "format_backtrace": ("crashtui.commands.bt", "crashtui.analysis.backtraces"),
    "format_registers": ("crashtui.commands.bt", "crashtui.analysis.backtraces"),
    "kmem_rows": ("crashtui.commands.kmem", "crashtui.analysis.memory", "crashtui.analysis.kmem",
                  "crashtui.analysis.rows", "crashtui.commands.tables"),
    "module_rows": ("crashtui.commands.mod", "crashtui.commands.modules",
                    "crashtui.analysis.modules", "crashtui.analysis.rows",
                    "crashtui.commands.tables"),
    "ps_rows": ("crashtui.commands.ps", "crashtui.analysis.ps", "crashtui.analysis.tasks",
                "crashtui.analysis.rows", "crashtui.commands.tables"),
}


class Missing(Exception):
    """A backend piece this build does not have yet."""


def provider(name: str) -> Callable[..., Any]:
    """The backend function `name` from the first module that defines it; raises Missing."""
    for module in PROVIDERS.get(name, ()):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    raise Missing(f"{name}() is not available in this build")


def session_attr(session: object, name: str) -> Any:
    """session.<name>, or Missing if the Session has no such fact yet."""
    if not hasattr(type(session), name) and name not in getattr(session, "__dict__", {}):
        raise Missing(f"session.{name} is not available in this build")
    return getattr(session, name)


@dataclass
class Notes:
    """Collects why a section is missing or partial, instead of failing the whole export."""

    errors: list[str] = field(default_factory=list)

    def add(self, section: str, message: str) -> None:
        note = f"{section}: {message}"
        if note not in self.errors:
            self.errors.append(note)

    def attempt(self, section: str, fn: Callable[[], T]) -> T | None:
        """fn(), or None with a note when the backend lacks it or cannot read it."""
        try:
            return fn()
        except Missing as exc:
            self.add(section, f"not included ({exc})")
        except CrashtuiError as exc:
            self.add(section, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad section must not lose the report
            if os.environ.get("CRASHTUI_DEBUG"):
                raise
            self.add(section, f"internal error: {type(exc).__name__}: {exc}")
        return None
