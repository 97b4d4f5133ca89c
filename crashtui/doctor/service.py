"""The kdump service and its configuration: which tool, enabled, where and how it saves dumps.

Debian/Ubuntu's kdump-tools reads /etc/default/kdump-tools (USE_KDUMP, KDUMP_COREDIR,
MAKEDUMP_ARGS, KDUMP_CMDLINE*, KDUMP_COMPRESSION); its kdump-config defaults MAKEDUMP_ARGS to
"-c -d 31" and always adds -F (flattened), and saves <KDUMP_COREDIR>/<YYYYmmddHHMM>/dump.<stamp>.
RHEL/Fedora's kexec-tools reads /etc/kdump.conf (path, core_collector) and /etc/sysconfig/kdump,
and saves <path>/<ip>-<date>/vmcore.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from crashtui.doctor.check import (
    OK,
    PROBLEM,
    WARNING,
    Check,
    Machine,
    meminfo,
    os_ids,
    release,
    size_text,
)

DEBIAN_DEFAULTS = "/etc/default/kdump-tools"
DEBIAN_APPEND = ("reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll "
                 "usbcore.nousb")
DEBIAN_MAKEDUMP_ARGS = "-c -d 31"
# makedumpfile's page codecs (kdump-compressed format) and the ones crashtui decodes
CODEC_FLAGS = {"-c": "zlib", "-l": "lzo", "-p": "snappy", "-z": "zstd"}
# kdump-tools' KDUMP_COMPRESSION: the whole file goes through this program afterwards
WHOLE_FILE = {"bzip2": ("bunzip2", ".bz2"), "gzip": ("gunzip", ".gz"),
              "lz4": ("lz4 -d --rm", ".lz4"), "xz": ("unxz", ".xz")}
# the whole-file codecs crashtui opens itself (dumpfile/wholefile.py): all but lz4
OPENED_WHOLE = frozenset(("bzip2", "gzip", "xz"))


@dataclass
class KdumpSetup:
    """What the machine's kdump service is and how it is configured."""

    tool: str | None  # "kdump-tools" (Debian/Ubuntu), "kexec-tools" (RHEL/Fedora), None
    family: str  # "debian", "redhat" or "" (unknown distribution)
    config_file: str | None = None
    config: dict[str, str] = field(default_factory=dict)
    service: str | None = None  # systemd unit name
    coredir: str = "/var/crash"
    makedump_args: str = DEBIAN_MAKEDUMP_ARGS
    cmdline_append: str | None = None
    cmdline: str | None = None  # KDUMP_CMDLINE override
    remote: str | None = None  # NFS/SSH/FTP target, when the dump leaves the machine
    compression: str | None = None  # kdump-tools' KDUMP_COMPRESSION

    @property
    def install(self) -> str:
        """The command that installs the kdump service on this distribution."""
        return "dnf install -y kexec-tools && systemctl enable --now kdump" \
            if self.family == "redhat" else \
            "apt-get install -y kdump-tools && systemctl enable --now kdump-tools"

    @property
    def reload(self) -> str:
        """The command that (re)loads the capture kernel."""
        if self.family == "redhat":
            return "kdumpctl restart"
        return "kdump-config load" if self.tool else self.install


def parse_shell_assignments(text: str) -> dict[str, str]:
    """KEY=value lines of a shell defaults file (quotes removed; comments and others ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        if not key.isidentifier():
            continue
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            words = [value]
        out[key] = " ".join(words)
    return out


def _package_installed(machine: Machine, name: str) -> bool:
    """dpkg's status file says `name` is installed."""
    status = machine.read("/var/lib/dpkg/status") or ""
    for stanza in status.split("\n\n"):
        if f"\nPackage: {name}\n" in "\n" + stanza + "\n" and "Status: install ok installed" \
                in stanza:
            return True
    return False


def _enabled(machine: Machine, unit: str) -> bool:
    """A systemd unit is enabled: a *.wants/ link to it under /etc/systemd/system."""
    base = "/etc/systemd/system"
    return any(machine.exists(f"{base}/{d}/{unit}") for d in machine.listdir(base)
               if d.endswith(".wants"))


