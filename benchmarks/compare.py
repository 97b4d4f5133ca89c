#!/usr/bin/env python3
"""crashtui vs crash vs drgn on one dump: median wall time, peak RSS and ratios per case.

Run from anywhere (the repository is found from this file):

    python3 benchmarks/compare.py                     # the distro 6.1 sample dump, 5 runs
    python3 benchmarks/compare.py --runs 3 --cases sys,sys+bt --no-scaling
    python3 benchmarks/compare.py --dump D --vmlinux V --crash /path/to/crash

Every case runs each tool `--runs` times, alternating tools (the order rotates every round),
each run a fresh process whose wall time and peak RSS (wait4's ru_maxrss) are recorded;
medians are printed with the ratio crashtui/other (below 1: crashtui is faster/smaller).
Cold runs drop the page cache (root only) and give crashtui an empty cache directory.
This script installs nothing: a missing crash, drgn or tmux is reported and its column
skipped (benchmarks/README.md says how to get crash 8.0.6 and drgn); a crashtui feature
that does not exist yet is reported as "not implemented yet".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample-dumps" / "6.1-sysrq"
BENCH_CACHE = Path(os.environ.get("CRASHTUI_BENCH_CACHE",
                                  Path.home() / ".cache" / "crashtui-bench"))
TEST_CACHE = Path(os.environ.get("CRASHTUI_TEST_CACHE",
                                 Path.home() / ".cache" / "crashtui-tests"))
CRASH_CANDIDATES = [BENCH_CACHE / "crash-trixie" / "crash-8.0.6", Path("/usr/bin/crash")]
TOOLS = ("crashtui", "crash", "drgn")
FILE_LINE = re.compile(r"\.[chS]:\s?\d+")
BT_FRAME = re.compile(r"#\d+\s+\[[0-9a-f]+\]\s+(\S+)\s+at\s+([0-9a-f]+)")
# Frames of the panic machinery itself: the "panic pc" for sym is the first frame past them.
PANIC_MACHINERY = {"machine_kexec", "__crash_kexec", "crash_kexec", "panic", "vpanic",
                   "crash_setup_regs", "oops_end", "die", "die_addr", "__die", "do_trap",
                   "do_error_trap", "exc_general_protection", "exc_page_fault",
                   "page_fault_oops", "kernelmode_fixup_or_oops", "__bad_area_nosemaphore",
                   "bad_area_nosemaphore", "do_user_addr_fault", "asm_exc_page_fault",
                   "asm_exc_general_protection", "handle_mm_fault", "no_context",
                   "do_kern_addr_fault", "exc_invalid_op", "handle_bug", "asm_exc_invalid_op"}


# --- measuring one process -----------------------------------------------------------------

@dataclass
class Sample:
    """One run of one tool: wall seconds, peak RSS, CPU seconds, status and output."""

    wall: float
    rss_kb: int
    cpu: float
    rc: int
    out: str
    err: str


def run_once(argv: list[str], env: dict[str, str] | None = None,
             timeout: float = 600.0) -> Sample:
    """Run argv to completion; wall time from fork to reap, RSS and CPU from wait4."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                env=env, cwd=REPO)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out = fo.read().decode("utf-8", "replace")
        err = fe.read().decode("utf-8", "replace")
    return Sample(wall, int(ru.ru_maxrss), ru.ru_utime + ru.ru_stime, proc.returncode, out, err)


def drop_page_cache() -> bool:
    """Drop the page cache (needs root); True if it was dropped."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


class CpuMeter:
    """How busy the machine was with processes other than ours (from /proc/stat)."""

    def __init__(self) -> None:
        self.ours = 0.0
        self._start = self._busy()
        self._t0 = time.perf_counter()
        self._self0 = _self_cpu()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def other_cpus(self) -> float:
        """Average number of CPUs kept busy by other processes since this meter started."""
        elapsed = time.perf_counter() - self._t0
        if elapsed <= 0:
            return 0.0
        busy = self._busy() - self._start
        ours = self.ours + _self_cpu() - self._self0
        return max(0.0, busy - ours) / elapsed


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- tools ---------------------------------------------------------------------------------

@dataclass
class Env:
    """The dump, the vmlinux and how to call each tool (None: not available, with why)."""

    dump: Path
    vmlinux: Path
    python: str
    crash: list[str] | None
    crash_version: str
    crash_why: str
    drgn_version: str | None
    drgn_why: str
    tmux: str | None
    work: Path
    can_drop: bool
    crashtui_commands: set[str] = field(default_factory=set)
    panic_pc: str | None = None
    panic_func: str | None = None
    drgn_python: str | None = None

    def crashtui(self, args: list[str], dump: Path | None = None) -> list[str]:
        """argv running crashtui from this checkout."""
        return [self.python, "-m", "crashtui.cli", str(dump or self.dump), str(self.vmlinux),
                *args]

    def crashtui_env(self, cache: Path) -> dict[str, str]:
        """Environment for crashtui: this checkout first on sys.path, its cache in `cache`."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
        env["CRASHTUI_CACHE"] = str(cache)
        env["XDG_CACHE_HOME"] = str(cache)
        env.pop("CRASHTUI_DEBUG", None)
        return env

    def crash_argv(self, commands: list[str], dump: Path | None = None,
                   vmlinux: Path | None = None) -> list[str]:
        """argv running crash -s on a command file ending in exit."""
        assert self.crash is not None
        name = re.sub(r"[^a-z0-9]+", "_", "-".join(commands).lower())[:60]
        cmdfile = self.work / f"crash-{name}.txt"
        cmdfile.write_text("\n".join([*commands, "exit"]) + "\n")
        return [*self.crash, "-s", "-i", str(cmdfile), str(vmlinux or self.vmlinux),
                str(dump or self.dump)]

    def drgn_argv(self, sections: str, dump: Path | None = None,
                  vmlinux: Path | None = None) -> list[str]:
        """argv running drgn_equiv.py for the given sections."""
        return [self.drgn_python or self.python, str(Path(__file__).with_name("drgn_equiv.py")),
                str(dump or self.dump), str(vmlinux or self.vmlinux), sections]


def find_vmlinux(dump_dir: Path) -> Path | None:
    """The cached debug vmlinux named by the sample dump's MANIFEST build-id, if present."""
    manifest = dump_dir / "MANIFEST"
    if not manifest.exists():
        return None
    fields = dict(line.split("=", 1) for line in manifest.read_text().splitlines() if "=" in line)
    build_id = fields.get("vmlinux_build_id", "")
    hits = sorted((TEST_CACHE / "vmlinux" / build_id).glob("vmlinux*")) if build_id else []
    return hits[0] if hits else None


def makedump_crash() -> list[str] | None:
    """The crash 8.0.6 that sample-dumps/makedump/crashout.py extracted (trixie's, started by
    trixie's ld.so), if it is there; nothing is downloaded."""
    root = Path.home() / ".cache" / "crashtui-makedump" / "crash-8.0.6"
    libdirs = [root / "usr/lib/x86_64-linux-gnu", root / "lib/x86_64-linux-gnu"]
    ldso = next((p / "ld-linux-x86-64.so.2" for p in [*libdirs, root / "lib64"]
                 if (p / "ld-linux-x86-64.so.2").exists()), None)
    if not (root / ".ready").exists() or ldso is None:
        return None
    return [str(ldso), "--library-path", ":".join(str(d) for d in libdirs if d.exists()),
            str(root / "usr/bin/crash")]


