"""net [-n PID|TASK] and net -s [PID|TASK ...]: network devices with their addresses, and
the sockets a task has open, as crash prints them (net.c; the data is crashtui.kernel.net')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.kmemzone import center
from crashtui.commands.registry import CommandError, command
from crashtui.errors import CrashtuiError

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.net import Socket
    from crashtui.kernel.tasks import Task

DEVICE_HEADER = f"{center('NET_DEVICE', 16)}  NAME       IP ADDRESS(ES)"
SOCKET_HEADER = "FD      SOCKET            SOCK       FAMILY:TYPE SOURCE-PORT DESTINATION-PORT"
FAMILIES = {0: "UNSPEC", 1: "UNIX", 2: "INET", 3: "AX25", 4: "IPX", 5: "APPLETALK",
            6: "NETROM", 7: "BRIDGE", 8: "ATMPVC", 9: "X25", 10: "INET6", 11: "ROSE",
            12: "DECnet", 13: "NETBEUI", 14: "SECURITY/KEY", 16: "NETLINK/ROUTE", 17: "PACKET",
            18: "ASH", 19: "ECONET", 20: "ATMSVC", 22: "SNA", 23: "IRDA", 24: "PPPOX"}
TYPES = {1: "STREAM", 2: "DGRAM ", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 10: "PACKET"}
USAGE = "net [-n PID | TASK] | net -s [PID | TASK ...]"


def _init_task(session: Session) -> Task:
    """crash's pid_to_task(0): the first task with PID 0 (init_task, swapper/0)."""
    for t in session.tasks.tasks:
        if t.pid == 0:
            return t
    raise CommandError("net: no PID 0 task (init_task) in this dump")


def device_lines(session: Session, task: Task) -> list[str]:
    """crash's `net`: address, name and addresses of each device of the task's namespace."""
    from crashtui.kernel.net import net_devices

    try:
        devs = net_devices(session.kernel, task.address)
    except CrashtuiError as exc:
        raise CommandError(f"net: {exc.message}") from None
    return ([DEVICE_HEADER] + [f"{d.address:16x}  {d.name:<10} {', '.join(d.addresses)}"
                               for d in devs.devices]
            + [f"net: {e}" for e in devs.errors])


def sock_info(s: Socket) -> str:
    """crash's get_sock_info(): FAMILY:TYPE and, for IP sockets, source and destination."""
    out = f"{FAMILIES.get(s.family, str(s.family))}:{TYPES.get(s.type, str(s.type))} "
    if s.family == 2:
        out += f" {s.source} {s.destination}"
    elif s.family == 10:
        out += f"{s.source:>12} " + center(s.destination, len(s.source))
    return out


def socket_lines(session: Session, task: Task) -> list[str]:
    """crash's `net -s` for one task (its header, then its sockets or "No open sockets.")."""
    from crashtui.commands.sched import task_header
    from crashtui.kernel.net import task_sockets

    ts = task_sockets(session.kernel, task.address)
    out = [task_header(task)]
    if not ts.sockets:
        out.append("No open sockets.")
    else:
        out.append(SOCKET_HEADER)
        out += [f"{s.fd:2d} {s.socket:16x} {s.sock:16x} {sock_info(s)}" for s in ts.sockets]
    return out + [f"net: {e}" for e in ts.errors]


@command("net", "network devices and their addresses; -s: the sockets a task has open", USAGE)
def cmd_net(session: Session, args: list[str]) -> list[str]:
    from crashtui.commands.task import current_task, select_tasks

    if args and args[0] == "-s":
        tasks = select_tasks(session, args[1:], "net") if args[1:] else [current_task(session)]
        out: list[str] = []
        for t in tasks:
            if out:
                out.append("")
            out += socket_lines(session, t)
        return out
    if args and args[0] == "-n":
        if len(args) > 2:
            raise CommandError(f"net: usage: {USAGE}")
        task = select_tasks(session, args[1:], "net")[0] if args[1:] else current_task(session)
        return device_lines(session, task)
    if args:
        raise CommandError(f"net: unsupported argument {args[0]} (try: {USAGE})")
    return device_lines(session, _init_task(session))
