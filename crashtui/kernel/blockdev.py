"""Disks and their in-flight requests (block_class's devices, struct gendisk, request_queue,
blk-mq tags), as crash's `dev -d` counts them (dev.c init_iter(), get_diskio_1(),
get_mq_diskio_from_hw_queues(), sbitmap.c __sbitmap_for_each_set())."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import walk_list

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_DEVICES = 1_000_000  # devices of the block class (disks and partitions)
MAX_HW_QUEUES = 4096
MAX_TAGS = 1 << 20  # bits of one sbitmap
SKIPPED_DISKS = ("ram", "loop")  # crash leaves these out
MQ_RQ_IN_FLIGHT = 1
REQ_OP_MASK = 0xFF


@dataclass(frozen=True)
class Disk:
    """One gendisk and its requests in flight (read/write, or async/sync on old kernels),
    as C ints the way crash holds them."""

    major: int
    gendisk: int
    name: str
    queue: int
    read: int
    write: int
    mq: bool  # a blk-mq queue (request_queue.mq_ops set)
    driver: int | None  # request_queue.in_flight of a legacy queue (old kernels), else None


@dataclass
class DiskTable:
    """The disks in block_class order and how their requests were counted."""

    sync_count: bool  # old kernels count async/sync (enum BLK_RW_SYNC), newer read/write
    driver_column: bool  # request_queue.in_flight exists (crash's DRV column)
    disks: list[Disk] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _subsys_private(kernel: Kernel, kset_symbol: str, name: str) -> int:
    """The subsys_private of a class by name, from the class_kset list (6.4+: struct class has
    no `p`; tools.c get_subsys_private())."""
    kset = kernel.read_u64(kernel.symbol(kset_symbol))
    o_entry = kernel.offsetof("kobject", "entry")
    o_name = kernel.offsetof("kobject", "name")
    walk = walk_list(kernel, kset + kernel.offsetof("kset", "list"), MAX_DEVICES)
    for node in walk.nodes:
        kobj = node - o_entry
        if kernel.read_cstr(kernel.read_u64(kobj + o_name), 32) == name:
            return kobj - kernel.offsetof("kset", "kobj") - \
                kernel.offsetof("subsys_private", "subsys")
    raise KernelReadError(f"no subsys_private named {name!r} on {kset_symbol}"
                          + (f" ({walk.error})" if walk.error else ""))


def block_devices(kernel: Kernel) -> tuple[list[int], str | None]:
    """The struct device of every live klist node of the block class (disks and partitions),
    and why the walk stopped early, if it did."""
    btf = kernel.btf
    if btf.has_member("class", "p"):
        private = kernel.pointer(kernel.symbol("block_class"), "class", "p")
    else:
        private = _subsys_private(kernel, "class_kset", "block")
    head = (private + kernel.offsetof("subsys_private", "klist_devices")
            + kernel.offsetof("klist", "k_list"))
    o_node = kernel.offsetof("klist_node", "n_node")
    o_klist = kernel.offsetof("klist_node", "n_klist")
    o_knode = kernel.offsetof("device_private", "knode_class")
    o_device = kernel.offsetof("device_private", "device")
    walk = walk_list(kernel, head, MAX_DEVICES)
    out: list[int] = []
    for n in walk.nodes:
        knode = n - o_node
        if kernel.read_u64(knode + o_klist) & 1:  # a dead klist_node (KNODE_DEAD)
            continue
        out.append(kernel.read_u64(knode - o_knode + o_device))
    return out, walk.error


def device_gendisk(kernel: Kernel, device: int) -> int:
    """The gendisk of a disk's struct device: part0's hd_struct.__dev before 5.11, the
    block_device's bd_disk after (the device is embedded in it)."""
    btf = kernel.btf
    if btf.has_member("hd_struct", "__dev"):
        return device - kernel.offsetof("hd_struct", "__dev") - kernel.offsetof("gendisk",
                                                                                 "part0")
    return kernel.pointer(device - kernel.offsetof("block_device", "bd_device"),
                          "block_device", "bd_disk")