def probe_crash(explicit: str | None) -> tuple[list[str] | None, str, str]:
    """(argv prefix, version, note) of the crash binary to use."""
    if not explicit and (extracted := makedump_crash()) is not None:
        r = subprocess.run([*extracted, "--version"], capture_output=True, text=True,
                           timeout=60)
        m = re.search(r"crash (\d+\.\d+\.\d+\S*)", r.stdout)
        if m:
            return extracted, m.group(1), ""
    candidates = [Path(explicit)] if explicit else CRASH_CANDIDATES
    found = shutil.which("crash")
    if not explicit and found and Path(found) not in candidates:
        candidates.append(Path(found))
    for cand in candidates:
        if not cand.exists():
            continue
        try:
            r = subprocess.run([str(cand), "--version"], capture_output=True, text=True,
                               timeout=60)
        except OSError as exc:
            return None, "", f"{cand}: {exc}"
        m = re.search(r"crash (\d+\.\d+\.\d+\S*)", r.stdout)
        if not m:
            return None, "", f"{cand} --version failed: {(r.stderr or r.stdout).strip()[:200]}"
        version = m.group(1)
        note = ""
        if tuple(int(x) for x in re.findall(r"\d+", version)[:3]) < (8, 0, 6):
            note = (f"crash {version} is older than 8.0.6: bookworm's 8.0.2 miscounts tasks on "
                    "6.1 (see benchmarks/README.md for trixie's 8.0.6)")
        return [str(cand)], version, note
    return None, "", ("crash not found: run benchmarks/fetch-crash.sh (trixie's 8.0.6) or "
                      "apt-get install crash")


