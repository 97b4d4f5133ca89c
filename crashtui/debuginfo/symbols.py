"""Symbol tables as sorted numpy arrays: ELF .symtab (vmlinux, .ko) or in-memory kallsyms.

Which symbol names an address (`SymbolTable.nearest`), as crash does with kallsyms:
  1. the closest symbol at or below the address (so an asm label such as
     `entry_SYSCALL_64_after_hwframe` names the code after it, like crash's `bt`);
  2. among several symbols at that same address: not a section/padding marker (`__pfx_*`,
     `__cfi_*`, `_MODULE_INIT_START_*`, `__UNIQUE_ID_*`, `__initcall*`, `__ksymtab_*`,
     `__*_text_start`, `_stext`, ...), then as crash sorts them (by name, strcmp): the first name for
     the address itself, the last for an address inside (5.10's `asm_call_on_stack`,
     `asm_call_irq_on_stack` and `asm_call_sysvec_on_stack` name a return address
     `asm_call_sysvec_on_stack`);
  3. it is accepted only if the address is at most `max_gap` bytes (default 4 KiB) past the
     symbol's end (its start for zero-sized symbols); otherwise nearest() returns None.
`lookup(name)` for a name defined several times prefers global > weak > local, then FUNC >
OBJECT > NOTYPE, then the lowest address.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crashtui.debuginfo.elf import (
    SHN_ABS,
    SHN_COMMON,
    SHN_LORESERVE,
    SHN_UNDEF,
    SHT_SYMTAB,
    ElfImage,
)
from crashtui.errors import DebugInfoError

# Elf64_Sym (include/uapi/linux/elf.h), 24 bytes
ELF64_SYM = np.dtype([
    ("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
    ("value", "<u8"), ("size", "<u8"),
])

STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2

# kind codes stored in the arrays
KIND_OTHER, KIND_OBJECT, KIND_FUNC = 0, 1, 2
KIND_NAMES = ("other", "object", "func")
BINDING_NAMES = ("local", "global", "weak")
_KIND_CODES = {"other": KIND_OTHER, "object": KIND_OBJECT, "func": KIND_FUNC}
_BINDING_RANK = (2, 0, 1)  # lookup preference rank by binding code (lower is better)

_MARKER_RE = re.compile(
    r"^(?:__pfx_|__cfi_|_MODULE_INIT_START_|_MODULE_INIT_END_|_MODULE_START_|_MODULE_END_|"
    r"__UNIQUE_ID_|__initcall|__ksymtab_|__kstrtab_|__kstrtabns_|__kcrctab_|__export_symbol_|"
    r"__addressable_|__param_|__setup_|__early_param|__tracepoint_|__SCK__|__SCT__|"
    r"__func_stack_frame_non_standard|__start_|__stop_|\.L|"
    r"__\w+_text_(?:start|end)$|_s?text$|_etext$|_[se]inittext$)"  # section bounds
)

DEFAULT_MAX_GAP = 0x1000


@dataclass(frozen=True, slots=True)
class Symbol:
    """A named address: kind is 'func'|'object'|'other', binding 'global'|'local'|'weak'."""

    name: str
    address: int
    size: int
    kind: str
    binding: str


def is_marker(name: str) -> bool:
    """True for section/padding marker symbols that should not name an address."""
    return _MARKER_RE.match(name) is not None


_CLONE_SUFFIX_RE = re.compile(r"\.(?:part|isra)\.\d.*$")


def crash_name(name: str) -> str:
    """A kernel function's name as crash shows it: gcc's `.part.N` / `.isra.N` clone suffix
    and what follows dropped (`synchronize_rcu_normal.part.0` -> `synchronize_rcu_normal`,
    `__x2apic_disable.part.0.cold` -> `__x2apic_disable`); `.cold`, `.constprop.N` kept."""
    return _CLONE_SUFFIX_RE.sub("", name)


def _kallsyms_letter(letter: str) -> tuple[int, int]:
    """(kind, binding) for an nm/kallsyms type letter ('T', 't', 'D', 'W', ...)."""
    low = letter.lower()
    kind = KIND_FUNC if low == "t" else KIND_OBJECT if low in "dbrgs" else KIND_OTHER
    if low in "wv":
        return kind, STB_WEAK
    return kind, STB_GLOBAL if letter.isupper() else STB_LOCAL


class SymbolTable:
    """Symbols sorted by address in numpy arrays; names decoded on demand."""

    def __init__(self, addresses: np.ndarray, sizes: np.ndarray, kinds: np.ndarray,
                 bindings: np.ndarray, name_of: _Names) -> None:
        """Take arrays already sorted by address (use the from_* constructors)."""
        self.addresses = addresses.astype(np.uint64, copy=False)
        self.sizes = sizes.astype(np.uint64, copy=False)
        self.kinds = kinds.astype(np.uint8, copy=False)
        self.bindings = bindings.astype(np.uint8, copy=False)
        self._names = name_of
        self._by_name: dict[str, int] | None = None
        self._sorted_names: list[str] | None = None

    # -- constructors --------------------------------------------------------------------------

    @classmethod
    def from_elf(cls, image: ElfImage, section_base: Mapping[str | int, int] | None = None,
                 ) -> SymbolTable:
        """Read .symtab/.strtab; for ET_REL give section_base (name or index -> load address)."""
        sec = image.sections.get(".symtab")
        if sec is None or sec.type != SHT_SYMTAB:
            raise DebugInfoError("no .symtab section (stripped?)", image.path)
        if sec.entsize not in (0, ELF64_SYM.itemsize) or sec.size % ELF64_SYM.itemsize:
            raise DebugInfoError(".symtab has an unexpected entry size", image.path)
        if not 0 < sec.link < len(image.section_list):
            raise DebugInfoError(".symtab has no string table", image.path)
        strtab = bytes(image.section_data(image.section_list[sec.link]))
        syms = np.frombuffer(image.section_data(sec), dtype=ELF64_SYM)
        stype = syms["info"] & 0xF
        sbind = syms["info"] >> 4
        shndx = syms["shndx"]
        keep = ((stype <= STT_FUNC) & (sbind <= STB_WEAK) & (shndx != SHN_UNDEF)
                & (syms["name"] != 0))
        if strtab:  # AArch64 mapping symbols ($x code, $d data: ELF for the Arm
            # Architecture, "Mapping symbols") mark what follows, they name nothing
            first = np.frombuffer(strtab, dtype=np.uint8)[
                np.minimum(syms["name"], len(strtab) - 1)]
            keep &= first != ord("$")
        values = syms["value"].astype(np.uint64)
        if section_base is None:
            keep &= (values != 0)
        else:
            bases = np.zeros(len(image.section_list), dtype=np.uint64)
            have = np.zeros(len(image.section_list), dtype=bool)
            for key, base in section_base.items():
                if isinstance(key, str):
                    s = image.sections.get(key)
                    if s is None:
                        continue
                    key = s.index
                if 0 <= key < len(bases):
                    bases[key] = base
                    have[key] = True
            in_range = shndx < min(len(bases), SHN_LORESERVE)
            idx = np.where(in_range, shndx, 0)
            keep &= (in_range & have[idx]) | (shndx == SHN_ABS)
            keep &= shndx != SHN_COMMON
            values = values + np.where(shndx == SHN_ABS, np.uint64(0), bases[idx])
        sel = np.flatnonzero(keep)
        addrs = values[sel]
        order = np.argsort(addrs, kind="stable")
        sel = sel[order]
        kinds = np.array([KIND_OTHER, KIND_OBJECT, KIND_FUNC], dtype=np.uint8)[stype[sel]]
        names = _StrtabNames(strtab, syms["name"][sel],
                             image.build_id if section_base is None else None)
        return cls(addrs[order], syms["size"][sel], kinds, sbind[sel].astype(np.uint8), names)

    @classmethod
    def from_arrays(cls, addresses: Sequence[int] | np.ndarray, sizes: Sequence[int] | np.ndarray,
                    kinds: Sequence[str], names: Sequence[str],
                    bindings: Sequence[str] | None = None) -> SymbolTable:
        """Build from parallel lists; kinds are 'func'/'object'/'other' or kallsyms letters."""
        n = len(names)
        if not len(addresses) == len(sizes) == len(kinds) == n:
            raise ValueError("addresses, sizes, kinds and names must have the same length")
        addrs = np.asarray(addresses, dtype=np.uint64)
        kind_arr = np.empty(n, dtype=np.uint8)
        bind_arr = np.empty(n, dtype=np.uint8)
        for i, k in enumerate(kinds):
            if k in _KIND_CODES:
                kind_arr[i], bind_arr[i] = _KIND_CODES[k], STB_GLOBAL
            elif len(k) == 1:
                kind_arr[i], bind_arr[i] = _kallsyms_letter(k)
            else:
                raise ValueError(f"unknown symbol kind {k!r}")
        if bindings is not None:
            codes = {b: i for i, b in enumerate(BINDING_NAMES)}
            bind_arr = np.fromiter((codes[b] for b in bindings), dtype=np.uint8, count=n)
        order = np.argsort(addrs, kind="stable")
        name_list = list(names)
        return cls(addrs[order], np.asarray(sizes, dtype=np.uint64)[order], kind_arr[order],
                   bind_arr[order], _ListNames([name_list[i] for i in order]))

    # -- basic access ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.addresses)

    def __iter__(self) -> Iterator[Symbol]:
        return (self.symbol_at(i) for i in range(len(self)))

    def name_at(self, i: int) -> str:
        """Name of the i-th symbol (address order)."""
        return self._names.get(i)

    def symbol_at(self, i: int) -> Symbol:
        """The i-th symbol in address order."""
        return Symbol(self._names.get(i), int(self.addresses[i]), int(self.sizes[i]),
                      KIND_NAMES[self.kinds[i]], BINDING_NAMES[self.bindings[i]])

    def _rank(self, i: int) -> tuple[int, int, int]:
        return (_BINDING_RANK[self.bindings[i]], 2 - int(self.kinds[i]), i)

    def _name_index(self) -> dict[str, int]:
        if self._by_name is None:
            by_name: dict[str, int] = {}
            names = self._names.all()
            # walk from the least to the most preferred so the best one is written last
            ranks = (_BINDING_RANK_ARR[self.bindings] * 4 + (2 - self.kinds.astype(np.int64)))
            order = np.lexsort((-np.arange(len(names)), -ranks))
            for i in order.tolist():
                by_name[names[i]] = i
            self._by_name = by_name
        return self._by_name

    def _find(self, name: str) -> int | None:
        """Index of the preferred symbol called `name`: min (rank, index), as _name_index.

        Through a sorted CRC-32 index of the names (cached on disk by build-id) when the
        names live in a string table, so a lookup does not decode all 100k+ names."""
        if self._by_name is not None:
            return self._by_name.get(name)
        hashed = self._names.hash_index()
        if hashed is None:
            return self._name_index().get(name)
        hashes, order = hashed
        key = np.uint32(name_crc(name.encode("utf-8", "surrogatepass")))
        lo = int(np.searchsorted(hashes, key, side="left"))
        hi = int(np.searchsorted(hashes, key, side="right"))
        best: int | None = None
        best_key = (0, 0)
        for j in range(lo, hi):
            i = int(order[j])
            if self._names.get(i) != name:
                continue
            k = (int(_BINDING_RANK_ARR[self.bindings[i]]) * 4 + 2 - int(self.kinds[i]), i)
            if best is None or k < best_key:
                best, best_key = i, k
        return best

    # -- queries ---------------------------------------------------------------------------------

    def lookup(self, name: str) -> Symbol | None:
        """The symbol called `name` (see the module docstring for duplicates)."""
        i = self._find(name)
        return None if i is None else self.symbol_at(i)

    def address_of(self, name: str) -> int | None:
        """Address of `name`, or None."""
        i = self._find(name)
        return None if i is None else int(self.addresses[i])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def names_with_prefix(self, prefix: str, limit: int = 50) -> list[str]:
        """Up to `limit` distinct names starting with `prefix`, sorted (for completion)."""
        import bisect

        if self._sorted_names is None:
            self._sorted_names = sorted(self._name_index())
        names = self._sorted_names
        out: list[str] = []
        i = bisect.bisect_left(names, prefix)
        while i < len(names) and len(out) < limit and names[i].startswith(prefix):
            out.append(names[i])
            i += 1
        return out

    def _best_at(self, i: int, inside: bool = False) -> int:
        """Index of the alias that names address[i] (`inside`: an address past it), as crash."""
        a = self.addresses[i]
        lo = int(np.searchsorted(self.addresses, a, side="left"))
        hi = int(np.searchsorted(self.addresses, a, side="right"))
        if hi - lo == 1:
            return lo
        names = {j: self._names.get(j) for j in range(lo, hi)}
        real = [j for j in names if not is_marker(names[j])] or list(names)
        pick = max if inside else min
        return pick(real, key=lambda j: names[j].encode("utf-8", "surrogatepass"))

    def nearest(self, addr: int, max_gap: int = DEFAULT_MAX_GAP) -> tuple[Symbol, int] | None:
        """(symbol, offset) for `addr`: the closest symbol at or below it (crash-style)."""
        if addr < 0 or addr >= 1 << 64 or len(self) == 0:
            return None
        hi = int(np.searchsorted(self.addresses, np.uint64(addr), side="right"))
        if hi == 0:
            return None
        best = self._best_at(hi - 1, inside=addr != int(self.addresses[hi - 1]))
        start = int(self.addresses[best])
        lo = int(np.searchsorted(self.addresses, self.addresses[best], side="left"))
        if addr - (start + int(self.sizes[lo:hi].max())) > max_gap:  # the longest alias
            return None
        return self.symbol_at(best), addr - start

    def _contains(self, i: int, addr: int) -> bool:
        start = int(self.addresses[i])
        return start <= addr < start + int(self.sizes[i])

    def symbolize(self, addr: int) -> str:
        """'name+0xoff' (or the bare hex address) for display."""
        hit = self.nearest(addr)
        if hit is None:
            return f"{addr:#x}"
        sym, off = hit
        return f"{sym.name}+{off:#x}" if off else sym.name

    def in_range(self, start: int, end: int) -> Iterable[Symbol]:
        """Symbols with start <= address < end, in address order."""
        lo = int(np.searchsorted(self.addresses, np.uint64(start), side="left"))
        hi = int(np.searchsorted(self.addresses, np.uint64(min(end, (1 << 64) - 1)),
                                 side="left"))
        return (self.symbol_at(i) for i in range(lo, hi))

    def __repr__(self) -> str:
        return f"SymbolTable({len(self)} symbols)"


_BINDING_RANK_ARR = np.array(_BINDING_RANK, dtype=np.int64)


class _Names:
    """Name storage behind a SymbolTable."""

    def get(self, i: int) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def all(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def hash_index(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sorted CRC-32s of the names, symbol index of each), or None if not offered."""
        return None


