"""The thin I/O around the responder: UDP and TCP on one port, forwarding, health and ready.

UDP replies are sent from the datagram callback itself (no task per query) — that is what
makes the precomputed table pay off. TCP takes length-prefixed messages (RFC 1035 4.2.2),
several per connection, answered in order of completion (RFC 7766 6.2.1.1), and closes idle
connections. Queries that need an upstream become tasks, bounded in number. Any exception
while answering one packet is logged and the packet dropped: a query never stops the server.

Health like CoreDNS: GET /health on the health port answers 200 while the process runs (the
liveness probe), GET /ready on the ready port answers 200 once the table has synced from the
API (the readiness probe) and 503 before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from svcnet.dns.forward import Forwarder
from svcnet.dns.records import RecordTable
from svcnet.dns.respond import TCP_MAX, Forward, Responder

if TYPE_CHECKING:
    import dns.message

log = logging.getLogger(__name__)

MAX_FORWARDS_IN_FLIGHT = 1024
TCP_IDLE_TIMEOUT = 10.0


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 53  # 0: any free port (tests)
    health: tuple[str, int] | None = None  # ("0.0.0.0", 8080) in the add-on
    ready: tuple[str, int] | None = None  # ("0.0.0.0", 8181)
    extra_listen: list[tuple[str, int]] = field(default_factory=list)
    tcp_idle_timeout: float = TCP_IDLE_TIMEOUT


class DnsServer:
    def __init__(
        self, table: RecordTable, config: ServerConfig, forwarder: Forwarder | None = None
    ) -> None:
        self.table = table
        self.config = config
        self.forwarder = forwarder if forwarder is not None and forwarder.upstreams else None
        self.responder = Responder(table, forwarding=self.forwarder is not None)
        self._transports: list[asyncio.BaseTransport] = []
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = config.port
        self.health_port = 0
        self.ready_port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        listen = [(self.config.host, self.config.port), *self.config.extra_listen]
        for i, (host, port) in enumerate(listen):
            port = await self._bind(loop, host, port)
            if i == 0:
                self.port = port
        if self.config.health is not None:
            self.health_port = await self._http(self.config.health, self._health)
        if self.config.ready is not None:
            self.ready_port = await self._http(self.config.ready, self._ready)
        log.info(
            "dns listening on %s port %d (zone %s)", self.config.host, self.port, self.table.zone
        )

    async def _bind(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> int:
        # UDP first; with port 0 the TCP listener takes the same number (retried if taken).
        for _ in range(20):
            transport, _proto = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            bound = transport.get_extra_info("sockname")[1]
            try:
                server = await loop.create_server(
                    lambda: _TcpProtocol(self), host, bound, reuse_address=True
                )
            except OSError:
                transport.close()
                if port != 0:
                    raise
                continue
            self._transports.append(transport)
            self._servers.append(server)
            return int(bound)
        raise OSError("no free port for both UDP and TCP")

    async def stop(self) -> None:
        for t in self._transports:
            t.close()
        for s in self._servers:
            s.close()
        for task in list(self._tasks):
            task.cancel()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 1.0)
        self._transports.clear()
        self._servers.clear()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # ---- forwarding ----------------------------------------------------------------------

    def spawn_forward(self, fwd: Forward, tcp: bool, send: Callable[[bytes], None]) -> None:
        if len(self._tasks) >= MAX_FORWARDS_IN_FLIGHT:
            send(self.responder.servfail(fwd.packet, fwd.query, tcp))
            return
        task = asyncio.get_running_loop().create_task(self._forward(fwd, tcp, send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, fwd: Forward, tcp: bool, send: Callable[[bytes], None]) -> None:
        try:
            reply = await self._forward_reply(fwd, tcp)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("forwarding %s failed", fwd.qname)
            reply = self.responder.servfail(fwd.packet, fwd.query, tcp)
        send(reply)

    async def _forward_reply(self, fwd: Forward, tcp: bool) -> bytes:
        assert self.forwarder is not None
        # dnspython only once something is forwarded (see respond.py).
        import dns.flags
        import dns.message

        q = fwd.query
        limit = TCP_MAX if tcp else q.udp_size
        if fwd.answer is not None:
            # Our CNAME to an outside name, completed with the upstream's records for it.
            base = self.responder.reply_with(fwd.packet, q, fwd.answer, tcp=True)
            msg = dns.message.from_wire(base)
            upstream = await self.forwarder.resolve(fwd.answer.external, q.qtype, q.do_bit)
            if upstream is not None:
                msg.answer.extend(upstream.answer)
            return _to_wire(msg, limit)
        upstream = await self.forwarder.resolve(fwd.qname, q.qtype, q.do_bit)
        if upstream is None:
            # Every upstream failed: the forward plugin answers SERVFAIL.
            return self.responder.servfail(fwd.packet, q, tcp)
        client = dns.message.from_wire(fwd.packet)
        out = dns.message.make_response(client)
        # As CoreDNS's forward plugin: the upstream's header as it came (RA, AA...), with the
        # client's ID, question and RD.
        out.flags = ((upstream.flags | dns.flags.QR) & ~dns.flags.RD) | (
            client.flags & dns.flags.RD
        )
        out.set_rcode(upstream.rcode())
        out.answer = upstream.answer
        out.authority = upstream.authority
        out.additional = [r for r in upstream.additional]
        if client.edns >= 0:
            out.use_edns(0, client.ednsflags & dns.flags.DO, 1232)
        return _to_wire(out, limit)

    # ---- health --------------------------------------------------------------------------

    async def _http(self, addr: tuple[str, int], check: Callable[[str], tuple[int, bytes]]) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                line = await asyncio.wait_for(reader.readline(), 5.0)
                parts = line.decode("latin-1").split()
                path = parts[1] if len(parts) >= 2 else "/"
                while True:  # drain the headers
                    h = await asyncio.wait_for(reader.readline(), 5.0)
                    if h in (b"\r\n", b"\n", b""):
                        break
                status, body = check(path)
                reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
            except (TimeoutError, OSError, UnicodeError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, addr[0], addr[1], reuse_address=True)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _health(self, path: str) -> tuple[int, bytes]:
        return (200, b"OK") if path == "/health" else (404, b"not found\n")

    def _ready(self, path: str) -> tuple[int, bytes]:
        if path != "/ready":
            return (404, b"not found\n")
        return (200, b"OK") if self.table.synced else (503, b"kubernetes\n")


def _to_wire(msg: dns.message.Message, limit: int) -> bytes:
    import dns.exception
    import dns.flags

    try:
        return msg.to_wire(max_size=limit)
    except dns.exception.TooBig:
        msg.answer = []
        msg.authority = []
        msg.additional = []
        msg.flags |= dns.flags.TC
        return msg.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.respond = server.responder.respond
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = self.respond(data)
        except Exception:
            log.exception("answering a %d-byte query from %s", len(data), addr)
            return
        transport = self.transport
        if reply is None or transport is None:
            return
        if type(reply) is bytes:
            transport.sendto(reply, addr)
        elif isinstance(reply, Forward):
            self.server.spawn_forward(reply, False, lambda b: transport.sendto(b, addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that left: nothing to do.
        log.debug("udp error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._arm()

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(
            self.server.config.tcp_idle_timeout, self._timeout
        )

    def _timeout(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._arm()
        while len(self.buf) >= 2:
            size = (self.buf[0] << 8) | self.buf[1]
            if len(self.buf) < 2 + size:
                return
            packet = bytes(self.buf[2 : 2 + size])
            del self.buf[: 2 + size]
            try:
                reply = self.server.responder.respond(packet, tcp=True)
            except Exception:
                log.exception("answering a %d-byte TCP query", size)
                continue
            if reply is None:
                continue
            if isinstance(reply, Forward):
                self.server.spawn_forward(reply, True, self._send)
            else:
                self._send(reply)

    def _send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack(">H", len(reply)) + reply)
