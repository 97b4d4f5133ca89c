"""make-dump: boot a Debian cloud kernel under QEMU, crash it, save the kdump, write a MANIFEST.

    sample-dumps/make-dump --suite bookworm --scenario sysrq --out DIR

Run as root on Debian 12 (bookworm). See sample-dumps/README.md.
"""

from __future__ import annotations

import argparse
import lzma
import re
import shutil
import sys
from pathlib import Path

from . import debian, initramfs, kernel, modules, vm
from .scenarios import SCENARIOS
from .util import MakeDumpError, cache_root, log, run, sha256_file

HOST_PACKAGES = ["qemu-system-x86", "kexec-tools", "makedumpfile", "busybox-static",
                 "e2fsprogs", "kmod", "xz-utils", "zstd"]
MODULE_HOST_PACKAGES = ["debootstrap"]
MANIFEST_KEYS = ("kernel_release", "kernel_package", "vmlinux_package",
                 "vmlinux_path_in_package", "vmlinux_build_id", "vmlinux_sha256",
                 "source_package", "dump", "dump_sha256", "dump_made_by", "machine", "scenario")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="make-dump",
        description="Make a real kdump of a Debian cloud kernel: boot it under QEMU, load a "
                    "capture kernel with kexec -p, crash it by a scenario, save the dump with "
                    "makedumpfile -c -d 31, and write a MANIFEST. Needs root on Debian 12.")
    p.add_argument("--suite", choices=debian.SUITES, default="bookworm",
                   help="Debian suite whose cloud kernel to use (default: bookworm)")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="sysrq")
    p.add_argument("--arch", choices=("amd64", "arm64"), default="amd64",
                   help="the guest's Debian architecture (arm64: qemu-system-aarch64 under TCG, "
                        "see makedump/arm64.py)")
    p.add_argument("--arm64-dump", choices=("qemu", "kdump"), default="qemu",
                   help="arm64: who saves the dump: QEMU's dump-guest-memory after the panic "
                        "(default) or makedumpfile in a kexec -p capture kernel")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for dump.*, dmesg.*, MANIFEST (and the module)")
    p.add_argument("--kernel-version", help="package version, e.g. 6.1.192-2 "
                   "(default: the newest in the suite)")
    p.add_argument("--kernel-release", help="kernel release, e.g. 6.1.0-56-cloud-amd64")
    p.add_argument("--makedumpfile", choices=("auto", "host", "trixie", "sid"), default="auto",
                   help="which makedumpfile the capture kernel runs: the host's (bookworm "
                        "1.7.2), trixie's 1.7.6 or sid's 1.7.8 (with sid's libraries in the "
                        "capture initramfs); auto takes the host's up to 6.1, trixie's for "
                        "6.2-6.x and sid's for 7.x")
    p.add_argument("--compress", choices=("zlib", "zstd"), default="zlib",
                   help="makedumpfile's codec: zlib (-c, default: the smaller file; 7.3 sysrq "
                        "21.6 MB vs 21.7 MB) or zstd (-z)")
    p.add_argument("--check-level", type=int, metavar="N",
                   help="also save makedumpfile -c -d N as check-dN.* in the work directory "
                        "(not in --out), to see what -d 31 excluded")
    p.add_argument("--doctor-tree", action="store_true",
                   help="also copy what `crashtui doctor --root` reads (/proc, /sys files) out of "
                        "the first kernel once the capture kernel is loaded, into OUT/doctor-tree "
                        "(with the image's boot/config-RELEASE)")
    p.add_argument("--elf", action="store_true",
                   help="also save makedumpfile -E -d 31 (ELF vmcore, written .xz)")
    p.add_argument("--init-on-free", choices=("auto", "on", "off"), default="auto",
                   help="boot the crashing kernel with init_on_free=1, so freed pages are zero "
                        "and -d 31 drops them even where makedumpfile cannot tell free pages "
                        "(1.7.6 on 6.12 excludes none); auto: on for kernels after 6.1")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--cpus", type=int, help="vCPUs (default: 4; arm64 2)")
    p.add_argument("--memory", type=int, default=1024, help="guest MiB (default 1024)")
    p.add_argument("--crashkernel", default="256M")
    p.add_argument("--timeout", type=int, default=900, help="seconds for the whole QEMU run")
    p.add_argument("--no-apt-update", action="store_true",
                   help="skip apt-get update (when the lists are known to be fresh)")
    p.add_argument("--force", action="store_true", help="write into an --out that has a MANIFEST")
    p.add_argument("-v", "--verbose", action="store_true", help="show the whole guest console")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        make_dump(args)
    except MakeDumpError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


# sid's makedumpfile needs glibc 2.38: these sid packages go into the capture initramfs with it.
SID_MAKEDUMPFILE_LIBS = ("libc6", "libdw1t64", "libelf1t64", "liblzo2-2", "libzstd1", "zlib1g",
                         "liblzma5", "libbz2-1.0")


