"""make-dump --arch arm64: Debian's arm64 cloud kernel under qemu-system-aarch64 (TCG).

The guest's userland (busybox-static, and for the kdump path kexec-tools and makedumpfile
with their libraries) is unpacked from Debian's arm64 .debs, never run on the host. Two ways
to save the dump:

- qemu (default): the kernel panics with panic=0 and spins; QEMU's own dump-guest-memory
  (what `virsh dump` runs) writes an ELF and a kdump-zlib dump over the QMP monitor. The
  VMCOREINFO reaches QEMU through `-device vmcoreinfo` and the guest's qemu_fw_cfg module.
- kdump: kexec -p with a capture kernel and makedumpfile -c -d 31 in it, as on amd64.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import re
import selectors
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import debian, initramfs, kernel, modules
from .scenarios import SCENARIOS
from .util import MakeDumpError, cache_root, log, run, sha256_file

QEMU = "qemu-system-aarch64"
HOST_PACKAGES = ["qemu-system-arm", "e2fsprogs", "kmod", "xz-utils"]
ARCH = "arm64"
TRIPLET = "aarch64-linux-gnu"


def _tool_root(suite: str, packages: tuple[str, ...]) -> tuple[Path, dict[str, str]]:
    """Unpack `packages` and the libraries they depend on (arm64, from `suite`; followed
    through Depends, names starting with lib or zlib: kexec-tools needs xen's libxenmisc on
    arm64 too) into one root; returns it and the versions of `packages`."""
    root = cache_root() / "tools" / f"arm64-{suite}-{'-'.join(packages)}"
    versions_file = root / ".versions.json"
    if versions_file.exists():
        return root, json.loads(versions_file.read_text())
    shutil.rmtree(root, ignore_errors=True)
    seen: set[str] = set()
    todo = list(packages)
    versions: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        deb, version = debian.download_from_suite(name, suite, ARCH)
        versions[name] = version
        debian.extract(deb, root)
        for alts in debian.parse_depends(debian.deb_field(deb, "Depends")):
            dep = alts[0][0].split(":")[0]
            if dep.startswith(("lib", "zlib")) and dep not in seen:
                todo.append(dep)
    versions_file.write_text(json.dumps(versions))
    return root, versions


def _busybox(suite: str) -> tuple[Path, str]:
    deb, version = debian.download_from_suite("busybox-static", suite, ARCH)
    dest = cache_root() / "tools" / f"busybox-static_{ARCH}_{version.replace(':', '_')}"
    binary = next((dest / d / "busybox" for d in ("bin", "usr/bin")
                   if (dest / d / "busybox").exists()), None)
    if binary is None:
        debian.extract(deb, dest)
        binary = next(dest / d / "busybox" for d in ("bin", "usr/bin")
                      if (dest / d / "busybox").exists())
    return binary, version


def _add_tools(img: initramfs.Cpio, root: Path, binaries: list[tuple[str, str]]) -> None:
    """Binaries from the unpacked arm64 root, with every shared library of that root."""
    for dest, src in binaries:
        found = next((p for p in (root / src, root / "usr" / src) if p.exists()), None)
        if found is None:
            raise MakeDumpError(f"no {src} (nor usr/{src}) under {root}")
        img.host_file(dest, found, 0o755)
    for libdir in (root / "usr/lib" / TRIPLET, root / "lib" / TRIPLET):
        if not libdir.is_dir():
            continue
        for lib in sorted(libdir.rglob("*.so*")):
            if lib.is_file():
                rel = lib.relative_to(libdir)
                img.host_file(f"lib/{TRIPLET}/{rel}", lib.resolve(), 0o755)
    ldso = next((d / "ld-linux-aarch64.so.1" for d in (root / "usr/lib", root / "lib")
                 if (d / "ld-linux-aarch64.so.1").exists()), None)
    if ldso is None:
        raise MakeDumpError(f"no ld-linux-aarch64.so.1 under {root}")
    img.host_file("lib/ld-linux-aarch64.so.1", ldso.resolve(), 0o755)


class Qmp:
    """A minimal QMP client on a unix socket (one command at a time)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        self._read()                          # the greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise MakeDumpError("QMP: QEMU closed the monitor")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def command(self, name: str, **arguments: object) -> dict:
        self.file.write(json.dumps({"execute": name, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise MakeDumpError(f"QMP {name}: {reply['error'].get('desc', reply)}")
        return reply

    def close(self) -> None:
        self.sock.close()


def cpu_model(qemu_dump: bool) -> str:
    """QEMU's cpu max with pointer authentication (the impdef algorithm: fast under TCG).
    For the kdump path without FEAT_LPA2: trixie's makedumpfile 1.7.6 refuses 4 KiB pages with
    52-bit VAs ("PAGE SIZE 0x1000 and VA Bits 52 not supported"), so the 52-bit kernel falls
    back to 48 bits."""
    return "max,pauth-impdef=on" + ("" if qemu_dump else ",lpa2=off")


def boot(k: kernel.Kernel, image: Path, initrd: Path, disk: Path, append: str, work: Path,
         cpus: int, mem_mib: int, timeout: int, verbose: bool, qemu_dump: bool,
         ) -> tuple[float, list[Path]]:
    """Boot the guest; with qemu_dump, dump its memory once it has panicked. Returns the
    seconds it ran and the dump files QEMU wrote."""
    qmp_path = work / "qmp.sock"
    qmp_path.unlink(missing_ok=True)
    cmd = [QEMU, "-machine", "virt", "-accel", "tcg", "-cpu", cpu_model(qemu_dump),
           "-smp", str(cpus), "-m", str(mem_mib), "-nodefaults", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-device", "vmcoreinfo",
           "-qmp", f"unix:{qmp_path},server=on,wait=off",
           "-kernel", str(image), "-initrd", str(initrd), "-append", append,
           "-drive", f"file={disk},format=raw,if=virtio"]
    log("$ " + " ".join(cmd))
    console_log = work / "console.log"
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    panicked_at: float | None = None
    dumps: list[Path] = []
    interesting = re.compile(rb"MAKEDUMP:|Kernel panic|BUG:|Oops|Internal error|"
                             rb"Starting crashdump kernel|qemu-system")
    try:
        with console_log.open("wb") as logf:
            while True:
                now = time.monotonic()
                if now - start > timeout:
                    raise MakeDumpError(f"QEMU still running after {timeout} s; see {console_log}")
                if qemu_dump and panicked_at is not None and now - panicked_at > 5:
                    dumps = _dump_guest_memory(qmp_path, work)
                    break
                if not sel.select(timeout=1):
                    if proc.poll() is not None:
                        break
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                logf.write(chunk)
                logf.flush()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if b"MAKEDUMP: FAILED" in line:
                        raise MakeDumpError(f"guest: {line.decode(errors='replace')}; "
                                            f"see {console_log}")
                    if b"end Kernel panic" in line and panicked_at is None:
                        panicked_at = time.monotonic()
                    if verbose or interesting.search(line):
                        log(f"[{time.monotonic() - start:5.1f}s] "
                            + line.decode(errors="replace").rstrip())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    elapsed = time.monotonic() - start
    log(f"QEMU stopped after {elapsed:.0f} s")
    return elapsed, dumps


def _dump_guest_memory(qmp_path: Path, work: Path) -> list[Path]:
    """dump-guest-memory as ELF and as kdump-zlib, then quit."""
    qmp = Qmp(qmp_path)
    out = []
    try:
        qmp.command("stop")
        for fmt, name in (("elf", "vmcore.elf"), ("kdump-zlib", "vmcore.kdump-zlib")):
            path = work / name
            path.unlink(missing_ok=True)
            log(f"QMP dump-guest-memory format={fmt} -> {path}")
            qmp.command("dump-guest-memory", paging=False, protocol=f"file:{path}", format=fmt)
            out.append(path)
        try:
            qmp.command("quit")
        except MakeDumpError:
            pass
    finally:
        qmp.close()
    return out


def _vmlinux_image(k: kernel.Kernel, work: Path) -> Path:
    """The arm64 Image (vmlinuz is a gzipped Image; QEMU takes it, kexec wants it plain)."""
    image = work / "Image"
    data = k.vmlinuz.read_bytes()
    image.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return image


def make_dump(args: argparse.Namespace) -> None:
    """The arm64 path of make-dump (see the module docstring)."""
    from . import vm  # the dump disk and copy_out are the amd64 path's

    sc = SCENARIOS[args.scenario]
    out: Path = args.out.resolve()
    if (out / "MANIFEST").exists() and not args.force:
        raise MakeDumpError(f"{out} already holds a dump (MANIFEST); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    added = debian.ensure_suite_sources(args.suite)
    added |= debian.ensure_foreign_arch(ARCH)
    if added or not args.no_apt_update:
        debian.apt_update()
    debian.apt_install(HOST_PACKAGES + (["debootstrap"] if sc.module else []))

    k = kernel.prepare(args.suite, args.kernel_version, args.kernel_release, ARCH)
    log(f"kernel {k.release} {k.version} ({k.suite}); vmlinux build-id {k.vmlinux_build_id}")
    busybox, busybox_version = _busybox(args.suite)
    scenario_text = sc.description
    ko = None
    if sc.module:
        ko, compiler = modules.build(k, sc, out)
        scenario_text += (f", module cross-built with {compiler} ({TRIPLET}) against "
                          f"linux-headers-{k.release} with -g -ffile-prefix-map=<build dir>="
                          f"/usr/src/{sc.module}")
    kdump = args.arm64_dump == "kdump"

    work = cache_root() / "work" / f"{k.release}-{sc.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    image = _vmlinux_image(k, work)
    mods = kernel.module_load_order(k)
    log("guest modules: " + " ".join(m.name for m in mods))
    opts = "-c -d 31"
    conf = initramfs.config_text(sc.name, sc.shell, opts, False, kdump=kdump, raw_vmcore=kdump)
    first = initramfs.base_image(busybox, initramfs.INIT, conf, mods, k.root)
    tool_versions: dict[str, str] = {}
    if kdump:
        # trixie's makedumpfile 1.7.6 refuses 4 KiB pages with VA_BITS=52 ("PAGE SIZE 0x1000
        # and VA Bits 52 not supported"), the config of Debian's 6.12 arm64 kernels: sid's
        # 1.7.8, with sid's libraries in the capture initramfs (auto, sid)
        mdf_suite = "trixie" if args.makedumpfile == "trixie" else "sid"
        if mdf_suite == "sid" and debian.ensure_suite_sources("sid"):
            debian.apt_update()
        kexec_root, tool_versions = _tool_root(args.suite, ("kexec-tools",))
        mdf_root, mdf_versions = _tool_root(mdf_suite, ("makedumpfile",))
        tool_versions.update(mdf_versions)
        capture = initramfs.base_image(busybox, initramfs.INIT, conf, mods, k.root)
        _add_tools(capture, mdf_root, [("usr/bin/makedumpfile", "usr/bin/makedumpfile")])
        (work / "capture.img").write_bytes(capture.gzip())
        _add_tools(first, kexec_root, [("sbin/kexec", "sbin/kexec")])
        first.host_file("boot/vmlinuz", image, 0o644)
        first.host_file("boot/capture.img", work / "capture.img", 0o644)
    if ko:
        first.host_file(sc.ko_in_guest, ko, 0o644)
    (work / "first.img").write_bytes(first.gzip())

    disk = work / "disk.img"
    vm.make_disk(disk)
    append = ("console=ttyAMA0 panic=" + ("10" if kdump else "0")
              + (f" crashkernel={args.crashkernel}" if kdump else "")
              + " init_on_free=1" + f" crashlab.scenario={sc.name}")
    seconds, qemu_dumps = boot(k, image, work / "first.img", disk, append, work, args.cpus,
                               args.memory, args.timeout, args.verbose, not kdump)
    console_text = (work / "console.log").read_text(errors="replace")
    ts = time.strftime("%Y%m%d%H%M", time.gmtime())
    files: dict[str, str] = {}
    if kdump:
        got = vm.copy_out(disk, work / "out")
        rc = (got / "dump.rc").read_text().strip() if (got / "dump.rc").exists() else "missing"
        kexec_v = debian.upstream_version(tool_versions["kexec-tools"])
        raw = next(iter(sorted(got.glob("vmcore.*.gz"))), None)
        if rc != "0" and raw is not None and (got / "raw.rc").read_text().strip() == "0":
            # makedumpfile refused it (see README): /proc/vmcore as the capture kernel has it,
            # gzip -1 in the guest (busybox has no xz compressor), xz here: small enough to
            # commit. It is an ELF vmcore, so it is also the sample's dump_elf.
            log(f"makedumpfile failed (dump.rc = {rc}); keeping /proc/vmcore ({raw.name})")
            stamp = raw.name.removeprefix("vmcore.").removesuffix(".gz")
            files["dump"] = files["dump_elf"] = f"dump.{stamp}.elf.xz"
            raw_size = _gunzip_to_xz(raw, out / files["dump"])
            files["dmesg"] = f"console.{stamp}"
            (out / files["dmesg"]).write_text(console_text)
            made_by = (f"/proc/vmcore of a kdump capture kernel (kexec-tools {kexec_v}, "
                       f"{args.suite}'s; {raw_size:,} bytes), gzip -1 in the guest, xz -9 on "
                       f"the host; makedumpfile "
                       f"{debian.upstream_version(tool_versions['makedumpfile'])} having refused "
                       "it (4 KiB pages with VA_BITS=52); dump_elf: the same file")
        elif rc != "0":
            raise MakeDumpError(f"capture kernel: dump.rc = {rc}; see {work / 'console.log'}")
        else:
            dump = next(iter(sorted(got.glob("dump.*[0-9]"))))
            dmesg = next(iter(sorted(got.glob("dmesg.*[0-9]"))))
            for f in (dump, dmesg):
                shutil.copyfile(f, out / f.name)
            files["dump"] = dump.name
            files["dmesg"] = dmesg.name
            made_by = (f"makedumpfile {debian.upstream_version(tool_versions['makedumpfile'])} "
                       f"({mdf_suite}'s arm64 package) {opts} in a kdump capture kernel "
                       f"(kexec-tools {kexec_v}, {args.suite}'s)")
    else:
        if len(qemu_dumps) != 2:
            raise MakeDumpError(f"the guest did not panic; see {work / 'console.log'}")
        elf, kdz = qemu_dumps
        files["dump"] = f"dump.{ts}"
        shutil.copyfile(kdz, out / files["dump"])
        files["dump_elf"] = f"vmcore.{ts}.elf.xz"
        log(f"compressing {elf.name} ({elf.stat().st_size:,} bytes) with xz")
        with elf.open("rb") as fin, lzma.open(out / files["dump_elf"], "wb", preset=6) as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        # The console is the log: the kernel's messages from boot to the panic.
        files["dmesg"] = f"console.{ts}"
        (out / files["dmesg"]).write_text(console_text)
        made_by = ("QEMU dump-guest-memory (QMP, paging=false) format=kdump-zlib after the panic "
                   "(panic=0); dump_elf: the same memory as format=elf, xz-compressed")
        elf.unlink()
        kdz.unlink()
    for name in files.values():
        (out / name).chmod(0o644)
    manifest = {
        "arch": "arm64",
        "kernel_release": k.release,
        "kernel_package": f"{k.image_package} {k.version} ({k.suite})",
        "vmlinux_package": f"{k.dbg_package} {k.version}",
        "vmlinux_path_in_package": k.vmlinux_member,
        "vmlinux_build_id": k.vmlinux_build_id,
        "vmlinux_sha256": k.vmlinux_sha256,
        "source_package": k.source_package,
        "dump": files["dump"],
        "dump_sha256": sha256_file(out / files["dump"]),
        **({"dump_elf": files["dump_elf"],
            "dump_elf_sha256": sha256_file(out / files["dump_elf"])}
           if "dump_elf" in files else {}),
        "dump_made_by": made_by,
        "machine": f"QEMU {qemu_version()} virt, TCG, cpu {cpu_model(not kdump)}, {args.cpus} "
                   f"vCPUs, {args.memory} MiB" + (f", crashkernel={args.crashkernel}"
                                                  if kdump else ""),
        "scenario": scenario_text,
        "dmesg": files["dmesg"],
        "kernel_cmdline": append,
        "userland": f"busybox-static {busybox_version} (arm64)",
        "made_with": f"sample-dumps/make-dump --arch arm64 --arm64-dump {args.arm64_dump} "
                     f"--suite {args.suite} --scenario {sc.name} --kernel-release {k.release} "
                     f"--kernel-version {k.version} (guest run {seconds:.0f} s)",
    }
    (out / "MANIFEST").write_text("".join(f"{key}={val}\n" for key, val in manifest.items()))
    disk.unlink()
    log(f"wrote {out}: " + ", ".join(files.values()) + ", MANIFEST")
    if "Kernel panic" not in console_text:
        log("warning: no 'Kernel panic' in the console")


def _gunzip_to_xz(src: Path, dest: Path) -> int:
    """Recompress a .gz file as .xz (preset 9); returns the uncompressed size."""
    # kexec-tools' vmcore has the kernel image twice, ~30 MiB apart: its own PT_LOAD for the
    # kernel text (_text.._end) and the linear map of all RAM. xz -9's 64 MiB dictionary
    # stores it once (6.12 sysrq: 10 MB; -6, 8 MiB: 18 MB).
    log(f"recompressing {src.name} ({src.stat().st_size:,} bytes) with xz -9 as {dest.name}")
    size = 0
    with gzip.open(src, "rb") as fin, lzma.open(dest, "wb", preset=9) as fout:
        while chunk := fin.read(1 << 22):
            fout.write(chunk)
            size += len(chunk)
    log(f"{dest.name}: {size:,} bytes of /proc/vmcore in {dest.stat().st_size:,} bytes")
    return size


def qemu_version() -> str:
    out = run([QEMU, "--version"], capture=True, quiet=True).stdout
    m = re.search(r"version (\d+\.\d+)", out)
    return m.group(1) if m else "?"
