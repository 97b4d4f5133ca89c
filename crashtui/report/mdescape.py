"""Markdown escaping for text taken from a dump: nothing in it may become markup or HTML."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from crashtui.textsafe import terminal_safe

# ASCII punctuation that can start markup inline in CommonMark, GFM or GitHub's extensions
# (emphasis, code, links, images, HTML, entities, tables, strikethrough, math, mentions, headings).
# `_` between two alphanumerics can never delimit emphasis, so `PREEMPT_DYNAMIC` stays readable.
_INLINE_SPECIAL = re.compile(r"([\\`*\[\]>|&#!~$@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# After the escapes: `<` as an entity (a backslash before it can be taken into a link by a
# linkifier, leaving a live tag) and autolinks broken (`://`, `www.`), so linkifying viewers
# (markdown-it with linkify, GFM's autolink extension) find no link to start in dump text.
_UNLINK = (("<", "&lt;"), ("://", ":&#47;&#47;"), ("www.", "www&#46;"), ("WWW.", "WWW&#46;"))
_BACKTICK_RUN = re.compile(r"`+")
_MAX_CELL = 200


def clean(text: str) -> str:
    """Control characters (newline, ESC, ...) as visible \\xNN escapes: one safe line."""
    return terminal_safe(str(text))


def inline(text: object) -> str:
    """Plain text that renders literally inside a paragraph, heading or table cell."""
    out = _INLINE_SPECIAL.sub(lambda m: "\\" + m.group(), clean(str(text)))
    for raw, safe in _UNLINK:
        out = out.replace(raw, safe)
    return out


def longest_backtick_run(text: str) -> int:
    """The length of the longest run of backticks in text (0 if none)."""
    return max((len(m.group()) for m in _BACKTICK_RUN.finditer(text)), default=0)


def code(text: object, in_table: bool = False) -> str:
    """An inline code span showing text literally, whatever backticks it holds."""
    s = clean(str(text))
    if not s:
        return ""
    ticks = "`" * (longest_backtick_run(s) + 1)
    if s[0] == "`" or s[-1] == "`" or (s[0] == " " and s[-1] == " " and s.strip()):
        s = f" {s} "
    if in_table:
        s = s.replace("|", "\\|")  # GFM splits cells before inline parsing, even in code spans
    return f"{ticks}{s}{ticks}"


def fence(lines: Iterable[str], info: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run inside it."""
    body = [clean(line) for line in lines]
    ticks = "`" * max(3, max((longest_backtick_run(line) + 1 for line in body), default=0))
    info = re.sub(r"[^A-Za-z0-9_+-]", "", info)
    return "\n".join([ticks + info, *body, ticks])


def table(header: Sequence[str], rows: Iterable[Sequence[str]],
          align: Sequence[str] | None = None) -> str:
    """A GFM table; cells must already be escaped (inline() or code(..., in_table=True))."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    delim = [marks.get(a, "---") for a in (align or ["l"] * len(header))]
    out = [_row(header), _row(delim)]
    for row in rows:
        cells = list(row) + [""] * (len(header) - len(row))
        out.append(_row(cells[:len(header)]))
    return "\n".join(out)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c if c.strip() else " " for c in cells) + " |"


def cell(text: object) -> str:
    """inline() for a table cell, shortened to a readable length."""
    s = clean(str(text))
    if len(s) > _MAX_CELL:
        s = s[:_MAX_CELL - 1] + "…"
    return inline(s)