def probe_drgn(python: str) -> tuple[str | None, str]:
    """drgn's version in `python`, or None and why."""
    r = subprocess.run([python, "-c", "import drgn; print(drgn.__version__)"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"drgn not importable by {python}: pip install drgn"
    return r.stdout.strip(), ""


def crashtui_command_names(env: Env) -> set[str]:
    """The command names `crashtui -c help` lists."""
    s = run_once(env.crashtui(["-c", "help"]), env.crashtui_env(env.work / "cache-warm"))
    if s.rc != 0:
        return set()
    return {line.split()[0] for line in s.out.splitlines() if line.strip()}


def find_panic_pc(env: Env) -> None:
    """The panic pc for `sym`: the first frame of the panic task's bt past the panic machinery."""
    texts: list[str] = []
    if "bt" in env.crashtui_commands:
        texts.append(run_once(env.crashtui(["-c", "bt"]),
                              env.crashtui_env(env.work / "cache-warm")).out)
    if env.crash is not None:
        texts.append(run_once(env.crash_argv(["bt"])).out)
    for text in texts:
        frames = BT_FRAME.findall(text)
        for func, pc in frames:
            base = func.split(".")[0]
            if base not in PANIC_MACHINERY:
                env.panic_pc, env.panic_func = pc, base
                return


# --- cases ---------------------------------------------------------------------------------

@dataclass
class Variant:
    """How one tool answers a case: argv + env, or None with the reason it is skipped."""

    tool: str
    argv: list[str] | None
    env: dict[str, str] | None = None
    why: str = ""
    fresh_cache: bool = False


@dataclass
class Result:
    """The samples of one tool in one case."""

    tool: str
    samples: list[Sample] = field(default_factory=list)
    why: str = ""
    note: str = ""

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.rc == 0]

    def wall(self) -> float | None:
        return statistics.median(s.wall for s in self.ok) if self.ok else None

    def rss_mb(self) -> float | None:
        return statistics.median(s.rss_kb for s in self.ok) / 1024 if self.ok else None

    def cpu(self) -> float | None:
        return statistics.median(s.cpu for s in self.ok) if self.ok else None


@dataclass
class Case:
    """A question all tools answer: key, title, one Variant per tool, cold or warm."""

    key: str
    title: str
    variants: list[Variant]
    cold: bool = False
    results: dict[str, Result] = field(default_factory=dict)
    other_cpus: float = 0.0


def crashtui_variant(env: Env, args: list[str], need: str | None, cold: bool) -> Variant:
    """crashtui's variant of a case, skipped when the command `need` does not exist yet."""
    if need is not None and need not in env.crashtui_commands:
        return Variant("crashtui", None, why=f"not implemented yet (no `{need}` command)")
    return Variant("crashtui", env.crashtui(args), env.crashtui_env(env.work / "cache-warm"),
                   fresh_cache=cold)


def crash_variant(env: Env, commands: list[str]) -> Variant:
    """crash's variant of a case."""
    if env.crash is None:
        return Variant("crash", None, why=env.crash_why)
    return Variant("crash", env.crash_argv(commands))


def drgn_variant(env: Env, sections: str) -> Variant:
    """drgn's variant of a case."""
    if env.drgn_version is None:
        return Variant("drgn", None, why=env.drgn_why)
    return Variant("drgn", env.drgn_argv(sections))


def build_cases(env: Env) -> list[Case]:
    """Every case of issue 7, in order."""
    sym_tui: list[str] = []
    sym_crash: list[str] = ["bt -l"]
    bt_crash = ["bt"]
    if env.panic_pc:
        if "sym" in env.crashtui_commands:
            sym_tui = ["-c", f"sym {env.panic_pc}"]
        sym_crash = [f"sym {env.panic_pc}"]
    bt_crash = ["bt", *sym_crash] if env.panic_pc else sym_crash
    cases = [
        Case("sys-cold", "summary (sys), cold", [
            crashtui_variant(env, ["-c", "sys"], "sys", True),
            crash_variant(env, ["sys"]), drgn_variant(env, "sys")], cold=True),
        Case("sys", "summary (sys), warm", [
            crashtui_variant(env, ["-c", "sys"], "sys", False),
            crash_variant(env, ["sys"]), drgn_variant(env, "sys")]),
        Case("bt", "panic task's backtrace with file:line (bt + sym), warm", [
            crashtui_variant(env, ["-c", "bt", *sym_tui], "bt", False),
            crash_variant(env, bt_crash), drgn_variant(env, "bt")]),
        Case("sys+bt", "summary + panic backtrace with file:line, warm", [
            crashtui_variant(env, ["-c", "sys", "-c", "bt", *sym_tui], "bt", False),
            crash_variant(env, ["sys", *bt_crash]), drgn_variant(env, "sys,bt")]),
        Case("sys+bt-cold", "summary + panic backtrace with file:line, cold", [
            crashtui_variant(env, ["-c", "sys", "-c", "bt", *sym_tui], "bt", True),
            crash_variant(env, ["sys", *bt_crash]), drgn_variant(env, "sys,bt")], cold=True),
        Case("sys+bt-only", "`-c sys -c bt` (issue 21; drgn: the crashed thread's "
             "stack_trace() with file:line), warm", [
                 crashtui_variant(env, ["-c", "sys", "-c", "bt"], "bt", False),
                 crash_variant(env, ["sys", "bt"]), drgn_variant(env, "bt")]),
        Case("bt -a", "every CPU's backtrace (bt -a), warm", [
            crashtui_variant(env, ["-c", "bt -a"], "bt", False),
            crash_variant(env, ["bt -a"]), drgn_variant(env, "bta")]),
        Case("log", "kernel log (log), warm", [
            crashtui_variant(env, ["-c", "log"], "log", False),
            crash_variant(env, ["log"]), drgn_variant(env, "log")]),
        Case("ps", "task list (ps), warm", [
            crashtui_variant(env, ["-c", "ps"], "ps", False),
            crash_variant(env, ["ps"]), drgn_variant(env, "ps")]),
        Case("kmem -i", "memory usage (kmem -i), warm", [
            crashtui_variant(env, ["-c", "kmem -i"], "kmem", False),
            crash_variant(env, ["kmem -i"]), drgn_variant(env, "kmem")]),
    ]
    report = ["--report", "-"]
    crash_all = ["sys", "bt -a", "log", "ps", "kmem -i", "mod"]
    for cold in (False, True):
        cases.append(Case("report-cold" if cold else "report",
                          f"full report (--report; crash/drgn: sys, bt -a, log, ps, kmem -i, "
                          f"mod), {'cold' if cold else 'warm'}", [
                              crashtui_variant(env, report, None, cold),
                              crash_variant(env, crash_all),
                              drgn_variant(env, "sys,bta,log,ps,kmem,mod")], cold=cold))
    return cases


def measure_case(env: Env, case: Case, runs: int, meter: CpuMeter, log: Callable[[str], None]
                 ) -> None:
    """Probe each tool once (untimed warm-up), then `runs` rounds, rotating the tool order."""
    active: list[Variant] = []
    t_start, other_start = time.perf_counter(), _other_snapshot(meter)
    for v in case.variants:
        res = case.results[v.tool] = Result(v.tool, why=v.why)
        if v.argv is None:
            continue
        probe = run_once(v.argv, v.env)
        meter.ours += probe.cpu
        if probe.rc != 0:
            res.why = _failure_reason(v.tool, probe)
            continue
        if case.key in ("bt", "sys+bt", "sys+bt-cold") and not FILE_LINE.search(probe.out):
            res.note = "no file:line in its output"
        active.append(v)
    for r in range(runs):
        order = active[r % len(active):] + active[:r % len(active)] if active else []
        for v in order:
            assert v.argv is not None
            run_env = v.env
            if case.cold:
                drop_page_cache()
                if v.fresh_cache and run_env is not None:
                    cold_dir = Path(tempfile.mkdtemp(prefix="cold-", dir=env.work))
                    run_env = {**run_env, "CRASHTUI_CACHE": str(cold_dir),
                               "XDG_CACHE_HOME": str(cold_dir)}
            s = run_once(v.argv, run_env)
            meter.ours += s.cpu
            case.results[v.tool].samples.append(s)
            if s.rc != 0:
                log(f"    {v.tool} run {r + 1} failed: {_last_line(s.err)}")
    case.other_cpus = _other_since(meter, t_start, other_start)


def _other_snapshot(meter: CpuMeter) -> tuple[float, float]:
    return CpuMeter._busy(), meter.ours + _self_cpu()


def _other_since(meter: CpuMeter, t0: float, snap: tuple[float, float]) -> float:
    elapsed = time.perf_counter() - t0
    busy = CpuMeter._busy() - snap[0]
    ours = meter.ours + _self_cpu() - snap[1]
    return max(0.0, busy - ours) / elapsed if elapsed > 0 else 0.0


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "(no message)"


def _failure_reason(tool: str, s: Sample) -> str:
    msg = _last_line(s.err or s.out)
    if tool == "crashtui" and re.search(r"command not found|No module named 'crashtui|"
                                        r"unrecognized arguments", s.err):
        return f"not implemented yet ({msg})"
    return f"failed (exit {s.rc}): {msg}"


# --- the app -------------------------------------------------------------------------------

APP_POLL = 0.025  # seconds between screen captures in the app case

def app_markers(env: Env) -> list[str]:
    """Texts that are on screen once the summary and the panic backtrace are drawn."""
    s = run_once(env.crashtui(["-c", "sys"]), env.crashtui_env(env.work / "cache-warm"))
    marks: list[str] = []
    m = re.search(r"PANIC:\s*\"?(.*?)\"?$", s.out, re.M)
    if m and m.group(1):
        marks.append(m.group(1)[-30:].strip())
    m = re.search(r"RELEASE:\s*(\S+)", s.out)
    if m:
        marks.append(m.group(1))
    if env.panic_func:
        marks.append(env.panic_func)
    return marks


def measure_app(env: Env, runs: int, markers: list[str], cold: bool, meter: CpuMeter,
                log: Callable[[str], None]) -> Result:
    """Launch the app in a private tmux server; time until every marker is on screen."""
    res = Result("crashtui")
    if env.tmux is None:
        res.why = "tmux not found (apt-get install tmux)"
        return res
    if not (REPO / "crashtui" / "tui" / "app.py").exists():
        res.why = "not implemented yet (no crashtui/tui/app.py)"
        return res
    if len(markers) < 3:
        res.why = f"cannot tell when the backtrace is drawn (markers found: {markers})"
        return res
    byte_compile(env)
    sock = f"crashtui-bench-{os.getpid()}-{'cold' if cold else 'warm'}"
    tmux = [env.tmux, "-L", sock, "-f", "/dev/null"]
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "bench", "-x", "200", "-y", "50"],
                       check=True, capture_output=True)
        subprocess.run([*tmux, "set-option", "-g", "remain-on-exit", "on"], check=True,
                       capture_output=True)
        for r in range(runs + 1):
            cache = env.work / "cache-warm"
            if cold and r > 0:
                drop_page_cache()
                cache = Path(tempfile.mkdtemp(prefix="cold-app-", dir=env.work))
            cenv = env.crashtui_env(cache)
            keep = ("PYTHONPATH", "CRASHTUI_CACHE", "XDG_CACHE_HOME", "PATH", "HOME")
            cmd = "exec env TERM=xterm-256color COLORTERM=truecolor " + " ".join(
                f"{k}={shlex.quote(cenv[k])}" for k in keep if k in cenv) + " " + shlex.join(
                env.crashtui([]))
            s = _app_once(tmux, cmd, markers)
            meter.ours += s.cpu  # the app is tmux's child, not ours: count it as ours
            if r == 0:  # warm-up / probe
                if s.rc != 0:
                    res.why = f"failed: {s.err}"
                    return res
                continue
            res.samples.append(s)
            if s.rc != 0:
                log(f"    app run {r} failed: {s.err}")
    except (OSError, subprocess.CalledProcessError) as exc:
        res.why = f"tmux failed: {exc}"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return res


