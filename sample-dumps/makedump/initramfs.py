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

    def binary(self, name: str, src: Path, lib_root: Path | None = None) -> None:
        """Copy an executable and every library `ldd` lists for it (at the same paths).

        With lib_root (an unpacked set of another suite's libraries, for a binary that needs
        a newer glibc than the host's), the libraries come from there, resolved by its own
        ld.so, and go to /lib/x86_64-linux-gnu and /lib64 of the image.
        """
        self.host_file(name, src, 0o755)
        cmd = ["ldd", str(src)] if lib_root is None else ldso_command(lib_root) + ["--list",
                                                                                  str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or "not found" in r.stdout:
            raise MakeDumpError(f"ldd {src} failed:\n{r.stdout}{r.stderr}")
        for line in r.stdout.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if not m:
                continue
            lib = Path(m.group(1))
            if lib_root is None:
                self.host_file(str(lib), lib.resolve(), 0o755)
            elif not lib.resolve().is_relative_to(lib_root.resolve()):
                raise MakeDumpError(f"{src}: {lib} resolved outside {lib_root}")
            elif lib.name.startswith("ld-linux"):   # the program's interpreter (PT_INTERP)
                self.host_file(f"lib64/{lib.name}", lib.resolve(), 0o755)
            else:
                self.host_file(f"lib/x86_64-linux-gnu/{lib.name}", lib.resolve(), 0o755)

    def image(self) -> bytes:
        return b"".join(self._chunks) + _trailer()

    def gzip(self) -> bytes:
        return gzip.compress(self.image(), compresslevel=6, mtime=0)


def ldso_command(lib_root: Path) -> list[str]:
    """Start programs with the ld.so and libraries unpacked under lib_root."""
    libdirs = [d for d in (lib_root / "usr/lib/x86_64-linux-gnu", lib_root / "lib/x86_64-linux-gnu")
               if d.is_dir()]
    ldso = next((d / "ld-linux-x86-64.so.2" for d in libdirs
                 if (d / "ld-linux-x86-64.so.2").exists()), None)
    if ldso is None:
        raise MakeDumpError(f"no ld-linux-x86-64.so.2 under {lib_root}")
    return [str(ldso), "--library-path", ":".join(str(d) for d in libdirs)]


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
    # Linux 7.1 renamed page.compound_head (VMCOREINFO too) to compound_info; makedumpfile
    # up to 1.7.9 knows the old name only and then judges compound tail pages as pages of
    # their own, dropping in-use ones (slab). -i gives it the offset under the old name;
    # everything else still comes from the dump's own VMCOREINFO.
    ci=$(head -c 1048576 /proc/vmcore | grep -a -o 'OFFSET(page.compound_info)=[0-9]*' | head -n 1)
    if [ -n "$ci" ]; then
        printf 'OSRELEASE=%s\nPAGESIZE=4096\nOFFSET(page.compound_head)=%s\n' "$(uname -r)" \
            "${ci#*=}" > /tmp/vmcoreinfo.compound
        MAKEDUMPFILE_OPTS="$MAKEDUMPFILE_OPTS -i /tmp/vmcoreinfo.compound"
        CHECK_OPTS="-i /tmp/vmcoreinfo.compound"
        say "VMCOREINFO has $ci: makedumpfile gets it as OFFSET(page.compound_head) with -i"
    fi
    say "makedumpfile $MAKEDUMPFILE_OPTS /proc/vmcore dump.$ts"
    makedumpfile --message-level 23 $MAKEDUMPFILE_OPTS /proc/vmcore $out/dump.$ts
    echo $? > $out/dump.rc
    say "makedumpfile --dump-dmesg /proc/vmcore dmesg.$ts"
    makedumpfile --dump-dmesg /proc/vmcore $out/dmesg.$ts
    echo $? > $out/dmesg.rc
    if [ -n "$CHECK_LEVEL" ]; then
        say "makedumpfile -c -d $CHECK_LEVEL /proc/vmcore check-d$CHECK_LEVEL.$ts"
        makedumpfile --message-level 23 -c -d $CHECK_LEVEL $CHECK_OPTS /proc/vmcore \
            $out/check-d$CHECK_LEVEL.$ts
        echo $? > $out/check.rc
    fi
    if [ "$RAW_VMCORE" = 1 ] && [ "$(cat $out/dump.rc)" != 0 ]; then
        # makedumpfile refused the dump: keep /proc/vmcore itself (kexec-tools' ELF headers)
        say "gzip -1 -c /proc/vmcore > vmcore.$ts.gz"
        gzip -1 -c /proc/vmcore > $out/vmcore.$ts.gz
        echo $? > $out/raw.rc
    fi
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

doctor_tree() {
    # What `crashtui doctor --root` reads, copied from this (first) kernel with the capture
    # kernel loaded, onto the output disk the capture kernel writes the dump to.
    wait_disk
    mount -t ext4 /dev/vda /mnt || die "mount /dev/vda"
    t=/mnt/crash/doctor-tree
    mkdir -p $t
    for f in /proc/cmdline /proc/meminfo /proc/sys/kernel/osrelease /proc/sys/kernel/panic \
             /proc/sys/kernel/panic_on_oops /proc/sys/kernel/softlockup_panic \
             /proc/sys/kernel/hung_task_panic /proc/sys/kernel/hardlockup_panic \
             /proc/sys/kernel/panic_on_rcu_stall /proc/sys/kernel/panic_on_warn \
             /proc/sys/kernel/unknown_nmi_panic /proc/sys/kernel/sysrq /proc/sys/vm/panic_on_oom \
             /sys/kernel/kexec_crash_size /sys/kernel/kexec_crash_loaded /sys/kernel/notes; do
        [ -e $f ] && mkdir -p $t$(dirname $f) && cat $f > $t$f
    done
    [ -e /sys/kernel/btf/vmlinux ] && mkdir -p $t/sys/kernel/btf && : > $t/sys/kernel/btf/vmlinux
    sync
    umount /mnt
    say "doctor tree recorded"
}

first() {
    say "first kernel up, scenario $SCENARIO"
    load_modules
    append=""
    for w in $(cat /proc/cmdline); do
        case "$w" in crashkernel=*|crashlab.*) ;; *) append="$append $w" ;; esac
    done
    append="${append# } reset_devices nr_cpus=1 irqpoll nousb"
    if [ "$KDUMP" = 0 ]; then
        # QEMU dumps the guest's memory itself (dump-guest-memory) once the kernel panics.
        say "no capture kernel: QEMU's dump-guest-memory saves the dump"
    else
        say "kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append=\"$append\""
        kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append="$append" \
            || kexec -s -p /boot/vmlinuz --initrd=/boot/capture.img --append="$append" \
            || die "kexec -p"
        [ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || die "capture kernel not loaded"
        if [ "$RAW_VMCORE" = 1 ]; then
            # /proc/vmcore may be kept whole (no makedumpfile -d 31 to drop page cache): the
            # loaded files' rootfs pages are freed (and zeroed: init_on_free=1) so the dump
            # does not carry them
            rm -rf /boot/vmlinuz /boot/capture.img /sbin/kexec /lib/ld-linux-aarch64.so.1 \
                /lib/aarch64-linux-gnu
            say "removed /boot/vmlinuz /boot/capture.img and kexec with its libraries"
        fi
    fi
    echo 1 > /proc/sys/kernel/panic_on_oops
    if [ "$DOCTOR_TREE" = 1 ]; then doctor_tree; fi
    say "capture kernel loaded; kernel.panic_on_oops=1; starting background load"
    (while :; do :; done) &
    dd if=/dev/zero of=/dev/null 2>/dev/null &
    sleep 3600 &
    say "threads before the crash: $(ls -d /proc/[0-9]*/task/[0-9]* | wc -l) (+1 idle task per CPU)"
    sleep $SETTLE
    say "crashing: $SCENARIO"
    scenario
    sleep $CRASH_TIMEOUT
    die "scenario $SCENARIO did not crash the kernel in time"
}

if [ -e /proc/vmcore ]; then capture; else first; fi
"""


def config_text(scenario_name: str, scenario_shell: str, makedumpfile_opts: str, elf: bool,
                settle: int = 5, crash_timeout: int = 150, check_level: int | None = None,
                doctor_tree: bool = False, kdump: bool = True, raw_vmcore: bool = False) -> str:
    return (f"SCENARIO='{scenario_name}'\n"
            f"KDUMP={1 if kdump else 0}\n"
            f"RAW_VMCORE={1 if raw_vmcore else 0}\n"
            f"DOCTOR_TREE={1 if doctor_tree else 0}\n"
            f"MAKEDUMPFILE_OPTS='{makedumpfile_opts}'\n"
            f"ELF={1 if elf else 0}\n"
            f"CHECK_LEVEL={'' if check_level is None else check_level}\n"
            f"SETTLE={settle}\n"
            f"CRASH_TIMEOUT={crash_timeout}\n"
            f"scenario() {{\n{scenario_shell}\n}}\n")
