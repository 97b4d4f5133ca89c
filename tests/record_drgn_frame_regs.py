#!/usr/bin/env python3
"""Record drgn 0.3.0's registers per frame (`StackFrame.registers()`) for the crashed thread
and a few named threads of sample dumps: tests/crash_outputs/<dump>/drgn-frame-regs.json.

Per frame: function, pc, sp, inline/interrupted, and every register drgn knows there.
tests/test_frame_registers.py compares crashtui's Frame.registers with it (frames matched by
pc), so the test runs without drgn.

Usage: tests/record_drgn_frame_regs.py [DRGN] DUMP...   (DRGN defaults to
/work/drgn-venv/bin/drgn; the sample's .ko files are given to drgn with -s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recording import OUTPUTS, Sample  # noqa: E402

COMMS = ("bug_kthread", "deadlock_ab", "deadlock_ba", "softlockup_spin", "insmod", "kthreadd",
         "rcu_sched", "rcu_preempt")

_SCRIPT = r"""
import json, sys
from drgn.helpers.linux.pid import for_each_task
def frames_of(trace):
    out = []
    for i, f in enumerate(trace):
        fr = {"index": i, "function": f.name, "pc": f.pc, "inline": f.is_inline,
              "interrupted": f.interrupted}
        try:
            fr["sp"] = f.sp
        except Exception:
            pass
        try:
            fr["registers"] = {k: v for k, v in f.registers().items()}
        except Exception as e:
            fr["error"] = f"{type(e).__name__}: {e}"
        out.append(fr)
    return out
threads = []
seen = set()
try:
    t = prog.crashed_thread()
    threads.append({"tid": t.tid, "why": "crashed", "frames": frames_of(t.stack_trace())})
    seen.add(t.tid)
except Exception as e:
    threads.append({"why": "crashed", "error": f"{type(e).__name__}: {e}"})
comms = set(sys.argv[1].split(","))
for task in for_each_task(prog):
    comm = task.comm.string_().decode()
    pid = task.pid.value_()
    if comm in comms and pid not in seen:
        seen.add(pid)
        try:
            tr = prog.stack_trace(task)
            threads.append({"tid": pid, "why": comm, "frames": frames_of(tr)})
        except Exception as e:
            threads.append({"tid": pid, "why": comm, "error": f"{type(e).__name__}: {e}"})
print(json.dumps({"threads": threads}, indent=1))
"""


def record(drgn: str, name: str) -> Path:
    s = Sample.get(name)
    args = [drgn, "-q", "-c", str(s.dump), "-s", str(s.vmlinux)]
    for ko in sorted(s.dir.glob("*/*.ko")):
        args += ["-s", str(ko)]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_SCRIPT)
    r = subprocess.run([*args, f.name, ",".join(COMMS)], capture_output=True, text=True,
                       check=True, timeout=1800)
    out = OUTPUTS / name / "drgn-frame-regs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json.loads(r.stdout), indent=1) + "\n")
    return out


def main() -> None:
    argv = sys.argv[1:]
    drgn = "/work/drgn-venv/bin/drgn"
    if argv and not (Path("sample-dumps") / argv[0]).exists() and "/" in argv[0]:
        drgn = argv.pop(0)
    for name in argv:
        print(record(drgn, name))


if __name__ == "__main__":
    main()
