"""A short fuzz run of every target in fuzz/targets.py, and the crashers it ever found.

The long campaign is `fuzz/campaign.sh` (atheris, or hypothesis without it); see
fuzz/README.md for its input counts and findings. Here each target gets a few dozen damaged
seeds (the real dump structures with random edits, or noise): any exception other than
CrashtuiError fails the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crashtui.errors import CrashtuiError  # noqa: E402
from fuzz import targets  # noqa: E402
from fuzz.hypo import apply_edits, damaged  # noqa: E402

CRASHERS = sorted((ROOT / "fuzz" / "crashers").glob("*.bin"))
EXAMPLES = {"kdump": 120, "elf": 120, "flattened": 80, "notes": 150, "vmcoreinfo": 150,
            "printk": 150, "memory": 40, "kmem": 30, "vmcoreinfo_values": 30, "triage": 100,
            "btf": 60, "ko": 100}
NEED_VMLINUX = {"memory", "kmem", "vmcoreinfo_values"}  # targets over the kernel model


@pytest.fixture(autouse=True)
def bugs_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """CRASHTUI_DEBUG: a bug raises instead of becoming an `(unavailable)` field."""
    monkeypatch.setenv("CRASHTUI_DEBUG", "1")


def run_target(name: str, data: bytes) -> None:
    try:
        targets.TARGETS[name](data)
    except CrashtuiError:
        pass


@pytest.mark.parametrize("name", sorted(set(targets.TARGETS) - NEED_VMLINUX))
def test_short_fuzz_run(name: str) -> None:
    seeds = targets.seeds(name)
    for seed in seeds:
        run_target(name, seed)

    @settings(max_examples=EXAMPLES[name], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(damaged(seeds))
    def fuzz(data: bytes) -> None:
        run_target(name, data)

    fuzz()


@pytest.mark.needs_vmlinux
@pytest.mark.parametrize("name", sorted(NEED_VMLINUX))
def test_short_fuzz_run_memory(vmlinux_path: Path, name: str) -> None:
    """Damaged kernel memory or VMCOREINFO values under the commands (needs the vmlinux)."""
    assert targets.find_vmlinux() is not None
    for seed in targets.seeds(name):
        run_target(name, seed)

    @settings(max_examples=EXAMPLES[name], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(damaged(targets.seeds(name)))
    def fuzz(data: bytes) -> None:
        run_target(name, data)

    fuzz()


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_crasher_stays_fixed(path: Path, request: pytest.FixtureRequest) -> None:
    """Every input that once raised something else than CrashtuiError."""
    name = path.name.split("-", 1)[0]
    if name in NEED_VMLINUX:
        request.getfixturevalue("vmlinux_path")
    run_target(name, path.read_bytes())


def test_every_target_has_seeds_and_runs_them() -> None:
    assert set(targets.TARGETS) == set(EXAMPLES)
    assert {p.name.split("-", 1)[0] for p in CRASHERS} <= set(targets.TARGETS)


def test_apply_edits() -> None:
    assert apply_edits(b"abcdef", [("set", 1, b"XY")]) == b"aXYdef"
    assert apply_edits(b"abcdef", [("insert", 6, b"!")]) == b"abcdef!"
    assert apply_edits(b"abcdef", [("delete", 0, b"..")]) == b"def"
    assert apply_edits(b"abcdef", [("cut", 2, b"")]) == b"ab"