def _sbitmap_set_bits(kernel: Kernel, sb: int) -> list[int]:
    """The bits set (and not `cleared`) in a struct sbitmap, in order."""
    depth = kernel.member(sb, "sbitmap", "depth", 4)
    shift = kernel.member(sb, "sbitmap", "shift", 4)
    map_nr = kernel.member(sb, "sbitmap", "map_nr", 4)
    words = kernel.pointer(sb, "sbitmap", "map")
    if depth > MAX_TAGS or shift > 6 or map_nr > MAX_TAGS:
        raise KernelReadError(f"sbitmap {sb:#x}: depth {depth}, shift {shift}, map_nr "
                              f"{map_nr} are not a bitmap's")
    wsize = kernel.sizeof("sbitmap_word")
    o_word = kernel.offsetof("sbitmap_word", "word")
    o_cleared = kernel.offsetof("sbitmap_word", "cleared") \
        if kernel.btf.has_member("sbitmap_word", "cleared") else None
    out: list[int] = []
    for index in range(map_nr):
        w = words + index * wsize
        word = kernel.read_u64(w + o_word)
        if o_cleared is not None:
            word &= ~kernel.read_u64(w + o_cleared)
        bits = depth - (index << shift) if index == map_nr - 1 else 1 << shift
        out += [(index << shift) + nr for nr in range(min(bits, 64)) if word >> nr & 1]
    return out


def request_state(kernel: Kernel, rq: int) -> tuple[int, int, int]:
    """(request.q, request.state, REQ_OP_* of request.cmd_flags) of a struct request."""
    return (kernel.pointer(rq, "request", "q"), kernel.member(rq, "request", "state", 4),
            kernel.member(rq, "request", "cmd_flags", 4) & REQ_OP_MASK)


def _tags_in_flight(kernel: Kernel, q: int, tags: int, counts: list[int]) -> None:
    """Count the requests of queue `q` in state MQ_RQ_IN_FLIGHT among a blk_mq_tags' busy
    tags (reserved first), reads in counts[0], writes in counts[1]."""
    btf = kernel.btf
    nr_reserved = kernel.member(tags, "blk_mq_tags", "nr_reserved_tags", 4)
    rqs = kernel.pointer(tags, "blk_mq_tags", "rqs")
    pointer = btf.member_type("blk_mq_tags", "bitmap_tags").resolved().kind == "ptr"
    try:
        in_flight = btf.enumerator("MQ_RQ_IN_FLIGHT")  # enum mq_rq_state
    except CrashtuiError:
        in_flight = MQ_RQ_IN_FLIGHT
    sb_off = kernel.offsetof("sbitmap_queue", "sb")
    for member, reserved in (("breserved_tags", True), ("bitmap_tags", False)):
        if reserved and not nr_reserved:
            continue
        sbq = tags + kernel.offsetof("blk_mq_tags", member)
        if pointer:
            sbq = kernel.read_u64(sbq)
        for bit in _sbitmap_set_bits(kernel, sbq + sb_off):
            rq = kernel.read_u64(rqs + 8 * (bit if reserved else bit + nr_reserved))
            if rq < 1 << 63:  # crash: not a kernel address, skipped
                continue
            rq_q, state, op = request_state(kernel, rq)
            if rq_q == q and state == in_flight:
                counts[op & 1] += 1  # op_is_write()


def _hw_queues(kernel: Kernel, q: int, errors: list[str]) -> list[int]:
    """The blk_mq_hw_ctx of a queue: the hctx_table XArray (5.19+) or queue_hw_ctx[]."""
    if kernel.btf.has_member("request_queue", "hctx_table"):
        from crashtui.kernel.pid import xarray_entries

        head = q + kernel.offsetof("request_queue", "hctx_table") + \
            kernel.offsetof("xarray", "xa_head")
        return [e for _i, e in xarray_entries(kernel, head, errors, f"queue {q:#x} hctx_table")]
    n = kernel.member(q, "request_queue", "nr_hw_queues", 4)
    if n > MAX_HW_QUEUES:
        raise KernelReadError(f"request_queue {q:#x}: nr_hw_queues {n}")
    array = kernel.pointer(q, "request_queue", "queue_hw_ctx")
    raw = kernel.read(array, 8 * n)
    return [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(n)]


