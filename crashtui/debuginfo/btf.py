"""BTF type information (Documentation/bpf/btf.rst, include/uapi/linux/btf.h).

One pass over the type section records where each type id starts; names are found through
the string section on demand and types are decoded only when asked for.

Why one file of ~830 lines: everything here is one reader, `Btf`, over the same raw records
(the id index, the split-BTF base, the bounded member walks that hostile in-memory BTF needs);
member lookup, enums, sizes of C type expressions and the C spelling of declarations all
decode those records through its private helpers. Split by topic, each part would reach back
into the others' internals.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from crashtui.debuginfo.elf import ElfImage
from crashtui.errors import DebugInfoError

BTF_MAGIC = 0xEB9F
# struct btf_header: magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
_HDR = struct.Struct("<HBBIIIII")

# BTF_KIND_* (include/uapi/linux/btf.h)
KIND_UNKN, KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 0, 1, 2, 3, 4, 5, 6
KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 7, 8, 9, 10, 11
KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_FLOAT = 12, 13, 14, 15, 16
KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 17, 18, 19
KIND_NAMES = ("void", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef",
              "volatile", "const", "restrict", "func", "func_proto", "var", "datasec", "float",
              "decl_tag", "type_tag", "enum64")

# extra u32 words after the 12-byte struct btf_type: fixed part, and per vlen item
_EXTRA_FIXED = (0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0)
_EXTRA_PER_VLEN = (0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3)

# BTF_INT_ENCODING bits
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

_QUALIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
_MODIFIERS = (KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)

# C base type spellings -> sizes (x86-64 LP64), used when BTF lacks the exact spelling
_C_SIZES = {"char": 1, "short": 2, "int": 4, "long": 8, "long long": 8, "_Bool": 1,
            "float": 4, "double": 8, "long double": 16, "void": 1}


MAX_DEPTH = 32  # nesting of anonymous members, arrays, modifiers: the kernel's is under 10
MAX_MEMBERS = 1 << 16  # members of one struct with its anonymous members flattened in


class TypeNotFoundError(DebugInfoError, LookupError):
    """A type, member or enumerator is not in the BTF."""


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; offset_bits from the start of the outermost struct."""

    name: str
    offset_bits: int
    bitfield_size: int
    type_id: int

    @property
    def offset(self) -> int:
        """Byte offset (rounded down for bitfields)."""
        return self.offset_bits // 8


@dataclass(frozen=True, slots=True)
class StructType:
    """A struct or union layout; members of anonymous members are flattened in."""

    name: str
    size: int
    members: list[Member]
    kind: str = "struct"
    type_id: int = 0

    def member(self, name: str) -> Member:
        """The member called `name` (TypeNotFoundError if absent)."""
        for m in self.members:
            if m.name == name:
                return m
        raise TypeNotFoundError(f"{self.kind} {self.name} has no member {name!r}")

    def has_member(self, name: str) -> bool:
        """True if `name` is a (possibly flattened) member."""
        return any(m.name == name for m in self.members)


@dataclass(frozen=True)
class TypeRef:
    """One BTF type, decoded: kind name, name, size, target for ptr/array/typedef/qualifiers."""

    type_id: int
    kind: str
    name: str | None
    size: int | None
    target_id: int | None = None
    length: int | None = None  # array element count
    signed: bool = False  # ints and enums
    bits: int | None = None  # int width in bits
    btf: Btf | None = field(default=None, repr=False, compare=False)

    @property
    def target(self) -> TypeRef | None:
        """Pointed-to / element / aliased type, if any."""
        if self.target_id is None or self.btf is None:
            return None
        return self.btf.type(self.target_id)

    def resolved(self) -> TypeRef:
        """This type with typedefs and qualifiers (const, volatile, ...) stripped."""
        assert self.btf is not None
        return self.btf.type(self.btf.resolve_id(self.type_id))

    def c_name(self) -> str:
        """The C spelling, e.g. "struct list_head *"."""
        assert self.btf is not None
        return self.btf.type_name(self.type_id)


