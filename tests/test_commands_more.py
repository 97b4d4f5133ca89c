"""kmem -s, kmem ADDR, whatis, vtop/ptov, task, files, vm, list and foreach against crash 8.0.6.

crash's outputs are recorded by tests/record_crash_more.py into tests/crash_outputs/<dump>/
(addresses in more-ADDRESSES); outputs must be equal line by line. The 7.3 dumps, which crash
8.0.6 cannot open, are checked against drgn's port of crash (its files drgn-*.txt there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command
from crashtui.commands.kmemaddr import VMAP_HEADER
from tests.conftest import vmlinux_of

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
# every dump tests/record_crash_more.py recorded (5.10-sysrq, 6.1-sysrq and 6.12-sysrq at least)
CRASH_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/more-ADDRESSES")
                           if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
DRGN_DUMPS = ("7.3-sysrq", "7.3-softlockup", "7.3-bug-kthread", "7.3-test-module")




def addresses(name: str) -> dict[str, str]:
    text = (OUTPUTS / name / "more-ADDRESSES").read_text()
    return dict(line.split("=", 1) for line in text.split())


def crash_lines(name: str, file: str) -> list[str]:
    return (OUTPUTS / name / file).read_text().rstrip("\n").split("\n")


def first_difference(mine: list[str], theirs: list[str]) -> str:
    i = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
             min(len(mine), len(theirs)))
    return (f"first difference at line {i}: mine {mine[i] if i < len(mine) else None!r}, "
            f"crash's {theirs[i] if i < len(theirs) else None!r}")


def check(sessions: dict[str, Session], name: str, file: str, cmd: str,
          theirs: list[str] | None = None, drop: str | None = None) -> None:
    if not (OUTPUTS / name / file).is_file():
        pytest.skip(f"{name}: crash's output for `{cmd}` not recorded (no such address)")
    line = cmd.format(**addresses(name))
    mine = run_command(sessions[name], line)
    theirs = crash_lines(name, file) if theirs is None else theirs
    if drop is not None:
        mine = [x for x in mine if not re.match(drop, x)]
        theirs = [x for x in theirs if not re.match(drop, x)]
    assert mine == theirs, f"{name}: {line}: " + first_difference(mine, theirs)


# -- kmem -s -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), [("kmem-s.txt", "kmem -s"),
                                           ("kmem-s-name.txt", "kmem -s task_struct")])
def test_kmem_s_equals_crash(sessions: dict[str, Session], name: str, file: str,
                             cmd: str) -> None:
    assert {"5.10-sysrq", "6.1-sysrq", "6.12-sysrq"} <= set(CRASH_DUMPS)
    check(sessions, name, file, cmd, crash_kmem_s_corrected(sessions[name], name, file))


def crash_kmem_s_corrected(session: Session, name: str, file: str) -> list[str]:
    """crash's lines with its one known miscount corrected.

    crash's get_kmem_cache_slub_data() skips a CPU without a current slab
    (`if (!cpu_slab_ptr) continue;`) before count_cpu_partial(), so the free objects on that
    CPU's partial slabs (kmem_cache_cpu.partial) are counted as ALLOCATED. They are free:
    slub's own show_slab_objects() sums every CPU's partial slabs whatever its c->slab. On
    5.10-sysrq task_struct, CPU 3 has no slab and 4 free objects on its partial list: crash
    says 71 allocated, 67 is right. Here the objects crash skipped are counted independently
    (walking those CPUs' partial lists) and taken off crash's ALLOCATED.
    """
    from crashtui.kernel.slab import CacheWalk, SlubLayout

    if not (OUTPUTS / name / file).is_file():
        return []
    k = session.kernel
    layout = SlubLayout(k)
    out = []
    for line in crash_lines(name, file):
        m = re.match(r"^([0-9a-f]{16})(\s+\d+\s+)(\d+)(\s+\d+\s+\d+\s+\d+k  \S+)$", line)
        if m and layout.cpu_slab is not None and layout.c_partial is not None:
            cache = int(m.group(1), 16)
            walk = CacheWalk(layout, cache, list(range(k.nr_cpu_ids)))
            base = k.read_u64(cache + layout.cpu_slab)
            skipped = sum(walk._cpu_partial_free(k.read_u64(k.per_cpu(base, cpu) +
                                                            layout.c_partial))
                          for cpu in range(k.nr_cpu_ids)
                          if not k.read_u64(k.per_cpu(base, cpu) + layout.c_slab))
            if skipped:
                allocated = int(m.group(3)) - skipped
                line = f"{m.group(1)}{m.group(2)}{allocated:{len(m.group(3))}d}{m.group(4)}"
        out.append(line)
    return out


def test_kmem_s_crash_miscount_is_corrected() -> None:
    """The correction above applies where it is known to (and only changes ALLOCATED)."""
    import difflib

    name = "5.10-sysrq"
    s = Session.open(next((SAMPLES / name).glob("dump.*")), vmlinux_of(name))
    try:
        fixed = crash_kmem_s_corrected(s, name, "kmem-s.txt")
    finally:
        s.close()
    diff = [d for d in difflib.ndiff(crash_lines(name, "kmem-s.txt"), fixed)
            if d[:1] in "+-"]
    assert "+ ffff8ac1411a5200     7944         67        88     22    32k  task_struct" in diff


def test_kmem_s_one_cache_only(sessions: dict[str, Session]) -> None:
    with pytest.raises(CommandError, match="only one kmem_cache reference"):
        run_command(sessions["6.1-sysrq"], "kmem -s dentry kmalloc-64")
    assert crash_lines("6.1-sysrq", "kmem-s-names.txt") == [
        "kmem: only one kmem_cache reference is allowed"]
    with pytest.raises(CommandError, match="invalid argument"):
        run_command(sessions["6.1-sysrq"], "kmem -s no-such-cache")


DRGN_ROW = re.compile(r"^([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)k\s+(\S+)$")


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_s_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """7.x: no kmem_cache_cpu (sheaves); per_node[] instead of node[]. drgn's slab_cache_usage()
    counts free objects on partial slabs, in per-CPU main/spare sheaves and barns' full
    sheaves; crashtui counts the same (its columns are narrower than crash's: values only)."""
    mine = [DRGN_ROW.match(" ".join(line.split())) for line in
            run_command(sessions[name], "kmem -s")[1:]]
    theirs = [DRGN_ROW.match(" ".join(line.split())) for line in
              crash_lines(name, "drgn-kmem-s.txt")[1:]]
    assert all(mine) and all(theirs) and len(theirs) > 100
    assert [m.groups() for m in mine if m] == [t.groups() for t in theirs if t]


# -- kmem ADDRESS --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), [("kmem-task.txt", "kmem {TASK}"),
                                           ("kmem-stack.txt", "kmem {SP0}"),
                                           ("kmem-symaddr.txt", "kmem {BANNER}"),
                                           ("kmem-free-cpu.txt", "kmem {FREECPU}"),
                                           ("kmem-free-slab.txt", "kmem {FREESLAB}"),
                                           ("kmem-page.txt", "kmem {PAGE}"),
                                           ("kmem-module.txt", "kmem {MODULE}")])
