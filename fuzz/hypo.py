"""Hypothesis strategies for the fuzz targets: real seeds with random damage, or noise."""

from __future__ import annotations

from hypothesis import strategies as st

Edit = tuple[str, int, bytes]


def apply_edits(seed: bytes, edits: list[Edit]) -> bytes:
    """Overwrite, insert, delete or cut at the given positions (taken modulo the length)."""
    data = bytearray(seed)
    for kind, pos, raw in edits:
        at = pos % (len(data) + 1)
        if kind == "set":
            data[at:at + len(raw)] = raw
        elif kind == "insert":
            data[at:at] = raw
        elif kind == "delete":
            del data[at:at + 1 + len(raw)]
        else:
            del data[at:]
    return bytes(data)


def damaged(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with up to 8 random edits, sometimes plain random bytes."""
    edit = st.tuples(st.sampled_from(["set", "set", "set", "insert", "delete", "cut"]),
                     st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16))
    mutated = st.builds(apply_edits, st.sampled_from(seeds), st.lists(edit, max_size=8))
    return st.one_of(mutated, mutated, mutated, st.binary(max_size=512))
