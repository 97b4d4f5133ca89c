"""Turning dump strings into literal Rich Text: never markup, never escape sequences."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from crashtui.textsafe import terminal_safe


def safe(value: object) -> str:
    """A dump string with control characters shown as \\xNN and tabs expanded."""
    return terminal_safe(str(value).expandtabs(8))


def lit(value: object, style: str = "") -> Text:
    """Literal Text of a dump string (brackets and escapes shown as they are)."""
    return Text(safe(value), style=style, no_wrap=True, end="")


def append_module_where(text: Text, module: str | None, where: str | None) -> None:
    """Append ` [module]` and `  where` (cyan), each when present, after a symbol."""
    if module:
        text.append(" [")
        text.append_text(lit(module))
        text.append("]")
    if where:
        text.append("  ")
        text.append_text(lit(where, "cyan"))


def content(value: object) -> Content:
    """Literal Content (for border titles and labels) of a dump string."""
    return Content(safe(value))


def hexaddr(value: int) -> str:
    """A kernel address as crash prints it: 16 lower-case hex digits."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:016x}"


def shorten(text: str, width: int) -> str:
    """text cut to width cells with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def error_text(exc: BaseException) -> str:
    """What a pane or a toast says about a failure: the message of a CrashtuiError, else
    `internal error: Type: message`."""
    from crashtui.errors import CrashtuiError

    if isinstance(exc, CrashtuiError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
