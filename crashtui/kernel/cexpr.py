"""C expressions as gdb (inside crash) parses them for `p`: a tokenizer and parser to a tree.

    init_task.tasks.next->next      ((struct task_struct *)0xffff...)->pid
    *init_task.mm                   &init_task.comm[1]
    cpu_online_mask->bits[0]        sizeof(struct task_struct)
    jiffies & 0xff                  (unsigned long)init_task.tasks.next + 8

Precedence and associativity are C's (casts, unary `* & - ~ ! sizeof`, postfix `. -> []`,
then `* / %`, `+ -`, `<< >>`, comparisons, `& ^ |`, `&& ||`), plus gdb's `@` (an artificial
array: `*p@3`). Whether `(name)` is a cast is decided by `is_type`, the caller's look-up of
typedef names. The tree is evaluated against a dump by crashtui.kernel.cvalue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from crashtui.errors import CrashtuiError

MAX_TEXT = 1024  # characters of an expression
MAX_DEPTH = 64  # nesting of the parse (parentheses, unary operators)


class ExprError(CrashtuiError):
    """An expression that does not parse or cannot be evaluated (gdb's one-line message)."""


@dataclass(frozen=True)
class TypeName:
    """A C type as written in a cast or sizeof: base words and pointer stars."""

    base: str  # "struct task_struct", "unsigned long", "u64"
    stars: int = 0


@dataclass(frozen=True)
class Num:
    value: int
    unsigned: bool = False
    long: bool = False
    hex: bool = False


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Member:
    base: Node
    name: str
    arrow: bool


@dataclass(frozen=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True)
class Unary:
    op: str  # * & - + ~ !
    operand: Node


@dataclass(frozen=True)
class Cast:
    type: TypeName
    operand: Node


@dataclass(frozen=True)
class SizeOf:
    of: Node | TypeName


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Num | Ident | Member | Index | Unary | Cast | SizeOf | Binary

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>0[xX][0-9a-fA-F]+|\d+)(?P<suffix>[uUlL]*)\b
  | (?P<char>'(?:\\.|[^\\'])')
  | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>->|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!()\[\].@<>?:,])
)""", re.X)
_BASE_WORDS = frozenset(("unsigned", "signed", "int", "long", "short", "char", "void",
                         "_Bool", "float", "double", "const", "volatile"))
_BINARY = ((",",), ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
           ("<<", ">>"), ("+", "-"), ("*", "/", "%"), ("@",))
_CHAR_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, "a": 7, "b": 8,
                 "f": 12, "v": 11, "e": 27}


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: num, id, op; a char literal becomes a num."""
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression longer than {MAX_TEXT} characters")
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(f"A syntax error in expression, near `{text[pos:].strip()}'.")
        if m.group("num") is not None:
            out.append(("num", m.group("num") + m.group("suffix")))
        elif m.group("char") is not None:
            body = m.group("char")[1:-1]
            v = ord(body) if len(body) == 1 else _CHAR_ESCAPES.get(body[1], ord(body[1]))
            out.append(("char", str(v)))
        elif m.group("id") is not None:
            out.append(("id", m.group("id")))
        else:
            out.append(("op", m.group("op")))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, is_type: Callable[[str], bool]) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.is_type = is_type

    # -- helpers ------------------------------------------------------------------------------

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at_op(self, *ops: str) -> bool:
        t = self.peek()
        return t is not None and t[0] == "op" and t[1] in ops

    def take(self) -> tuple[str, str]:
        t = self.peek()
        if t is None:
            raise ExprError("A syntax error in expression, near `'.")
        self.i += 1
        return t

    def expect(self, op: str) -> None:
        if not self.at_op(op):
            raise self.error()
        self.i += 1

    def error(self) -> ExprError:
        rest = " ".join(t for _k, t in self.toks[self.i:])
        return ExprError(f"A syntax error in expression, near `{rest}'.")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")

    # -- grammar ------------------------------------------------------------------------------

    def parse(self) -> Node:
        if not self.toks:
            raise ExprError("Argument required (expression to compute).")
        node = self.binary(0)
        if self.peek() is not None:
            raise self.error()
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.at_op(*_BINARY[level]):
            op = self.take()[1]
            right = self.binary(level + 1)
            left = Binary(op, left, right)
        return left

    def starts_type(self) -> bool:
        """Whether the tokens after a `(` spell a type name."""
        t = self.peek()
        if t is None or t[0] != "id":
            return False
        if t[1] in ("struct", "union", "enum") or t[1] in _BASE_WORDS:
            return True
        nxt = self.peek(1)
        return nxt is not None and nxt[0] == "op" and nxt[1] in (")", "*") and \
            self.is_type(t[1])

    def type_name(self) -> TypeName:
        words: list[str] = []
        t = self.peek()
        if t is not None and t[0] == "id" and t[1] in ("struct", "union", "enum"):
            self.take()
            tag = self.take()
            if tag[0] != "id":
                raise self.error()
            words = [t[1], tag[1]]
        else:
            while (t := self.peek()) is not None and t[0] == "id" and \
                    (t[1] in _BASE_WORDS or not words):
                words.append(self.take()[1])
        words = [w for w in words if w not in ("const", "volatile")]
        if not words:
            raise self.error()
        stars = 0
        while self.at_op("*"):
            self.take()
            stars += 1
        return TypeName(" ".join(words), stars)

    def unary(self) -> Node:
        self.enter()
        try:
            if self.at_op("*", "&", "-", "+", "~", "!"):
                op = self.take()[1]
                return Unary(op, self.unary())
            t = self.peek()
            if t == ("id", "sizeof"):
                self.take()
                if self.at_op("("):
                    save = self.i
                    self.take()
                    if self.starts_type():
                        tn = self.type_name()
                        self.expect(")")
                        return SizeOf(tn)
                    self.i = save
                return SizeOf(self.unary())
            if self.at_op("("):
                save = self.i
                self.take()
                if self.starts_type():
                    tn = self.type_name()
                    self.expect(")")
                    return Cast(tn, self.unary())
                self.i = save
            return self.postfix(self.primary())
        finally:
            self.depth -= 1

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            digits = text.rstrip("uUlL")
            suffix = text[len(digits):].lower()
            return Num(int(digits, 0) if not re.fullmatch(r"0\d+", digits) else int(digits, 8),
                       "u" in suffix, "l" in suffix, digits[:2].lower() == "0x")
        if kind == "char":
            return Cast(TypeName("char"), Num(int(text)))
        if kind == "id":
            return Ident(text)
        if text == "(":
            self.enter()
            try:
                node = self.binary(0)
            finally:
                self.depth -= 1
            self.expect(")")
            return node
        self.i -= 1
        raise self.error()

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at_op(".", "->"):
                arrow = self.take()[1] == "->"
                t = self.take()
                if t[0] != "id":
                    self.i -= 1
                    raise self.error()
                node = Member(node, t[1], arrow)
            elif self.at_op("["):
                self.take()
                idx = self.binary(0)
                self.expect("]")
                node = Index(node, idx)
            else:
                return node


def parse(text: str, is_type: Callable[[str], bool] = lambda _name: False) -> Node:
    """The tree of a C expression (ExprError with gdb's message if it does not parse)."""
    return _Parser(text, is_type).parse()


def first_identifier(node: Node) -> str | None:
    """The identifier a member path starts from (`init_task` of `init_task.mm->pgd`)."""
    while True:
        if isinstance(node, Ident):
            return node.name
        if isinstance(node, Member):
            node = node.base
        elif isinstance(node, Index):
            node = node.base
        else:
            return None
