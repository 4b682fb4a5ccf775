"""Fuzzing the query path: random and mutated packets never crash it, and every reply parses.

Bounded for CI: the example counts below keep the whole module to a few seconds;
DNS_FUZZ_EXAMPLES raises them for a longer run by hand.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import time

import dns.asyncquery
import dns.message
from dns_sample_cluster import build_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svcnet.dns.respond import Forward, Responder
from svcnet.dns.server import DnsServer, ServerConfig

EXAMPLES = int(os.environ.get("DNS_FUZZ_EXAMPLES", "400"))
RESPONDER = Responder(build_table())
RESPONDER_FWD = Responder(build_table(), forwarding=True)

SEEDS = [
    dns.message.make_query(name, qtype, use_edns=edns).to_wire()
    for name, qtype, edns in [
        ("web.default.svc.cluster.local.", "A", None),
        ("_http._tcp.hl.default.svc.cluster.local.", "SRV", 0),
        ("20.0.96.10.in-addr.arpa.", "PTR", None),
        ("example.com.", "AAAA", 0),
        ("ext.default.svc.cluster.local.", "A", 0),
        ("1-2-3-4.default.pod.cluster.local.", "A", None),
    ]
]


def deserves_no_reply(data: bytes) -> bool:
    """What CoreDNS (miekg/dns's server) drops unanswered: a packet shorter than a header,
    which could only be used to amplify, and a response (QR set). Everything else gets an
    answer, FORMERR or NOTIMP included."""
    return len(data) < 12 or bool(data[2] & 0x80)


def check(responder: Responder, data: bytes) -> None:
    reply = responder.respond(data)
    if reply is None:
        assert deserves_no_reply(data), f"no reply to {data!r}"
        return
    assert not deserves_no_reply(data), f"a reply to what deserves none: {data!r}"
    if isinstance(reply, Forward):
        assert responder.forwarding
        return
    assert isinstance(reply, bytes)
    assert reply[:2] == data[:2]  # the ID is echoed
    assert reply[2] & 0x80  # and it is a response
    msg = dns.message.from_wire(reply)  # every reply parses
    if msg.edns < 0:
        assert len(reply) <= 512  # a UDP reply without EDNS stays within 512 bytes


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=700))
def test_random_bytes(data: bytes) -> None:
    check(RESPONDER, data)
    check(RESPONDER_FWD, data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    packet = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "counts"]))
        pos = draw(st.integers(0, max(0, len(packet) - 1)))
        if op == "flip" and packet:
            packet[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and packet:
            packet[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del packet[pos:]
        elif op == "insert":
            packet[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "counts" and len(packet) >= 12:
            packet[4:12] = struct.pack(">HHHH", *(draw(st.integers(0, 3)) for _ in range(4)))
    return bytes(packet)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_queries(data: bytes) -> None:
    check(RESPONDER, data)
    check(RESPONDER_FWD, data)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 65535), st.sampled_from(SEEDS))
def test_any_type_and_class(qtype: int, qclass: int, seed: bytes) -> None:
    name_end = seed.index(b"\x00", 12) + 1
    data = seed[:name_end] + struct.pack(">HH", qtype, qclass) + seed[name_end + 4 :]
    check(RESPONDER, data)


def mutate(rng: random.Random) -> bytes:
    packet = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        if packet:
            packet[rng.randrange(len(packet))] = rng.randrange(256)
    if rng.random() < 0.2:
        del packet[rng.randrange(len(packet) + 1) :]
    return bytes(packet)


class Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)


async def test_live_server_answers_each_mutated_packet_that_deserves_an_answer() -> None:
    """One packet at a time over UDP: a reply with the packet's ID comes back for each that
    deserves one; for the others, the next datagram is the reply to a probe sent after it."""
    rng = random.Random(7)
    server = DnsServer(build_table(), ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    transport, replies = await asyncio.get_running_loop().create_datagram_endpoint(
        Replies, remote_addr=("127.0.0.1", server.port)
    )
    probe = dns.message.make_query("web.default.svc.cluster.local.", "A")
    probe.id = 0xBEEF
    answered = 0
    try:
        for _ in range(300):
            packet = mutate(rng)
            transport.sendto(packet)
            if deserves_no_reply(packet):
                transport.sendto(probe.to_wire())
                packet = probe.to_wire()
            reply = await asyncio.wait_for(replies.queue.get(), timeout=3)
            assert reply[:2] == packet[:2], f"the reply to {packet!r} is {reply!r}"
            assert reply[2] & 0x80
            dns.message.from_wire(reply)
            answered += 1
    finally:
        transport.close()
        await server.stop()
    assert answered == 300


async def test_live_server_survives_a_burst_of_garbage() -> None:
    """A bounded burst (2 s) of mutated packets over UDP and TCP, then a normal query works."""
    rng = random.Random(5)
    server = DnsServer(build_table(), ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", server.port)
    )
    writer = None
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        deadline = time.monotonic() + 2.0
        sent = 0
        while time.monotonic() < deadline and sent < 50000:
            packet = mutate(rng)
            transport.sendto(packet)
            if sent % 10 == 0 and not writer.is_closing():
                writer.write(struct.pack(">H", len(packet)) + bytes(packet))
            sent += 1
            if sent % 200 == 0:
                await asyncio.sleep(0)  # let the server run
        # The burst can fill the server socket's receive buffer, where a query would be dropped
        # like any UDP datagram: let the server drain it first.
        await asyncio.sleep(0.5)
        q = dns.message.make_query("web.default.svc.cluster.local.", "A")
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=server.port, timeout=3)
        assert [rr.to_text() for rr in r.answer] == [
            "web.default.svc.cluster.local. 5 IN A 10.96.0.20"
        ]
    finally:
        transport.close()
        if writer is not None:
            writer.close()
        await server.stop()
