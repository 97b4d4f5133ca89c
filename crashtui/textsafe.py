"""Neutralising text from the dump before it reaches a terminal."""

from __future__ import annotations

import re

# C0 controls except TAB, DEL, and C1 controls: shown as \xNN so escape sequences never run.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Replace control characters (ESC, CR, BEL, ...) with visible \\xNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