def find_setup(machine: Machine) -> KdumpSetup:
    """The kdump service found on the machine and its configuration."""
    ids = os_ids(machine)
    family = "redhat" if ids & {"rhel", "fedora", "centos"} else \
        "debian" if ids & {"debian", "ubuntu"} else ""
    if machine.exists("/usr/sbin/kdump-config") or machine.exists(DEBIAN_DEFAULTS) or \
            _package_installed(machine, "kdump-tools"):
        conf = parse_shell_assignments(machine.read(DEBIAN_DEFAULTS) or "")
        remote = next((f"{k} {conf[k]}" for k in ("NFS", "SSH", "FTP") if conf.get(k)), None)
        return KdumpSetup("kdump-tools", family or "debian", DEBIAN_DEFAULTS, conf,
                          "kdump-tools.service", conf.get("KDUMP_COREDIR") or "/var/crash",
                          conf.get("MAKEDUMP_ARGS") or DEBIAN_MAKEDUMP_ARGS,
                          conf.get("KDUMP_CMDLINE_APPEND") or DEBIAN_APPEND,
                          conf.get("KDUMP_CMDLINE") or None, remote,
                          conf.get("KDUMP_COMPRESSION") or None)
    if machine.exists("/usr/bin/kdumpctl") or machine.exists("/etc/kdump.conf"):
        conf = {}
        for line in (machine.read("/etc/kdump.conf") or "").splitlines():
            words = line.split("#", 1)[0].split(None, 1)
            if len(words) == 2:
                conf[words[0]] = words[1].strip()
        sysconfig = parse_shell_assignments(machine.read("/etc/sysconfig/kdump") or "")
        remote = next((f"{k} {conf[k]}" for k in ("nfs", "ssh") if conf.get(k)), None)
        collector = conf.get("core_collector", "makedumpfile -l --message-level 7 -d 31")
        return KdumpSetup("kexec-tools", family or "redhat", "/etc/kdump.conf", conf,
                          "kdump.service", conf.get("path", "/var/crash"),
                          collector.removeprefix("makedumpfile").strip(),
                          sysconfig.get("KDUMP_COMMANDLINE_APPEND"),
                          sysconfig.get("KDUMP_COMMANDLINE") or None, remote)
    return KdumpSetup(None, family)


def service_checks(machine: Machine, setup: KdumpSetup) -> list[Check]:
    """The kdump tool installed, enabled and its capture kernel and initrd present."""
    if setup.tool is None:
        loaded = machine.number("/sys/kernel/kexec_crash_loaded") == 1
        text = ("no kdump service (neither Debian's kdump-tools nor RHEL's kexec-tools/kdump)"
                + (": the loaded capture kernel was loaded by hand and is lost at reboot"
                   if loaded else ""))
        return [Check("kdump-service", "service", WARNING if loaded else PROBLEM, text,
                      setup.install)]
    checks = []
    unit = setup.service or ""
    name = f"{setup.tool} ({setup.config_file})"
    if setup.config_file in machine.denied:
        checks.append(Check("kdump-service", "service", WARNING,
                            f"{name}: readable by root only, its settings not checked",
                            needs_root=True))
    elif setup.tool == "kdump-tools" and setup.config.get("USE_KDUMP", "0").strip() != "1":
        checks.append(Check(
            "kdump-service", "service", PROBLEM,
            f"{name}: USE_KDUMP is not 1, so kdump-config never loads the capture kernel",
            f"sed -i 's/^ *USE_KDUMP=.*/USE_KDUMP=1/' {DEBIAN_DEFAULTS} && "
            f"systemctl enable {unit} && kdump-config load"))
    elif not _enabled(machine, unit):
        checks.append(Check("kdump-service", "service", PROBLEM,
                            f"{name} installed but {unit} is not enabled: nothing loads the "
                            "capture kernel at boot", f"systemctl enable --now {unit}"))
    else:
        checks.append(Check("kdump-service", "service", OK, f"{name}: {unit} enabled"))
    if setup.tool == "kdump-tools":
        checks += _debian_capture_files(machine, setup)
    if not any(machine.exists(p) for p in ("/usr/bin/makedumpfile", "/usr/sbin/makedumpfile",
                                           "/sbin/makedumpfile", "/bin/makedumpfile")):
        checks.append(Check("makedumpfile", "service", PROBLEM,
                            "makedumpfile is not installed: the capture kernel copies the whole "
                            "of memory as an ELF vmcore instead", "apt-get install -y makedumpfile"
                            if setup.family != "redhat" else "dnf install -y makedumpfile"))
    return checks


def _debian_capture_files(machine: Machine, setup: KdumpSetup) -> list[Check]:
    """kdump-tools' capture kernel and initrd (KDUMP_KERNEL/KDUMP_INITRD, by default the
    /var/lib/kdump links to /boot/vmlinuz-<release> and kdump's own initrd)."""
    rel = release(machine) or "$(uname -r)"
    kernel = setup.config.get("KDUMP_KERNEL") or f"/boot/vmlinuz-{rel}"
    initrd = setup.config.get("KDUMP_INITRD") or f"/boot/initrd.img-{rel}"
    fix = f"kdump-config symlinks {rel} && kdump-config load"
    missing = [p for p in (kernel, initrd) if machine.resolve(p) is None]
    if missing:
        return [Check("capture-files", "service", PROBLEM,
                      "capture kernel files missing: " + ", ".join(missing), fix)]
    k, i = machine.resolve(kernel), machine.resolve(initrd)
    stale = [p for p in (k, i) if p and rel not in p and p.startswith(("/boot/", "/var/lib/kdump/"))]
    if stale:
        return [Check("capture-files", "service", WARNING,
                      f"capture kernel {kernel} -> {k}, initrd -> {i}: not the running "
                      f"kernel {rel} (kdump-config makes them at the next load)", fix)]
    return [Check("capture-files", "service", OK, f"capture kernel {kernel} -> {k}, "
                  f"initrd {initrd} -> {i}")]


