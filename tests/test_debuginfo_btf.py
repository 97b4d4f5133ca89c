"""BTF: the real vmlinux's layouts, plus a synthetic blob for ENUM64, bitfields and split BTF."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from crashtui.debuginfo.btf import (
    KIND_ENUM64,
    KIND_INT,
    KIND_PTR,
    KIND_STRUCT,
    KIND_TYPEDEF,
    Btf,
    TypeNotFoundError,
)
from crashtui.debuginfo.vmlinux import Vmlinux
from crashtui.errors import DebugInfoError


@pytest.fixture(scope="module")
def btf(vmlinux_path: Path) -> Btf:
    b = Vmlinux(vmlinux_path).btf
    assert b is not None
    return b


def test_task_struct_layout(btf: Btf) -> None:
    st = btf.struct("task_struct")
    assert st.size == 9728
    assert btf.sizeof("struct task_struct") == 9728
    assert btf.offsetof("task_struct", "tasks") == 2192
    assert btf.offsetof("task_struct", "mm") == 2272
    assert btf.offsetof("struct task_struct", "pid") == 2416
    assert btf.offsetof("task_struct", "comm") == 2976
    assert btf.offsetof("task_struct", "__state") == 24
    assert btf.offsetof("task_struct", "comm[3]") == 2979
    assert btf.offsetof("task_struct", "se.sum_exec_runtime") == \
        128 + btf.offsetof("sched_entity", "sum_exec_runtime")


def test_anonymous_members_flattened(btf: Btf) -> None:
    # struct page keeps lru/mapping inside anonymous unions/structs
    page = btf.struct("page")
    assert page.has_member("lru") and page.has_member("mapping")
    assert btf.offsetof("page", "lru") == 8


def test_sizes(btf: Btf) -> None:
    assert btf.sizeof("struct list_head") == 16
    assert btf.sizeof("unsigned long") == 8
    assert btf.sizeof("unsigned int") == 4
    assert btf.sizeof("u8") == 1
    assert btf.sizeof("pid_t") == 4
    assert btf.sizeof("struct task_struct *") == 8
    assert btf.sizeof("char[16]") == 16
    assert btf.sizeof("struct list_head[4]") == 64


def test_member_type(btf: Btf) -> None:
    comm = btf.member_type("task_struct", "comm")
    assert comm.kind == "array" and comm.length == 16 and comm.size == 16
    assert comm.target is not None and comm.target.name == "char"
    mm = btf.member_type("task_struct", "mm")
    assert mm.kind == "ptr" and mm.size == 8
    assert mm.c_name() == "struct mm_struct *"
    assert mm.target is not None and mm.target.kind == "struct" and mm.target.name == "mm_struct"
    pid = btf.member_type("task_struct", "pid")
    assert pid.name == "pid_t" and pid.resolved().kind == "int" and pid.resolved().signed


def test_enums(btf: Btf) -> None:
    zsi = btf.enum("zone_stat_item")
    assert zsi["NR_FREE_PAGES"] == 0
    assert btf.enum("enum zone_stat_item") == zsi
    assert btf.enumerator("NR_FREE_PAGES") == 0
    assert btf.enumerator("NR_FILE_PAGES") == btf.enum("node_stat_item")["NR_FILE_PAGES"]
    with pytest.raises(TypeNotFoundError):
        btf.enumerator("NO_SUCH_ENUMERATOR_X")


def test_missing_things(btf: Btf) -> None:
    with pytest.raises(TypeNotFoundError):
        btf.struct("no_such_struct_anywhere")
    with pytest.raises(TypeNotFoundError, match="has no member"):
        btf.offsetof("task_struct", "no_such_member")
    assert not btf.has_member("task_struct", "pids")
    assert btf.has_member("task_struct", "thread_pid")


def test_format_struct(btf: Btf) -> None:
    text = btf.format_struct("list_head")
    assert text.splitlines() == [
        "struct list_head {",
        " [0] struct list_head *next;",
        " [8] struct list_head *prev;",
        "}",
        "SIZE: 16",
    ]
    task = btf.format_struct("task_struct")
    assert "[2976] char comm[16];" in task
    assert "[2192] struct list_head tasks;" in task
    assert task.endswith("SIZE: 9728")
    assert "void (*func)(struct callback_head *);" in btf.format_struct("callback_head")


# -- synthetic BTF -------------------------------------------------------------------------------

def _blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def _t(name_off: int, kind: int, vlen: int, size_or_type: int, kflag: int = 0) -> bytes:
    return struct.pack("<III", name_off, (kflag << 31) | (kind << 24) | vlen, size_or_type)


def _base() -> Btf:
    strings = b"\0int\0s\0a\0b\0c\0e64\0BIG\0NEG\0"
    types = _t(1, KIND_INT, 0, 4) + struct.pack("<I", (1 << 24) | 32)          # 1 int
    types += _t(5, KIND_STRUCT, 3, 8, kflag=1)                                   # 2 struct s
    types += struct.pack("<III", 7, 1, (3 << 24) | 0)                            #   a : 3
    types += struct.pack("<III", 9, 1, (5 << 24) | 3)                            #   b : 5
    types += struct.pack("<III", 11, 1, 32)                                      #   c
    types += _t(13, KIND_ENUM64, 2, 8, kflag=1)                                  # 3 enum e64
    types += struct.pack("<III", 17, 0, 1)                                       #   BIG=1<<32
    types += struct.pack("<III", 21, 0xFFFFFFFF, 0xFFFFFFFF)                     #   NEG=-1
    return Btf(_blob(types, strings))


def test_synthetic_bitfields_and_enum64() -> None:
    b = _base()
    assert len(b) == 4
    st = b.struct("s")
    assert [(m.name, m.offset_bits, m.bitfield_size) for m in st.members] == \
        [("a", 0, 3), ("b", 3, 5), ("c", 32, 0)]
    assert b.enum("e64") == {"BIG": 1 << 32, "NEG": -1}
    assert b.enumerator("BIG") == 1 << 32
    assert b.format_struct("s").splitlines()[1:4] == \
        ["[0] int a : 3;", "[0] int b : 5;", "[4] int c;"]


def test_synthetic_split_btf() -> None:
    base = _base()
    # split strings continue the base's offsets; types continue its ids (4, 5)
    strings = b"\0myint\0"
    types = _t(len(base._strings) + 1, KIND_TYPEDEF, 0, 1)                       # 4 myint
    types += _t(0, KIND_PTR, 0, 2)                                               # 5 struct s *
    split = Btf(_blob(types, strings), base=base)
    assert split.start_id == 4 and len(split) == 6
    assert split.type_by_name("myint").resolved().name == "int"
    assert split.sizeof("myint") == 4
    assert split.type_name(5) == "struct s *"
    assert split.struct("s").size == 8  # found in the base


def test_bad_blobs() -> None:
    with pytest.raises(DebugInfoError, match="magic"):
        Btf(b"\0" * 32)
    with pytest.raises(DebugInfoError, match="too short"):
        Btf(b"\x9f\xeb")
    good = _blob(_t(1, KIND_INT, 0, 4), b"\0int\0")  # INT without its extra word
    with pytest.raises(DebugInfoError):
        Btf(good)