class Btf:
    """A parsed .BTF blob; `base` for split BTF (modules) continues the base's ids/strings."""

    def __init__(self, data: bytes | memoryview, base: Btf | None = None,
                 path: object | None = None, build_id: str | None = None) -> None:
        """Parse the header and index the types; a build_id (of a vmlinux's own .BTF) lets
        the type index come from the on-disk cache."""
        self.base = base
        self.path = path
        self._str_base: int = 0
        self.start_id: int = 1
        self.next_id: int = 1
        buf = memoryview(data)
        if len(buf) < _HDR.size:
            raise DebugInfoError("BTF too short for its header", path)
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = \
            _HDR.unpack_from(buf, 0)
        if magic != BTF_MAGIC:
            raise DebugInfoError(f"bad BTF magic {magic:#x}", path)
        if version != 1:
            raise DebugInfoError(f"unsupported BTF version {version}", path)
        t0, s0 = hdr_len + type_off, hdr_len + str_off
        if t0 + type_len > len(buf) or s0 + str_len > len(buf) or type_len % 4:
            raise DebugInfoError("BTF type/string sections are out of bounds", path)
        self._strings = bytes(buf[s0:s0 + str_len])
        self._str_base = base._str_base + len(base._strings) if base else 0
        self._words = memoryview(bytes(buf[t0:t0 + type_len])).cast("I")
        self.start_id = base.next_id if base else 1
        self._offsets = self._cached_index(build_id) if build_id and base is None \
            else self._index()
        self.next_id = self.start_id + len(self._offsets)
        self._name_offs: np.ndarray | None = None
        self._kinds: np.ndarray | None = None
        self._by_name: dict[str, list[int]] = {}
        self._enumerators: dict[str, int] | None = None
        self._members: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._keys: tuple[np.ndarray, np.ndarray] | None = None
        self._build_id = build_id if base is None else None
        self._enum_cache: dict[str, int | None] = {}
        self._structs: dict[int, StructType | DebugInfoError] = {}

    @classmethod
    def from_elf(cls, image: ElfImage, base: Btf | None = None) -> Btf:
        """The .BTF section of a vmlinux (or of a .ko, given the vmlinux BTF as base)."""
        if ".BTF" not in image.sections:
            raise DebugInfoError("no .BTF section", image.path)
        return cls(image.section_data(".BTF"), base=base, path=image.path,
                   build_id=image.build_id if base is None else None)

    # -- index ----------------------------------------------------------------------------------

    def _index(self) -> np.ndarray:
        """Word offset of each type record, in id order."""
        w = self._words
        n = len(w)
        offs: list[int] = []
        append = offs.append
        fixed, per = _EXTRA_FIXED, _EXTRA_PER_VLEN
        pos = 0
        try:
            while pos < n:
                append(pos)
                info = w[pos + 1]
                kind = (info >> 24) & 0x1F
                pos += 3 + fixed[kind] + per[kind] * (info & 0xFFFF)
        except IndexError:
            raise DebugInfoError(f"BTF type {len(offs)} has unknown kind or is truncated",
                                 self.path) from None
        if pos != n:
            raise DebugInfoError("BTF type section is truncated", self.path)
        return np.array(offs, dtype=np.uint32)

    def _cached_index(self, build_id: str) -> np.ndarray:
        """_index through the on-disk cache; a cached index is used only if it checks out."""
        from crashtui.debuginfo import cache

        # _valid_index proves a loaded index right for these words: sizes suffice here
        fingerprint = (len(self._words), len(self._strings), zlib.crc32(self._strings[:4096]))
        got = cache.load_arrays(build_id, "btf-types", fingerprint, ("offsets",))
        if got is not None and self._valid_index(got["offsets"]):
            return got["offsets"]
        offsets = self._index()
        cache.save_arrays(build_id, "btf-types", fingerprint, {"offsets": offsets})
        return offsets

    def _valid_index(self, offs: np.ndarray) -> bool:
        """True if `offs` is exactly the record offsets _index would compute (vectorised)."""
        n = len(self._words)
        if offs.dtype != np.uint32 or offs.ndim != 1 or len(offs) == 0 or offs[0] != 0:
            return False
        if int(offs[-1]) + 3 > n or not bool((offs[1:] > offs[:-1]).all()):
            return False
        info = np.frombuffer(self._words, dtype=np.uint32)[offs.astype(np.int64) + 1]
        kinds = (info >> 24) & 0x1F
        if int(kinds.max()) >= len(_EXTRA_FIXED):
            return False
        fixed = np.array(_EXTRA_FIXED, dtype=np.int64)[kinds]
        per = np.array(_EXTRA_PER_VLEN, dtype=np.int64)[kinds]
        ends = offs.astype(np.int64) + 3 + fixed + per * (info & 0xFFFF)
        return bool((ends[:-1] == offs[1:]).all()) and int(ends[-1]) == n

    def __len__(self) -> int:
        """Number of type ids including those of the base (and void)."""
        return self.next_id

    def _locate(self, tid: int) -> tuple[Btf, int]:
        if tid >= self.start_id:
            if tid >= self.next_id:
                raise TypeNotFoundError(f"BTF type id {tid} out of range", self.path)
            return self, int(self._offsets[tid - self.start_id])
        if self.base is None:
            raise TypeNotFoundError(f"BTF type id {tid} out of range", self.path)
        return self.base._locate(tid)

    def string(self, off: int) -> str:
        """The string at a BTF string offset (split BTF continues the base's offsets)."""
        if off < self._str_base:
            assert self.base is not None
            return self.base.string(off)
        off -= self._str_base
        end = self._strings.find(b"\0", off)
        return self._strings[off:end if end >= 0 else None].decode("utf-8", "replace")

    def _raw(self, tid: int) -> tuple[Btf, int, int, int, int, int]:
        """(owner, word pos, name_off, kind, vlen|kind_flag<<16, size_or_type) of a type id."""
        btf, pos = self._locate(tid)
        w = btf._words
        info = w[pos + 1]
        return btf, pos, w[pos], (info >> 24) & 0x1F, (info & 0xFFFF) | ((info >> 31) << 16), \
            w[pos + 2]

    def kind_of(self, tid: int) -> int:
        """BTF_KIND_* of a type id (0 for void)."""
        return 0 if tid == 0 else self._raw(tid)[3]

    # -- names ------------------------------------------------------------------------------------

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._name_offs is None:
            words = np.frombuffer(self._words, dtype=np.uint32)
            self._name_offs = words[self._offsets]
            self._kinds = ((words[self._offsets + 1] >> 24) & 0x1F).astype(np.uint8)
        assert self._kinds is not None
        return self._name_offs, self._kinds

    def ids_by_name(self, name: str) -> list[int]:
        """Every type id (base first) whose name is exactly `name`."""
        cached = self._by_name.get(name)
        if cached is not None:
            return cached
        ids = self.base.ids_by_name(name) if self.base else []
        if name and self.base is None:
            ids.extend(self._ids_named(name.encode()))
        elif name:
            name_offs, _ = self._arrays()
            needle = name.encode() + b"\0"
            s = self._strings
            pos = s.find(needle)
            while pos >= 0:
                if pos == 0 or s[pos - 1] == 0:
                    hits = np.flatnonzero(name_offs == pos + self._str_base)
                    ids.extend(int(h) + self.start_id for h in hits)
                pos = s.find(needle, pos + 1)
            # a split BTF may name its types with strings of the base
            if self.base is not None:
                for off in self.base._string_offsets(needle):
                    ids.extend(int(h) + self.start_id for h in np.flatnonzero(name_offs == off))
            ids.sort()
        self._by_name[name] = ids
        return ids

    def _ids_named(self, raw: bytes) -> list[int]:
        """The type ids whose whole name is `raw` (a BTF without base), in id order: through
        the types sorted by a key of their name's length and first 8 bytes, then compared."""
        keys, order = self._name_keys()
        key = _name_key(len(raw), int.from_bytes(raw[:8], "little"))
        lo = int(np.searchsorted(keys, np.uint64(key), side="left"))
        hi = int(np.searchsorted(keys, np.uint64(key), side="right"))
        s, offs, end = self._strings, self._name_offs, len(raw)
        assert offs is not None
        out: list[int] = []
        for j in order[lo:hi].tolist():
            off = int(offs[j])
            # a name starts a string (as a search for "name\0" after a NUL found it)
            if s[off:off + end] == raw and s[off + end:off + end + 1] == b"\0" and (
                    off == 0 or s[off - 1] == 0):
                out.append(j + self.start_id)
        out.sort()
        return out

    def _name_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Every type's _name_key, sorted, and the type indexes in that order (~15 ms to
        build; a vmlinux's are kept in the on-disk cache by build-id)."""
        if self._keys is None:
            name_offs, _ = self._arrays()
            fingerprint = (len(self._strings), zlib.crc32(self._strings), len(name_offs),
                           zlib.crc32(name_offs.tobytes()))
            if self._build_id is not None:
                from crashtui.debuginfo import cache

                got = cache.load_arrays(self._build_id, "btf-names", fingerprint,
                                        ("keys", "order"))
                if got is not None and self._valid_keys(got["keys"], got["order"]):
                    self._keys = (got["keys"], got["order"])
                    return self._keys
            self._keys = self._build_name_keys()
            if self._build_id is not None:
                cache.save_arrays(self._build_id, "btf-names", fingerprint,
                                  {"keys": self._keys[0], "order": self._keys[1]})
        return self._keys

    def _valid_keys(self, keys: np.ndarray, order: np.ndarray) -> bool:
        """True if a cached (keys, order) is sorted, a permutation of the types, and right for
        a sample of them (as the symbol-name index is checked)."""
        n = len(self._offsets)
        if not (keys.dtype == np.uint64 and order.dtype == np.int64 and keys.shape == (n,)
                and order.shape == (n,)):
            return False
        if n == 0:
            return True
        if not (bool((keys[1:] >= keys[:-1]).all()) and int(order.min()) >= 0
                and int(order.max()) < n and bool((np.bincount(order, minlength=n) == 1).all())):
            return False
        s, offs = self._strings, self._name_offs
        assert offs is not None
        for j in np.linspace(0, n - 1, min(n, 64)).astype(np.int64).tolist():
            off = int(offs[int(order[j])])
            end = s.find(b"\0", off) if off < len(s) else len(s)
            raw = s[off:end if end >= 0 else len(s)]
            if _name_key(len(raw), int.from_bytes(raw[:8], "little")) != int(keys[j]):
                return False
        return True

    def _build_name_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """_name_keys computed (vectorised)."""
        name_offs, _ = self._arrays()
        s = self._strings
        b = np.frombuffer(s + bytes(8), dtype=np.uint8)
        offs = name_offs.astype(np.int64)
        offs = np.where(offs < len(s), offs, len(s))  # out of the table: the empty name
        zeros = np.flatnonzero(b[:len(s)] == 0)
        ends = np.append(zeros, len(s))[np.searchsorted(zeros, offs, side="left")]
        lens = (ends - offs).astype(np.uint64)
        head = np.ndarray((len(s) + 1,), "<u8", b, 0, (1,))[offs]  # a word at each byte
        short = lens < 8
        mask = np.full(len(lens), np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        mask[short] = (np.uint64(1) << (lens[short] * np.uint64(8))) - np.uint64(1)
        keys = (head & mask) ^ (lens * np.uint64(_KEY_MIX))
        order = np.argsort(keys, kind="stable").astype(np.int64)
        return keys[order], order

    def _string_offsets(self, needle: bytes) -> list[int]:
        out = self.base._string_offsets(needle) if self.base else []
        s = self._strings
        pos = s.find(needle)
        while pos >= 0:
            if pos == 0 or s[pos - 1] == 0:
                out.append(pos + self._str_base)
            pos = s.find(needle, pos + 1)
        return out

    def find(self, name: str, kinds: tuple[int, ...]) -> int | None:
        """The best type id named `name` of one of `kinds` (complete types before FWD)."""
        best: int | None = None
        for tid in self.ids_by_name(name):
            _, _, _, kind, vlen, size = self._raw(tid)
            if kind not in kinds:
                continue
            if kind in (KIND_STRUCT, KIND_UNION) and (vlen & 0xFFFF) == 0 and size == 0:
                best = best or tid  # empty: keep looking for a complete one
                continue
            return tid
        return best

    def type_by_name(self, name: str) -> TypeRef:
        """A type by C spelling: "struct foo", "union foo", "enum foo", typedef/base/"foo *"."""
        return self.type(self._parse_type(name))

    def has_type(self, name: str) -> bool:
        """True if `type_by_name(name)` would succeed."""
        try:
            self._parse_type(name)
        except TypeNotFoundError:
            return False
        return True

    # -- decoding ---------------------------------------------------------------------------------

    def type(self, tid: int) -> TypeRef:
        """Decode one type id (0 is void)."""
        if tid == 0:
            return TypeRef(0, "void", "void", None, btf=self)
        btf, pos, name_off, kind, vlen, st = self._raw(tid)
        name = self.string(name_off) or None
        w = btf._words
        kname = KIND_NAMES[kind] if kind < len(KIND_NAMES) else f"kind{kind}"
        if kind == KIND_INT:
            enc = w[pos + 3]
            return TypeRef(tid, kname, name, st, signed=bool((enc >> 24) & INT_SIGNED),
                           bits=enc & 0xFF, btf=self)
        if kind in (KIND_STRUCT, KIND_UNION, KIND_FLOAT, KIND_DATASEC):
            return TypeRef(tid, kname, name, st, btf=self)
        if kind in (KIND_ENUM, KIND_ENUM64):
            return TypeRef(tid, kname, name, st, signed=bool(vlen >> 16), btf=self)
        if kind == KIND_PTR:
            return TypeRef(tid, kname, name, 8, target_id=st, btf=self)
        if kind == KIND_ARRAY:
            elem, _index, nelems = w[pos + 3], w[pos + 4], w[pos + 5]
            esize = self.sizeof_id(elem)
            return TypeRef(tid, kname, name, esize * nelems if esize is not None else None,
                           target_id=elem, length=nelems, btf=self)
        if kind in _QUALIFIERS or kind in (KIND_VAR, KIND_DECL_TAG, KIND_FUNC):
            size = self.sizeof_id(st) if kind in _QUALIFIERS or kind == KIND_VAR else None
            return TypeRef(tid, kname, name, size, target_id=st, btf=self)
        if kind == KIND_FUNC_PROTO:
            return TypeRef(tid, kname, name, None, target_id=st, btf=self)
        return TypeRef(tid, kname, name, None, btf=self)  # FWD

    def resolve_id(self, tid: int) -> int:
        """Follow typedefs and qualifiers to the underlying type id."""
        for _ in range(64):
            if tid == 0:
                return 0
            _, _, _, kind, _, st = self._raw(tid)
            if kind not in _QUALIFIERS:
                return tid
            tid = st
        raise DebugInfoError(f"BTF typedef loop at type {tid}", self.path)

    def sizeof_id(self, tid: int, depth: int = 0) -> int | None:
        """Size in bytes of a type id (None for void/function/forward declarations)."""
        if depth > MAX_DEPTH:
            raise DebugInfoError(f"BTF types nest deeper than {MAX_DEPTH} at type {tid}",
                                 self.path)
        for _ in range(64):
            if tid == 0:
                return None
            btf, pos, _, kind, _, st = self._raw(tid)
            if kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT,
                        KIND_DATASEC):
                return st
            if kind == KIND_PTR:
                return 8
            if kind == KIND_ARRAY:
                w = btf._words
                esize = self.sizeof_id(w[pos + 3], depth + 1)
                return None if esize is None else esize * w[pos + 5]
            if kind in _QUALIFIERS or kind == KIND_VAR:
                tid = st
                continue
            return None
        raise DebugInfoError(f"BTF typedef loop at type {tid}", self.path)

    def _raw_members(self, tid: int) -> Iterator[tuple[str, int, int, int]]:
        """(name, bit offset, bitfield size, type id) of a struct/union's direct members."""
        btf, pos, _, kind, vlen, _ = self._raw(tid)
        if kind not in (KIND_STRUCT, KIND_UNION):
            raise TypeNotFoundError(f"BTF type {tid} is not a struct or union", self.path)
        kflag = vlen >> 16
        w = btf._words
        p = pos + 3
        for _ in range(vlen & 0xFFFF):
            name_off, mtype, off = w[p], w[p + 1], w[p + 2]
            p += 3
            # with kind_flag, offset holds bitfield_size << 24 | bit_offset (btf.rst 2.2.4)
            if kflag:
                yield self.string(name_off), off & 0xFFFFFF, off >> 24, mtype
            else:
                yield self.string(name_off), off, 0, mtype

    def _flat_members(self, tid: int, base_bits: int, out: list[Member],
                      outer: tuple[int, ...]) -> None:
        """Append tid's members, anonymous struct/union members' own members in their place;
        bounded (a damaged BTF can nest anonymous members in themselves or blow them up)."""
        if len(outer) > MAX_DEPTH:
            raise DebugInfoError(f"BTF anonymous members nest deeper than {MAX_DEPTH} in "
                                 f"{self._label(outer[0])}", self.path)
        for name, off, bsize, mtype in self._raw_members(tid):
            if not name:
                inner = self.resolve_id(mtype)
                if self.kind_of(inner) in (KIND_STRUCT, KIND_UNION):
                    if inner in outer or inner == tid:
                        raise DebugInfoError(f"BTF {self._label(inner)} contains itself",
                                             self.path)
                    self._flat_members(inner, base_bits + off, out, (*outer, tid))
                    continue
            if len(out) >= MAX_MEMBERS:
                raise DebugInfoError(f"BTF {self._label(outer[0] if outer else tid)} has more "
                                     f"than {MAX_MEMBERS} members (anonymous members "
                                     "flattened)", self.path)
            out.append(Member(name, base_bits + off, bsize, mtype))

    def _label(self, tid: int) -> str:
        """"struct name (type N)" for messages."""
        _, _, name_off, kind, _, _ = self._raw(tid)
        tag = "union" if kind == KIND_UNION else "struct"
        return f"{tag} {self.string(name_off) or '{...}'} (type {tid})"

    def struct_by_id(self, tid: int) -> StructType:
        """Layout of a struct/union type id (anonymous members flattened; cached)."""
        tid = self.resolve_id(tid)
        got = self._structs.get(tid)
        if got is None:
            _, _, name_off, kind, _, size = self._raw(tid)
            members: list[Member] = []
            try:
                self._flat_members(tid, 0, members, ())
                got = StructType(self.string(name_off), size, members,
                                 "union" if kind == KIND_UNION else "struct", tid)
            except DebugInfoError as exc:
                got = exc
            self._structs[tid] = got
        if isinstance(got, DebugInfoError):
            raise got
        return got

    def struct(self, name: str) -> StructType:
        """Layout of "task_struct", "struct task_struct", "union foo" or a typedef to one."""
        tid = self._struct_id(name)
        return self.struct_by_id(tid)

    def _struct_id(self, name: str) -> int:
        name = name.strip()
        if name.startswith("union "):
            kinds: tuple[int, ...] = (KIND_UNION,)
            name = name[6:].strip()
        elif name.startswith("struct "):
            kinds = (KIND_STRUCT,)
            name = name[7:].strip()
        else:
            kinds = (KIND_STRUCT, KIND_UNION)
        tid = self.find(name, kinds)
        if tid is None and len(kinds) == 2:
            td = self.find(name, (KIND_TYPEDEF,))
            if td is not None and self.kind_of(self.resolve_id(td)) in kinds:
                tid = self.resolve_id(td)
        if tid is None:
            raise TypeNotFoundError(f"no struct or union {name!r} in BTF", self.path)
        return tid

    # -- member paths -----------------------------------------------------------------------------

    _PATH_RE = re.compile(r"\s*([A-Za-z_]\w*)((?:\s*\[\s*\d+\s*\])*)\s*")

    def _walk(self, struct_name: str, path: str) -> tuple[int, int, int]:
        """(bit offset, bitfield size, type id) of a member path "a.b[2].c" (or "a->b")."""
        tid = self._struct_id(struct_name)
        bits, bsize, mtype = 0, 0, tid
        parts = path.replace("->", ".").split(".")
        for part in parts:
            m = self._PATH_RE.fullmatch(part)
            if m is None:
                raise TypeNotFoundError(f"bad member path {path!r}", self.path)
            cur = self.resolve_id(mtype)
            if self.kind_of(cur) not in (KIND_STRUCT, KIND_UNION):
                raise TypeNotFoundError(
                    f"{self.type_name(mtype)} is not a struct or union (in {path!r})", self.path)
            st = self.struct_by_id(cur)
            try:
                mem = st.member(m.group(1))
            except TypeNotFoundError:
                raise TypeNotFoundError(f"{st.kind} {st.name} has no member {m.group(1)!r}",
                                        self.path) from None
            bits += mem.offset_bits
            bsize, mtype = mem.bitfield_size, mem.type_id
            for idx in re.findall(r"\d+", m.group(2)):
                arr = self.type(self.resolve_id(mtype))
                if arr.kind != "array" or arr.target_id is None:
                    raise TypeNotFoundError(f"{m.group(1)} is not an array (in {path!r})",
                                            self.path)
                esize = self.sizeof_id(arr.target_id) or 0
                bits += int(idx) * esize * 8
                mtype = arr.target_id
        return bits, bsize, mtype

    def offsetof(self, struct_name: str, path: str) -> int:
        """Byte offset of a member path such as "se.sum_exec_runtime" or "pids[1].node"."""
        return self._walk(struct_name, path)[0] // 8

    def offsetof_bits(self, struct_name: str, path: str) -> tuple[int, int]:
        """(bit offset, bitfield size or 0) of a member path."""
        bits, bsize, _ = self._walk(struct_name, path)
        return bits, bsize

    def member_type(self, struct_name: str, path: str) -> TypeRef:
        """The declared type of a member path."""
        return self.type(self._walk(struct_name, path)[2])

    def has_member(self, struct_name: str, path: str) -> bool:
        """True if the struct exists and has the member path."""
        try:
            self._walk(struct_name, path)
        except TypeNotFoundError:
            return False
        return True

    # -- sizes and type expressions ---------------------------------------------------------------

    def sizeof(self, expr: str) -> int:
        """Size in bytes of a C type expression ("struct list_head", "unsigned long", "u64 *")."""
        text, count = expr.strip(), 1
        while text.endswith("]"):
            lb = text.rindex("[")
            count *= int(text[lb + 1:-1].strip() or 0)
            text = text[:lb].rstrip()
        if text.endswith("*"):
            return 8 * count
        size: int | None
        try:
            size = self.sizeof_id(self._parse_type(text))
        except TypeNotFoundError:
            if not set(text.split()) <= _BASE_WORDS | {"const", "volatile", "void"}:
                raise
            size = _c_base_size(text)
        if size is None:
            raise TypeNotFoundError(f"cannot size {expr!r}", self.path)
        return size * count

    def _parse_type(self, expr: str) -> int:
        """Type id for a C type expression; pointers map to any pointer type of the target."""
        text = expr.strip()
        arrays: list[int] = []
        while text.endswith("]"):
            lb = text.rindex("[")
            arrays.insert(0, int(text[lb + 1:-1].strip() or 0))
            text = text[:lb].rstrip()
        stars = len(text) - len(text.rstrip("*"))
        text = text.rstrip("*").strip()
        words = [w for w in text.split() if w not in ("const", "volatile", "restrict")]
        if stars == 0 and not arrays:
            return self._base_type(words, expr)
        tid = self._base_type(words, expr) if words != ["void"] else 0
        for _ in range(stars):
            tid = self._pointer_to(tid, expr)
        for n in reversed(arrays):
            tid = self._array_of(tid, n, expr)
        return tid

    def _base_type(self, words: list[str], expr: str) -> int:
        if not words:
            raise TypeNotFoundError(f"bad type expression {expr!r}", self.path)
        head = words[0]
        if head in ("struct", "union", "enum") and len(words) == 2:
            kinds = {"struct": (KIND_STRUCT,), "union": (KIND_UNION,),
                     "enum": (KIND_ENUM, KIND_ENUM64)}[head]
            tid = self.find(words[1], kinds)
            if tid is None and head != "enum":
                tid = self.find(words[1], (KIND_FWD,))
        else:
            name = " ".join(words)
            tid = None
            for cand in _c_spellings(words):
                tid = self.find(cand, (KIND_INT, KIND_FLOAT))
                if tid is not None:
                    break
            if tid is None:
                tid = self.find(name, (KIND_TYPEDEF, KIND_INT, KIND_FLOAT))
            if tid is None and len(words) == 1:
                tid = self.find(name, (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64))
        if tid is None:
            if words == ["void"]:
                return 0
            raise TypeNotFoundError(f"no type {expr.strip()!r} in BTF", self.path)
        return tid

    def _kind_ids(self, kind: int) -> tuple[np.ndarray, np.ndarray]:
        """(type ids, word offsets) of every type of one kind in this BTF (not the base)."""
        _, kinds = self._arrays()
        idx = np.flatnonzero(kinds == kind)
        return idx + self.start_id, self._offsets[idx]

    def _pointer_to(self, tid: int, expr: str) -> int:
        ids, offs = self._kind_ids(KIND_PTR)
        words = np.frombuffer(self._words, dtype=np.uint32)
        hit = np.flatnonzero(words[offs + 2] == tid)
        if len(hit):
            return int(ids[hit[0]])
        if self.base is not None:
            try:
                return self.base._pointer_to(tid, expr)
            except TypeNotFoundError:
                pass
        raise TypeNotFoundError(f"no pointer type {expr.strip()!r} in BTF", self.path)

    def _array_of(self, tid: int, n: int, expr: str) -> int:
        ids, offs = self._kind_ids(KIND_ARRAY)
        words = np.frombuffer(self._words, dtype=np.uint32)
        hit = np.flatnonzero((words[offs + 3] == tid) & (words[offs + 5] == n))
        if len(hit):
            return int(ids[hit[0]])
        if self.base is not None:
            try:
                return self.base._array_of(tid, n, expr)
            except TypeNotFoundError:
                pass
        raise TypeNotFoundError(f"no array type {expr.strip()!r} in BTF", self.path)

    # -- enums ------------------------------------------------------------------------------------

    def _enum_values(self, tid: int) -> dict[str, int]:
        btf, pos, _, kind, vlen, size = self._raw(tid)
        signed = bool(vlen >> 16)
        w = btf._words
        out: dict[str, int] = {}
        p = pos + 3
        if kind == KIND_ENUM:
            for _ in range(vlen & 0xFFFF):
                val = w[p + 1]
                if signed and val >= 1 << 31:
                    val -= 1 << 32
                out[self.string(w[p])] = val
                p += 2
        elif kind == KIND_ENUM64:
            for _ in range(vlen & 0xFFFF):
                val = w[p + 1] | (w[p + 2] << 32)
                if signed and val >= 1 << 63:
                    val -= 1 << 64
                out[self.string(w[p])] = val
                p += 3
        else:
            raise TypeNotFoundError(f"BTF type {tid} is not an enum", self.path)
        return out

    def enum(self, name: str) -> dict[str, int]:
        """Enumerators of "zone_stat_item" / "enum zone_stat_item" (or a typedef to one)."""
        name = name.strip().removeprefix("enum ").strip()
        tid = self.find(name, (KIND_ENUM, KIND_ENUM64))
        if tid is None:
            td = self.find(name, (KIND_TYPEDEF,))
            if td is not None and self.kind_of(self.resolve_id(td)) in (KIND_ENUM, KIND_ENUM64):
                tid = self.resolve_id(td)
        if tid is None:
            raise TypeNotFoundError(f"no enum {name!r} in BTF", self.path)
        return self._enum_values(tid)

    def enumerators(self) -> Mapping[str, int]:
        """Every enumerator of every enum (first definition wins); a name looked up or tested
        with `in` does not decode all of them."""
        return _Enumerators(self)

    def _all_enumerators(self) -> dict[str, int]:
        """Every enumerator of every enum, decoded (first definition wins)."""
        if self._enumerators is None:
            out = dict(self.base._all_enumerators()) if self.base else {}
            _, kinds = self._arrays()
            idxs = np.flatnonzero((kinds == KIND_ENUM) | (kinds == KIND_ENUM64))
            for idx in idxs.tolist():
                for k, v in self._enum_values(idx + self.start_id).items():
                    out.setdefault(k, v)
            self._enumerators = out
        return self._enumerators

    def _enum_members(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every enumerator's name offset, word position and kind|signed<<8, in id order."""
        if self._members is None:
            words = np.frombuffer(self._words, dtype=np.uint32)
            _, kinds = self._arrays()
            idxs = np.flatnonzero((kinds == KIND_ENUM) | (kinds == KIND_ENUM64))
            pos = self._offsets[idxs].astype(np.int64)
            info = words[pos + 1].astype(np.int64)
            vlen = info & 0xFFFF
            # struct btf_enum is 2 words, struct btf_enum64 3 (include/uapi/linux/btf.h)
            step = np.where(kinds[idxs] == KIND_ENUM64, 3, 2)
            first = np.repeat(pos + 3, vlen)
            rank = np.arange(int(vlen.sum()), dtype=np.int64) - np.repeat(np.cumsum(vlen) - vlen,
                                                                          vlen)
            mpos = first + rank * np.repeat(step, vlen)
            tag = np.repeat(kinds[idxs].astype(np.int64) | ((info >> 31) << 8), vlen)
            self._members = (words[mpos], mpos, tag)
        return self._members

    def _enumerator_value(self, name: str) -> int | None:
        """The first enumerator named `name` (base first), or None."""
        if self._enumerators is not None:
            return self._enumerators.get(name)
        if name in self._enum_cache:
            return self._enum_cache[name]
        got = self.base._enumerator_value(name) if self.base else None
        if got is None and name:
            names, mpos, tag = self._enum_members()
            best = -1
            for off in self._string_offsets(name.encode() + b"\0"):
                hits = np.flatnonzero(names == off)
                if len(hits) and (best < 0 or int(hits[0]) < best):
                    best = int(hits[0])
            if best >= 0:
                w, p, t = self._words, int(mpos[best]), int(tag[best])
                if t & 0xFF == KIND_ENUM64:
                    got = w[p + 1] | (w[p + 2] << 32)
                    got = got - (1 << 64) if t >> 8 and got >= 1 << 63 else got
                else:
                    got = w[p + 1]
                    got = got - (1 << 32) if t >> 8 and got >= 1 << 31 else got
        self._enum_cache[name] = got
        return got

    def enumerator(self, name: str) -> int:
        """Value of an enumerator found in any enum, e.g. "NR_FREE_PAGES"."""
        got = self._enumerator_value(name)
        if got is None:
            raise TypeNotFoundError(f"no enumerator {name!r} in BTF", self.path)
        return got

    # -- printing ---------------------------------------------------------------------------------

    def type_name(self, tid: int) -> str:
        """C spelling of a type id ("struct list_head *", "char [16]", "u64")."""
        return self.declaration(tid, "").strip()

    def declaration(self, tid: int, inner: str, depth: int = 0) -> str:
        """C declaration of `inner` (a name, possibly empty) with type id `tid`."""
        if depth > MAX_DEPTH:
            raise DebugInfoError(f"BTF types nest deeper than {MAX_DEPTH} at type {tid}",
                                 self.path)
        for _ in range(64):
            if tid == 0:
                return _join("void", inner)
            btf, pos, name_off, kind, vlen, st = self._raw(tid)
            if kind == KIND_PTR:
                tk = self.kind_of(st)
                inner = f"(*{inner})" if tk in (KIND_ARRAY, KIND_FUNC_PROTO) else "*" + inner
                tid = st
            elif kind == KIND_ARRAY:
                inner = f"{inner}[{btf._words[pos + 5]}]"
                tid = btf._words[pos + 3]
            elif kind == KIND_FUNC_PROTO:
                inner = f"{inner}({self._params(btf, pos, vlen & 0xFFFF, depth + 1)})"
                tid = st
            elif kind in _MODIFIERS:
                word = KIND_NAMES[kind] if kind != KIND_TYPE_TAG else ""
                if self.kind_of(st) == KIND_PTR and word:
                    inner = f"{word} {inner}" if inner else word
                    tid = st
                else:
                    return _join(f"{word} {self.declaration(st, '', depth + 1)}".strip(), inner)
            else:
                return _join(self._base_name(kind, self.string(name_off)), inner)
        raise DebugInfoError(f"BTF type loop at {tid}", self.path)

    def _params(self, btf: Btf, pos: int, n: int, depth: int) -> str:
        w = btf._words
        params = []
        for i in range(n):
            name_off, ptype = w[pos + 3 + 2 * i], w[pos + 4 + 2 * i]
            params.append("..." if ptype == 0 and i == n - 1 else
                          self.declaration(ptype, self.string(name_off), depth).strip())
        return ", ".join(params) if params else "void"

    @staticmethod
    def _base_name(kind: int, name: str) -> str:
        if kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64):
            tag = {KIND_STRUCT: "struct", KIND_UNION: "union"}.get(kind, "enum")
            return f"{tag} {name}" if name else f"{tag} {{...}}"
        if kind == KIND_FWD:
            return f"struct {name}"
        return name or "?"

    def format_struct(self, name: str) -> str:
        """The layout as crash's `struct -o` prints it: "[offset] type name;" lines + SIZE."""
        tid = self._struct_id(name)
        _, _, name_off, kind, _, size = self._raw(tid)
        tag = "union" if kind == KIND_UNION else "struct"
        width = len(str(size)) + 2
        lines = [f"{tag} {self.string(name_off)} {{"]
        self._format_members(tid, 0, 1, width, lines)
        if len(lines) > MAX_MEMBERS:
            raise DebugInfoError(f"BTF type {tid} has more than {MAX_MEMBERS} members", self.path)
        lines.append("}")
        lines.append(f"SIZE: {size}")
        return "\n".join(lines)

    def _format_members(self, tid: int, base_bits: int, depth: int, width: int,
                        lines: list[str]) -> None:
        indent = "    " * (depth - 1)
        if depth > MAX_DEPTH or len(lines) > MAX_MEMBERS:
            raise DebugInfoError(f"BTF anonymous members nest deeper than {MAX_DEPTH} or "
                                 f"expand past {MAX_MEMBERS} lines", self.path)
        for name, off, bsize, mtype in self._raw_members(tid):
            bits = base_bits + off
            inner = self.resolve_id(mtype)
            rk = self.kind_of(inner)
            if not name and rk in (KIND_STRUCT, KIND_UNION) and mtype == inner:
                _, _, iname_off, _, _, _ = self._raw(inner)
                if not self.string(iname_off):
                    tag = "union" if rk == KIND_UNION else "struct"
                    lines.append(f"{'':>{width}} {indent}{tag} {{")
                    self._format_members(inner, bits, depth + 1, width, lines)
                    lines.append(f"{'':>{width}} {indent}}};")
                    continue
            decl = self.declaration(mtype, name)
            if bsize:
                decl += f" : {bsize}"
            lines.append(f"{'[' + str(bits // 8) + ']':>{width}} {indent}{decl};")