def makedumpfile_choice(choice: str, k: kernel.Kernel) -> str:
    if choice != "auto":
        return choice
    if k.major_minor >= (7, 0):
        return "sid"
    return "trixie" if k.major_minor > (6, 1) else "host"


def _makedumpfile(choice: str, k: kernel.Kernel) -> tuple[Path, str, Path | None]:
    """The makedumpfile binary for the capture initramfs, its upstream version and the root
    of the libraries it needs (None: the host's)."""
    choice = makedumpfile_choice(choice, k)
    if choice == "host":
        return Path("/usr/bin/makedumpfile"), \
            debian.upstream_version(debian.installed_version("makedumpfile") or "?"), None
    # bookworm's 1.7.2 drops in-use pages of 6.12 kernels (crash then sees too few tasks);
    # 1.7.6 finds no free pages on 6.12+ (no page-type values before 1.7.7) and keeps them.
    if debian.ensure_suite_sources(choice):     # sid: only when a kernel needs it
        debian.apt_update()
    deb, version = debian.download_from_suite("makedumpfile", choice)
    dest = cache_root() / "tools" / f"makedumpfile_{version.replace(':', '_')}"
    binary = dest / "usr/bin/makedumpfile"
    if not binary.exists():
        debian.extract(deb, dest)
    lib_root = None
    if choice == "sid":
        lib_root = dest / "libs"
        stamp = lib_root / ".ready"
        if not stamp.exists():
            shutil.rmtree(lib_root, ignore_errors=True)
            for lib in SID_MAKEDUMPFILE_LIBS:
                lib_deb, _ = debian.download_from_suite(lib, "sid")
                debian.extract(lib_deb, lib_root)
            stamp.touch()
        run(initramfs.ldso_command(lib_root) + [binary, "-v"], capture=True, quiet=True)
    else:
        # Trixie's build runs on bookworm's libraries (checked: ldd resolves, -v works).
        run([binary, "-v"], capture=True, quiet=True)
    return binary, debian.upstream_version(version) + f" ({choice}'s package)", lib_root


def _compound_fix(console_text: str) -> str:
    """The -i the capture kernel added for 7.1+'s page.compound_info (see initramfs.INIT)."""
    m = re.search(r"VMCOREINFO has OFFSET\(page.compound_info\)=(\d+)", console_text)
    return (f" -i <OFFSET(page.compound_head)={m.group(1)}, the VMCOREINFO's "
            "page.compound_info>") if m else ""


