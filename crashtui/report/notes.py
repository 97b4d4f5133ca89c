"""Why a section of an export is missing or partial, collected instead of failing the export."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from crashtui.errors import CrashtuiError

T = TypeVar("T")


@dataclass
class Notes:
    """The problems of every section, `section: message`, each once, in order."""

    errors: list[str] = field(default_factory=list)

    def add(self, section: str, message: str) -> None:
        note = f"{section}: {message}"
        if note not in self.errors:
            self.errors.append(note)

    def attempt(self, section: str, fn: Callable[[], T]) -> T | None:
        """fn(), or None with a note when it cannot read its section."""
        try:
            return fn()
        except CrashtuiError as exc:
            self.add(section, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad section must not lose the report
            if os.environ.get("CRASHTUI_DEBUG"):
                raise
            self.add(section, f"internal error: {type(exc).__name__}: {exc}")
        return None

    def adder(self, section: str) -> Callable[[str], None]:
        """A note(message) function for one section."""
        return lambda message: self.add(section, message)
