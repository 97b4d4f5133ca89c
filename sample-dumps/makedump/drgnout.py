"""record-crash-drgn: what drgn's port of crash's commands prints for a make-dump dump.

    sample-dumps/record-crash-drgn sample-dumps/7.3-sysrq [--drgn /work/drgn-venv/bin/drgn]

crash 9.0.2 and 8.0.6 cannot open the 7.x dumps, so their reference outputs come from drgn
(PyPI `drgn`, in a venv of its own): `drgn -q -c DUMP -s VMLINUX [-s MODULE.ko] SCRIPT`, the
script running each command through `drgn.commands.run_command(prog, "crash <cmd>")` and
writing <dump dir>/drgn/<name>.txt. The vmlinux cache directory is written $LAB.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .crashout import fetch_vmlinux, read_manifest
from .util import MakeDumpError, log, set_prog

# (output file, crash command as drgn's `crash` command runs it)
COMMANDS = (("sys.txt", "sys"), ("bt.txt", "bt"), ("bt-a.txt", "bt -a"), ("kmem-i.txt", "kmem -i"),
            ("ps.txt", "ps"), ("mod.txt", "mod"), ("log.txt", "log"))

# Run inside drgn (prog is its global): argv = OUT_DIR then name=command pairs.
SCRIPT = r'''
import contextlib, io, sys, traceback
from drgn.commands import run_command
out = sys.argv[1]
for pair in sys.argv[2:]:
    name, command = pair.split("=", 1)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            run_command(prog, "crash " + command)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            print(f"drgn: crash {command}: {type(exc).__name__}: {exc}")
    with open(f"{out}/{name}", "w") as f:
        f.write(buf.getvalue())
# D-state tasks: drgn's own unwinder, and the lock a task waits on from its wait frame's DWARF
# variable (`lock` of __mutex_lock*, `x` of __wait_for_common). drgn.helpers.linux has no lock
# helpers: the owner is read here by hand, struct mutex's owner with MUTEX_FLAGS (0x7) masked.
from drgn import Object
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char
blocked = [t for t in for_each_task(prog) if task_state_to_char(t) == "D"]
if blocked:
    lines = []
    for t in sorted(blocked, key=lambda t: t.pid.value_()):
        lines.append(f"PID {t.pid.value_()} TASK {t.value_():#x} COMMAND {t.comm.string_().decode()!r}")
        trace = prog.stack_trace(t)
        lines += ["  " + ln for ln in str(trace).splitlines()]
        for frame in trace:
            name, lock = frame.name or "", None
            for var in (("lock",) if "mutex_lock" in name else ("x",) if "wait_for_common" in name else ()):
                with contextlib.suppress(Exception):
                    lock = frame[var].read_()
            if lock is None or lock.absent_:
                continue
            lines.append(f"  waits in {name}: {var} = {lock.value_():#x} ({lock.type_})")
            if "mutex" in name:
                raw = lock.owner.counter.value_() & 0xFFFFFFFFFFFFFFFF
                owner = raw & ~0x7
                who = Object(prog, "struct task_struct *", owner) if owner else None
                lines.append(f"  mutex owner = {raw:#x} & ~0x7 = {owner:#x}" + (
                    f" PID {who.pid.value_()} COMMAND {who.comm.string_().decode()!r}"
                    if who is not None else ""))
            break
    with open(f"{out}/blocked.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
if prog.platform.arch.name == "AARCH64":   # no crash for arm64 on amd64 hosts: drgn's own trace
    thread = prog.crashed_thread()
    with open(f"{out}/crashed-thread.txt", "w") as f:
        f.write(f"crashed thread: tid {thread.tid} {thread.name}\n{thread.stack_trace()}\n")
'''


def drgn_version(drgn: str) -> str:
    r = subprocess.run([drgn, "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


def record(dump_dir: Path, drgn: str, vmlinux: Path | None = None) -> Path:
    m = read_manifest(dump_dir)
    vmlinux = vmlinux or fetch_vmlinux(m)
    out = dump_dir / "drgn"
    out.mkdir(exist_ok=True)
    kos = sorted(dump_dir.glob("*/*.ko"))
    script = out / ".record.py"
    script.write_text(SCRIPT)
    core = dump_dir / m["dump"]
    tmp_core = None
    if m.get("dump_elf"):
        # QEMU's kdump-zlib file has no architecture libkdumpfile knows: drgn reads the ELF
        # (for a kept /proc/vmcore, dump_elf is the dump itself: drgn cannot read xz)
        tmp_core = Path(tempfile.mkdtemp()) / "vmcore.elf"
        log(f"decompressing {m['dump_elf']} for drgn")
        with lzma.open(dump_dir / m["dump_elf"]) as fin, tmp_core.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        core = tmp_core
    cmd = [drgn, "-q", "-c", str(core), "-s", str(vmlinux)]
    for ko in kos:
        cmd += ["-s", str(ko)]
    cmd += [str(script), str(out)] + [f"{name}={c}" for name, c in COMMANDS]
    log(f"running drgn on {dump_dir / m['dump']}")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=dump_dir, timeout=1800,
                           env={**os.environ, "PAGER": "cat"})
    finally:
        script.unlink()
        if tmp_core is not None:
            shutil.rmtree(tmp_core.parent)
    if r.returncode != 0:
        raise MakeDumpError(f"drgn failed ({r.returncode}):\n{r.stderr[-3000:]}")
    lab = str(vmlinux.parent.parent.parent)
    for name, _ in COMMANDS:
        f = out / name
        text = f.read_text().replace(lab, "$LAB").replace(str(dump_dir) + "/", "")
        if tmp_core is not None:
            text = text.replace(str(tmp_core), m["dump_elf"])
        f.write_text(text)
    version = " ".join(drgn_version(drgn).split())
    shown = " ".join(["drgn", "-q", "-c", m["dump"] if tmp_core is None else
                      f"<{m['dump_elf']} decompressed>", "-s", str(vmlinux).replace(lab, "$LAB")]
                     + [f"-s {ko.relative_to(dump_dir)}" for ko in kos])
    (out / "README.md").write_text(
        f"# drgn's port of crash's commands on {dump_dir.name}\n\n"
        + ("crash 9.0.2 (sid) and 8.0.6 (trixie) cannot open this 7.x dump" if
           m.get("arch", "amd64") == "amd64" else "Debian packages no crash for arm64 targets "
           "on amd64 hosts" + (" (the dump is /proc/vmcore itself, an ELF file kept "
                               "xz-compressed: drgn read it decompressed)"
                               if m.get("dump_elf") == m["dump"] else
                               " (and libkdumpfile, hence drgn, cannot open QEMU's kdump-zlib "
                               "file, so drgn read the ELF dump)"))
        + ", so these files are what drgn prints instead, recorded by "
        "`sample-dumps/record-crash-drgn "
        f"sample-dumps/{dump_dir.name}`.\n\n"
        f"drgn: `{version}` (PyPI `drgn`, in a venv of its own).\n\n"
        f"Each file is one command, run in one drgn session as `{shown} SCRIPT`, where the "
        "script calls `drgn.commands.run_command(prog, \"crash <command>\")` with stdout and "
        "stderr captured (`$LAB` is the vmlinux cache directory):\n\n"
        "| file | command |\n|---|---|\n"
        + "".join(f"| `{name}` | `crash {c}` |\n" for name, c in COMMANDS)
        + ("| `crashed-thread.txt` | `prog.crashed_thread().stack_trace()` (drgn's unwinder "
           "with the vmlinux's DWARF CFI) |\n" if (out / "crashed-thread.txt").exists() else "")
        + ("| `blocked.txt` | each D-state task: `prog.stack_trace(task)`, the lock its wait frame "
           "holds (DWARF `lock` of `__mutex_lock*`, `x` of `__wait_for_common`) and, for a "
           "mutex, `owner.counter & ~0x7` read by hand (drgn.helpers.linux has no lock "
           "helpers) |\n" if (out / "blocked.txt").exists() else "")
        + "\nThe same by hand: `drgn -c DUMP -s VMLINUX -e 'from drgn.commands import "
        "run_command; run_command(prog, \"crash bt -a\")'`.\n"
        "Where drgn is wrong on this dump, `KNOWN-ERRORS.md` here says so with the proof.\n")
    log(f"wrote {', '.join(n for n, _ in COMMANDS)}, README.md to {out} ({version})")
    return out


def main(argv: list[str] | None = None) -> int:
    set_prog("record-crash-drgn")
    p = argparse.ArgumentParser(prog="record-crash-drgn", description=__doc__.split("\n\n")[0])
    p.add_argument("dump_dirs", type=Path, nargs="+")
    p.add_argument("--drgn", default="/work/drgn-venv/bin/drgn",
                   help="the drgn program (default: /work/drgn-venv/bin/drgn)")
    p.add_argument("--vmlinux", type=Path, help="the debug vmlinux (default: fetched by build-id)")
    args = p.parse_args(argv)
    try:
        for d in args.dump_dirs:
            record(d.resolve(), args.drgn, args.vmlinux)
    except MakeDumpError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