def test_kmem_address_equals_crash(sessions: dict[str, Session], name: str, file: str,
                                   cmd: str) -> None:
    """The cache line of the slab object corrected as for kmem -s (crash's miscount)."""
    check(sessions, name, file, cmd, crash_kmem_s_corrected(sessions[name], name, file))


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_kmem_address_7x(sessions: dict[str, Session], name: str) -> None:
    """7.x (no crash reference): the panic task's task_struct is an allocated object of the
    task_struct cache (its slab's slab_cache), counted as kmem -s counts it; its stack is a
    vmalloc area (CONFIG_VMAP_STACK) of THREAD_SIZE plus the guard page."""
    s = sessions[name]
    task = s.summary.panic_task
    assert task is not None
    out = run_command(s, f"kmem {task.address:x}")
    assert out[:2] == run_command(s, "kmem -s task_struct")
    assert f"  [{task.address:x}]" in out
    assert f"    PID: {task.pid}" in out and out[-2].startswith("      PAGE")
    stack = run_command(s, f"kmem {task.stack + 0x100:x}")
    area = stack[stack.index(VMAP_HEADER) + 1].split()
    assert area[2] == f"{task.stack:x}" and int(area[5]) == 16384 + 4096


# -- whatis, vtop, ptov --------------------------------------------------------------------------

