"""Overlapping ranges cut into elementary pieces, each owned by the last range covering it."""

from __future__ import annotations

from array import array
from collections.abc import Sequence


def last_writers(first: Sequence[int], last: Sequence[int], pieces: int) -> array[int]:
    """For each of `pieces` pieces, the index of the last range [first[i], last[i]) covering it.

    -1 where no range covers the piece. Ranges are taken last first and each piece goes to the
    first that reaches it; a "next free piece" forest keeps this O(n log n) whatever the
    overlaps.
    """
    owner = array("q", [-1]) * pieces
    free = array("q", range(pieces + 1))  # free[k]: a piece >= k maybe without owner

    def find(k: int) -> int:
        root = k
        while free[root] != root:
            root = free[root]
        while free[k] != root:
            free[k], k = root, free[k]
        return root

    for index in range(len(first) - 1, -1, -1):
        k, end = find(first[index]), last[index]
        while k < end:
            owner[k] = index
            free[k] = k + 1
            k = find(k + 1)
    return owner
