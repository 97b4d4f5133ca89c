"""mount, net, net -s, dev, dev -d/-D and swap against crash 8.0.6 (5.10, 6.1, 6.12) and
drgn (7.3).

crash's outputs are recorded by tests/record_crash_devices.py into tests/crash_outputs/<dump>/
and must be equal byte for byte (trailing spaces included); drgn's (tests/
record_drgn_devices.py, files drgn-*.txt) are other tables, so on the 7.3 dumps the values
are compared.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from crashtui.analysis.session import Session
from crashtui.commands import CommandError, run_command
from crashtui.debuginfo.btf import TypeNotFoundError

SAMPLES = Path(__file__).resolve().parent.parent / "sample-dumps"
OUTPUTS = Path(__file__).resolve().parent / "crash_outputs"
CRASH_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/dev-d.txt")
                           if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
DRGN_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/drgn-disks.txt")
                          if (SAMPLES / p.parent.name / "MANIFEST").is_file()))
COMMANDS = [("mount.txt", "mount"), ("mount-n-1.txt", "mount -n 1"), ("net.txt", "net"),
            ("net-n-pid.txt", "net -n {PID}"), ("net-s.txt", "net -s"),
            ("net-s-pids.txt", "net -s 1 {PID}"), ("dev.txt", "dev"), ("dev-d.txt", "dev -d"),
            ("dev-D.txt", "dev -D"), ("swap.txt", "swap")]


def recorded(name: str, file: str) -> list[str]:
    return (OUTPUTS / name / file).read_text().rstrip("\n").split("\n")


def mine(session: Session, cmd: str) -> list[str]:
    out = run_command(session, cmd)
    while out and out[-1] == "":  # the recorder strips crash's trailing blank lines
        out.pop()
    return out


def first_difference(a: list[str], b: list[str]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
             min(len(a), len(b)))
    return (f"first difference at line {i}: mine {a[i] if i < len(a) else None!r}, "
            f"reference {b[i] if i < len(b) else None!r}")


def test_recorded_where_expected() -> None:
    assert {"5.10-sysrq", "6.1-sysrq", "6.1-test-module", "6.12-sysrq"} <= set(CRASH_DUMPS)
    assert "7.3-sysrq" in DRGN_DUMPS


@pytest.mark.parametrize("name", CRASH_DUMPS)
@pytest.mark.parametrize(("file", "cmd"), COMMANDS)
def test_equals_crash(sessions: dict[str, Session], name: str, file: str, cmd: str) -> None:
    line = cmd.format(PID=(OUTPUTS / name / "devices-PID").read_text().strip())
    a, b = mine(sessions[name], line), recorded(name, file)
    assert a == b, f"{name}: {line}: " + first_difference(a, b)


OWNER_DUMPS = tuple(sorted(p.parent.name for p in OUTPUTS.glob("*/net-s-owners.txt")
                           if (SAMPLES / p.parent.name / "MANIFEST").is_file()))


@pytest.mark.parametrize("name", OWNER_DUMPS)
def test_sockets_of_their_owners_equal_crash(sessions: dict[str, Session], name: str) -> None:
    """net -s of the tasks the scenario opened sockets in (sockets-PIDS, from the console's
    "socket owner" lines): TCP over IPv4 and v4-mapped IPv6, UDP, raw ICMP, AF_UNIX."""
    pids = (OUTPUTS / name / "sockets-PIDS").read_text().split()
    a, b = mine(sessions[name], "net -s " + " ".join(pids)), recorded(name, "net-s-owners.txt")
    assert a == b, f"{name}: net -s {' '.join(pids)}: " + first_difference(a, b)


@pytest.mark.parametrize("name", OWNER_DUMPS)
def test_socket_and_pipe_files_equal_crash(sessions: dict[str, Session], name: str) -> None:
    """foreach files where tasks hold sockets and pipes: a pseudo filesystem's dentry is its
    own parent, and crash's get_pathname() prints its name bare (SOCK "UNIX", "TCPv6", "RAW")
    or nothing (a pipe's FIFO, name ""), not "/UNIX" or "/"."""
    a, b = mine(sessions[name], "foreach files"), recorded(name, "foreach-files.txt")
    assert a == b, f"{name}: foreach files: " + first_difference(a, b)
    paths = {line.split()[4:] and " ".join(line.split()[4:]) for line in b
             if line[:3].strip().isdigit()}
    assert {"SOCK UNIX", "SOCK TCPv6", "SOCK TCP", "SOCK UDP", "SOCK RAW", "FIFO"} <= paths


def test_busy_io_exercises_the_rows() -> None:
    """6.1-busy-io is there for the rows the other samples lack: crash counts requests in
    flight (3 O_DIRECT reads and a write on the throttled vdb, a swap-out write on vdc), a
    swap partition in use (awk squeezed by a cgroup's memory.max) and sockets of every kind
    the scenario opened. Skipped only where the sample is not committed."""
    if "6.1-busy-io" not in CRASH_DUMPS:
        pytest.skip("no 6.1-busy-io sample")
    rows = {r.split()[2]: r.split()[4:] for r in recorded("6.1-busy-io", "dev-d.txt")[1:]}
    assert rows == {"vda": ["0", "0", "0"], "vdb": ["4", "3", "1"], "vdc": ["1", "0", "1"]}
    assert recorded("6.1-busy-io", "dev-D.txt")[1:] == [
        r for r in recorded("6.1-busy-io", "dev-d.txt") if " vda " not in r][1:]
    assert recorded("6.1-busy-io", "swap.txt")[1].split()[1:] == [
        "PARTITION", "65532k", "9180k", "14%", "-2", "/dev/vdc"]
    kinds = {r.split()[3] for r in recorded("6.1-busy-io", "net-s-owners.txt")
             if r[:2].strip().isdigit()}
    assert kinds == {"INET6:STREAM", "INET:STREAM", "UNIX:DGRAM", "INET:DGRAM", "INET:RAW"}


def test_busy_io_kmem_i_is_what_meminfo_says(sessions: dict[str, Session]) -> None:
    """kmem -i's two differences from crash on 6.1-busy-io (crash/KNOWN-ERRORS.md): COMMITTED
    is percpu_counter_sum_positive(&vm_committed_as) (crash: the central count), CACHED
    subtracts total_swapcache_pages(), the nrpages of the swap device's address_spaces (crash:
    the global NR_SWAPCACHE, short of CPU 0's unfolded vm_node_stat_diff)."""
    if "6.1-busy-io" not in CRASH_DUMPS:
        pytest.skip("no 6.1-busy-io sample")
    s = sessions["6.1-busy-io"]
    k = s.kernel
    counter = k.symbol("vm_committed_as")
    central = k.read_s64(counter + k.offsetof("percpu_counter", "count"))
    deltas = k.read_u64(counter + k.offsetof("percpu_counter", "counters"))
    online = k.cpumask("__cpu_online_mask")
    committed = central + sum(k.read_s32(deltas + k.per_cpu_offsets[cpu]) for cpu in online)
    # the swap cache: swapper_spaces[0][0].nrpages (one bank for 64 MiB), and NR_SWAPCACHE
    idx = k.btf.enum("node_stat_item")["NR_SWAPCACHE"]
    stale = k.read_s64(k.symbol("vm_node_stat") + 8 * idx)
    pgdat = k.read_u64(k.symbol("node_data"))
    pcp = k.read_u64(pgdat + k.offsetof("pglist_data", "per_cpu_nodestats"))
    o_diff = k.offsetof("per_cpu_nodestat", "vm_node_stat_diff") + idx
    unfolded = [int.from_bytes(k.read(k.per_cpu(pcp, c) + o_diff, 1), "little", signed=True)
                for c in online]
    assert k.read_u32(k.symbol("nr_swapper_spaces")) == 1
    spaces = k.read_u64(k.symbol("swapper_spaces"))
    swapcache = k.read_u64(spaces + k.offsetof("address_space", "nrpages"))
    assert (stale, unfolded, swapcache) == (993, [12, 0, 0, 0], 1005) and \
        stale + sum(unfolded) == swapcache
    file_pages = k.read_s64(k.symbol("vm_node_stat")
                            + 8 * k.btf.enum("node_stat_item")["NR_FILE_PAGES"])
    crash = (SAMPLES / "6.1-busy-io" / "crash" / "kmem-i.txt").read_text().splitlines()
    mine_ = run_command(s, "kmem -i=shared")  # crash 8.0.6 always prints SHARED
    differ = ("  COMMITTED ", "  CACHED ")
    assert [x for x in mine_ if not any(d in x for d in differ)] == \
        [x for x in crash if not any(d in x for d in differ)]

    def pages(lines: list[str], label: str) -> int:
        return int(next(x for x in lines if f"  {label} " in x).split()[1])

    buffers = pages(mine_, "BUFFERS")
    assert pages(mine_, "COMMITTED") == committed == 11098
    assert pages(crash, "COMMITTED") == central == 64
    assert pages(mine_, "CACHED") == file_pages - swapcache - buffers == 5359
    assert pages(crash, "CACHED") == file_pages - stale - buffers == 5371


def test_dev_d_header_follows_the_layout(sessions: dict[str, Session]) -> None:
    """5.10 still has enum BLK_RW_SYNC (crash counts ASYNC/SYNC), 6.1 does not (READ/WRITE):
    the header is chosen by the type information, as crash chooses it."""
    assert "TOTAL ASYNC  SYNC" in run_command(sessions["5.10-sysrq"], "dev -d")[0]
    assert "TOTAL  READ WRITE" in run_command(sessions["6.1-sysrq"], "dev -d")[0]


@pytest.mark.parametrize("name", ["5.10-sysrq", "6.1-sysrq", "7.3-sysrq"])
def test_every_hardware_queue_is_walked(sessions: dict[str, Session], name: str) -> None:
    """The tag walk reaches every blk_mq_hw_ctx: queue_hw_ctx[] (5.10, 7.x) or the
    hctx_table XArray (5.18 to 6.18), one per request_queue.nr_hw_queues, each with tags."""
    from crashtui.kernel.blockdev import _hw_queues, disk_table

    k = sessions[name].kernel
    disks = disk_table(k).disks
    assert [d.name for d in disks] == ["vda"]
    errors: list[str] = []
    hctxs = _hw_queues(k, disks[0].queue, errors)
    assert not errors
    assert len(hctxs) == k.member(disks[0].queue, "request_queue", "nr_hw_queues", 4) >= 1
    assert all(k.pointer(h, "blk_mq_hw_ctx", "tags") for h in hctxs)


@pytest.mark.parametrize("name", ["5.10-sysrq", "6.1-sysrq", "6.12-sysrq", "7.3-sysrq"])
def test_stale_requests_are_not_in_flight(sessions: dict[str, Session], name: str) -> None:
    """No tag is busy in these dumps, but the driver tags' rqs[] still holds the request of
    the last read (the partition scan): read at the offsets crash uses, it belongs to the
    disk's queue and is idle (MQ_RQ_IDLE), so it is rightly not counted."""
    from crashtui.kernel.blockdev import _hw_queues, disk_table, queue_in_flight, request_state

    k = sessions[name].kernel
    disk = disk_table(k).disks[0]
    stale = []
    for hctx in _hw_queues(k, disk.queue, []):
        tags = k.pointer(hctx, "blk_mq_hw_ctx", "tags")
        rqs = k.pointer(tags, "blk_mq_tags", "rqs")
        raw = k.read(rqs, 8 * k.member(tags, "blk_mq_tags", "nr_tags", 4))
        stale += [request_state(k, rq) for i in range(0, len(raw), 8)
                  if (rq := int.from_bytes(raw[i:i + 8], "little"))]
    assert stale and all(s == (disk.queue, 0, 0) for s in stale)  # REQ_OP_READ, MQ_RQ_IDLE
    assert queue_in_flight(k, disk.queue, disk.gendisk, []) == [0, 0]


@pytest.mark.parametrize("name", ["5.10-sysrq", "6.1-sysrq", "6.12-sysrq", "7.3-sysrq",
                                  "7.3-test-module"])
def test_block_major_gendisk_is_the_disks(sessions: dict[str, Session], name: str) -> None:
    """dev's BLKDEV row of the disk's major names the gendisk dev -d lists (found by bdev_map
    before 5.11, by the block device inodes after) and its fops, virtblk_fops, in a module."""
    s = sessions[name]
    disk = run_command(s, "dev -d")[1].split()
    rows = [r.split() for r in run_command(s, "dev") if r.startswith(f" {disk[0]} ")]
    assert ["254", "virtblk", disk[1], "virtblk_fops"] in rows


# -- 7.3: values against drgn ---------------------------------------------------------------

def _rows(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines[1:] if line.strip()]


@pytest.mark.parametrize("name", DRGN_DUMPS)
@pytest.mark.parametrize("cmd", ["mount", "net", "swap"])
def test_7x_equals_drgn(sessions: dict[str, Session], name: str, cmd: str) -> None:
    """Same rows (addresses, names, paths) as drgn's port of crash's command."""
    a, b = _rows(mine(sessions[name], cmd)), _rows(recorded(name, f"drgn-{cmd}.txt"))
    assert a == b
    if cmd != "swap":
        assert a


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_7x_disks_equal_drgn(sessions: dict[str, Session], name: str) -> None:
    """dev -d: the disks, their queues and in-flight reads and writes, as drgn's block helpers
    count them (busy driver tags in state MQ_RQ_IN_FLIGHT)."""
    rows = [r.split() for r in mine(sessions[name], "dev -d")[1:]]
    a = [(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows]
    b = [(r[0], r[1][2:], r[2], r[3][2:], r[4], r[5])
         for r in (line.split() for line in recorded(name, "drgn-disks.txt") if line)]
    assert a == b and a


@pytest.mark.parametrize("name", DRGN_DUMPS)
def test_7x_sockets_equal_drgn(sessions: dict[str, Session], name: str) -> None:
    """net -s over every task finds the socket fds drgn's fs helpers find."""
    from crashtui.kernel.net import task_sockets

    s = sessions[name]
    a = sorted((str(t.pid), str(x.fd), f"{x.socket:#x}", f"{x.sock:#x}", str(x.family),
                str(x.type)) for t in s.tasks.tasks if t.pid
               for x in task_sockets(s.kernel, t.address).sockets)
    b = sorted(tuple(line.split()) for line in recorded(name, "drgn-sockets.txt") if line)
    assert a == b


# -- pieces and errors ----------------------------------------------------------------------------

def test_inet6_ntop_is_glibcs() -> None:
    """IPv6 addresses as glibc's inet_ntop() writes them (crash calls it): :: for the longest
    run of 2+ zero words, IPv4 tails for ::a.b.c.d and ::ffff:a.b.c.d."""
    from crashtui.kernel.net import inet6_ntop

    rnd = random.Random(18)
    samples = [bytes(16), bytes(15) + b"\1", bytes(10) + b"\xff\xff\x0a\0\0\1",
               bytes(12) + b"\x0a\0\0\1", b"\xfe\x80" + bytes(6) + b"\0\1\0\0\0\0\0\2"]
    for _ in range(2000):
        words = [rnd.choice([0, 0, 0, 1, 0xFFFF, rnd.randrange(1 << 16)]) for _ in range(8)]
        samples.append(b"".join(w.to_bytes(2, "big") for w in words))
    for raw in samples:
        assert inet6_ntop(raw) == socket.inet_ntop(socket.AF_INET6, raw), raw.hex()


def test_options_refused(sessions: dict[str, Session]) -> None:
    s = sessions["6.1-sysrq"]
    with pytest.raises(CommandError, match="swap: takes no argument"):
        run_command(s, "swap 1")
    with pytest.raises(CommandError, match="dev: unsupported argument -x"):
        run_command(s, "dev -x")
    with pytest.raises(CommandError, match="invalid task or pid value: 999999"):
        run_command(s, "net -s 999999")
    with pytest.raises(CommandError, match="mount: unsupported argument -x"):
        run_command(s, "mount -x")
    # crash: "the super_block.s_files linked list does not exist in this kernel"
    with pytest.raises(CommandError, match=r"super_block\.s_files linked list does not exist"):
        run_command(s, "mount /proc")
    with pytest.raises(CommandError, match=r"super_block\.s_dirty linked list does not exist"):
        run_command(s, "mount -i")


@pytest.mark.parametrize(("cmd", "struct", "member"), [
    ("mount", "mount", "mnt_devname"), ("net", "net_device", "ip6_ptr"),
    ("dev -d", "gendisk", "disk_name"), ("swap", "swap_info_struct", "inuse_pages"),
    ("dev", "char_device_struct", "cdev")])
def test_missing_member_is_one_line(sessions: dict[str, Session], monkeypatch:
                                    pytest.MonkeyPatch, cmd: str, struct: str,
                                    member: str) -> None:
    """A kernel whose types lack a member the walk needs: one error line naming it."""
    s = sessions["6.1-sysrq"]
    btf = s.kernel.btf
    real_walk, real_has = btf._walk, btf.has_member

    def walk(struct_name: str, path: str) -> tuple[int, int, int]:
        if struct_name == struct and path.split(".")[0] == member:
            raise TypeNotFoundError(f"struct {struct} has no member {member!r}")
        return real_walk(struct_name, path)

    monkeypatch.setattr(btf, "_walk", walk)
    monkeypatch.setattr(btf, "has_member", lambda st, p: (st, p) != (struct, member)
                        and real_has(st, p))
    with pytest.raises(CommandError) as err:
        run_command(s, cmd)
    assert member in str(err.value) and "\n" not in str(err.value)