def byte_compile(env: Env) -> None:
    """Write the checkout's .pyc files, as an installed crashtui has them: with
    PYTHONDONTWRITEBYTECODE set, every module edited since its last .pyc would be compiled
    again at each launch (~20 ms for app.py alone), and measured as the app's."""
    cenv = dict(os.environ)
    cenv.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([env.python, "-m", "compileall", "-q", str(REPO / "crashtui")], env=cenv,
                   capture_output=True, check=False)


def _app_once(tmux: list[str], cmd: str, markers: list[str], timeout: float = 30.0,
              poll: float = APP_POLL) -> Sample:
    """One launch: wall time until every marker is on screen (polled; each poll is a tmux
    client process, so polls are kept sparse to leave the CPUs to the app)."""
    t0 = time.perf_counter()
    r = subprocess.run([*tmux, "new-window", "-d", "-P", "-F", "#{pane_id} #{pane_pid}",
                        "-t", "bench:", cmd], capture_output=True, text=True, check=True)
    pane, pid = r.stdout.split()
    screen = ""
    rc, why = 1, "timed out"
    polls = 0
    while time.perf_counter() - t0 < timeout:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", pane],
                                capture_output=True, text=True).stdout
        if all(m in screen for m in markers):
            rc, why = 0, ""
            break
        polls += 1
        if polls % 10 == 0:
            dead = subprocess.run([*tmux, "display", "-p", "-t", pane, "#{pane_dead}"],
                                  capture_output=True, text=True).stdout.strip()
            if dead == "1":
                why = "the app exited: " + _last_line(screen)
                break
        time.sleep(poll)
    wall = time.perf_counter() - t0
    rss = _vm_hwm(int(pid))
    cpu = _proc_cpu(int(pid))
    subprocess.run([*tmux, "kill-pane", "-t", pane], capture_output=True)
    return Sample(wall, rss, cpu, rc, screen, why)


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds a live process (all its threads) has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- startup -------------------------------------------------------------------------------

HEAVY = ("numpy", "textual", "elftools", "capstone", "pygments", "zstandard", "rich")


def measure_help(env: Env, runs: int) -> tuple[Result, Result, list[str]]:
    """`crashtui --help` vs a bare `python -c pass`, and heavy modules imported by --help."""
    cenv = env.crashtui_env(env.work / "cache-warm")
    helpr, bare = Result("crashtui --help"), Result("python -c pass")
    for _ in range(runs):
        helpr.samples.append(run_once([env.python, "-m", "crashtui.cli", "--help"], cenv))
        bare.samples.append(run_once([env.python, "-c", "pass"], cenv))
    s = run_once([env.python, "-X", "importtime", "-m", "crashtui.cli", "--help"], cenv)
    mods = {line.split("|")[-1].strip() for line in s.err.splitlines() if "|" in line}
    heavy = sorted({m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY})
    return helpr, bare, heavy


# --- scaling -------------------------------------------------------------------------------

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
GiB = 1 << 30
MiB = 1 << 20


