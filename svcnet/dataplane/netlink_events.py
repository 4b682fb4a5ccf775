"""The sockets behind ``svcnet flows``: NFLOG packets and conntrack events of this namespace.

Two ``NETLINK_NETFILTER`` sockets, read on the event loop (``add_reader``, no thread): one bound
to the NFLOG group the NetworkPolicy table logs its drops to, one subscribed to conntrack's NEW
and DESTROY multicast groups. Both belong to the network namespace of the process that opens
them: the node agent runs inside its node's namespace, so it reads that node's traffic only.

Why not ``conntrack -E -o xml``: one more process per node and an XML parse per event, where
the codec :mod:`svcnet.dataplane.nfnetlink` needs for NFLOG already reads ctnetlink's
attributes. Why not pyroute2's conntrack socket: its API is synchronous (a thread per node)
and it has no NFLOG, which this module needs anyway.

A socket whose buffer overflows (the reader fell behind) loses messages; the kernel says so
with ``ENOBUFS``, counted in :attr:`NetfilterSocket.overruns`, and reading goes on.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Protocol

from svcnet.dataplane import nfnetlink
from svcnet.dataplane.nfnetlink import CtEvent, LoggedPacket

RCVBUF = 1 << 20
# Headers only: 20 bytes of IPv4 (60 with options) and the 4 bytes of ports behind them.
COPY_RANGE = 64
# NFLOG batches: a message per 20 packets or 50 ms, whichever first; a lone drop still shows
# within 50 ms, a flood costs a wake-up per 20 packets.
BATCH_PACKETS = 20
BATCH_TIMEOUT_CS = 5

Event = LoggedPacket | CtEvent


class NetlinkError(OSError):
    pass


class NetfilterSocket:
    def __init__(self, groups: int = 0) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            nfnetlink.NETLINK_NETFILTER,
        )
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self.sock.bind((0, groups))
        except OSError:
            self.sock.close()
            raise
        self.overruns = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, data: bytes, timeout: float = 2.0) -> None:
        """Send a request and wait for its acknowledgement; a refusal raises."""
        self.sock.setblocking(True)
        self.sock.settimeout(timeout)
        try:
            self.sock.send(data)
            for msg in nfnetlink.messages(self.sock.recv(65536)):
                if msg.type == nfnetlink.NLMSG_ERROR:
                    code = nfnetlink.error_code(msg)
                    if code:
                        raise NetlinkError(code, f"netfilter netlink request: {code}")
        finally:
            self.sock.setblocking(False)

    def drain(self) -> list[bytes]:
        """Every datagram waiting now."""
        out: list[bytes] = []
        while True:
            try:
                out.append(self.sock.recv(65536))
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1


def open_nflog(group: int) -> NetfilterSocket:
    s = NetfilterSocket()
    try:
        s.request(nfnetlink.nflog_bind(group))
        s.request(nfnetlink.nflog_config(group, COPY_RANGE, BATCH_TIMEOUT_CS, BATCH_PACKETS))
    except OSError:
        s.close()
        raise
    return s


def open_conntrack_events() -> NetfilterSocket:
    return NetfilterSocket(nfnetlink.ct_groups_mask())


def decode(data: bytes) -> list[Event]:
    out: list[Event] = []
    for msg in nfnetlink.messages(data):
        event: Event | None = nfnetlink.logged_packet(msg) or nfnetlink.ct_event(msg)
        if event is not None:
            out.append(event)
    return out


class EventSource(Protocol):
    """Something that calls ``sink`` with each batch of events until cancelled."""

    async def run(self, sink: Callable[[list[Event]], None]) -> None: ...


class NetfilterEvents:
    """NFLOG ``group`` and conntrack's events of this namespace, decoded on the event loop."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.sockets: list[NetfilterSocket] = []

    @property
    def overruns(self) -> int:
        return sum(s.overruns for s in self.sockets)

    async def run(self, sink: Callable[[list[Event]], None]) -> None:
        loop = asyncio.get_running_loop()
        self.sockets = [open_nflog(self.group), open_conntrack_events()]

        def readable(s: NetfilterSocket) -> None:
            batch: list[Event] = []
            for data in s.drain():
                try:
                    batch.extend(decode(data))
                except nfnetlink.MalformedError:
                    s.overruns += 1  # counted as lost: the kernel never sends these
            if batch:
                sink(batch)

        try:
            for s in self.sockets:
                loop.add_reader(s.sock.fileno(), readable, s)
            await asyncio.Event().wait()
        finally:
            for s in self.sockets:
                loop.remove_reader(s.sock.fileno())
                s.close()


class FakeEvents:
    """Hands the batches it is given to the sink (unit tests of what consumes events)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()

    async def run(self, sink: Callable[[list[Event]], None]) -> None:
        while True:
            sink(await self.queue.get())
