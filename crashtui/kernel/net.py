"""Network devices of a network namespace (struct net, net_device, in_device, inet6_dev) and
the sockets a task has open (struct socket, sock, inet_sock), as crash's `net` and `net -s`
read them (net.c show_net_devices_v3(), get_device_address(), sym_socket_dump(),
get_sock_info())."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crashtui.errors import CrashtuiError, KernelReadError
from crashtui.kernel.lists import walk_list

if TYPE_CHECKING:
    from crashtui.kernel.program import Kernel

MAX_DEVICES = 100_000
MAX_ADDRESSES = 10_000  # IPv4 addresses followed on one device (ifa_next chain)
AF_INET, AF_INET6 = 2, 10


@dataclass(frozen=True)
class NetDevice:
    """One net_device: its name and IPv4 then IPv6 addresses, as text."""

    address: int
    name: str
    addresses: list[str]


@dataclass
class NetDevices:
    """The devices of a namespace (net->dev_base_head) and what could not be read."""

    namespace: int
    devices: list[NetDevice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def inet_ntoa(be32: int) -> str:
    """An IPv4 address stored in network byte order (read as a little-endian u32)."""
    return ".".join(str(b) for b in be32.to_bytes(4, "little"))


def inet6_ntop(raw: bytes) -> str:
    """glibc's inet_ntop(AF_INET6): the longest run (2+) of zero words as ::, an IPv4 tail
    for ::a.b.c.d and ::ffff:a.b.c.d."""
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, 16, 2)]
    best, best_len, cur, cur_len = -1, 0, -1, 0
    for i, w in enumerate(words):
        if w == 0:
            if cur < 0:
                cur, cur_len = i, 0
            cur_len += 1
            if cur_len > best_len:
                best, best_len = cur, cur_len
        else:
            cur = -1
    if best_len < 2:
        best = -1
    out = ""
    i = 0
    while i < 8:
        if i == best:
            out += "::" if i == 0 else ":"
            i += best_len
            continue
        if i == 6 and best == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            return out + ".".join(str(b) for b in raw[12:16])
        out += f"{words[i]:x}" + (":" if i < 7 else "")
        i += 1
    return out


def task_net_ns(kernel: Kernel, task: int) -> int:
    """task->nsproxy->net_ns (init_net without network namespaces)."""
    if not kernel.btf.has_member("nsproxy", "net_ns"):
        return kernel.symbol("init_net")
    nsproxy = kernel.read_u64(task + kernel.offsetof("task_struct", "nsproxy"))
    if not nsproxy:
        raise KernelReadError(f"task {task:#x} has no nsproxy (it is exiting)")
    return kernel.read_u64(nsproxy + kernel.offsetof("nsproxy", "net_ns"))


def _ipv4(kernel: Kernel, dev: int) -> list[str]:
    """dev->ip_ptr (struct in_device) ->ifa_list, ifa_next, ..."""
    ip_ptr = kernel.pointer(dev, "net_device", "ip_ptr")
    if not ip_ptr:
        return []
    o_addr, o_next = kernel.offsetof("in_ifaddr", "ifa_address"), \
        kernel.offsetof("in_ifaddr", "ifa_next")
    ifa = kernel.pointer(ip_ptr, "in_device", "ifa_list")
    out: list[str] = []
    seen: set[int] = set()
    while ifa:
        if ifa in seen or len(out) >= MAX_ADDRESSES:
            raise KernelReadError(f"in_ifaddr list of device {dev:#x} cycles at {ifa:#x}")
        seen.add(ifa)
        out.append(inet_ntoa(kernel.read_u32(ifa + o_addr)))
        ifa = kernel.read_u64(ifa + o_next)
    return out


def _ipv6(kernel: Kernel, dev: int) -> list[str]:
    """dev->ip6_ptr (struct inet6_dev) ->addr_list of inet6_ifaddr.if_list."""
    ip6_ptr = kernel.pointer(dev, "net_device", "ip6_ptr")
    if not ip6_ptr:
        return []
    o_list = kernel.offsetof("inet6_ifaddr", "if_list")
    o_addr = kernel.offsetof("inet6_ifaddr", "addr")
    walk = walk_list(kernel, ip6_ptr + kernel.offsetof("inet6_dev", "addr_list"), MAX_ADDRESSES)
    if walk.error:
        raise KernelReadError(f"inet6_dev {ip6_ptr:#x} address list: {walk.error}")
    return [inet6_ntop(kernel.read(n - o_list + o_addr, 16)) for n in walk.nodes]


def net_devices(kernel: Kernel, task: int) -> NetDevices:
    """The devices of `task`'s network namespace in dev_base_head order (crash: init_task's
    namespace, init_net, unless -n names a task)."""
    net = task_net_ns(kernel, task)
    out = NetDevices(net)
    o_list = kernel.offsetof("net_device", "dev_list")
    o_name = kernel.offsetof("net_device", "name")
    for struct, member in (("net_device", "ip_ptr"), ("net_device", "ip6_ptr"),
                           ("in_device", "ifa_list"), ("in_ifaddr", "ifa_address"),
                           ("in_ifaddr", "ifa_next"), ("inet6_dev", "addr_list"),
                           ("inet6_ifaddr", "if_list"), ("inet6_ifaddr", "addr")):
        kernel.offsetof(struct, member)  # a missing member is one error, before the walk
    walk = walk_list(kernel, net + kernel.offsetof("net", "dev_base_head"), MAX_DEVICES)
    if walk.error:
        out.errors.append(f"device list of net {net:#x}: {walk.error}")
    for node in walk.nodes:
        dev = node - o_list
        try:
            name = kernel.read_cstr(dev + o_name, 16)
            addresses = _ipv4(kernel, dev) + _ipv6(kernel, dev)
        except CrashtuiError as exc:
            out.errors.append(f"net_device {dev:#x}: {exc.message}")
            continue
        out.devices.append(NetDevice(dev, name, addresses))
    return out


# -- sockets ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Socket:
    """One open socket of a task: its fd, struct socket and struct sock, and what it is."""

    fd: int
    socket: int
    sock: int
    family: int
    type: int
    source: str  # "addr-port" for AF_INET/AF_INET6, "" otherwise
    destination: str


@dataclass
class TaskSockets:
    """The sockets among a task's open files (fd order) and what could not be read."""

    sockets: list[Socket] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _u16(kernel: Kernel, addr: int, struct: str, member: str, big: bool = False) -> int:
    raw = kernel.read(addr + kernel.offsetof(struct, member), 2)
    return int.from_bytes(raw, "big" if big else "little")