def elf_source(log: Callable[[str], None]) -> Path | None:
    """The sample ELF vmcore (makedumpfile -E), decompressed once into the bench cache."""
    xz = sorted(SAMPLE.glob("vmcore-d31.elf.*.xz"))
    if not xz:
        return None
    out = BENCH_CACHE / "scaling" / xz[0].name.removesuffix(".xz")
    if not out.exists() or out.stat().st_mtime < xz[0].stat().st_mtime:
        import lzma

        log(f"  decompressing {xz[0].name} -> {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with lzma.open(xz[0]) as fin, tmp.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        tmp.replace(out)
    return out


def make_scaled_elf(src: Path, total: int, chunk: int, present: int,
                    log: Callable[[str], None]) -> tuple[Path, int]:
    """A copy of `src` with PT_LOADs added up to `total` bytes of guest RAM; (path, phnum).

    Each added segment covers `chunk` bytes of physical memory, of which the first `present`
    are in the file (as a sparse hole: zeros that take no disk space) and the rest filtered
    out, like makedumpfile -E's split segments. The program header table stays right after
    the ELF header (crash expects that); the original data is shifted behind it.
    """
    out = BENCH_CACHE / "scaling" / f"{src.name}.{total // GiB}G-{chunk // MiB}M-{present // MiB}M"
    with src.open("rb") as f:
        ehdr = f.read(_EHDR.size)
        fields = list(_EHDR.unpack(ehdr))
        phoff, phentsize, phnum = fields[5], fields[9], fields[10]
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    phdrs = [list(_PHDR.unpack_from(table, i * phentsize)) for i in range(phnum)]
    loads = [p for p in phdrs if p[0] == 1]
    ram_end = max(p[4] + p[6] for p in loads)
    direct = max(loads, key=lambda p: p[6])
    vdelta = direct[3] - direct[4]
    start = (ram_end + chunk - 1) // chunk * chunk
    added = list(range(start, total, chunk))
    new_phnum = phnum + len(added)
    if new_phnum >= 0xFFFF:
        raise ValueError(f"too many segments ({new_phnum}) for e_phnum")
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out, new_phnum
    log(f"  generating {out.name} ({total / GiB:.0f} GiB guest, {new_phnum} program headers)")
    data_start = phoff + phentsize * phnum
    new_data_start = _EHDR.size + phentsize * new_phnum
    shift = new_data_start - data_start
    src_size = src.stat().st_size
    tail = (src_size + shift + 4095) // 4096 * 4096
    new_table = bytearray()
    for p in phdrs:
        q = list(p)
        if q[0] in (1, 4) and q[5]:
            q[2] += shift
        new_table += _PHDR.pack(*q).ljust(phentsize, b"\0")
    pos = tail
    for paddr in added:
        new_table += _PHDR.pack(1, 7, pos, (paddr + vdelta) & (2**64 - 1), paddr, present,
                                chunk, 0).ljust(phentsize, b"\0")
        pos += present
    fields[5], fields[10] = _EHDR.size, new_phnum
    tmp = out.with_suffix(".tmp")
    with src.open("rb") as fin, tmp.open("wb") as fout:
        fout.write(_EHDR.pack(*fields))
        fout.write(new_table)
        fin.seek(data_start)
        shutil.copyfileobj(fin, fout, 1 << 22)
        fout.truncate(pos)
    tmp.replace(out)
    return out, new_phnum


@dataclass
class ScalePoint:
    """One generated dump and the tools' results on it."""

    guest_gib: int
    layout: str
    phnum: int
    path: Path
    results: dict[str, Result] = field(default_factory=dict)


def measure_scaling(env: Env, sizes: list[int], runs: int, meter: CpuMeter,
                    log: Callable[[str], None]) -> list[ScalePoint]:
    """`sys` on ELF vmcores of growing guests: the original, then sparse 2 MiB / 1 GiB loads."""
    src = elf_source(log)
    if src is None:
        return []
    points = [ScalePoint(1, "original makedumpfile -E", 0, src)]
    for size in sizes:
        if size <= 1:
            continue
        for layout, chunk, present in (("2 MiB loads, half filtered", 2 * MiB, 1 * MiB),
                                       ("1 GiB loads, all present", GiB, GiB)):
            path, phnum = make_scaled_elf(src, size * GiB, chunk, present, log)
            points.append(ScalePoint(size, layout, phnum, path))
    with src.open("rb") as f:
        points[0].phnum = _EHDR.unpack(f.read(_EHDR.size))[10]
    for pt in points:
        variants = [Variant("crashtui", env.crashtui(["-c", "sys"], pt.path),
                            env.crashtui_env(env.work / "cache-warm"))]
        if env.crash is not None:
            variants.append(Variant("crash", env.crash_argv(["sys"], pt.path)))
        if env.drgn_version is not None:
            variants.append(Variant("drgn", env.drgn_argv("sys", pt.path)))
        case = Case("scale", "", variants)
        measure_case(env, case, runs, meter, log)
        pt.results = case.results
    return points


# --- output --------------------------------------------------------------------------------

def fmt_s(v: float | None) -> str:
    return "—" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def fmt_mb(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} MB"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def case_table(case: Case) -> Iterator[str]:
    """Lines describing one case."""
    yield f"### {case.key}: {case.title}"
    if case.cold:
        yield "(cold: page cache dropped before every run, crashtui with an empty cache dir)"
    yield (f"other processes kept {case.other_cpus:.2f} of {os.cpu_count()} CPUs busy "
           "meanwhile")
    yield "| tool | runs | wall median (min–max) | CPU median | peak RSS median | " \
          "crashtui/this wall | crashtui/this CPU | crashtui/this RSS |"
    yield "|---|---|---|---|---|---|---|---|"
    base = case.results.get("crashtui")
    for tool in TOOLS:
        res = case.results.get(tool)
        if res is None:
            continue
        if not res.ok:
            yield f"| {tool} | 0 | {res.why or 'every run failed'} | | | | | |"
            continue
        walls = [s.wall for s in res.ok]
        spread = f"{fmt_s(min(walls))}–{fmt_s(max(walls))}"
        note = f" ({res.note})" if res.note else ""
        yield (f"| {tool}{note} | {len(res.ok)}/{len(res.samples)} | {fmt_s(res.wall())} "
               f"({spread}) | {fmt_s(res.cpu())} | {fmt_mb(res.rss_mb())} | "
               f"{fmt_ratio(base.wall() if base else None, res.wall())} | "
               f"{fmt_ratio(base.cpu() if base else None, res.cpu())} | "
               f"{fmt_ratio(base.rss_mb() if base else None, res.rss_mb())} |")
    yield ""


def machine_lines(env: Env) -> Iterator[str]:
    """Machine, OS, versions of every tool, the dump and the vmlinux."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    osrel = "?"
    try:
        osrel = re.search(r'PRETTY_NAME="([^"]*)"', Path("/etc/os-release").read_text()
                          ).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    rev = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs %s"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                            "crashtui"], capture_output=True, text=True).stdout.strip()
    pyver = subprocess.run([env.python, "-c", "import sys, numpy; print(sys.version.split()[0],"
                            " 'numpy', numpy.__version__)"], capture_output=True,
                           text=True).stdout.strip()
    yield f"- machine: {cpu}, {os.cpu_count()} CPUs, {mem} RAM; {osrel}; Linux {platform.release()}"
    yield f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    yield f"- crashtui: git {rev}{' + uncommitted changes in crashtui/' if dirty else ''}; " \
          f"python {pyver} ({env.python})"
    yield f"- crash: {env.crash_version or '—'} ({' '.join(env.crash) if env.crash else env.crash_why})"
    if env.crash_why and env.crash:
        yield f"  - note: {env.crash_why}"
    yield f"- drgn: {env.drgn_version or env.drgn_why}"
    yield f"- tmux: {env.tmux or 'not found'}"
    yield f"- dump: {env.dump} ({env.dump.stat().st_size / MiB:.1f} MiB)"
    yield f"- vmlinux: {env.vmlinux} ({env.vmlinux.stat().st_size / MiB:.0f} MiB)"
    yield (f"- page cache: {'dropped before cold runs' if env.can_drop else 'NOT dropped (not root): cold runs are not really cold'}")
    if env.panic_pc:
        yield f"- sym address (panic frame {env.panic_func}): {env.panic_pc}"


# --- main ----------------------------------------------------------------------------------

class Stream(list[str]):
    """Output lines, printed as soon as they are added (a crash later loses nothing)."""

    def __init__(self, first: list[str]) -> None:
        super().__init__()
        self.extend(first)

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)

    def extend(self, more: Iterable[str]) -> None:
        for line in more:
            self.append(line)

    def __iadd__(self, more: Iterable[str]) -> Stream:  # type: ignore[override,misc]
        self.extend(more)
        return self


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, find the tools, run the cases, print the tables and the targets."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", type=Path, help="dump file (default: the 6.1 sysrq sample)")
    ap.add_argument("--vmlinux", type=Path, help="its debug vmlinux (default: the cached one)")
    ap.add_argument("--crash", help="crash binary (default: trixie's 8.0.6 wrapper, else PATH)")
    ap.add_argument("--python", default=sys.executable,
                    help="python running crashtui and drgn (default: this one)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per tool and case")
    ap.add_argument("--cases", help="comma-separated case keys (default: all); e.g. "
                    "sys,sys+bt,report,app,help")
    ap.add_argument("--no-scaling", action="store_true", help="skip the dump-size scaling table")
    ap.add_argument("--scaling-sizes", default="4,16,64",
                    help="guest sizes in GiB for the scaling table (default 4,16,64)")
    ap.add_argument("--drgn-python", help="python with drgn installed (default: --python)")
    ap.add_argument("--kmem-dumps", default="",
                    help="more DUMP:VMLINUX pairs (e.g. a bigger guest's) for the kmem-scan "
                    "table, comma-separated; the main dump is always measured")
    ap.add_argument("--samples", help="comma-separated sample names under sample-dumps/ (e.g. "
                    "5.10-sysrq,6.1-sysrq,6.12-sysrq,7.3-sysrq): run --cases (default "
                    "sys+bt-only,report) on each, dump and vmlinux from its MANIFEST, and print "
                    "one summary table with issue 21's targets judged per sample")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.samples:
        return run_samples(args, log)

    dump = args.dump or next(iter(sorted(SAMPLE.glob("dump.*"))), None)
    vmlinux = args.vmlinux or find_vmlinux(SAMPLE)
    if dump is None or not Path(dump).exists():
        print(f"missing: the dump ({dump}); pass --dump", file=sys.stderr)
        return 2
    if vmlinux is None or not Path(vmlinux).exists():
        print("missing: the debug vmlinux; fetch it with `python -m crashtui.debuginfo.debian "
              f"{SAMPLE / 'MANIFEST'}` or pass --vmlinux", file=sys.stderr)
        return 2
    crash, crash_version, crash_why = probe_crash(args.crash)
    drgn_version, drgn_why = probe_drgn(args.drgn_python or args.python)
    work = Path(tempfile.mkdtemp(prefix="crashtui-bench-"))
    can_drop = os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)
    env = Env(Path(dump).resolve(), Path(vmlinux).resolve(), args.python, crash,
              crash_version, crash_why, drgn_version, drgn_why, shutil.which("tmux"), work,
              can_drop, drgn_python=args.drgn_python)
    for what, why in (("crash", crash_why if crash is None else ""),
                      ("drgn", drgn_why if drgn_version is None else ""),
                      ("tmux", "" if env.tmux else "tmux not found: apt-get install tmux")):
        if why:
            log(f"MISSING {what}: {why}")
    wanted = set(args.cases.split(",")) if args.cases else None
    meter = CpuMeter()
    try:
        env.crashtui_commands = crashtui_command_names(env)
        log(f"crashtui commands: {' '.join(sorted(env.crashtui_commands)) or '(none)'}")
        find_panic_pc(env)
        lines = Stream(["## Environment", *machine_lines(env), ""])
        cases = [c for c in build_cases(env) if wanted is None or c.key in wanted]
        for case in cases:
            log(f"case {case.key} ...")
            measure_case(env, case, args.runs, meter, log)
            lines += case_table(case)
        app: dict[str, Result] = {}
        if wanted is None or "app" in wanted or "app-cold" in wanted:
            markers = app_markers(env)
            app_other: dict[str, float] = {}
            for cold in (False, True):
                key = "app-cold" if cold else "app"
                if wanted is None or key in wanted:
                    log(f"case {key} ... (markers {markers})")
                    t0, snap = time.perf_counter(), _other_snapshot(meter)
                    app[key] = measure_app(env, args.runs, markers, cold, meter, log)
                    app_other[key] = _other_since(meter, t0, snap)
            lines.append("### app: launch until the summary and the panic backtrace are drawn")
            lines.append(f"(tmux 200x50, the screen captured every {APP_POLL * 1000:.0f} ms until "
                         f"it shows all of: {', '.join(markers)})")
            lines.append("| case | runs | wall median (min–max) | CPU median | peak RSS (VmHWM) "
                         "at that moment | other processes' CPUs busy |")
            lines.append("|---|---|---|---|---|---|")
            for key, res in app.items():
                if not res.ok:
                    lines.append(f"| {key} | 0 | {res.why or 'every run failed'} | | | |")
                    continue
                walls = [s.wall for s in res.ok]
                lines.append(f"| {key} | {len(res.ok)}/{len(res.samples)} | {fmt_s(res.wall())} "
                             f"({fmt_s(min(walls))}–{fmt_s(max(walls))}) | {fmt_s(res.cpu())} | "
                             f"{fmt_mb(res.rss_mb())} | {app_other.get(key, 0.0):.2f} |")
            lines.append("")
        if wanted is None or "help" in wanted:
            log("case help ...")
            helpr, bare, heavy = measure_help(env, args.runs)
            lines.append("### help: `crashtui --help` (startup)")
            lines.append("| command | wall median | peak RSS |")
            lines.append("|---|---|---|")
            lines.append(f"| `crashtui --help` | {fmt_s(helpr.wall())} | {fmt_mb(helpr.rss_mb())} |")
            lines.append(f"| `python -c pass` | {fmt_s(bare.wall())} | {fmt_mb(bare.rss_mb())} |")
            lines.append(f"heavy modules imported by --help: {', '.join(heavy) or 'none'}")
            lines.append("")
        points: list[ScalePoint] = []
        if not args.no_scaling and (wanted is None or "scaling" in wanted):
            log("case scaling ...")
            sizes = [int(x) for x in args.scaling_sizes.split(",") if x]
            points = measure_scaling(env, sizes, max(3, args.runs // 2 + 1), meter, log)
            lines += scaling_table(points)
        scan: list[dict] = []
        ram: list[dict] = []
        pairs = [(env.dump, env.vmlinux)] + [
            (Path(d), Path(v)) for d, v in
            (p.split(":", 1) for p in args.kmem_dumps.split(",") if p)]
        if wanted is None or "kmem-ram" in wanted:
            log("case kmem-ram ...")
            ram = kmem_ram_rows(env, pairs, max(3, args.runs), log)
            lines += kmem_ram_table(ram)
        if wanted is None or "kmem-scan" in wanted:
            log("case kmem-scan ...")
            scan = kmem_scan_rows(env, pairs, max(3, args.runs))
            lines += kmem_scan_table(scan)
        lines += target_lines(cases, app)
        lines += issue21_lines(cases, app, scan, ram)
        lines.append(f"- other processes kept {meter.other_cpus():.2f} of {os.cpu_count()} CPUs "
                     "busy on average during the whole run; load average at the end: "
                     f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def sample_paths(name: str) -> tuple[Path | None, Path | None]:
    """The dump file and cached debug vmlinux of sample `name`, from its MANIFEST."""
    sample = REPO / "sample-dumps" / name
    manifest = sample / "MANIFEST"
    if not manifest.exists():
        return None, None
    fields = dict(line.split("=", 1) for line in manifest.read_text().splitlines() if "=" in line)
    dump = sample / fields["dump"] if fields.get("dump") else None
    if dump is None or not dump.exists():
        dump = next(iter(sorted(sample.glob("dump.*"))), None)
    return dump, find_vmlinux(sample)


ISSUE21 = (("sys+bt-only", "`-c sys -c bt`", 0.8), ("report", "report", 1.0))


def run_samples(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    """Run the chosen cases on each named sample and print one table judging issue 21's targets."""
    names = [n for n in args.samples.split(",") if n]
    wanted = set(args.cases.split(",")) if args.cases else {k for k, _, _ in ISSUE21}
    crash, crash_version, crash_why = probe_crash(args.crash)
    drgn_version, drgn_why = probe_drgn(args.drgn_python or args.python)
    if crash is None:
        log(f"MISSING crash: {crash_why}")
    if drgn_version is None:
        log(f"MISSING drgn: {drgn_why}")
    meter = CpuMeter()
    per_sample: list[tuple[str, list[Case], str]] = []
    for name in names:
        dump, vmlinux = sample_paths(name)
        if dump is None or vmlinux is None:
            why = (f"no dump in sample-dumps/{name}" if dump is None else
                   f"no cached vmlinux for sample-dumps/{name}/MANIFEST")
            log(f"SKIP {name}: {why}")
            per_sample.append((name, [], why))
            continue
        work = Path(tempfile.mkdtemp(prefix="crashtui-bench-"))
        can_drop = os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)
        env = Env(dump.resolve(), vmlinux.resolve(), args.python, crash, crash_version,
                  crash_why, drgn_version, drgn_why, shutil.which("tmux"), work, can_drop,
                  drgn_python=args.drgn_python)
        try:
            env.crashtui_commands = crashtui_command_names(env)
            find_panic_pc(env)
            cases = [c for c in build_cases(env) if c.key in wanted]
            for case in cases:
                log(f"{name}: case {case.key} ...")
                measure_case(env, case, args.runs, meter, log)
                for line in case_table(case):
                    log(line)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        per_sample.append((name, cases, ""))
    for line in samples_table(per_sample):
        print(line)
    print(f"- other processes kept {meter.other_cpus():.2f} of {os.cpu_count()} CPUs busy on "
          f"average during the whole run; load average at the end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def samples_table(per_sample: list[tuple[str, list[Case], str]]) -> list[str]:
    """One row per sample and case: each tool's wall (CPU), the ratios, issue 21's verdicts."""
    limits = {k: (label, limit) for k, label, limit in ISSUE21}
    out = ["## Issue 21 across samples (wall median (CPU median); crash 8.0.6 cannot open 7.x: —)",
           "| sample | case | crashtui | drgn | crash | wall / drgn | CPU / drgn | target | "
           "CPU | wall |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, cases, why in per_sample:
        if why:
            out.append(f"| {name} | — | {why} | | | | | | | |")
            continue
        for case in cases:
            cells = []
            for tool in TOOLS:
                res = case.results.get(tool)
                cells.append("—" if res is None or not res.ok else
                             f"{fmt_s(res.wall())} ({fmt_s(res.cpu())})")
            t, d = case.results.get("crashtui"), case.results.get("drgn")
            tw, dw = (r.wall() if r else None for r in (t, d))
            tc, dc = (r.cpu() if r else None for r in (t, d))
            label, limit = limits.get(case.key, (case.key, None))
            if limit is None:
                verdicts = ["—", "—", "—"]
            else:
                verdicts = [f"≤ {limit}x drgn"] + [
                    "n/a" if a is None or b is None else ("MET" if a <= limit * b else "NOT MET")
                    for a, b in ((tc, dc), (tw, dw))]
            out.append(f"| {name} | {label} | {cells[0]} | {cells[2]} | {cells[1]} | "
                       f"{fmt_ratio(tw, dw)} | {fmt_ratio(tc, dc)} | {' | '.join(verdicts)} |")
    out.append("")
    return out


KMEM_RAM = ("kmem -i", "kmem -i=shared", "crash", "drgn")
TOTAL_MEM = re.compile(r"^\s*TOTAL MEM\s+(\d+)\s", re.M)


def kmem_ram_rows(env: Env, pairs: list[tuple[Path, Path]], runs: int,
                  log: Callable[[str], None]) -> list[dict]:
    """`kmem -i` as a whole command on each dump (guests with less and more RAM): crashtui's
    default (no struct page read) and `=shared` (the scan), crash 8.0.6's (it scans), drgn's
    counters; medians of `runs` rounds in rotating order after an untimed warm-up."""
    rows = []
    for dump, vmlinux in pairs:
        tui_env = env.crashtui_env(env.work / "cache-warm")
        base = [env.python, "-m", "crashtui.cli", str(dump), str(vmlinux)]
        argvs: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "kmem -i": ([*base, "-c", "kmem -i"], tui_env),
            "kmem -i=shared": ([*base, "-c", "kmem -i=shared"], tui_env)}
        if env.crash is not None:
            argvs["crash"] = (env.crash_argv(["kmem -i"], dump, vmlinux), None)
        if env.drgn_version is not None:
            argvs["drgn"] = (env.drgn_argv("kmem", dump, vmlinux), None)
        probe = {key: run_once(*argv) for key, argv in argvs.items()}  # untimed warm-up
        m = TOTAL_MEM.search(probe["kmem -i"].out)
        gib = int(m.group(1)) * 4096 / 2**30 if m else None
        samples: dict[str, list[Sample]] = {key: [] for key in argvs if probe[key].rc == 0}
        keys = list(samples)
        for r in range(runs):
            for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                samples[key].append(run_once(*argvs[key]))
        res = {key: Result(key, ss) for key, ss in samples.items()}
        rows.append({"dump": dump, "gib": gib, "results": res,
                     "failed": {k: (p.err or p.out).strip()[-200:] for k, p in probe.items()
                                if p.rc != 0}})
        log(f"kmem-ram {dump.name}: " + ", ".join(
            f"{k} {fmt_s(r.wall())}" for k, r in res.items()))
    return rows


def kmem_ram_table(rows: list[dict]) -> list[str]:
    """Lines of the kmem -i-with-RAM table: each tool's wall (CPU) per dump, and the cost of
    each GiB of RAM beyond the first dump's (the slope between them)."""
    out = ["### kmem-ram: `kmem -i` as a command, by the guest's RAM",
           "(whole process, wall median (CPU median); per GiB = (this dump - the first) / "
           "(its RAM - the first's): what each more GiB of RAM costs)",
           "| dump | RAM | crashtui `kmem -i` | crashtui `kmem -i=shared` | crash 8.0.6 "
           "`kmem -i` | drgn counters | per GiB: `kmem -i` | per GiB: `=shared` | per GiB: "
           "crash |", "|---|---|---|---|---|---|---|---|---|"]
    first = rows[0] if rows else None
    for r in rows:
        res = r["results"]
        cells = [f"{fmt_s(res[k].wall())} ({fmt_s(res[k].cpu())})" if k in res else
                 ("failed" if k in r["failed"] else "—") for k in KMEM_RAM]
        slopes = [fmt_ms(ram_slope(first, r, k)) for k in ("kmem -i", "kmem -i=shared", "crash")]
        gib = "—" if r["gib"] is None else f"{r['gib']:.2f} GiB"
        out.append(f"| {r['dump'].parent.name}/{r['dump'].name} | {gib} | {' | '.join(cells)} "
                   f"| {' | '.join(slopes)} |")
    out.append("")
    return out


def ram_slope(first: dict | None, row: dict, key: str) -> float | None:
    """Seconds per GiB of RAM between the first dump's `key` wall time and this one's."""
    if first is None or row is first or row["gib"] is None or first["gib"] is None:
        return None
    a, b = first["results"].get(key), row["results"].get(key)
    if a is None or b is None or a.wall() is None or b.wall() is None:
        return None
    return (b.wall() - a.wall()) / (row["gib"] - first["gib"]) if row["gib"] != first["gib"] \
        else None


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1000:.1f} ms"


