"""Initramfs images: a newc cpio writer and the two /init programs (first and capture kernel)."""

from __future__ import annotations

import gzip
import lzma
import re
import stat
import subprocess
from pathlib import Path

from .util import MakeDumpError


class Cpio:
    """Writes a newc ("070701") cpio archive in memory: files, dirs, symlinks, device nodes."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1
        self._names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               ) -> None:
        name = name.lstrip("/")
        if name in self._names:
            return
        self._names.add(name)
        fields = [self._ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data),
                  0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self._ino += 1
        head = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
        head += b"\0" * (-len(head) % 4)
        self._chunks.append(head + data + b"\0" * (-len(data) % 4))

    def parents(self, name: str) -> None:
        parent = name.strip("/").rpartition("/")[0]
        if parent:
            self.dir(parent)

    def dir(self, name: str, mode: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.parents(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self.parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.parents(name)
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def host_file(self, name: str, src: Path, mode: int | None = None) -> None:
        """Copy a host file (following symlinks) to `name`; decompresses .ko.xz to .ko."""
        data = src.read_bytes()
        if src.name.endswith(".ko.xz"):
            data = lzma.decompress(data)
            name = name[: -len(".xz")]
        elif src.name.endswith(".ko.zst"):
            data = subprocess.run(["zstd", "-dc", str(src)], check=True,
                                  capture_output=True).stdout
            name = name[: -len(".zst")]
        self.file(name, data, mode if mode is not None else (src.stat().st_mode & 0o777))

    def binary(self, name: str, src: Path) -> None:
        """Copy an executable and every library `ldd` lists for it (at the same paths)."""
        self.host_file(name, src, 0o755)
        r = subprocess.run(["ldd", str(src)], capture_output=True, text=True)
        if r.returncode != 0 or "not found" in r.stdout:
            raise MakeDumpError(f"ldd {src} failed:\n{r.stdout}{r.stderr}")
        for line in r.stdout.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                lib = Path(m.group(1))
                self.host_file(str(lib), lib.resolve(), 0o755)

    def image(self) -> bytes:
        return b"".join(self._chunks) + _trailer()

    def gzip(self) -> bytes:
        return gzip.compress(self.image(), compresslevel=6, mtime=0)


def _trailer() -> bytes:
    c = Cpio()
    c._entry("TRAILER!!!", 0)
    return b"".join(c._chunks)


def base_image(busybox: Path, init_script: str, config: str, modules: list[Path],
               module_root: Path) -> Cpio:
    """What both kernels need: busybox, /init, its config, the virtio modules."""
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "mnt", "etc",
              "boot", "lib/modules/extra"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.host_file("bin/busybox", busybox, 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", init_script.encode(), 0o755)
    c.file("etc/makedump.conf", config.encode())
    order = []
    for m in modules:
        rel = str(m.relative_to(module_root))
        c.host_file(rel, m)
        order.append("/" + re.sub(r"\.(xz|zst)$", "", rel))
    c.file("etc/modules.order", ("\n".join(order) + "\n").encode())
    return c


INIT = r"""#!/bin/sh
# /init of make-dump's guests (crashtui sample-dumps/makedump/initramfs.py).
# One script for both kernels: with /proc/vmcore this is the kdump capture kernel.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
. /etc/makedump.conf

say() { echo "MAKEDUMP: $*"; }
die() { say "FAILED: $*"; sync; poweroff -f; sleep 30; }
load_modules() {
    for m in $(cat /etc/modules.order); do insmod "$m" || say "insmod $m failed"; done
}
wait_disk() {
    i=0
    while [ ! -b /dev/vda ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
    [ -b /dev/vda ] || die "no /dev/vda"
}

capture() {
    say "capture kernel up"
    load_modules
    wait_disk
    mount -t ext4 /dev/vda /mnt || die "mount /dev/vda"
    ts=$(date -u +%Y%m%d%H%M)
    out=/mnt/crash
    mkdir -p $out
    makedumpfile -v > $out/makedumpfile.version 2>&1
    say "makedumpfile $MAKEDUMPFILE_OPTS /proc/vmcore dump.$ts"
    makedumpfile --message-level 23 $MAKEDUMPFILE_OPTS /proc/vmcore $out/dump.$ts
    echo $? > $out/dump.rc
    say "makedumpfile --dump-dmesg /proc/vmcore dmesg.$ts"
    makedumpfile --dump-dmesg /proc/vmcore $out/dmesg.$ts
    echo $? > $out/dmesg.rc
    if [ "$ELF" = 1 ]; then
        say "makedumpfile -E -d 31 /proc/vmcore vmcore-d31.elf.$ts"
        makedumpfile -E -d 31 /proc/vmcore $out/vmcore-d31.elf.$ts
        echo $? > $out/elf.rc
    fi
    sync
    umount /mnt
    say "capture done"
    poweroff -f
    sleep 30
}

first() {
    say "first kernel up, scenario $SCENARIO"
    load_modules
    append=""
    for w in $(cat /proc/cmdline); do
        case "$w" in crashkernel=*|crashlab.*) ;; *) append="$append $w" ;; esac
    done
    append="${append# } reset_devices nr_cpus=1 irqpoll nousb"
    say "kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append=\"$append\""
    kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append="$append" \
        || kexec -s -p /boot/vmlinuz --initrd=/boot/capture.img --append="$append" \
        || die "kexec -p"
    [ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || die "capture kernel not loaded"
    echo 1 > /proc/sys/kernel/panic_on_oops
    say "capture kernel loaded; kernel.panic_on_oops=1; starting background load"
    (while :; do :; done) &
    dd if=/dev/zero of=/dev/null 2>/dev/null &
    sleep 3600 &
    sleep $SETTLE
    say "crashing: $SCENARIO"
    scenario
    sleep $CRASH_TIMEOUT
    die "scenario $SCENARIO did not crash the kernel in time"
}

if [ -e /proc/vmcore ]; then capture; else first; fi
"""


def config_text(scenario_name: str, scenario_shell: str, makedumpfile_opts: str, elf: bool,
                settle: int = 5, crash_timeout: int = 150) -> str:
    return (f"SCENARIO='{scenario_name}'\n"
            f"MAKEDUMPFILE_OPTS='{makedumpfile_opts}'\n"
            f"ELF={1 if elf else 0}\n"
            f"SETTLE={settle}\n"
            f"CRASH_TIMEOUT={crash_timeout}\n"
            f"scenario() {{\n{scenario_shell}\n}}\n")
