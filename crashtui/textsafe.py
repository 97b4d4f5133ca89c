"""Neutralising text from the dump before it reaches a terminal."""

from __future__ import annotations

import re

# C0 controls except TAB, DEL and C1 controls: shown as \xNN so escape sequences never run.
# Invisible formatting characters that can make text read as something it is not (bidi
# overrides and isolates, zero-width characters, line/paragraph separators, BOM, soft
# hyphen, interlinear annotation marks): shown as \uNNNN.
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """Replace control and invisible formatting characters with visible \\xNN / \\uNNNN."""
    return _CONTROL.sub(_escape, text)