def kmem_scan_rows(env: Env, pairs: list[tuple[Path, Path]], runs: int) -> list[dict]:
    """kmem -i's mem_map scan (benchmarks/kmem_scan.py) on each dump: CPU ms per GiB."""
    sys.path.insert(0, str(Path(__file__).parent))
    import kmem_scan

    rows = []
    for dump, vmlinux in pairs:
        try:
            rs = [kmem_scan.run(str(dump), str(vmlinux), "new", env.python)
                  for _ in range(runs)]
        except subprocess.CalledProcessError as exc:
            rows.append({"dump": dump, "why": (exc.stderr or "")[-200:]})
            continue
        sm = kmem_scan.summary(rs)
        rows.append({"dump": dump, "gib": sm["gib"], "cpu": sm["cpu"], "wall": sm["wall"],
                     "per_gib": sm["cpu_gib"], "wall_gib": sm["wall_gib"],
                     "format": sm["format"], "codec": sm["codec"], "threads": sm["threads"]})
    return rows


def kmem_scan_table(rows: list[dict]) -> list[str]:
    """Lines of the kmem -i scan table (per GiB of guest RAM, projected to 1 TiB)."""
    out = ["### kmem-scan: `kmem -i=shared`'s struct page scan (SHARED), in-process",
           "(_Kmem.shared_pages alone, fresh process per run, medians; CPU counts every "
           "decoder thread)",
           "| dump | format | codec | guest RAM (totalram) | threads | CPU | wall "
           "| CPU per GiB | wall per GiB | 1 TiB: CPU | 1 TiB: wall |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"{r['dump'].parent.name}/{r['dump'].name}"
        if "why" in r:
            out.append(f"| {name} | failed: {r['why']} | | | | | | | | | |")
            continue
        per, wall = r["per_gib"] or 0, r["wall_gib"] or 0
        out.append(f"| {name} | {r['format']} | {r['codec']} | {r['gib']:.2f} GiB | "
                   f"{r['threads']} | {fmt_s(r['cpu'])} | {fmt_s(r['wall'])} | "
                   f"{per * 1000:.1f} ms | {wall * 1000:.1f} ms | {fmt_s(per * 1024)} | "
                   f"{fmt_s(wall * 1024)} |")
    out.append("")
    return out


def issue21_lines(cases: list[Case], app: dict[str, Result], scan: list[dict],
                  ram: list[dict]) -> list[str]:
    """Issue 21's targets, each met or not, from this run's figures."""
    by = {c.key: c for c in cases}

    def res(key: str, tool: str) -> Result | None:
        case = by.get(key)
        return case.results.get(tool) if case else None

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "NOT MET")

    def ratio_line(label: str, key: str, limit: float, other_key: str | None = None) -> str:
        t, d, c = res(key, "crashtui"), res(other_key or key, "drgn"), res(key, "crash")
        tw, dw, cw = (r.wall() if r else None for r in (t, d, c))
        tc, dc = (r.cpu() if r else None for r in (t, d))
        return (f"- {label}: {fmt_s(tw)} vs drgn {fmt_s(dw)} (wall ratio {fmt_ratio(tw, dw)}, "
                f"CPU {fmt_s(tc)} vs {fmt_s(dc)}: {fmt_ratio(tc, dc)}; vs crash {fmt_s(cw)}: "
                f"{fmt_ratio(tw, cw)}), target at most {limit}x drgn: "
                f"{verdict(None if tw is None or dw is None else tw <= limit * dw)}")

    out = ["", "## Targets (issue 21)",
           ratio_line("`-c sys -c bt`", "sys+bt-only", 0.8),
           ratio_line("full report", "report", 1.0)]
    for key, limit in (("app", 0.5), ("app-cold", 1.0)):
        a = app.get(key)
        aw = a.wall() if a else None
        out.append(f"- app first screen, {key}: {fmt_s(aw)}, target {limit} s: "
                   f"{verdict(None if aw is None else aw <= limit)}")
    for r in ram[1:]:
        slope = ram_slope(ram[0], r, "kmem -i")
        if slope is not None:
            out.append(f"- `kmem -i` from {ram[0]['gib']:.2f} to {r['gib']:.2f} GiB "
                       f"({r['dump'].parent.name}): {fmt_ms(slope)} per GiB more, target well "
                       f"under 10 ms: {verdict(slope * 1000 < 10)}")
    for r in scan:
        if "per_gib" in r and r["per_gib"] is not None:
            out.append(f"- `kmem -i=shared`'s struct page scan on {r['dump'].parent.name} "
                       f"({r['codec']}, {r['gib']:.2f} GiB): {r['per_gib'] * 1000:.1f} ms CPU, "
                       f"{r['wall_gib'] * 1000:.1f} ms wall per GiB, target well under 10: "
                       f"CPU {verdict(r['per_gib'] * 1000 < 10)}, "
                       f"wall {verdict(r['wall_gib'] * 1000 < 10)}")
    return out


