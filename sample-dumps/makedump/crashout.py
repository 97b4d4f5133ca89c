"""record-crash-output: what the reference tool `crash` prints for a make-dump dump.

    sample-dumps/record-crash-output sample-dumps/6.12-sysrq

Reads the dump directory's MANIFEST, finds the debug vmlinux in the tests' cache
(~/.cache/crashtui-tests/vmlinux/<build-id>/, downloading the -dbg package on first use) and
runs crash 8.0.6 (Debian trixie's; bookworm's 8.0.2 miscounts the tasks of these kernels).
Trixie's crash needs glibc 2.38 and libstdc++ 14, so it is unpacked with trixie's libraries
into ~/.cache/crashtui-makedump/crash-<version>/ and started through trixie's ld.so; nothing
on the host is upgraded. Output goes to <dump dir>/crash/*.txt; the paths of this machine
are written $LAB (the vmlinux cache directory).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import debian
from .util import MakeDumpError, cache_root, log, set_prog, sha256_file, tests_cache_root

# crash's Depends in trixie (binutils aside), as packages to unpack next to it.
CRASH_LIBS = ("libc6", "libgcc-s1", "liblzo2-2", "libncursesw6", "libsnappy1v5",
              "libstdc++6", "libtinfo6", "libzstd1")
# (output file, crash command)
COMMANDS = (("sys.txt", "sys"), ("bt.txt", "bt"), ("bt-a.txt", "bt -a"), ("log.txt", "log"),
            ("ps.txt", "ps"), ("kmem-i.txt", "kmem -i"), ("mod.txt", "mod"),
            ("foreach-bt.txt", "foreach bt"))


# Hang scenarios (hung task, deadlock, soft lockup, OOM) also get these.
HANG_COMMANDS = (("foreach-UN-bt.txt", "foreach UN bt"), ("ps-m.txt", "ps -m"),
                 ("runq.txt", "runq"))
HANG_MARKS = ("hung_task_panic", "softlockup_panic", "panic_on_oom")


def hang_commands(m: dict[str, str], dmesg: str) -> list[tuple[str, str]]:
    """HANG_COMMANDS for a hang scenario, and `struct mutex` of each lock the deadlock
    module printed ("deadlock: lock_a=<addr> lock_b=<addr>")."""
    if not any(mark in m.get("scenario", "") for mark in HANG_MARKS):
        return []
    out = list(HANG_COMMANDS)
    found = re.search(r"deadlock: ((?:\w+=[0-9a-f]+ ?)+)$", dmesg, re.M)
    for name, addr in re.findall(r"(\w+)=([0-9a-f]+)", found.group(1) if found else ""):
        out.append((f"struct-mutex-{name.replace('_', '-')}.txt", f"struct mutex {addr}"))
    return out


def read_manifest(dump_dir: Path) -> dict[str, str]:
    path = dump_dir / "MANIFEST"
    if not path.exists():
        raise MakeDumpError(f"{path}: no MANIFEST")
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def fetch_vmlinux(m: dict[str, str]) -> Path:
    """The dump's debug vmlinux, from the tests' cache or its -dbg package (checked by sha256)."""
    member = m["vmlinux_path_in_package"].lstrip("./")
    target = tests_cache_root() / "vmlinux" / m["vmlinux_build_id"] / Path(member).name
    if target.exists():
        return target
    package, version = m["vmlinux_package"].split()[:2]
    log(f"downloading {package} {version} for its vmlinux")
    deb = debian.download(package, version)
    with tempfile.TemporaryDirectory(dir=target.parent.parent if target.parent.parent.exists()
                                     else None) as tmp:
        extracted = debian.extract_member(deb, member, Path(tmp))
        if sha256_file(extracted) != m["vmlinux_sha256"]:
            raise MakeDumpError(f"{package} {version}: vmlinux sha256 differs from the MANIFEST")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(extracted), target)
    return target


def crash_command(suite: str = "trixie") -> list[str]:
    """The command that starts `suite`'s crash with that suite's libraries."""
    if debian.ensure_suite_sources(suite):
        debian.apt_update()
    crash_deb, version = debian.download_from_suite("crash", suite)
    root = cache_root() / f"crash-{debian.upstream_version(version)}"
    stamp = root / ".ready"
    if not stamp.exists():
        shutil.rmtree(root, ignore_errors=True)
        debian.extract(crash_deb, root)
        # crash's library Depends in that suite (sid's 9.x adds libgmp10, libmpfr6)
        depends = {alts[0][0] for alts in debian.parse_depends(
            debian.deb_field(crash_deb, "Depends")) if alts[0][0].startswith("lib")}
        for lib in sorted(depends | set(CRASH_LIBS)):
            deb, _ = debian.download_from_suite(lib, suite)
            debian.extract(deb, root)
        stamp.touch()
    libdirs = [root / "usr/lib/x86_64-linux-gnu", root / "lib/x86_64-linux-gnu"]
    ldso = next(p / "ld-linux-x86-64.so.2" for p in libdirs + [root / "lib64"]
                if (p / "ld-linux-x86-64.so.2").exists())
    cmd = [str(ldso), "--library-path", ":".join(str(d) for d in libdirs if d.exists()),
           str(root / "usr/bin/crash")]
    check = subprocess.run(cmd + ["--version"], capture_output=True, text=True)
    if check.returncode != 0 or "crash" not in check.stdout:
        raise MakeDumpError(f"{' '.join(cmd)} --version failed:\n{check.stdout}{check.stderr}")
    return cmd


def run_crash(crash: list[str], vmlinux: Path, dump_dir: Path, dump: str,
              commands: list[str]) -> str:
    """Run crash in batch mode (from the dump's directory) and return its output."""
    with tempfile.NamedTemporaryFile("w", suffix=".crash", delete=False) as f:
        f.write("\n".join(commands + ["quit"]) + "\n")
        script = f.name
    try:
        r = subprocess.run(crash + ["-s", "-i", script, str(vmlinux), dump], cwd=dump_dir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env={**os.environ, "PAGER": "cat", "CRASHPAGER": "cat"})
    finally:
        os.unlink(script)
    if r.returncode != 0 and not r.stdout:
        raise MakeDumpError(f"crash failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def split_outputs(text: str, marker: str) -> list[str]:
    return [part.strip("\n") + "\n" for part in text.split(marker + "\n")]


def panic_rip(bt: str) -> str | None:
    """The address to `sym`: the exception RIP if bt shows one (that crash could name), else
    the frame panic() was called from."""
    m = re.search(r"\[exception RIP: (?!no symbolic reference)[^\]]+\]\s*\n\s*RIP: ([0-9a-f]+)",
                  bt)
    if m:
        return m.group(1)
    frames = re.findall(r"#\d+ \[[0-9a-f]+\] (\S+) at ([0-9a-f]+)", bt)
    for i, (name, _addr) in enumerate(frames):
        if name in ("panic", "vpanic", "nmi_panic") and i + 1 < len(frames):
            nxt = frames[i + 1]
            if nxt[0] not in ("panic", "vpanic"):
                return nxt[1]
    return None


def record(dump_dir: Path, vmlinux: Path | None, crash: list[str] | None,
           dump: Path | None = None) -> Path:
    """Write crash's outputs to dump_dir/crash/ (dump: a file to open instead of MANIFEST's)."""
    m = read_manifest(dump_dir)
    if dump is not None:
        m["dump"] = str(dump)
    vmlinux = vmlinux or fetch_vmlinux(m)
    crash = crash or crash_command()
    out_dir = dump_dir / "crash"
    out_dir.mkdir(exist_ok=True)
    marker = "==== record-crash-output ===="
    dmesg = (dump_dir / m["dmesg"]).read_text(errors="replace") if m.get("dmesg") else ""
    commands = list(COMMANDS) + hang_commands(m, dmesg)
    cmds: list[str] = []
    for _name, c in commands:
        cmds += [c, f"!echo '{marker}'"]
    log(f"running crash on {dump_dir / m['dump']}")
    outputs = split_outputs(run_crash(crash, vmlinux, dump_dir, m["dump"], cmds), marker)
    if len(outputs) < len(commands):
        raise MakeDumpError(f"crash printed {len(outputs)} outputs for {len(commands)} commands")
    results = dict(zip((n for n, _ in commands), outputs, strict=False))
    rip = panic_rip(results["bt.txt"])
    if rip:
        results["sym-rip.txt"] = run_crash(crash, vmlinux, dump_dir, m["dump"],
                                           [f"sym {rip}"]).strip("\n") + "\n"
    # A module scenario's dump dir holds <module>/<module>.ko: the same after `mod -s`.
    for ko in sorted(dump_dir.glob("*/*.ko")):
        name = ko.stem.replace("-", "_")
        rel = str(ko.relative_to(dump_dir))
        after = [f"mod -s {name} {rel}", "bt", "bt -l"] + ([f"sym {rip}"] if rip else [])
        cmds = []
        for c in after:
            cmds += [c, f"!echo '{marker}'"]
        parts = split_outputs(run_crash(crash, vmlinux, dump_dir, m["dump"], cmds), marker)
        for fname, text in zip(("mod-s.txt", "bt-after-mod-s.txt", "bt-l-after-mod-s.txt",
                                "sym-rip-after-mod-s.txt"), parts, strict=False):
            results[fname] = text
    lab = str(vmlinux.parent.parent.parent)   # .../crashtui-tests
    for name, text in results.items():
        (out_dir / name).write_text(text.replace(lab, "$LAB"))
    log(f"wrote {', '.join(sorted(results))} to {out_dir}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    set_prog("record-crash-output")
    p = argparse.ArgumentParser(prog="record-crash-output", description=__doc__.split("\n\n")[0])
    p.add_argument("dump_dir", type=Path, help="a directory with MANIFEST and the dump")
    p.add_argument("--vmlinux", type=Path, help="the debug vmlinux (default: fetched by build-id)")
    p.add_argument("--crash", help="a crash binary to use instead of trixie's 8.0.6")
    args = p.parse_args(argv)
    try:
        record(args.dump_dir.resolve(), args.vmlinux, [args.crash] if args.crash else None)
    except MakeDumpError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
