"""Tab completion for the command line: command names, then symbols, types and modules.

`complete(session, text)` takes the whole input line and returns the lines it can become,
sorted: the first word completes to command names; later words to what that command takes —
kernel symbols (and loaded modules' symbols) for sym/dis/rd/p/struct addresses, struct and
union names for struct/union, symbols and structs for whatis/list, slab cache names for
kmem -s, command names for help, module names for mod. A unique result
ends with a space, ready for the next word.
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

from crashtui.commands import command_names
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session

MAX_CANDIDATES = 50
SYMBOL_COMMANDS = frozenset(("sym", "dis", "rd", "p", "bt"))
TYPE_COMMANDS = frozenset(("struct", "union"))


def complete(session: Session | None, text: str) -> list[str]:
    """The completed input lines for `text` (empty list: nothing matches)."""
    head, sep, word = text.rpartition(" ")
    if not sep:
        names = [n for n in command_names() if n.startswith(text)]
        return _lines("", names)
    words = head.split()
    if not words:
        return _lines(head + sep, [n for n in command_names() if n.startswith(word)])
    cmd = words[0]
    if word.startswith("-"):
        return []
    prefix = head + sep
    if cmd == "help":
        return _lines(prefix, [n for n in command_names() if n.startswith(word)])
    if session is None:
        return []
    if cmd in TYPE_COMMANDS and len(words) == 1 + sum(w.startswith("-") for w in words[1:]):
        return _lines(prefix, type_names(session, word, "union" if cmd == "union" else "struct"))
    if cmd == "mod":
        return _lines(prefix, _module_names(session, word))
    if cmd in ("whatis", "list"):
        return _lines(prefix, symbol_names(session, word) + type_names(session, word))
    if cmd == "kmem" and words[1:] == ["-s"]:
        return _lines(prefix, [n for n in _cache_names(session) if n.startswith(word)])
    if cmd in SYMBOL_COMMANDS or cmd in TYPE_COMMANDS:
        amp = "&" if word.startswith("&") else ""
        return _lines(prefix + amp, symbol_names(session, word[len(amp):]))
    return []


def _lines(prefix: str, words: list[str]) -> list[str]:
    words = sorted(set(words))[:MAX_CANDIDATES]
    if len(words) == 1:
        return [prefix + words[0] + " "]
    return [prefix + w for w in words]


def symbol_names(session: Session, prefix: str, limit: int = MAX_CANDIDATES) -> list[str]:
    """Kernel symbols (vmlinux or in-memory kallsyms) and module symbols starting with prefix."""
    if not re.fullmatch(r"[A-Za-z_.$][\w.$]*", prefix or "_") or not prefix:
        return []
    return session.symbol_names(prefix, limit)


def type_names(session: Session, prefix: str, kind: str = "struct",
               limit: int = MAX_CANDIDATES) -> list[str]:
    """Names of BTF structs (or unions) starting with prefix."""
    names = _btf_names(session, kind)
    i = bisect.bisect_left(names, prefix)
    out: list[str] = []
    while i < len(names) and len(out) < limit and names[i].startswith(prefix):
        out.append(names[i])
        i += 1
    return out


def _btf_names(session: Session, kind: str) -> list[str]:
    k = session.kernel
    key = f"_crashtui_{kind}_names"
    cached = k.__dict__.get(key)
    if isinstance(cached, list):
        return cached
    from crashtui.debuginfo.btf import KIND_STRUCT, KIND_UNION

    names: set[str] = set()
    try:
        btf = k.btf
        ids, _offs = btf._kind_ids(KIND_UNION if kind == "union" else KIND_STRUCT)
        for tid in ids.tolist():
            name = btf.string(btf._raw(int(tid))[2])
            if name:
                names.add(name)
    except CrashtuiError:
        pass
    out = sorted(names)
    k.__dict__[key] = out
    return out


def _cache_names(session: Session) -> list[str]:
    """Slab cache names (for `kmem -s`), read once per kernel."""
    k = session.kernel
    cached = k.__dict__.get("_crashtui_slab_names")
    if isinstance(cached, list):
        return cached
    from crashtui.kernel.slab import SlubLayout, cache_addresses

    names: list[str] = []
    try:
        layout = SlubLayout(k)
        for addr in cache_addresses(k, layout)[0]:
            try:
                names.append(k.read_cstr(k.read_u64(addr + layout.name), 64))
            except CrashtuiError:
                continue
    except CrashtuiError:
        pass
    k.__dict__["_crashtui_slab_names"] = names
    return names


def _module_names(session: Session, prefix: str) -> list[str]:
    try:
        return [m.name for m in session.modules.modules if m.name.startswith(prefix)]
    except CrashtuiError:
        return []