def c_int(value: int) -> int:
    """A count as crash's `int` holds it (the low 32 bits, signed): per-CPU counters are
    summed modulo 2**64 and one CPU's part may be negative."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _per_cpu_pair(kernel: Kernel, base: int, offset: int, size: int) -> list[int]:
    """Sum over every CPU of a per-CPU pair of counters at base + offset."""
    out = [0, 0]
    for cpu in range(kernel.nr_cpu_ids):
        raw = kernel.read(kernel.per_cpu(base, cpu) + offset, 2 * size)
        out[0] += int.from_bytes(raw[:size], "little", signed=True)
        out[1] += int.from_bytes(raw[size:], "little", signed=True)
    return out


def is_mq(kernel: Kernel, q: int) -> bool:
    """Whether a request_queue is blk-mq (mq_ops set)."""
    return kernel.btf.has_member("request_queue", "mq_ops") and \
        kernel.pointer(q, "request_queue", "mq_ops") != 0


def driver_in_flight(kernel: Kernel, q: int) -> int:
    """request_queue.in_flight of a legacy queue: one counter, or read + write."""
    size = kernel.btf.member_type("request_queue", "in_flight").resolved().size or 4
    raw = kernel.read(q + kernel.offsetof("request_queue", "in_flight"), min(size, 8))
    return sum(int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)) \
        & 0xFFFFFFFF


def queue_in_flight(kernel: Kernel, q: int, gendisk: int, errors: list[str]) -> list[int]:
    """[read, write] (or [async, sync]) requests in flight, counted as crash counts them:
    blk-mq by the busy tags of each hardware queue (request.state), older blk-mq by the
    per-CPU dispatched - completed counters, legacy queues by request_list.count, bio-based
    queues by the disk's per-CPU disk_stats.in_flight."""
    btf = kernel.btf
    mq = is_mq(kernel, q)
    counts = [0, 0]
    if mq and btf.has_member("request", "state"):
        for hctx in _hw_queues(kernel, q, errors):
            _tags_in_flight(kernel, q, kernel.pointer(hctx, "blk_mq_hw_ctx", "tags"), counts)
        return counts
    if mq:
        ctx = kernel.pointer(q, "request_queue", "queue_ctx")
        dispatched = _per_cpu_pair(kernel, ctx, kernel.offsetof("blk_mq_ctx", "rq_dispatched"), 8)
        completed = _per_cpu_pair(kernel, ctx, kernel.offsetof("blk_mq_ctx", "rq_completed"), 8)
        return [c_int(dispatched[0] - completed[0]), c_int(dispatched[1] - completed[1])]
    for rl in ("rq", "root_rl"):
        if btf.has_member("request_queue", rl):
            raw = kernel.read(q + kernel.offsetof("request_queue", rl)
                              + kernel.offsetof("request_list", "count"), 8)
            return [int.from_bytes(raw[:4], "little", signed=True),
                    int.from_bytes(raw[4:], "little", signed=True)]
    if btf.has_member("hd_struct", "dkstats"):
        stats = kernel.read_u64(gendisk + kernel.offsetof("gendisk", "part0")
                                + kernel.offsetof("hd_struct", "dkstats"))
    else:  # 5.11+: gendisk.part0 is a struct block_device *
        stats = kernel.pointer(kernel.pointer(gendisk, "gendisk", "part0"), "block_device",
                               "bd_stats")
    size = btf.member_type("disk_stats", "in_flight").resolved()
    elem = (btf.sizeof_id(size.target_id) if size.target_id is not None else None) or 8
    return [c_int(n) for n in
            _per_cpu_pair(kernel, stats, kernel.offsetof("disk_stats", "in_flight"), elem)]


def disk_table(kernel: Kernel) -> DiskTable:
    """Every disk of the block class (device.type == &disk_type) but ram* and loop*."""
    btf = kernel.btf
    try:
        btf.enumerator("BLK_RW_SYNC")
        sync_count = True
    except CrashtuiError:
        sync_count = False
    table = DiskTable(sync_count, btf.has_member("request_queue", "in_flight"))
    disk_type = kernel.symbol("disk_type")
    o_type = kernel.offsetof("device", "type")
    o_name = kernel.offsetof("gendisk", "disk_name")
    for member in ("queue", "major"):  # a missing member is one error, before the walk
        kernel.offsetof("gendisk", member)
    name_len = btf.member_type("gendisk", "disk_name").resolved().length or 32
    devices, error = block_devices(kernel)
    if error:
        table.errors.append(f"block class devices: {error}")
    for dev in devices:
        try:
            if kernel.read_u64(dev + o_type) != disk_type:
                continue  # a partition
            gendisk = device_gendisk(kernel, dev)
            name = kernel.read_cstr(gendisk + o_name, name_len)
            if name.startswith(SKIPPED_DISKS):
                continue
            queue = kernel.pointer(gendisk, "gendisk", "queue")
            major = kernel.member(gendisk, "gendisk", "major", 4, signed=True)
            read, write = queue_in_flight(kernel, queue, gendisk, table.errors)
            mq = is_mq(kernel, queue)
            driver = driver_in_flight(kernel, queue) if table.driver_column and not mq \
                else None
        except CrashtuiError as exc:
            table.errors.append(f"device {dev:#x}: {exc.message}")
            continue
        table.disks.append(Disk(major, gendisk, name, queue, read, write, mq, driver))
    return table