def _socket(kernel: Kernel, fd: int, inode: int) -> Socket:
    """The socket of a socket inode (struct socket_alloc: socket, vfs_inode)."""
    socket = inode - kernel.offsetof("socket_alloc", "vfs_inode")
    sock = kernel.pointer(socket, "socket", "sk")
    if not sock:
        return Socket(fd, socket, 0, 0, 0, "", "")
    family = _u16(kernel, sock, "sock_common", "skc_family")
    stype = _u16(kernel, sock, "sock", "sk_type")
    src = dst = ""
    if family == AF_INET:
        sport = _u16(kernel, sock, "inet_sock", "inet_sport", big=True)
        dport = _u16(kernel, sock, "sock_common", "skc_dport", big=True)
        src = f"{inet_ntoa(kernel.member(sock, 'sock_common', 'skc_rcv_saddr', 4))}-{sport}"
        dst = f"{inet_ntoa(kernel.member(sock, 'sock_common', 'skc_daddr', 4))}-{dport}"
    elif family == AF_INET6:
        sport = _u16(kernel, sock, "inet_sock", "inet_sport", big=True)
        dport = _u16(kernel, sock, "sock_common", "skc_dport", big=True)
        src = _in6_port(kernel.read(sock + kernel.offsetof("sock_common", "skc_v6_rcv_saddr"),
                                    16), sport)
        dst = _in6_port(kernel.read(sock + kernel.offsetof("sock_common", "skc_v6_daddr"),
                                    16), dport)
    return Socket(fd, socket, sock, family, stype, src, dst)


def _in6_port(raw: bytes, port: int) -> str:
    """crash's dump_in6_addr_port(): eight %x words, no :: compression, then -port."""
    words = (int.from_bytes(raw[i:i + 2], "big") for i in range(0, 16, 2))
    return ":".join(f"{w:x}" for w in words) + f"-{port}"


def task_sockets(kernel: Kernel, task: int) -> TaskSockets:
    """The open files of `task` whose inode is a socket (S_IFSOCK)."""
    from crashtui.kernel.files import task_files

    out = TaskSockets()
    tf = task_files(kernel, task)
    out.errors += tf.errors
    for f in tf.files:
        if f.type != "SOCK":
            continue
        try:
            out.sockets.append(_socket(kernel, f.fd, f.inode))
        except CrashtuiError as exc:
            out.errors.append(f"fd {f.fd} (file {f.file:#x}): {exc.message}")
    return out