def scaling_table(points: list[ScalePoint]) -> list[str]:
    """Lines of the time-vs-dump-size table."""
    out = ["### scaling: `sys` on ELF vmcores of growing guests (sparse, generated)",
           "(the sample's 1 GiB guest plus PT_LOADs of zero-filled sparse file data up to the "
           "guest size; wall median (CPU median))",
           "| guest RAM | layout | PT_LOADs | file size | crashtui | crash | drgn | "
           "crashtui RSS |", "|---|---|---|---|---|---|---|---|"]
    for pt in points:
        cells = []
        for tool in TOOLS:
            res = pt.results.get(tool)
            cells.append("—" if res is None else (
                f"{fmt_s(res.wall())} ({fmt_s(res.cpu())})" if res.ok
                else f"failed: {res.why[:60]}"))
        rss = pt.results.get("crashtui")
        out.append(f"| {pt.guest_gib} GiB | {pt.layout} | {pt.phnum} | "
                   f"{pt.path.stat().st_size / GiB:.2f} GiB | {' | '.join(cells)} | "
                   f"{fmt_mb(rss.rss_mb() if rss else None)} |")
    out.append("")
    return out


def target_lines(cases: list[Case], app: dict[str, Result]) -> list[str]:
    """Issue 7's targets, each met or not, from this run's figures."""
    by = {c.key: c for c in cases}
    out = ["## Targets (issue 7)"]

    def res(key: str, tool: str) -> Result | None:
        case = by.get(key)
        return case.results.get(tool) if case else None

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "NOT MET")

    tui = res("sys+bt", "crashtui")
    drgn_bt = res("bt", "drgn")
    crash_sb = res("sys+bt", "crash")
    tw = tui.wall() if tui else None
    dw = drgn_bt.wall() if drgn_bt else None
    cw = crash_sb.wall() if crash_sb else None
    tc = tui.cpu() if tui else None
    dc = drgn_bt.cpu() if drgn_bt else None
    out.append(f"- `-c sys -c bt` ({fmt_s(tw)}) no slower than drgn's crashed-thread stack "
               f"trace ({fmt_s(dw)}): {verdict(None if tw is None or dw is None else tw <= dw)}"
               f" (CPU time {fmt_s(tc)} vs {fmt_s(dc)})")
    out.append(f"- `-c sys -c bt` at most 1/10 of crash's sys + bt ({fmt_s(cw)}; "
               f"ratio {fmt_ratio(tw, cw)}): "
               f"{verdict(None if tw is None or cw is None else tw <= cw / 10)}")
    tr = tui.rss_mb() if tui else None
    dr = drgn_bt.rss_mb() if drgn_bt else None
    out.append(f"- peak RSS of `-c sys -c bt` ({fmt_mb(tr)}) at most half of drgn's "
               f"({fmt_mb(dr)}): {verdict(None if tr is None or dr is None else tr <= dr / 2)}")
    for key, label in (("app", "warm"), ("app-cold", "cold: page cache dropped, no crashtui cache")):
        a = app.get(key)
        aw = a.wall() if a else None
        out.append(f"- app shows summary and backtrace within 1 s, {label} ({fmt_s(aw)}"
                   f"{'; ' + a.why if a and a.why else ''}): "
                   f"{verdict(None if aw is None else aw <= 1)}")
    rep = res("report", "crashtui")
    rw = rep.wall() if rep else None
    why = f"; {rep.why}" if rep and rep.why else ""
    out.append(f"- full report under 1 s warm ({fmt_s(rw)}{why}): "
               f"{verdict(None if rw is None else rw < 1)}")
    return out


if __name__ == "__main__":
    sys.exit(main())
