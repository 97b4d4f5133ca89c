"""Tab completion for the command line: command names, then symbols, types and modules.

`complete(session, text)` takes the whole input line and returns the lines it can become,
sorted: the first word completes to command names; later words to what that command takes —
kernel symbols (and loaded modules' symbols) for sym/dis/rd/p/struct addresses, struct and
union names for struct/union, symbols and structs for whatis/list, slab cache names for
kmem -s, command names for help, module names for mod, a command's options after `-`;
members after `p EXPR.` / `p EXPR->` (EXPR typed from DWARF/BTF without reading the dump)
and `struct NAME.` (nested `struct NAME.se.`, lists `struct NAME.pid,co`). A unique result
ends with a space, ready for the next word (a member does not: `.` may follow).
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

from crashtui.commands import command_names
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.debuginfo.ctype import CType

MAX_CANDIDATES = 50
SYMBOL_COMMANDS = frozenset(("sym", "dis", "rd", "p", "bt", "search"))
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
    prefix = head + sep
    if word.startswith("-"):  # the command's options (declared at registration)
        return _lines(prefix, [o for o in command_options(cmd) if o.startswith(word)])
    if cmd == "help":
        return _lines(prefix, [n for n in command_names() if n.startswith(word)])
    if session is None:
        return []
    if cmd in TYPE_COMMANDS and len(words) == 1 + sum(w.startswith("-") for w in words[1:]):
        if "." in word:
            done, partial, names = _struct_members(session, cmd, word)
            return _member_lines(prefix + done, partial, names)
        return _lines(prefix, type_names(session, word, "union" if cmd == "union" else "struct"))
    tag = re.search(r"(?:^|\W)(struct|union)$", words[-1]) if len(words) > 1 else None
    if cmd == "p" and tag and re.fullmatch(r"\w*", word):  # a cast or sizeof: `(struct task_`
        return _lines(prefix, type_names(session, word, tag.group(1)))
    if cmd == "p" and ("." in text[len(cmd):] or "->" in text[len(cmd):]):
        members = _expression_members(session, text)
        if members is not None:
            return _member_lines(*members)
    if cmd == "mod":
        return _lines(prefix, _module_names(session, word))
    if cmd in ("whatis", "list", "tree", "waitq"):
        return _lines(prefix, symbol_names(session, word) + type_names(session, word))
    if cmd == "kmem" and words[1:] == ["-s"]:
        return _lines(prefix, [n for n in _cache_names(session) if n.startswith(word)])
    if cmd in SYMBOL_COMMANDS or cmd in TYPE_COMMANDS:
        amp = word[:len(word) - len(word.lstrip("&*(!~"))] if cmd == "p" else \
            "&" if word.startswith("&") else ""
        return _lines(prefix + amp, symbol_names(session, word[len(amp):]))
    return []


def command_options(name: str) -> tuple[str, ...]:
    """The options a command declared (crashtui.commands.registry.command)."""
    from crashtui.commands.registry import COMMANDS

    command_names()  # every command module loaded
    cmd = COMMANDS.get(name)
    return cmd.options if cmd is not None else ()


def _lines(prefix: str, words: list[str]) -> list[str]:
    words = sorted(set(words))[:MAX_CANDIDATES]
    if len(words) == 1:
        return [prefix + words[0] + " "]
    return [prefix + w for w in words]


def _member_lines(prefix: str, partial: str, names: list[str]) -> list[str]:
    """Completed lines for member names (no space after a unique one: `.` may follow)."""
    return [prefix + n for n in sorted(set(n for n in names if n.startswith(partial)))
            ][:MAX_CANDIDATES]


def _struct_members(session: Session, cmd: str, word: str) -> tuple[str, str, list[str]]:
    """`struct NAME.a.b,c.pa`: (word up to `pa`, `pa`, members of c's type)."""
    from crashtui.kernel.cvalue import member_names

    name, _dot, path = word.partition(".")
    head, comma, last = path.rpartition(",")
    parent, dot, partial = last.rpartition(".")
    done = name + "." + head + comma + parent + dot
    try:
        types = session.types
        ct = types.struct_named(f"union {name}" if cmd == "union" else name)
        for m in parent.split(".") if dot else []:
            ct = _member_type(session, ct, m)
        return done, partial, member_names(types, ct)
    except CrashtuiError:
        return done, partial, []


def _member_type(session: Session, ct: CType, name: str) -> CType:
    from crashtui.kernel.cvalue import find_field

    found = find_field(session.types, ct, name, 0, 0)
    if found is None:
        raise CrashtuiError(f"no member {name}")
    t = found[1].type
    return t.target if t.kind == "ptr" and t.target is not None else t


def _expression_members(session: Session, text: str) -> tuple[str, str, list[str]] | None:
    """For `p EXPR.pa` / `p EXPR->pa`: (line up to `pa`, `pa`, members of EXPR's type),
    EXPR being the postfix expression before the last `.`/`->` (`init_task.mm`,
    `((struct task_struct *)0x...)`), typed without reading the dump; None if not that."""
    m = re.search(r"(\.|->)([A-Za-z_]\w*)?$", text)
    if m is None:
        return None
    end = m.start()
    start = _operand_start(text, end)
    if start is None or start == end:
        return None
    from crashtui.kernel.cexpr import parse
    from crashtui.kernel.cvalue import Evaluator, member_names

    try:
        types = session.types
        ev = Evaluator(session.kernel, types)
        base = text[start:end]
        percpu = re.match(r"([A-Za-z_]\w*):(\d+|a)", base)
        if percpu:
            base = percpu.group(1) + base[percpu.end():]
        ct = ev.type_of(parse(base, ev.is_type))
        if ct.kind == "ptr" and ct.target is not None:
            ct = ct.target
        if ct.kind not in ("struct", "union"):
            return None
        return text[:m.end(1)], m.group(2) or "", member_names(types, ct)
    except CrashtuiError:
        return None


def _operand_start(text: str, end: int) -> int | None:
    """Where the postfix expression ending at `end` starts (identifiers, `.`, `->`,
    `[...]`, `(...)`, a `NAME:CPU` per-CPU prefix), scanning backwards."""
    i = end
    while i > 0:
        ch = text[i - 1]
        if ch.isalnum() or ch in "_.:":
            i -= 1
        elif ch == ">" and i >= 2 and text[i - 2] == "-":
            i -= 2
        elif ch in ")]":
            depth = 0
            while i > 0:
                c = text[i - 1]
                depth += 1 if c in ")]" else -1 if c in "([" else 0
                i -= 1
                if depth == 0:
                    break
            if depth:
                return None
        else:
            break
    return i


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