WHATIS = [("whatis-var.txt", "whatis jiffies"), ("whatis-struct.txt", "whatis list_head"),
          ("whatis-struct2.txt", "whatis struct list_head"), ("whatis-func.txt", "whatis panic"),
          ("whatis-task.txt", "whatis init_task"), ("whatis-banner.txt", "whatis linux_banner"),
          ("whatis-syscalls.txt", "whatis sys_call_table"),
          ("whatis-percpu.txt", "whatis runqueues")]
VTOP = [("vtop-task.txt", "vtop {TASK}"), ("ptov.txt", "ptov 1000000"),
        ("vtop-user.txt", "vtop -c 1 400000"), ("vtop-user-stack.txt", "vtop -c {PID} {SP0}")]


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), WHATIS + VTOP)
def test_whatis_vtop_equal_crash(sessions: dict[str, Session], name: str, file: str,
                                 cmd: str) -> None:
    check(sessions, name, file, cmd, with_page_header(name, file))


def with_page_header(name: str, file: str) -> list[str] | None:
    """crash's vtop output with the mem_map header a fresh crash session prints.

    crash prints the `PAGE  PHYSICAL  MAPPING ...` header above vtop's page line only when
    no earlier command of the session printed one: dump_mem_map() skips it while
    HEADER_PRINTED is set in pc->curcmd_flags, which only `kmem` clears (memory.c). The
    recordings ran many commands in one session, so most lack it; 6.1-sysrq's vtop-user.txt,
    recorded first in its session, has it. crashtui's commands are stateless: always the
    header, as in a fresh session.
    """
    from crashtui.commands.kmemaddr import PAGE_HEADER

    if not file.startswith("vtop") or not (OUTPUTS / name / file).is_file():
        return None
    lines = crash_lines(name, file)
    if len(lines) > 2 and lines[-2] == "" and re.match(r"^[0-9a-f]{16} ", lines[-1]):
        lines.insert(len(lines) - 1, PAGE_HEADER)
    return lines


def test_vtop_symbol_is_invalid_input(sessions: dict[str, Session]) -> None:
    """crash's vtop takes addresses only: `vtop linux_banner` is `invalid input`."""
    with pytest.raises(CommandError) as err:
        run_command(sessions["6.1-sysrq"], "vtop linux_banner")
    assert crash_lines("6.1-sysrq", "vtop-banner.txt") == [f"{err.value.message}"]


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_vtop_ptov_7x(sessions: dict[str, Session], name: str) -> None:
    """7.x: vtop's page-table walk ends where the reader's translation does, its PTE flags are
    those of a kernel data page (present, writable, global, no-execute), and ptov goes back;
    `whatis` reads the same declarations as drgn's port prints (7.3-sysrq: `volatile unsigned
    long jiffies;`; drgn names panic's parameter, gdb and crash do not)."""
    s = sessions[name]
    task = s.summary.panic_task
    assert task is not None
    out = run_command(s, f"vtop {task.address:x}")
    phys = s.kernel.translate(task.address)
    assert out[1].split() == [f"{task.address:x}", f"{phys:x}"]
    pte = out[out.index("") + 1:]
    flags = next(line for line in pte if line.endswith(")") and "|" in line).split("(")[1][:-1]
    assert {"PRESENT", "RW", "GLOBAL", "NX"} <= set(flags.split("|"))
    assert run_command(s, f"ptov {phys:x}")[1].split() == [f"{task.address:x}", f"{phys:x}"]
    assert run_command(s, "whatis jiffies") == ["volatile unsigned long jiffies;"]
    assert run_command(s, "whatis panic") == ["void panic(const char *, ...);"]


