"""QEMU: the dump disk, accelerator choice, running the guest, copying the dump out."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from pathlib import Path

from .util import MakeDumpError, log, run

QEMU = "qemu-system-x86_64"


def make_disk(path: Path, size_mib: int = 512) -> None:
    """A sparse ext4 image for the capture kernel to write the dump to."""
    path.unlink(missing_ok=True)
    with path.open("wb") as f:
        f.truncate(size_mib << 20)
    # orphan_file (e2fsprogs 1.47 default) is unknown to kernels before 5.15.
    r = run(["mkfs.ext4", "-q", "-F", "-L", "makedump", "-O", "^orphan_file", path],
            capture=True, check=False, quiet=True)
    if r.returncode != 0:
        run(["mkfs.ext4", "-q", "-F", "-L", "makedump", path], quiet=True)


def scratch_drive_args(work: Path, disks: tuple[tuple[str, int, str], ...]) -> list[str]:
    """Sparse raw images as extra virtio disks (serial = name), on PCI slots after the dump disk."""
    args: list[str] = []
    for i, (name, size_mib, opts) in enumerate(disks):
        img = work / f"scratch-{name}.img"
        img.unlink(missing_ok=True)
        with img.open("wb") as f:
            f.truncate(size_mib << 20)
        args += ["-drive", f"file={img},if=none,id={name},format=raw" + (f",{opts}" if opts else ""),
                 "-device", f"virtio-blk-pci,drive={name},serial={name},addr={0x10 + i:#x}"]
    return args


def kvm_usable() -> bool:
    """/dev/kvm can exist without working (no vmx/svm): then QEMU must use TCG."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError:
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M))


def accel_args(accel: str) -> tuple[list[str], str]:
    if accel == "auto":
        accel = "kvm" if kvm_usable() else "tcg"
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"], "KVM"
    return ["-accel", "tcg", "-cpu", "max,la57=off"], "TCG"


def qemu_version() -> str:
    out = run([QEMU, "--version"], capture=True, quiet=True).stdout
    m = re.search(r"version (\d+\.\d+)", out)
    return m.group(1) if m else "?"


def boot(vmlinuz: Path, initrd: Path, disk: Path, append: str, console_log: Path,
         accel: list[str], cpus: int, mem_mib: int, timeout: int, verbose: bool,
         extra: list[str] | None = None) -> float:
    """Boot the guest until it powers off; the console goes to console_log. Returns seconds."""
    cmd = [QEMU, "-machine", "q35", *accel, "-smp", str(cpus), "-m", str(mem_mib),
           "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
           "-rtc", "base=utc", "-device", "vmcoreinfo",
           "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", append,
           "-drive", f"file={disk},format=raw,if=virtio", *(extra or [])]
    log("$ " + " ".join(cmd))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    interesting = re.compile(rb"MAKEDUMP:|Kernel panic|BUG:|Oops|watchdog:|INFO: task|"
                             rb"kernel BUG at|invalid opcode|Starting crashdump kernel|qemu-system")
    try:
        with console_log.open("wb") as logf:
            while True:
                if time.monotonic() - start > timeout:
                    raise MakeDumpError(f"QEMU still running after {timeout} s; see {console_log}")
                if not sel.select(timeout=1):
                    if proc.poll() is not None:
                        break
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                logf.write(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if verbose or interesting.search(line):
                        elapsed = time.monotonic() - start
                        log(f"[{elapsed:5.1f}s] " + line.decode(errors="replace").rstrip())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    elapsed = time.monotonic() - start
    log(f"QEMU exited with status {proc.returncode} after {elapsed:.0f} s")
    return elapsed


def copy_out(disk: Path, dest: Path) -> Path:
    """Copy /crash off the ext4 image with debugfs (no loop mount needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["debugfs", "-R", f"rdump /crash {dest}", disk], capture=True, quiet=True)
    crash = dest / "crash"
    if not crash.is_dir():
        raise MakeDumpError(f"the capture kernel wrote nothing to {disk} (no /crash)")
    return crash