def name_crc(raw: bytes) -> int:
    """The hash of a symbol name in the name index (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(raw)


_HASH_CACHE_NAME = "symbol-names"
_HASH_CACHE_CHECKS = 64  # entries re-hashed to validate a cached index


class _StrtabNames(_Names):
    """Names as offsets into an ELF string table, decoded on first use."""

    def __init__(self, strtab: bytes, offsets: np.ndarray, build_id: str | None = None) -> None:
        self._strtab = strtab
        self._offsets = offsets.astype(np.int64)
        self._cache: list[str] | None = None
        self._build_id = build_id
        self._hashed: tuple[np.ndarray, np.ndarray] | None = None

    def _ends(self) -> np.ndarray:
        """End offset (the NUL) of every name."""
        zeros = np.flatnonzero(np.frombuffer(self._strtab, dtype=np.uint8) == 0)
        pos = np.searchsorted(zeros, self._offsets, side="left")
        return np.append(zeros, len(self._strtab))[pos]

    def _crc(self, start: int, end: int) -> int:
        raw = self._strtab[start:end]
        if max(raw, default=0) >= 0x80:  # hash what get() returns (invalid UTF-8 replaced)
            raw = raw.decode("utf-8", "replace").encode("utf-8", "surrogatepass")
        return name_crc(raw)

    def hash_index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._hashed is None:
            fingerprint = (len(self._strtab), zlib.crc32(self._strtab), len(self._offsets),
                           zlib.crc32(self._offsets.tobytes()))
            self._hashed = self._load_hashes(fingerprint)
            if self._hashed is None:
                self._hashed = self._build_hashes()
                if self._build_id is not None:
                    from crashtui.debuginfo import cache

                    cache.save_arrays(self._build_id, _HASH_CACHE_NAME, fingerprint,
                                      {"hashes": self._hashed[0], "order": self._hashed[1]})
        return self._hashed

    def _build_hashes(self) -> tuple[np.ndarray, np.ndarray]:
        st = self._strtab
        crc = zlib.crc32
        starts, ends = self._offsets.tolist(), self._ends().tolist()
        hashes = np.fromiter((crc(st[s:e]) for s, e in zip(starts, ends, strict=True)),
                             dtype=np.uint32, count=len(starts))
        high = np.flatnonzero(np.frombuffer(st, dtype=np.uint8) >= 0x80)
        if len(high):  # names with non-ASCII bytes: hash their decoded form
            at = np.searchsorted(high, self._offsets, side="left")
            inside = np.append(high, len(st))[at] < np.asarray(ends)
            for i in np.flatnonzero(inside).tolist():
                hashes[i] = self._crc(starts[i], ends[i])
        order = np.argsort(hashes, kind="stable").astype(np.uint32)
        return hashes[order], order

    def _load_hashes(self, fingerprint: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached index if present and consistent with this string table."""
        if self._build_id is None:
            return None
        from crashtui.debuginfo import cache

        got = cache.load_arrays(self._build_id, _HASH_CACHE_NAME, fingerprint,
                                ("hashes", "order"))
        if got is None:
            return None
        hashes, order = got["hashes"], got["order"]
        n = len(self._offsets)
        ok = (hashes.dtype == np.uint32 and order.dtype == np.uint32 and len(hashes) == n
              and len(order) == n and (n == 0 or (bool((hashes[1:] >= hashes[:-1]).all())
                                                  and int(order.max()) < n
                                                  and bool((np.bincount(order, minlength=n)
                                                            == 1).all()))))
        if ok and n:
            st = self._strtab
            for j in np.linspace(0, n - 1, min(n, _HASH_CACHE_CHECKS)).astype(np.int64):
                i = int(order[j])
                start = int(self._offsets[i])
                end = st.find(b"\0", start)
                if self._crc(start, end if end >= 0 else len(st)) != int(hashes[j]):
                    ok = False
                    break
        return (hashes, order) if ok else None

    def get(self, i: int) -> str:
        if self._cache is not None:
            return self._cache[i]
        off = int(self._offsets[i])
        end = self._strtab.find(b"\0", off)
        return self._strtab[off:end if end >= 0 else None].decode("utf-8", "replace")

    def all(self) -> list[str]:
        if self._cache is None:
            zeros = np.flatnonzero(np.frombuffer(self._strtab, dtype=np.uint8) == 0)
            pos = np.searchsorted(zeros, self._offsets, side="left")
            ends = np.append(zeros, len(self._strtab))[pos]
            st = self._strtab
            self._cache = [st[s:e].decode("utf-8", "replace")
                           for s, e in zip(self._offsets.tolist(), ends.tolist(), strict=True)]
        return self._cache


class _ListNames(_Names):
    """Names already decoded (kallsyms)."""

    def __init__(self, names: list[str]) -> None:
        self._names = names

    def get(self, i: int) -> str:
        return self._names[i]

    def all(self) -> list[str]:
        return self._names
