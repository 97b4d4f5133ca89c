"""Run one fuzz target: `python -m fuzz.run TARGET [--engine atheris|hypothesis] [--runs N]`.

Unexpected exceptions (anything but CrashtuiError) are findings: each distinct one (type and
raising line) is printed once and its input saved as fuzz/crashers/TARGET-<sha1>.bin, and the
run goes on. Inputs tried are counted in fuzz/stats/TARGET-ENGINE.json as the run goes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRASHERS = HERE / "crashers"
STATS = HERE / "stats"


class Guard:
    """Wrap a target: count inputs, keep going past findings, save each new one."""

    def __init__(self, name: str, engine: str, fn: Callable[[bytes], None]) -> None:
        self.name, self.engine, self.fn = name, engine, fn
        self.count = 0
        self.findings: dict[str, str] = {}
        self.started = self.saved = time.time()
        self.stats = STATS / f"{name}-{engine}.json"
        previous = json.loads(self.stats.read_text()) if self.stats.exists() else {}
        self.before = int(previous.get("inputs", 0))
        self.earlier: dict[str, str] = dict(previous.get("findings", {}))  # of earlier runs

    def __call__(self, data: bytes) -> None:
        from crashtui.errors import CrashtuiError

        self.count += 1
        try:
            self.fn(data)
        except CrashtuiError:
            pass
        except Exception as exc:  # noqa: BLE001 - every other exception is a finding
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if key not in self.findings:
                sha = hashlib.sha1(data).hexdigest()[:12]
                CRASHERS.mkdir(exist_ok=True)
                (CRASHERS / f"{self.name}-{sha}.bin").write_bytes(data)
                self.findings[key] = f"{exc}"[:200]
                print(f"FINDING {self.name}: {key}: {exc!r}"[:400], flush=True)
                self.save()
        if self.count % 500 == 0 or time.time() - self.saved > 10:  # slow targets too
            self.save()

    def save(self) -> None:
        self.saved = time.time()
        STATS.mkdir(exist_ok=True)
        self.stats.write_text(json.dumps({
            "target": self.name, "engine": self.engine, "inputs": self.before + self.count,
            "this_run": self.count, "seconds": round(time.time() - self.started),
            "findings": {**self.earlier, **self.findings}}, indent=1) + "\n")


# Bugs must raise here, not become "(unavailable)" fields (crashtui's CRASHTUI_DEBUG switch).
os.environ["CRASHTUI_DEBUG"] = "1"


def run_atheris(name: str, runs: int, max_len: int, seconds: int,
                corpus_dir: str | None = None) -> None:
    import tempfile

    import atheris  # type: ignore[import-not-found]

    if any(m.startswith("crashtui") for m in sys.modules):
        raise RuntimeError("crashtui was imported before atheris could instrument it")
    with atheris.instrument_imports(include=["crashtui"]):
        from fuzz import targets
    guard = Guard(name, "atheris", targets.TARGETS[name])
    corpus = Path(corpus_dir) if corpus_dir else Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(targets.seeds(name)):
        (corpus / f"seed{i}").write_bytes(seed)
    import atexit

    atexit.register(guard.save)
    artifacts = Path(tempfile.gettempdir()) / "crashtui-fuzz-artifacts"
    artifacts.mkdir(exist_ok=True)
    atheris.Setup([sys.argv[0], f"-artifact_prefix={artifacts}/{name}-", f"-runs={runs}",
                   f"-max_len={max_len}", "-timeout=20", "-rss_limit_mb=4096",
                   f"-max_total_time={seconds}", str(corpus)], guard)
    atheris.Fuzz()


def run_hypothesis(name: str, runs: int) -> None:
    from hypothesis import HealthCheck, given, settings

    from fuzz import targets
    from fuzz.hypo import damaged

    guard = Guard(name, "hypothesis", targets.TARGETS[name])

    @settings(max_examples=runs, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(damaged(targets.seeds(name)))
    def loop(data: bytes) -> None:
        guard(data)

    loop()
    guard.save()


NAMES = ("btf", "elf", "flattened", "kdump", "kmem", "ko", "memory", "notes", "printk", "triage",
         "vmcoreinfo", "vmcoreinfo_values")  # fuzz.targets.TARGETS


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m fuzz.run")
    p.add_argument("target", choices=NAMES)
    p.add_argument("--engine", choices=["atheris", "hypothesis"], default="atheris")
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--max-len", type=int, default=16384)
    p.add_argument("--seconds", type=int, default=0, help="atheris: stop after this long")
    p.add_argument("--corpus", help="atheris: corpus directory kept between runs")
    args = p.parse_args()
    if args.engine == "atheris":
        run_atheris(args.target, args.runs, args.max_len, args.seconds, args.corpus)
    else:
        run_hypothesis(args.target, args.runs)


if __name__ == "__main__":
    main()
