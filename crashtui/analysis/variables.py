"""A frame's arguments and local variables as plain data (crashtui.kernel.framevars finds
them): what the Variables view, `locals`, the JSON document and the report show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OPTIMIZED_OUT = "optimized out"


@dataclass
class FrameVariable:
    """One argument or local: its C type, and its value, or why there is none."""

    name: str
    type: str  # C spelling, gdb style ("struct task_struct *")
    parameter: bool
    function: str  # the function whose scope declares it
    inlined: bool = False  # that function is inlined here (into `FrameVariables.function`)
    value: str | None = None  # short one-line value ("0xffff888003a1c000", "-4", "{...}")
    state: str = "ok"  # "ok" | "optimized out" | "unknown" | "error"
    reason: str = ""  # for unknown/error: why (e.g. "register rbx not known in this frame")
    location: str = ""  # "register rdi", "stack", "memory", "constant", "computed"
    address: int | None = None  # where it is in memory, when it is
    data: bytes | None = None  # its bytes (for expanding structs and pointers)
    ctype: Any = None  # crashtui.debuginfo.ctype.CType (how to print or expand it)

    @property
    def known(self) -> bool:
        return self.state == "ok"

    def display(self) -> str:
        """The value, or what stands in for it (`<optimized out>`, `<unknown: ...>`)."""
        if self.state == "ok":
            return self.value or ""
        if self.state == OPTIMIZED_OUT:
            return "<optimized out>"
        return f"<{self.state}: {self.reason}>" if self.reason else f"<{self.state}>"

    def as_json(self) -> dict[str, Any]:
        """The JSON document's form (docs/json.md, `variables`)."""
        return {"name": self.name, "type": self.type,
                "kind": "parameter" if self.parameter else "local",
                "function": self.function, "inlined": self.inlined, "state": self.state,
                "value": self.value if self.state == "ok" else None,
                "reason": self.reason or None, "location": self.location or None,
                "address": f"{self.address:#x}" if self.address is not None else None}


@dataclass
class FrameVariables:
    """The variables of one frame (its function and the functions inlined at its pc)."""

    function: str | None
    pc: int  # the frame's pc (runtime)
    lookup_pc: int  # the address scopes were looked up at (pc - 1 for a return address)
    frame: int | None = None  # the bt frame number
    exception: bool = False  # the frame is an exception RIP (the code pt_regs interrupted)
    variables: list[FrameVariable] = field(default_factory=list)
    error: str | None = None  # why none could be listed (no DWARF for this address, ...)
    registers: tuple[str, ...] = ()  # the registers known in this frame

    def named(self, name: str) -> FrameVariable | None:
        """The variable `name` as C scoping sees it at the pc (innermost declaration)."""
        for v in reversed(self.variables):
            if v.name == name:
                return v
        return None

    def as_json(self) -> dict[str, Any]:
        return {"function": self.function, "pc": f"{self.pc:#x}", "frame": self.frame,
                "exception": self.exception, "error": self.error,
                "variables": [v.as_json() for v in self.variables]}


@dataclass
class ValueNode:
    """A member, element or pointed-to object of a value, as the Variables tree expands it."""

    name: str  # "flags", "[3]", "*task"
    type: str
    value: str  # one line, as FrameVariable.value
    expandable: bool = False  # a struct/union/array, or a non-NULL pointer to a struct/union
    ctype: Any = None
    data: bytes | None = None
    address: int | None = None
