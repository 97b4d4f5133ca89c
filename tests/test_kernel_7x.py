"""Kernels crash cannot open (Debian's 7.x: crash 9.0.2 stops at module_num_gpl_syms): every
fact checked against the dump's own dmesg (makedumpfile --dump-dmesg) and the kernel's own
oops report in it.

Each sample dump without crash's outputs (no crash/sys.txt: today the 7.3 ones, tomorrow a
new kernel's) is opened with its debug vmlinux and without one (the kernel's kallsyms, BTF and
ORC from its memory): both must print the same facts.
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import SAMPLES, dump_of, manifest_of, vmlinux_of

from crashtui.analysis.session import Session
from crashtui.commands import run_command

SEVEN = sorted(p.name for p in SAMPLES.glob("*-*") if (p / "MANIFEST").is_file()
               and not (p / "crash" / "sys.txt").is_file()
               and "\narch=arm64" not in "\n" + (p / "MANIFEST").read_text())  # test_arm64.py
pytestmark = pytest.mark.skipif(not SEVEN, reason="no sample dump without crash's outputs")

_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\] \[\s*([TC]\d+)\] ?(.*)$")
_FRAME = re.compile(r"^ (?:\? )?([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?$")



def dmesg_of(name: str) -> list[tuple[str, str, str]]:
    """(timestamp, caller, text) of each line of the dump's own dmesg."""
    text = (SAMPLES / name / manifest_of(SAMPLES / name)["dmesg"]).read_text(errors="replace")
    out = []
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
        elif out:  # a continuation line of the record before
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + "\n" + line.strip())
    return out


def kernel_call_trace(name: str) -> list[str]:
    """The functions of the last `Call Trace:` in dmesg (reliable entries only), in order."""
    lines = [text for _, _, text in dmesg_of(name)]
    start = max(i for i, t in enumerate(lines) if t.startswith("Call Trace:"))
    out = []
    for text in lines[start + 1:]:
        if text.startswith(("RIP:", "---[ end", "Kernel Offset")) or text.strip() == "</TASK>":
            break
        m = _FRAME.match(" " + text.strip())
        if m and not text.strip().startswith("?"):
            out.append(m.group(1))
    # panic()'s own dump_stack_lvl() had returned before the dump was taken
    while out and out[0].startswith(("dump_stack", "show_stack")):
        out.pop(0)
    return out


