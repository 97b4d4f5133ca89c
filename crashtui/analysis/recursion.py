"""Deep recursion in a backtrace: what a kernel stack overflow's culprit is.

A stack overflow faults wherever the stack happened to run out (arm64: memset filling the
deepest frame's buffer; x86: the recursing function itself), so the faulting pc is incidental:
the code to blame is the function that calls itself over and over below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING

from crashtui.analysis.machinery import base_name

if TYPE_CHECKING:
    from crashtui.analysis.backtrace import Backtrace, Frame

# fewer consecutive calls are ordinary nesting (a few levels of a tree walk, nested locks)
MIN_DEPTH = 8


@dataclass(frozen=True)
class Recursion:
    """The longest run of consecutive frames of one function in a backtrace."""

    function: str
    depth: int  # frames in the run
    frame: Frame  # its innermost (first printed) frame
    module: str | None = None


def deepest_recursion(bt: Backtrace, min_depth: int = MIN_DEPTH) -> Recursion | None:
    """The function a backtrace recurses in at least `min_depth` frames deep, or None."""
    best: Recursion | None = None
    frames = [f for f in bt.frames if not f.inline]
    for name, group in groupby(frames, key=lambda f: base_name(f.function or "")):
        run = list(group)
        if name and len(run) >= min_depth and (best is None or len(run) > best.depth):
            best = Recursion(name, len(run), run[0], run[0].module)
    return best