@dataclass(frozen=True)
class DumpFormat:
    """What makedumpfile's arguments make: format, page codec, dump level."""

    elf: bool
    flattened: bool
    codec: str | None  # zlib, lzo, snappy, zstd, or None (pages stored uncompressed)
    level: int
    split: bool
    dmesg_only: bool
    unknown: tuple[str, ...] = ()


def parse_makedump_args(args: str, always_flattened: bool) -> DumpFormat:
    """makedumpfile's options as kdump-tools runs them (it adds -F when missing)."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    level, codec, elf, flat, split, dmesg = 0, None, False, always_flattened, False, False
    i = 0
    while i < len(words):
        w = words[i]
        if w == "-d" and i + 1 < len(words):
            level = int(words[i + 1]) if words[i + 1].isdigit() else level
            i += 1
        elif w.startswith("-d") and w[2:].isdigit():
            level = int(w[2:])
        elif w.startswith("--dump-level"):
            value = w.partition("=")[2] or (words[i + 1] if i + 1 < len(words) else "")
            level = int(value) if value.isdigit() else level
        elif w in CODEC_FLAGS:
            codec = CODEC_FLAGS[w]
        elif w == "-E":
            elf = True
        elif w == "-F":
            flat = True
        elif w == "--split":
            split = True
        elif w == "--dump-dmesg":
            dmesg = True
        i += 1
    return DumpFormat(elf, flat, codec, level, split, dmesg)


# Dump level bits (makedumpfile -d): which pages are left out
LEVEL_BITS = {1: "zero pages", 2: "page cache", 4: "private cache", 8: "user pages",
              16: "free pages"}


def estimate_dump_bytes(mem: dict[str, int], fmt: DumpFormat) -> int | None:
    """An upper estimate of the dump's size: the RAM the dump level keeps, halved when the
    pages are compressed (kernel pages compress 3-10x; the sample dumps' 1 GiB guests give
    18-40 MiB at -c -d 31)."""
    total = mem.get("MemTotal")
    if total is None:
        return None
    kept = total
    if fmt.level & 16:
        kept -= mem.get("MemFree", 0)
    if fmt.level & (2 | 4):
        kept -= mem.get("Cached", 0) - mem.get("Shmem", 0)
    if fmt.level & 4:
        kept -= mem.get("Buffers", 0)
    if fmt.level & 8:
        kept -= mem.get("AnonPages", 0)
    kept = max(kept, total // 50)
    return kept // 2 if fmt.codec and not fmt.elf else kept


def config_checks(machine: Machine, setup: KdumpSetup) -> list[Check]:
    """Dump format, level and compression; dump directory space; capture command line."""
    if setup.tool is None:
        return []
    checks: list[Check] = []
    fmt = parse_makedump_args(setup.makedump_args, setup.tool == "kdump-tools")
    checks.append(_format_check(setup, fmt))
    checks.append(_space_check(machine, setup, fmt))
    checks.append(_cmdline_check(machine, setup))
    return checks


def _format_check(setup: KdumpSetup, fmt: DumpFormat) -> Check:
    where = f"MAKEDUMP_ARGS in {setup.config_file}" if setup.tool == "kdump-tools" else \
        f"core_collector in {setup.config_file}"
    shown = f"makedumpfile {setup.makedump_args}" + \
        (" -F" if setup.tool == "kdump-tools" and "-F" not in setup.makedump_args.split() else "")
    left_out = [name for bit, name in LEVEL_BITS.items() if fmt.level & bit]
    level = f"-d {fmt.level} (leaves out {', '.join(left_out) or 'nothing: all of RAM'})"
    edit = (f"sed -i 's/^#\\? *MAKEDUMP_ARGS=.*/MAKEDUMP_ARGS=\"-c -d 31\"/' {DEBIAN_DEFAULTS}"
            " && kdump-config load") if setup.tool == "kdump-tools" else \
        ("sed -i 's/^core_collector .*/core_collector makedumpfile -l --message-level 7 -d 31/'"
         " /etc/kdump.conf && kdumpctl restart")
    if fmt.dmesg_only:
        return Check("dump-format", "service", PROBLEM,
                     f"{where}: {shown} saves only the kernel log, no memory", edit)
    if fmt.split:
        return Check("dump-format", "service", PROBLEM,
                     f"{where}: {shown} splits the dump into several files; crashtui reads one",
                     edit)
    if fmt.elf and fmt.flattened:
        return Check("dump-format", "service", WARNING,
                     f"{where}: {shown}: a flattened ELF dump; crashtui reads it after "
                     "`makedumpfile -R vmcore.elf < DUMP` (or use -c -d 31)", edit)
    kind = "ELF vmcore" if fmt.elf else \
        ("flattened " if fmt.flattened else "") + "kdump-compressed" + \
        (f" ({fmt.codec})" if fmt.codec else " (pages not compressed)")
    text = f"{where}: {shown}: {kind}, {level}; crashtui reads it"
    detail: tuple[str, ...] = ()
    status = OK
    if setup.compression:
        tool, ext = WHOLE_FILE.get(setup.compression, (None, ""))
        status = WARNING
        text += (f"; but KDUMP_COMPRESSION={setup.compression} compresses the whole file "
                 f"(dump.<stamp>{ext}): crashtui decompresses a copy into its cache at each "
                 "new dump (a full dump's size in time and disk)"
                 if setup.compression in OPENED_WHOLE else
                 f"; but KDUMP_COMPRESSION={setup.compression} compresses the whole file "
                 f"(dump.<stamp>{ext}): run `{tool} DUMP{ext}` before crashtui opens it"
                 if tool else f"; KDUMP_COMPRESSION={setup.compression} is not one kdump-tools"
                 " knows (it saves the dump uncompressed)")
        edit = f"sed -i 's/^ *KDUMP_COMPRESSION=.*/#KDUMP_COMPRESSION=/' {DEBIAN_DEFAULTS}"
    elif not fmt.level & 16 or not fmt.level & 8:
        status = WARNING
        text += "; the dump keeps user or free pages (level 31 keeps only the kernel's)"
    elif fmt.codec is None and not fmt.elf:
        status = WARNING
        text += "; pages uncompressed (add -c, -l or -z: 3-10x smaller)"
    return Check("dump-format", "service", status, text, edit if status != OK else None,
                 detail=detail)


def _space_check(machine: Machine, setup: KdumpSetup, fmt: DumpFormat) -> Check:
    if setup.remote:
        return Check("dump-space", "service", OK,
                     f"dumps go to {setup.remote} (free space there not checked)")
    estimate = estimate_dump_bytes(meminfo(machine), fmt)
    free = machine.free_bytes(setup.coredir)
    where = setup.coredir + ("" if machine.path(setup.coredir).is_dir()
                             else " (created at the first dump)")
    if estimate is None or free is None:
        return Check("dump-space", "service", WARNING,
                     f"dump directory {where}: cannot tell the "
                     + ("RAM (/proc/meminfo)" if estimate is None else "free space"))
    text = (f"dump directory {where}: {size_text(free)} free, a dump of this RAM at -d "
            f"{fmt.level} is up to about {size_text(estimate)}")
    if free < estimate:
        return Check("dump-space", "service", PROBLEM, text + ": not enough",
                     f"find {setup.coredir} -mindepth 1 -maxdepth 1 -name '2*' -mtime +30 "
                     "-exec rm -r {} +   # or set KDUMP_COREDIR to a larger file system")
    if free < 2 * estimate:
        return Check("dump-space", "service", WARNING, text + ": room for one dump only")
    return Check("dump-space", "service", OK, text)


def _cmdline_check(machine: Machine, setup: KdumpSetup) -> Check:
    """The capture kernel's command line as kdump-config builds it."""
    cmdline = setup.cmdline
    if cmdline is None:
        words = (machine.value("/proc/cmdline") or "").split()
        cmdline = " ".join(w for w in words if w.split("=", 1)[0] not in
                           ("crashkernel", "hugepages", "hugepagesz", "abm"))
    full = f"{cmdline} {setup.cmdline_append or ''}".strip()
    words = full.split()
    if setup.tool == "kdump-tools" and "systemd.unit=kdump-tools-dump.service" not in words:
        return Check("capture-cmdline", "service", PROBLEM,
                     f"capture kernel command line lacks systemd.unit=kdump-tools-dump.service:"
                     f" the capture kernel boots the normal system and saves nothing ({full})",
                     f"sed -i 's/^ *KDUMP_CMDLINE_APPEND=.*/#&/' {DEBIAN_DEFAULTS} && "
                     "kdump-config load")
    lacking = [w for w in ("nr_cpus=1", "reset_devices") if w not in words]
    if lacking and setup.tool == "kdump-tools":
        return Check("capture-cmdline", "service", WARNING,
                     f"capture kernel command line lacks {' '.join(lacking)} (more memory "
                     f"used, devices not reset): {full}")
    return Check("capture-cmdline", "service", OK, f"capture kernel command line: {full}")