@pytest.fixture(scope="module", params=SEVEN or ["none"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def with_vmlinux(name: str) -> Session:
    return Session.open(dump_of(name), vmlinux_of(name))


@pytest.fixture(scope="module")
def dump_only(name: str) -> Session:
    return Session.open(dump_of(name), None)


def fields(session: Session) -> dict[str, str]:
    return {line[:12].strip(): line[14:] for line in run_command(session, "sys")}


@pytest.mark.parametrize("mode", ["vmlinux", "dump only"])
def test_sys_every_field(name: str, with_vmlinux: Session, dump_only: Session,
                         mode: str) -> None:
    """Every `sys` field is read, no warning; RELEASE, DATE, UPTIME, PANIC agree with the
    MANIFEST and the dump's own dmesg."""
    session = with_vmlinux if mode == "vmlinux" else dump_only
    f = fields(session)
    assert "WARNING" not in f, run_command(session, "sys")
    assert all("unavailable" not in v and "DAMAGED" not in v for v in f.values()), f
    m = manifest_of(SAMPLES / name)
    assert f["RELEASE"] == m["kernel_release"]
    stamp = m["dump"].removeprefix("dump.")  # guest UTC time of the capture: YYYYMMDDHHMM
    crashed = time.mktime(time.strptime(f["DATE"], "%a %b %d %H:%M:%S %Z %Y"))
    captured = time.mktime(time.strptime(stamp, "%Y%m%d%H%M"))
    assert 0 <= captured - crashed + 60 <= 180, (f["DATE"], stamp)
    log = dmesg_of(name)
    hh, mm, ss = (int(x) for x in f["UPTIME"].split(":"))
    assert abs(hh * 3600 + mm * 60 + ss - float(log[-1][0])) < 5
    # the oops line (panic_on_oops kexecs from oops_end(): no "Kernel panic" line follows)
    message = f["PANIC"].split('"')[1]
    assert message.startswith(("Kernel panic - not syncing", "kernel BUG at", "BUG: ", "Oops"))
    assert any(message in text for _, _, text in log)
    assert int(f["TASKS"]) > 50
    assert f["CPUS"] == "4" and f["MEMORY"] == "1 GB"


def test_same_facts_with_and_without_vmlinux(with_vmlinux: Session, dump_only: Session) -> None:
    """The dump's own kallsyms, BTF and ORC give what the debug vmlinux gives."""
    for command in ("sys", "bt -a", "log", "ps", "kmem -i", "mod", "foreach bt"):
        a, b = run_command(with_vmlinux, command), run_command(dump_only, command)
        if command == "sys":
            a, b = a[1:], b[1:]  # KERNEL: the vmlinux path / "(none: in-memory symbols)"
        assert a == b, command


def test_log_is_the_dumps_dmesg(name: str, with_vmlinux: Session) -> None:
    """`log -c` holds every record of makedumpfile's --dump-dmesg, with its caller id."""
    expected = []
    for ts, caller, text in dmesg_of(name):
        expected.append(f"[{float(ts):12.6f}] [{caller:>6}] {text.split(chr(10))[0]}".rstrip())
    got = [line.rstrip() for line in run_command(with_vmlinux, "log -c")
           if line.startswith("[")]
    assert got == expected


def test_panic_cpu_frames_hold_the_kernels_call_trace(name: str, with_vmlinux: Session,
                                                      dump_only: Session) -> None:
    """The panic CPU's frames contain, in order, every reliable frame the kernel printed."""
    trace = kernel_call_trace(name)
    assert trace
    for session in (with_vmlinux, dump_only):
        bt = run_command(session, "bt")
        funcs = [m.group(1) for line in bt if (m := re.match(r"\s*#\d+ \[\w+\] (\S+) at", line))]
        pos = 0
        for fn in trace:
            assert fn in funcs[pos:], (fn, trace, funcs)
            pos = funcs.index(fn, pos) + 1


def test_faulting_function_is_the_oopses_rip(name: str, with_vmlinux: Session) -> None:
    """Where the kernel printed an oops (RIP: 0010:func+off/len), bt's exception frame and
    triage name the same function and offset."""
    rips = [t for _, _, t in dmesg_of(name) if t.startswith("RIP: 0010:")]
    if not rips:
        pytest.skip("no kernel-mode oops in this dump (a panic without an exception frame)")
    func_off = rips[0].removeprefix("RIP: 0010:").split("/")[0]
    func, off = func_off.split("+")
    bt = "\n".join(run_command(with_vmlinux, "bt"))
    assert f"[exception RIP: {func}+{int(off, 16)}]" in bt
    culprit = next(line for line in run_command(with_vmlinux, "triage")
                   if line.startswith("CULPRIT:"))
    assert f" {func}+" in culprit, culprit


def test_modules_are_the_oopses_modules(name: str, with_vmlinux: Session) -> None:
    """`mod` lists exactly the modules the kernel's oops report says were linked in."""
    linked = [t for _, _, t in dmesg_of(name) if t.startswith("Modules linked in:")]
    names = {line.split()[1] for line in run_command(with_vmlinux, "mod")[1:]}
    assert {"virtio_blk", "qemu_fw_cfg"} <= names
    if linked:
        # taint flags after a name: (OE), (OE+) while loading, ...
        kernel = set(re.sub(r"\([A-Z+-]+\)", "", linked[-1].removeprefix("Modules linked in:"))
                     .split())
        assert names == kernel


def test_ps_lists_every_task_once(with_vmlinux: Session) -> None:
    rows = [row.lstrip(">").split() for row in run_command(with_vmlinux, "ps")[1:]
            if not row.startswith("ps: ")]  # "ps: PID n: mm unreadable" notes
    assert len(rows) == int(fields(with_vmlinux)["TASKS"])
    addresses = [row[3] for row in rows]
    assert len(set(addresses)) == len(addresses)
    assert ["1", "0", "init"] == [rows[4][0], rows[4][1], rows[4][-1]]  # after 4 idle tasks


def test_slab_pages_known_through_compound_info(with_vmlinux: Session) -> None:
    """7.1+ tail pages hold a mask in page->compound_info, not the head's address: the task
    structs (order-3 slabs here) are still known to be slab pages, head page or tail."""
    from crashtui.kernel.pageuse import _compound_head, page_use

    k = with_vmlinux.kernel
    assert "page.compound_info" in k.vmcoreinfo.offsets
    pfns = {k.translate(t.address) >> 12 for t in with_vmlinux.tasks.tasks if not t.idle}
    assert all(page_use(k, pfn) == "slab" for pfn in pfns)
    vmemmap = k.vmcoreinfo.symbols["vmemmap"]
    o_info = k.vmcoreinfo.offsets["page.compound_info"]
    tails = [pfn for pfn in pfns if k.read_u64(vmemmap + 64 * pfn + o_info) & 1]
    assert tails  # the mask path is exercised
    for pfn in tails:
        page = vmemmap + 64 * pfn
        head = _compound_head(k, page, k.read_u64(page + o_info))
        assert head < page and (page - head) // 64 < 8
    assert page_use(k, k.translate(k.symbol("panic")) >> 12) is None


@pytest.mark.parametrize("mode", ["vmlinux", "dump only"])
def test_mod_s_gives_the_modules_source_lines(name: str, mode: str) -> None:
    """`mod -s NAME KO` on the sample's own module: its frames get file:line, the culprit too."""
    kos = sorted((SAMPLES / name).glob("*/*.ko"))
    if not kos:
        pytest.skip("no module of the sample's own")
    ko = kos[0]
    session = Session.open(dump_of(name), vmlinux_of(name) if mode == "vmlinux" else None)
    module = ko.stem.replace("-", "_")
    out = run_command(session, f"mod -s {module} {ko}")
    assert str(ko) in out[-1]
    source = ko.with_suffix(".c").name
    # a hang's module frame is on the blocked task, not on the watchdog's panic CPU
    culprit_task = session.triage.culprit.pid if session.triage.culprit else None
    bt = run_command(session, "bt -l" if culprit_task is None else f"bt -l {culprit_task}")
    # the frame in the module gets a source line (the innermost inlined one, as crash does)
    at = next(i for i, line in enumerate(bt) if "exception RIP" in line or f"[{module}]" in line)
    after = bt[at + 1:next(i for i in range(at + 1, len(bt)) if bt[i].lstrip().startswith("#"))]
    assert any(re.search(r"\.[ch]: \d+$", line) for line in after), after
    culprit = next(line for line in run_command(session, "triage") if line.startswith("CULPRIT"))
    assert f"[{module}]" in culprit and source in culprit


_HUNG = re.compile(r"^INFO: task (.+):(\d+) blocked for more than (\d+) seconds\.$")
_BLOCKER = re.compile(r"^INFO: task (.+):(\d+) is blocked on a mutex likely owned by task "
                      r"(.+):(\d+)\.$")


def test_blocked_tasks_are_the_kernels(name: str, with_vmlinux: Session,
                                       dump_only: Session) -> None:
    """Each task the hung-task watchdog named (`INFO: task X:PID blocked for more than N
    seconds`) is a blocked task not run for more than N s, its backtrace holds the call trace
    the kernel printed for it, in order; where the kernel named the mutex's owner (7.x's
    CONFIG_DETECT_HUNG_TASK_BLOCKER, from task_struct.blocked_on), the owner is the same."""
    log = [text for _, _, text in dmesg_of(name)]
    hung = [(i, m) for i, t in enumerate(log) if (m := _HUNG.match(t.split("\n")[0]))]
    if not hung:
        pytest.skip("the hung-task watchdog named no task in this dump")
    owners = {int(m.group(2)): int(m.group(4)) for t in log if (m := _BLOCKER.match(t))}
    for session in (with_vmlinux, dump_only):
        hang = session.hang
        by_pid = {b.task.pid: b for b in hang.blocked}
        for i, m in hung:
            b = by_pid[int(m.group(2))]
            assert b.task.comm == m.group(1)
            assert b.since is not None and b.since > int(m.group(3)) * 10**9
            trace = []
            for text in log[i + 1:]:
                if text.startswith(("INFO: task", "Kernel panic")) or text.strip() == "</TASK>":
                    break
                f = _FRAME.match(" " + text.strip())
                if f and not text.strip().startswith("?"):
                    trace.append(f.group(1))
            assert trace
            bt = run_command(session, f"bt {b.task.pid}")
            funcs = [f.group(1) for line in bt if (f := re.match(r"\s*#\d+ \[\w+\] (\S+) at", line))]
            assert funcs == trace[:len(funcs)] and len(trace) - len(funcs) <= 3, (trace, funcs)
        for waiter, owner in owners.items():
            w = by_pid[waiter].wait
            assert w is not None and w.kind == "mutex" and w.owner is not None
            assert next(t.pid for t in session.tasks.tasks if t.address == w.owner) == owner
        if owners and all(o in owners for o in owners.values()):  # the kernel's own cycle
            assert hang.cycles and {e.waiter for c in hang.cycles for e in c} == {
                by_pid[p].task.address for p in owners}


def test_runq_reads_every_queue(with_vmlinux: Session) -> None:
    """`runq` on 7.x: per-CPU symbols are absolute since 6.15, so runqueues + the CPU's
    offset wraps past 2^64 as in the kernel (it printed 65-bit addresses and walked no
    queue: "list ... has a cycle"); each CPU's current task is the one `ps` marks active."""
    out = run_command(with_vmlinux, "runq")
    assert not [line for line in out if line.startswith("runq:")], out
    rqs = [line.split(": ")[1] for line in out if re.match(r"^CPU \d+ RUNQUEUE: ", line)]
    assert len(rqs) == 4 and all(len(a) == 16 for a in rqs), rqs
    current = sorted(int(line.split()[2]) for line in out if line.startswith("  CURRENT: PID:"))
    active = sorted(int(row.split()[1]) for row in run_command(with_vmlinux, "ps")[1:]
                    if row.startswith(">"))
    assert current == active


# --- against drgn's port of crash's commands (sample-dumps/7.*/drgn/, drgn 0.3.0) -------------

def drgn_lines(name: str, command: str) -> list[str]:
    path = SAMPLES / name / "drgn" / f"{command}.txt"
    if not path.is_file():
        pytest.skip(f"no drgn reference {path.name} for {name}")
    return path.read_text().splitlines()


def test_sys_equals_drgn(name: str, with_vmlinux: Session) -> None:
    """Every field drgn's `crash sys` shows the same way (MEMORY and MACHINE differ by
    definition: drgn/KNOWN-ERRORS.md)."""
    theirs = {line[:12].strip(): line[14:] for line in drgn_lines(name, "sys")}
    ours = fields(with_vmlinux)
    for key in ("CPUS", "DATE", "LOAD AVERAGE", "TASKS", "NODENAME", "RELEASE", "VERSION"):
        assert ours[key] == theirs[key], key
    # PANIC: crashtui picks the line as crash's get_panicmsg() does (its list has "Oops: " but
    # not 5.x's "BUG: kernel NULL pointer dereference"); drgn takes the first oops line
    if ours["PANIC"].startswith('"Oops: '):
        assert theirs["PANIC"].startswith('"BUG: ')
    else:
        assert ours["PANIC"] == theirs["PANIC"]
    # UPTIME: crashtui counts jiffies as crash does (whole seconds, rounded down); drgn's
    # port rounds otherwise: they may differ by a second
    def seconds(hms: str) -> int:
        h, m, sec = (int(x) for x in hms.split(":"))
        return h * 3600 + m * 60 + sec

    assert abs(seconds(ours["UPTIME"]) - seconds(theirs["UPTIME"])) <= 1


def test_kmem_equals_drgn(name: str, with_vmlinux: Session) -> None:
    """The PAGES of every row drgn's `crash kmem -i` prints, COMMITTED included."""
    kmem = with_vmlinux.kmem
    rows = 0
    for line in drgn_lines(name, "kmem-i")[1:]:
        m = re.match(r"\s*([A-Z][A-Z ]+?)\s{2,}(\d+)\s", line)
        if m:
            row = kmem.row(m.group(1))
            assert row is not None and row.pages == int(m.group(2)), line
            rows += 1
    assert rows >= 10


def test_ps_equals_drgn(name: str, with_vmlinux: Session) -> None:
    """Same tasks (PID, PPID, CPU, TASK, COMM) in the same order; drgn spells states R/S/D."""
    def rows(lines: list[str]) -> list[tuple[str, ...]]:
        out = []
        for line in lines[1:]:
            parts = line.lstrip(">").split()
            if len(parts) >= 9 and parts[0].isdigit():
                out.append((*parts[:4], " ".join(parts[8:])))
        return out

    assert rows(run_command(with_vmlinux, "ps")) == rows(drgn_lines(name, "ps"))


def test_ps_states_equal_drgn(name: str, with_vmlinux: Session) -> None:
    """Each task's state (7.x's task_struct.__state) is drgn's, in crash's spelling: the
    blocked tasks `hang` analyses are drgn's D tasks."""
    spelled = {"RU": "R", "IN": "S", "UN": "D", "ID": "I", "ST": "T", "TR": "t", "ZO": "Z",
               "DE": "X", "WA": "W", "PA": "P", "NE": "N", "SW": "W", "LO": "L"}

    def states(lines: list[str]) -> list[tuple[str, str]]:
        out = []
        for line in lines[1:]:
            parts = line.lstrip(">").split()
            if len(parts) >= 9 and parts[0].isdigit():
                out.append((parts[3], parts[4]))
        return out

    ours = [(task, spelled.get(st, st)) for task, st in states(run_command(with_vmlinux, "ps"))]
    assert ours == states(drgn_lines(name, "ps"))
    d = sorted(task for task, st in ours if st == "D")
    assert d == sorted(f"{b.task.address:x}" for b in with_vmlinux.hang.blocked)


def test_mod_equals_drgn(name: str, with_vmlinux: Session) -> None:
    """Same modules, struct module addresses, bases and sizes (drgn lists in another order).
    A module still in its init (`(OE+)` in the oops) is sized as crash sizes it, the core
    memory; drgn adds the init memory it still holds."""
    loading = {m.group(1) for _, _, t in dmesg_of(name) if t.startswith("Modules linked in:")
               for m in re.finditer(r"(\w+)\([A-Z]*\+\)", t)}
    # a hung task's trace through do_init_module: its module's init has not returned
    in_trace: set[str] = set()
    for _, _, t in dmesg_of(name):
        f = _FRAME.match(" " + t.strip())
        if t.startswith("Call Trace:"):
            in_trace = set()
        elif f and f.group(2):
            in_trace.add(f.group(2))
        elif f and f.group(1) == "do_init_module":
            loading |= in_trace

    def rows(lines: list[str]) -> set[tuple[str, ...]]:
        return {tuple(line.split()[:3 if line.split()[1] in loading else 4])
                for line in lines[1:] if line.strip()}

    assert rows(run_command(with_vmlinux, "mod")) == rows(drgn_lines(name, "mod"))


def test_log_text_equals_drgn(name: str, with_vmlinux: Session) -> None:
    """drgn's `crash log` has the same records (it does not indent continuation lines)."""
    ours = [line.strip() for line in run_command(with_vmlinux, "log")]
    assert ours == [line.strip() for line in drgn_lines(name, "log")]


EXPECTED_KIND = {"sysrq": "sysrq", "bug-kthread": "bug", "softlockup": "soft-lockup",
                 "test-module": "null-pointer-dereference", "hung-task": "hung-task",
                 "deadlock": "deadlock"}


@pytest.mark.parametrize("mode", ["vmlinux", "dump only"])
def test_json_and_triage(name: str, with_vmlinux: Session, dump_only: Session,
                         mode: str) -> None:
    """The JSON document is valid against its schema, with the triage kind of the scenario."""
    import json

    import jsonschema

    from crashtui.report.jsondoc import build_document

    session = with_vmlinux if mode == "vmlinux" else dump_only
    doc = json.loads(json.dumps(build_document(session)))
    schema = json.loads((SAMPLES.parent / "docs" / "crashtui.schema.json").read_text())
    jsonschema.validate(doc, schema)
    scenario = name.split("-", 1)[1]
    if scenario in EXPECTED_KIND:
        assert doc["triage"]["kind"] == EXPECTED_KIND[scenario]
    assert len(doc["backtraces"]) == 4