# -- task, files, vm -----------------------------------------------------------------------------

TASKS = [("task.txt", "task"), ("task-1.txt", "task 1"), ("files.txt", "files"),
         ("files-1.txt", "files 1"), ("vm.txt", "vm"), ("vm-1.txt", "vm 1")]


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), TASKS)
def test_task_files_vm_equal_crash(sessions: dict[str, Session], name: str, file: str,
                                   cmd: str) -> None:
    check(sessions, name, file, cmd, drop=FPU_PADDING)


# The FPU state's `__padding = "..."` char array is left out of `task` comparisons: gdb
# stops a string after 200 "elements" but counts a run of equal characters as one (crash
# prints all 4065 NULs of 6.1-deadlock's, and 416 bytes of 6.1-oom's), while the shared value
# printer (commands/values.py) stops at 256 characters. A printer difference, not task's
# (`struct task_struct` shows it too); the other ~1000 lines of each task are compared.
FPU_PADDING = r'^ +__padding = "'


def _rows(lines: list[str]) -> list[list[str]]:
    """Table rows as tokens (fd or VMA rows, PID headers), drgn's `[heap]`-style names
    dropped (crash prints nothing for an anonymous VMA) and the TYPE column's padding gone."""
    out = []
    for line in lines:
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "PID:":
            out.append(tokens[:4])
        elif tokens[0].isdigit() or (len(tokens[0]) == 16 and len(tokens) >= 4):
            out.append([t for t in tokens if not t.startswith("[")])
    return out


@pytest.mark.parametrize("name", DRGN_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), [("drgn-files-1.txt", "files 1"),
                                           ("drgn-vm-1.txt", "vm 1")])
def test_files_vm_7x_equal_drgn(sessions: dict[str, Session], name: str, file: str,
                                cmd: str) -> None:
    """7.x: the same descriptors (file, dentry, inode, type, path) and the same VMAs (maple
    tree: address, start, end, flags, file) as drgn's port, whose columns are laid out
    differently; the mm line's RSS and TOTAL_VM too."""
    mine = run_command(sessions[name], cmd)
    theirs = crash_lines(name, file)
    assert _rows(mine) == _rows(theirs) and len(_rows(mine)) > 2
    if cmd.startswith("vm"):
        assert mine[2].split() == theirs[2].split()


# -- list ----------------------------------------------------------------------------------------

LISTS = [("list-h.txt", "list task_struct.tasks -h init_task"),
         ("list-h-s.txt", "list task_struct.tasks -s task_struct.pid,comm -h init_task"),
         ("list-o.txt", "list -o task_struct.tasks -h init_task"),
         ("list-H.txt", "list -H modules"),
         ("list-start.txt", "list task_struct.tasks init_task")]


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), LISTS)
def test_list_equals_crash(sessions: dict[str, Session], name: str, file: str,
                           cmd: str) -> None:
    check(sessions, name, file, cmd)


def test_list_walk_is_bounded(sessions: dict[str, Session]) -> None:
    """A list longer than the limit stops with an error; an empty list_head is `(empty)`."""
    from crashtui.kernel.listwalk import walk_entries

    s = sessions["6.1-sysrq"]
    k = s.kernel
    off = k.offsetof("task_struct", "tasks")
    walk = walk_entries(k, k.symbol("init_task") + off, 0, off, 0, True, limit=5)
    assert len(walk.entries) == 5 and walk.error == "list longer than 5 entries"
    children = k.offsetof("task_struct", "children")
    kthread = next(t for t in s.tasks.tasks if t.comm == "rcu_gp")  # a worker: no children
    assert run_command(s, f"list -H {kthread.address + children:x}") == ["(empty)"]
    assert len(run_command(s, f"list -H {k.symbol('init_task') + children:x}")) >= 2


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_list_7x(sessions: dict[str, Session], name: str) -> None:
    """7.x: init_task.tasks holds init_task and every thread-group leader (the task list
    crashtui reads for ps, walked independently)."""
    s = sessions[name]
    out = run_command(s, "list task_struct.tasks -h init_task")
    leaders = {t.address for t in s.tasks.tasks if t.pid == t.tgid and not t.idle}
    assert out[0] == f"{s.kernel.symbol('init_task'):x}"
    assert {int(a, 16) for a in out[1:]} == leaders - {s.kernel.symbol("init_task")}