def _join(base: str, inner: str) -> str:
    return f"{base} {inner}" if inner else base


_BASE_WORDS = {"signed", "unsigned", "short", "long", "int", "char", "_Bool", "float", "double"}


def _c_spellings(words: list[str]) -> list[str]:
    """GCC/DWARF spellings of a C integer type: "unsigned long" -> "long unsigned int"."""
    if not words or not set(words) <= _BASE_WORDS:
        return []
    unsigned = "unsigned" in words
    signed = "signed" in words
    longs = words.count("long")
    core = [w for w in words if w not in ("signed", "unsigned", "long", "short", "int")]
    if core == ["char"]:
        return ["unsigned char" if unsigned else "signed char" if signed else "char"]
    if core == ["double"]:
        return ["long double" if longs else "double"]
    if core:
        return [" ".join(words)]
    if "short" in words:
        base = "short"
    elif longs == 2:
        base = "long long"
    elif longs == 1:
        base = "long"
    else:
        base = ""
    if base:
        return [f"{base} unsigned int" if unsigned else f"{base} int", " ".join(words)]
    return ["unsigned int" if unsigned else "int", " ".join(words)]


def _c_base_size(expr: str) -> int | None:
    """sizeof of a plain C base type on x86-64, without BTF."""
    text = expr.strip()
    if text.endswith("*"):
        return 8
    words = [w for w in text.split() if w not in ("const", "volatile", "signed", "unsigned")]
    if words.count("long") == 2:
        return 8
    if "long" in words and "double" in words:
        return 16
    for key in ("long", "short", "char", "double", "float", "_Bool", "int", "void"):
        if key in words:
            return _C_SIZES[key]
    return None


_KEY_MIX = 0x9E3779B97F4A7C15  # spreads a name's length over the key's bits


def _name_key(length: int, head: int) -> int:
    """A BTF name's lookup key: its first 8 bytes (little-endian, zero past the end) mixed
    with its length; equal names have equal keys, other names rarely."""
    return (head ^ (length * _KEY_MIX)) & 0xFFFFFFFFFFFFFFFF


class _Enumerators(Mapping[str, int]):
    """Btf.enumerators(): one name found without decoding every enumerator."""

    def __init__(self, btf: Btf) -> None:
        self._btf = btf

    def __getitem__(self, name: str) -> int:
        got = self._btf._enumerator_value(name) if isinstance(name, str) else None
        if got is None:
            raise KeyError(name)
        return got

    def __iter__(self) -> Iterator[str]:
        return iter(self._btf._all_enumerators())

    def __len__(self) -> int:
        return len(self._btf._all_enumerators())
