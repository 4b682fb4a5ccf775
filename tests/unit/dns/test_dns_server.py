"""The DNS server over real UDP and TCP on 127.0.0.1, with dnspython as the client.

Every server, upstream and socket a test makes listens on 127.0.0.1 on a free port and is
closed in a finally. The upstream resolver for forwarding is the test's own (UpstreamStub):
no query ever leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import dns.asyncquery
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from dns_sample_cluster import build_table

from svcnet.dns.forward import Forwarder, Upstream
from svcnet.dns.projection import EndpointInfo, EndpointSliceInfo, PortInfo, ServiceInfo
from svcnet.dns.records import RecordTable
from svcnet.dns.server import DnsServer, ServerConfig

HOST = "127.0.0.1"
WEB = "web.default.svc.cluster.local."


@dataclass
class UpstreamStub:
    """A tiny authoritative resolver on loopback: fixed answers, counts what it was asked."""

    answers: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    asked: list[tuple[str, int]] = field(default_factory=list)
    port: int = 0
    transport: asyncio.DatagramTransport | None = None

    def reply(self, data: bytes) -> bytes:
        q = dns.message.from_wire(data)
        question = q.question[0]
        key = (question.name.to_text().lower(), question.rdtype)
        self.asked.append(key)
        resp = dns.message.make_response(q)
        resp.flags |= dns.flags.RA
        if key in self.answers:
            addr, ttl = self.answers[key]
            resp.answer.append(
                dns.rrset.from_text(
                    question.name, ttl, "IN", dns.rdatatype.to_text(question.rdtype), addr
                )
            )
        else:
            resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp.to_wire()


class _StubProtocol(asyncio.DatagramProtocol):
    def __init__(self, stub: UpstreamStub) -> None:
        self.stub = stub

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stub.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.stub.transport is not None
        self.stub.transport.sendto(self.stub.reply(data), addr)


@contextlib.asynccontextmanager
async def upstream_stub(
    answers: dict[tuple[str, int], tuple[str, int]],
) -> AsyncIterator[UpstreamStub]:
    stub = UpstreamStub(answers)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _StubProtocol(stub), local_addr=(HOST, 0)
    )
    stub.port = transport.get_extra_info("sockname")[1]
    try:
        yield stub
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def running(
    table: RecordTable, forwarder: Forwarder | None = None, health: bool = False
) -> AsyncIterator[DnsServer]:
    config = ServerConfig(
        host=HOST, port=0, health=(HOST, 0) if health else None, ready=(HOST, 0) if health else None
    )
    server = DnsServer(table, config, forwarder)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    async with running(build_table()) as s:
        yield s


async def udp_raw(port: int, packet: bytes, timeout: float = 0.5) -> bytes | None:
    """Send one datagram, return the reply or None after `timeout` (silence)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if not fut.done():
                fut.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(P, remote_addr=(HOST, port))
    try:
        transport.sendto(packet)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
    finally:
        transport.close()


def big_headless_table(n: int = 60) -> RecordTable:
    t = build_table()
    t.set_service(ServiceInfo("default", "big", headless=True))
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default",
            "big-1",
            "big",
            endpoints=tuple(EndpointInfo((f"10.244.9.{i}",)) for i in range(1, n + 1)),
        )
    )
    return t


# ---- plain queries -----------------------------------------------------------------------


async def test_udp_query_is_answered(server: DnsServer) -> None:
    q = dns.message.make_query(WEB, "A")
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert r.id == q.id
    assert [rr.to_text() for rr in r.answer] == [f"{WEB} 5 IN A 10.96.0.20"]
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA


async def test_tcp_query_is_answered(server: DnsServer) -> None:
    q = dns.message.make_query(WEB, "A")
    r = await dns.asyncquery.tcp(q, HOST, port=server.port, timeout=2)
    assert [rr.to_text() for rr in r.answer] == [f"{WEB} 5 IN A 10.96.0.20"]