def _save_doctor_tree(got: Path, dest: Path, k: kernel.Kernel) -> None:
    """The first kernel's /proc and /sys files, plus the image's kernel config as the
    installed kernel would have it in /boot."""
    if not (got / "sys" / "kernel" / "kexec_crash_loaded").is_file():
        raise MakeDumpError(f"the first kernel recorded no doctor tree in {got}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(got, dest)
    for config in (k.root / "boot" / f"config-{k.release}", k.modules_dir / "config"):
        if config.is_file():
            (dest / "boot").mkdir(exist_ok=True)
            shutil.copyfile(config, dest / "boot" / f"config-{k.release}")
            break
    log(f"doctor tree in {dest}")


def make_dump(args: argparse.Namespace) -> None:
    if not debian.is_root():
        raise MakeDumpError("run as root (apt-get, debootstrap, chroot)")
    if shutil.which("apt-get") is None:
        raise MakeDumpError("needs a Debian machine (apt-get)")
    if args.cpus is None:
        args.cpus = 2 if args.arch == "arm64" else 4
    if args.arch == "arm64":
        from . import arm64
        arm64.make_dump(args)
        return
    sc = SCENARIOS[args.scenario]
    out: Path = args.out.resolve()
    if (out / "MANIFEST").exists() and not args.force:
        raise MakeDumpError(f"{out} already holds a dump (MANIFEST); choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    added = debian.ensure_suite_sources(args.suite)
    if args.makedumpfile in ("auto", "trixie"):
        added |= debian.ensure_suite_sources("trixie")
    if added or not args.no_apt_update:
        debian.apt_update()
    debian.apt_install(HOST_PACKAGES + (MODULE_HOST_PACKAGES if sc.module else []))

    k = kernel.prepare(args.suite, args.kernel_version, args.kernel_release)
    log(f"kernel {k.release} {k.version} ({k.suite}); vmlinux build-id {k.vmlinux_build_id}")
    mdf, mdf_version, mdf_libs = _makedumpfile(args.makedumpfile, k)
    kexec_version = run(["kexec", "--version"], capture=True, quiet=True).stdout.split()[-1]

    scenario_text = sc.description
    ko = None
    if sc.module:
        ko, compiler = modules.build(k, sc, out)
        scenario_text += (f", module built with {compiler} against linux-headers-{k.release} "
                          f"with -g -ffile-prefix-map=<build dir>=/usr/src/{sc.module}")

    work = cache_root() / "work" / f"{k.release}-{sc.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mods = kernel.module_load_order(k)
    log("guest modules: " + " ".join(m.name for m in mods))
    opts = {"zlib": "-c", "zstd": "-z"}[args.compress] + " -d 31"
    conf = initramfs.config_text(sc.name, sc.shell, opts, args.elf, check_level=args.check_level,
                                 doctor_tree=args.doctor_tree)
    busybox = Path("/bin/busybox")

    capture = initramfs.base_image(busybox, initramfs.INIT, conf, mods, k.root)
    capture.binary("usr/bin/makedumpfile", mdf, mdf_libs)
    (work / "capture.img").write_bytes(capture.gzip())

    first = initramfs.base_image(busybox, initramfs.INIT, conf, mods, k.root)
    first.binary("sbin/kexec", Path(shutil.which("kexec") or "/usr/sbin/kexec"))
    first.host_file("boot/vmlinuz", k.vmlinuz, 0o644)
    first.host_file("boot/capture.img", work / "capture.img", 0o644)
    if ko:
        first.host_file(sc.ko_in_guest, ko, 0o644)
    (work / "first.img").write_bytes(first.gzip())

    disk = work / "disk.img"
    vm.make_disk(disk)
    accel, accel_name = vm.accel_args(args.accel)
    init_on_free = args.init_on_free == "on" or (args.init_on_free == "auto"
                                                 and k.major_minor > (6, 1))
    append = (f"console=ttyS0,115200 crashkernel={args.crashkernel} panic=10"
              + (" init_on_free=1" if init_on_free else "") + f" crashlab.scenario={sc.name}")
    console = work / "console.log"
    seconds = vm.boot(k.vmlinuz, work / "first.img", disk, append, console, accel,
                      args.cpus, args.memory, args.timeout, args.verbose,
                      vm.scratch_drive_args(work, sc.scratch_disks))

    console_text = console.read_text(errors="replace")
    failed = re.findall(r"MAKEDUMP: FAILED: (.*)", console_text)
    if failed:
        raise MakeDumpError(f"guest: {failed[-1].strip()}; see {console}")
    got = vm.copy_out(disk, work / "out")
    for rc_name in (("dump.rc", "dmesg.rc") + (("elf.rc",) if args.elf else ())
                    + (("check.rc",) if args.check_level is not None else ())):
        rc_file = got / rc_name
        rc = rc_file.read_text().strip() if rc_file.exists() else "missing"
        if rc != "0":
            raise MakeDumpError(f"capture kernel: {rc_name} = {rc}; see {console}")
    dump = next(iter(sorted(got.glob("dump.*[0-9]"))), None)
    dmesg = next(iter(sorted(got.glob("dmesg.*[0-9]"))), None)
    if dump is None or dmesg is None:
        raise MakeDumpError(f"no dump/dmesg written; see {console}")
    with dump.open("rb") as f:
        if not f.read(8).startswith(b"KDUMP"):
            raise MakeDumpError(f"{dump.name} is not a compressed kdump file")
    for f in (dump, dmesg):
        shutil.copyfile(f, out / f.name)
        (out / f.name).chmod(0o644)
    if args.doctor_tree:
        _save_doctor_tree(got / "doctor-tree", out / "doctor-tree", k)
    if args.elf:
        elf = next(got.glob("vmcore-d31.elf.*"))
        log(f"compressing {elf.name} with xz")
        with elf.open("rb") as fin, lzma.open(out / (elf.name + ".xz"), "wb", preset=6) as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)

    manifest = {
        "kernel_release": k.release,
        "kernel_package": f"{k.image_package} {k.version} ({k.suite})",
        "vmlinux_package": f"{k.dbg_package} {k.version}",
        "vmlinux_path_in_package": k.vmlinux_member,
        "vmlinux_build_id": k.vmlinux_build_id,
        "vmlinux_sha256": k.vmlinux_sha256,
        "source_package": k.source_package,
        "dump": dump.name,
        "dump_sha256": sha256_file(out / dump.name),
        "dump_made_by": f"makedumpfile {mdf_version} {opts}{_compound_fix(console_text)} in a "
                        f"kdump capture kernel (kexec-tools {kexec_version})",
        "machine": f"QEMU {vm.qemu_version()} q35, {accel_name}, {args.cpus} vCPUs, "
                   f"{args.memory} MiB, crashkernel={args.crashkernel}",
        "scenario": scenario_text,
        "dmesg": dmesg.name,
        "kernel_cmdline": append,
        "made_with": f"sample-dumps/make-dump --suite {args.suite} --scenario {sc.name}"
                     f" --kernel-release {k.release} --kernel-version {k.version}"
                     f" (guest run {seconds:.0f} s)",
    }
    (out / "MANIFEST").write_text("".join(f"{key}={val}\n" for key, val in manifest.items()))
    disk.unlink()   # 512 MiB sparse; the files are out
    log(f"wrote {out}/{dump.name} ({(out / dump.name).stat().st_size:,} bytes), "
        f"{dmesg.name}, MANIFEST; console log in {console}")


if __name__ == "__main__":
    sys.exit(main())