# -- foreach -------------------------------------------------------------------------------------

FOREACH = [("foreach-ps.txt", "foreach ps"), ("foreach-files.txt", "foreach files"),
           ("foreach-vm.txt", "foreach vm"), ("foreach-1-task.txt", "foreach 1 task"),
           ("foreach-RU-ps.txt", "foreach RU ps"),
           ("foreach-init-files.txt", "foreach init files")]


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), FOREACH)
def test_foreach_equals_crash(sessions: dict[str, Session], name: str, file: str,
                              cmd: str) -> None:
    check(sessions, name, file, cmd, drop=FPU_PADDING)


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_foreach_files_7x_equals_drgn(sessions: dict[str, Session], name: str) -> None:
    """7.x: every task's header and descriptors as drgn's port lists them (drgn 0.3.0's
    `foreach vm` stops after the first task, so it is not a reference; vm 1 is above)."""
    mine = _rows(run_command(sessions[name], "foreach files"))
    theirs = _rows(crash_lines(name, "drgn-foreach-files.txt"))
    assert len(mine) > 80 and mine == theirs, first_difference(
        [" ".join(r) for r in mine], [" ".join(r) for r in theirs])


# -- without the vmlinux (in-memory BTF and kallsyms) --------------------------------------------

NO_VMLINUX = ["kmem -s", "kmem {TASK}", "kmem {SP0}", "files", "vm 1", "task",
              "list task_struct.tasks -s task_struct.pid -h init_task", "vtop {TASK}",
              "foreach files", "whatis panic", "whatis list_head", "whatis runqueues"]


@pytest.fixture(scope="module")
def memory_only() -> Iterator[Session]:
    s = Session.open(next((SAMPLES / "6.1-sysrq").glob("dump.*")), None)
    yield s
    s.close()


@pytest.mark.parametrize("cmd", NO_VMLINUX)
def test_same_without_vmlinux(sessions: dict[str, Session], memory_only: Session,
                              cmd: str) -> None:
    """Every layout these commands need is read from BTF, which the dump's memory holds."""
    line = cmd.format(**addresses("6.1-sysrq"))
    assert run_command(memory_only, line) == run_command(sessions["6.1-sysrq"], line)


def test_whatis_variable_needs_dwarf(memory_only: Session) -> None:
    with pytest.raises(CommandError, match="needs the debug vmlinux"):
        run_command(memory_only, "whatis jiffies")


def test_completion_of_new_commands(sessions: dict[str, Session]) -> None:
    from crashtui.commands.complete import complete

    s = sessions["6.1-sysrq"]
    assert complete(s, "kmem -s task_str") == ["kmem -s task_struct "]
    assert "kmem -s kmalloc-64" in complete(s, "kmem -s kmalloc-")
    assert complete(s, "whatis list_he") == ["whatis list_head "]
    assert complete(s, "whatis init_ta") == ["whatis init_task "]
    assert "vtop" in complete(None, "vt")[0] and complete(None, "whati") == ["whatis "]


def test_kmem_address_in_a_sheaf_is_free_7x(sessions: dict[str, Session]) -> None:
    """7.x: an object cached in CPU 0's sheaf is free though its slab counts it in use. drgn
    0.3.0's slab_object_info(prog, 0xffff8e5b81fbe180) on 7.3-sysrq: slab_cache
    0xffff8e5b81042700 (kmalloc-64), slab 0xfffff697c007ef80, allocated=False."""
    out = run_command(sessions["7.3-sysrq"], "kmem ffff8e5b81fbe180")
    assert out[1].startswith("ffff8e5b81042700 ") and out[1].endswith("  kmalloc-64")
    assert out[3].split()[:2] == ["fffff697c007ef80", "ffff8e5b81fbe000"]
    assert "   ffff8e5b81fbe180  (cpu 0 cache)" in out