async def test_tcp_pipelines_several_queries_on_one_connection(server: DnsServer) -> None:
    names = [WEB, "api.other.svc.cluster.local.", "nope.default.svc.cluster.local."]
    queries = [dns.message.make_query(n, "A") for n in names]
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        writer.write(
            b"".join(struct.pack(">H", len(w)) + w for w in (q.to_wire() for q in queries))
        )
        await writer.drain()
        replies = {}
        for _ in queries:
            size = struct.unpack(">H", await reader.readexactly(2))[0]
            r = dns.message.from_wire(await reader.readexactly(size))
            replies[r.id] = r
    finally:
        writer.close()
    assert [dns.rcode.to_text(replies[q.id].rcode()) for q in queries] == [
        "NOERROR",
        "NOERROR",
        "NXDOMAIN",
    ]


async def test_tcp_message_split_across_segments_is_answered(server: DnsServer) -> None:
    wire = dns.message.make_query(WEB, "A").to_wire()
    framed = struct.pack(">H", len(wire)) + wire
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        for i in range(0, len(framed), 7):
            writer.write(framed[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.01)
        size = struct.unpack(">H", await reader.readexactly(2))[0]
        r = dns.message.from_wire(await reader.readexactly(size))
    finally:
        writer.close()
    assert [rr.to_text() for rr in r.answer] == [f"{WEB} 5 IN A 10.96.0.20"]


async def test_idle_tcp_connection_is_closed() -> None:
    server = DnsServer(build_table(), ServerConfig(host=HOST, port=0, tcp_idle_timeout=0.2))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        try:
            assert await asyncio.wait_for(reader.read(), 3.0) == b""  # closed by the server
        finally:
            writer.close()
    finally:
        await server.stop()


async def test_edns_reply_carries_opt(server: DnsServer) -> None:
    q = dns.message.make_query(WEB, "A", use_edns=0, payload=4096, want_dnssec=True)
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert r.edns == 0 and r.payload == 1232
    assert r.ednsflags & dns.flags.DO


async def test_large_answer_without_edns_is_truncated_over_udp() -> None:
    async with running(big_headless_table()) as s:
        q = dns.message.make_query("big.default.svc.cluster.local.", "A")
        r = await dns.asyncquery.udp(q, HOST, port=s.port, timeout=2, ignore_trailing=True)
        assert r.flags & dns.flags.TC and not r.answer


async def test_large_answer_fits_the_clients_edns_size() -> None:
    async with running(big_headless_table()) as s:
        q = dns.message.make_query("big.default.svc.cluster.local.", "A", use_edns=0, payload=4096)
        r = await dns.asyncquery.udp(q, HOST, port=s.port, timeout=2)
        assert not r.flags & dns.flags.TC
        assert len(r.answer[0]) == 60


async def test_large_answer_is_whole_over_tcp() -> None:
    async with running(big_headless_table()) as s:
        q = dns.message.make_query("big.default.svc.cluster.local.", "A")
        r = await dns.asyncquery.tcp(q, HOST, port=s.port, timeout=2)
        assert len(r.answer[0]) == 60


# ---- bad input ---------------------------------------------------------------------------


def _header(id_: int, flags: int, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


QUESTION = dns.name.from_text(WEB).to_wire() + b"\x00\x01\x00\x01"

BAD_PACKETS = [
    ("opcode-status", _header(7, 2 << 11, 1) + QUESTION, "NOTIMP"),
    ("opcode-update", _header(7, 5 << 11, 1) + QUESTION, "NOTIMP"),
    ("two-questions", _header(7, 0x0100, 2) + QUESTION + QUESTION, "FORMERR"),
    ("no-question", _header(7, 0x0100, 0), "FORMERR"),
    ("truncated-question", _header(7, 0x0100, 1) + QUESTION[:10], "FORMERR"),
    ("compression-loop", _header(7, 0x0100, 1) + b"\xc0\x0c\x00\x01\x00\x01", "FORMERR"),
    ("pointer-forward", _header(7, 0x0100, 1) + b"\xc0\x40\x00\x01\x00\x01", "FORMERR"),
    (
        "label-too-long",
        _header(7, 0x0100, 1) + b"\x50" + b"a" * 80 + b"\x00\x00\x01\x00\x01",
        "FORMERR",
    ),
    ("class-chaos", _header(7, 0x0100, 1) + QUESTION[:-2] + b"\x00\x03", "REFUSED"),
    (
        "edns-version-1",
        _header(7, 0x0100, 1, ar=1) + QUESTION + b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00",
        "BADVERS",
    ),
]


@pytest.mark.parametrize(
    ("packet", "rcode"), [(p, r) for _, p, r in BAD_PACKETS], ids=[n for n, _, _ in BAD_PACKETS]
)
async def test_bad_queries_get_an_error_reply(server: DnsServer, packet: bytes, rcode: str) -> None:
    reply = await udp_raw(server.port, packet)
    assert reply is not None
    assert reply[:2] == packet[:2]
    flags = struct.unpack(">H", reply[2:4])[0]
    assert flags & 0x8000
    if rcode == "BADVERS":
        r = dns.message.from_wire(reply)
        assert r.rcode() == dns.rcode.BADVERS
    else:
        assert dns.rcode.to_text(dns.rcode.Rcode(flags & 0x0F)) == rcode


SILENT = [
    ("empty", b""),
    ("short-header", b"\x01\x02\x03"),
    ("a-response", _header(7, 0x8180, 1) + QUESTION),
]


@pytest.mark.parametrize("packet", [p for _, p in SILENT], ids=[n for n, _ in SILENT])
async def test_unanswerable_packets_get_silence(server: DnsServer, packet: bytes) -> None:
    assert await udp_raw(server.port, packet, timeout=0.3) is None


async def test_unknown_type_is_nodata_for_an_existing_name(server: DnsServer) -> None:
    q = dns.message.make_query(WEB, dns.rdatatype.RdataType(65280))
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority


async def test_edns_options_take_the_careful_path(server: DnsServer) -> None:
    import dns.edns

    q = dns.message.make_query(
        WEB, "A", use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")]
    )
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert [rr.to_text() for rr in r.answer] == [f"{WEB} 5 IN A 10.96.0.20"]


async def test_server_answers_after_garbage(server: DnsServer) -> None:
    for packet in (b"\xff" * 600, b"\x00" * 12, bytes(range(256)) * 3):
        await udp_raw(server.port, packet, timeout=0.05)
    # oversize / garbage on TCP too: a length prefix promising more than is sent, then close
    _r, w = await asyncio.open_connection(HOST, server.port)
    w.write(b"\xff\xff" + b"junk")
    await w.drain()
    w.close()
    q = dns.message.make_query(WEB, "A")
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert r.answer


# ---- forwarding --------------------------------------------------------------------------


async def test_outside_name_without_upstream_is_servfail_at_once(server: DnsServer) -> None:
    q = dns.message.make_query("example.com.", "A")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await dns.asyncquery.udp(q, HOST, port=server.port, timeout=2)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert loop.time() - t0 < 0.5


async def test_outside_name_is_forwarded_and_cached() -> None:
    async with upstream_stub({("example.com.", 1): ("192.0.2.7", 30)}) as stub:
        fwd = Forwarder([Upstream(HOST, stub.port)], timeout=1.0)
        async with running(build_table(), fwd) as s:
            for _ in range(3):
                q = dns.message.make_query("Example.COM.", "A")
                r = await dns.asyncquery.udp(q, HOST, port=s.port, timeout=2)
                assert r.id == q.id
                assert [rr.to_text() for rr in r.answer] == ["Example.COM. 30 IN A 192.0.2.7"]
                assert r.flags & dns.flags.RA and not r.flags & dns.flags.AA  # the upstream's
            assert stub.asked == [("example.com.", 1)]  # the other two came from the cache


async def test_cached_answer_ttl_counts_down() -> None:
    now = [1000.0]
    async with upstream_stub({("example.com.", 1): ("192.0.2.7", 30)}) as stub:
        fwd = Forwarder([Upstream(HOST, stub.port)], timeout=1.0, clock=lambda: now[0])
        first = await fwd.resolve("example.com.", 1)
        now[0] += 12
        second = await fwd.resolve("example.com.", 1)
        now[0] += 30
        await fwd.resolve("example.com.", 1)
    assert first is not None and second is not None
    assert first.answer[0].ttl == 30 and second.answer[0].ttl == 18
    assert len(stub.asked) == 2  # expired after 30 s → asked again


async def test_upstream_nxdomain_is_passed_on() -> None:
    async with upstream_stub({}) as stub:
        fwd = Forwarder([Upstream(HOST, stub.port)], timeout=1.0)
        async with running(build_table(), fwd) as s:
            r = await dns.asyncquery.udp(
                dns.message.make_query("nowhere.test.", "A"), HOST, port=s.port, timeout=2
            )
            assert r.rcode() == dns.rcode.NXDOMAIN


async def test_dead_upstream_gives_servfail() -> None:
    # a port that nobody listens on: bind, note, close
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        dead = sock.getsockname()[1]
    fwd = Forwarder([Upstream(HOST, dead)], timeout=0.3)
    async with running(build_table(), fwd) as s:
        r = await dns.asyncquery.udp(
            dns.message.make_query("example.com.", "A"), HOST, port=s.port, timeout=3
        )
        assert r.rcode() == dns.rcode.SERVFAIL


async def test_externalname_target_is_resolved_upstream() -> None:
    async with upstream_stub({("example.com.", 1): ("192.0.2.7", 30)}) as stub:
        fwd = Forwarder([Upstream(HOST, stub.port)], timeout=1.0)
        async with running(build_table(), fwd) as s:
            q = dns.message.make_query("ext.default.svc.cluster.local.", "A")
            r = await dns.asyncquery.udp(q, HOST, port=s.port, timeout=2)
            assert sorted(rr.to_text() for rr in r.answer) == [
                "example.com. 30 IN A 192.0.2.7",
                "ext.default.svc.cluster.local. 5 IN CNAME example.com.",
            ]


async def test_cluster_names_are_never_forwarded() -> None:
    async with upstream_stub({}) as stub:
        fwd = Forwarder([Upstream(HOST, stub.port)], timeout=1.0)
        async with running(build_table(), fwd) as s:
            for name in (WEB, "nope.default.svc.cluster.local."):
                await dns.asyncquery.udp(
                    dns.message.make_query(name, "A"), HOST, port=s.port, timeout=2
                )
            assert stub.asked == []


def test_upstream_address_forms() -> None:
    assert Upstream.parse("10.0.0.1") == Upstream("10.0.0.1", 53)
    assert Upstream.parse("127.0.0.1:5353") == Upstream("127.0.0.1", 5353)
    assert Upstream.parse("[::1]:5300") == Upstream("::1", 5300)
    assert Upstream.parse("::1") == Upstream("::1", 53)


# ---- health and readiness ----------------------------------------------------------------


async def http_get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        return int(status.split()[1])
    finally:
        writer.close()


async def test_health_and_ready_endpoints() -> None:
    t = RecordTable("cluster.local")
    async with running(t, health=True) as s:
        assert await http_get(s.health_port, "/health") == 200
        assert await http_get(s.ready_port, "/ready") == 503
        t.set_synced()
        assert await http_get(s.ready_port, "/ready") == 200
        assert await http_get(s.ready_port, "/nope") == 404


async def test_a_change_is_answered_on_the_next_query(server: DnsServer) -> None:
    server.table.set_service(
        ServiceInfo(
            "default", "new", cluster_ips=("10.96.0.99",), ports=(PortInfo("http", "TCP", 80),)
        )
    )
    r = await dns.asyncquery.udp(
        dns.message.make_query("new.default.svc.cluster.local.", "A"),
        HOST,
        port=server.port,
        timeout=2,
    )
    assert [rr.to_text() for rr in r.answer] == ["new.default.svc.cluster.local. 5 IN A 10.96.0.99"]


async def test_query_helper_follows_the_search_list(server: DnsServer) -> None:
    from svcnet.dns.query import format_reply, query

    reply = await query(
        "web",
        server=HOST,
        port=server.port,
        search=("default.svc.cluster.local", "svc.cluster.local"),
    )
    assert [rr.to_text() for rr in reply.answer] == [f"{WEB} 5 IN A 10.96.0.20"]
    assert format_reply(reply).splitlines() == [
        "status: NOERROR",
        ";; ANSWER SECTION:",
        f"{WEB} 5 IN A 10.96.0.20",
    ]
    missing = await query("nope.default.svc.cluster.local.", server=HOST, port=server.port)
    assert format_reply(missing).splitlines()[0] == "status: NXDOMAIN"
