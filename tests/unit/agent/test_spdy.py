"""SPDY/3.1 framing as spdystream writes and reads it, and a connection's stream rules."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from svcnet.agent import spdy
from svcnet.agent.spdyconn import SpdyConnection


def test_the_dictionary_is_spdy3s() -> None:
    # Length and ends of the 1423-byte dictionary of the SPDY/3 draft (2.6.10.1).
    d = spdy.DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert d.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def go_header_block(headers: dict[str, str], comp: zlib._Compress) -> bytes:
    """A header block as spdystream's writeHeaderValueBlock + zlib Flush produce it."""
    raw = struct.pack(">I", len(headers))
    for k, v in headers.items():
        raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    return comp.compress(raw) + comp.flush(zlib.Z_SYNC_FLUSH)


def test_syn_streams_share_one_decompression_context() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    wire = b""
    for sid, kind in ((1, "error"), (3, "data")):
        block = go_header_block({"streamtype": kind, "port": "80", "requestid": "0"}, comp)
        body = struct.pack(">IIBB", sid, 0, 0, 0) + block
        wire += struct.pack(">HHI", 0x8003, 1, len(body)) + body
    framer = spdy.Framer()
    # Byte by byte: frames come out only once complete.
    frames = [f for b in wire for f in framer.feed(bytes([b]))]
    assert frames == [
        spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
        spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
    ]


@pytest.mark.parametrize(
    ("frame", "want"),
    [
        (spdy.Framer.data(5, b"abc", fin=True), spdy.Data(5, b"abc", True)),
        (spdy.Framer.data(5, b""), spdy.Data(5, b"", False)),
        (spdy.Framer.rst_stream(7, spdy.RstStatus.CANCEL), spdy.RstStream(7, 5)),
        (spdy.Framer.ping(9), spdy.Ping(9)),
        (spdy.Framer.goaway(3), spdy.GoAway(3, 0)),
        (struct.pack(">HHII", 0x8003, 9, 8, 1) + struct.pack(">I", 1024), spdy.Ignored(9)),
    ],
)
def test_frames_round_trip(frame: bytes, want: spdy.Frame) -> None:
    assert spdy.Framer().feed(frame) == [want]


def test_replies_are_readable_by_the_peer() -> None:
    ours, theirs = spdy.Framer(), spdy.Framer()
    wire = ours.syn_reply(1) + ours.syn_reply(3, {"x": "y"}, fin=True)
    assert theirs.feed(wire) == [spdy.SynReply(1, {}), spdy.SynReply(3, {"x": "y"}, True)]


@pytest.mark.parametrize(
    "wire",
    [
        struct.pack(">HHI", 0x8002, 1, 0),  # SPDY/2
        struct.pack(">II", 0, 0),  # data on stream 0
        struct.pack(">HHI", 0x8003, 1, 12) + b"\0" * 12,  # a header block that is not zlib
        struct.pack(">HHI", 0x8003, 0x55, 0),  # no such control frame
    ],
)
def test_unreadable_frames_end_the_connection(wire: bytes) -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.Framer().feed(wire)


async def test_connection_accepts_streams_echoes_pings_and_half_closes() -> None:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    conn = SpdyConnection(send)
    client = spdy.Framer()
    conn.feed(client.syn_stream(1, {"streamtype": "data"}) + client.ping(7) + client.ping(8))
    stream = await conn.accept()
    assert stream is not None and stream.header("streamType") == "data"
    stream.reply()
    conn.feed(spdy.Framer.data(1, b"hello", fin=True))
    assert await stream.read() == b"hello"
    assert await stream.read() == b""
    await stream.write(b"back")
    stream.close()
    await conn.close()
    frames = client.feed(b"".join(sent))
    assert frames == [
        spdy.Ping(7),  # the client's (odd) ping echoed, not our own (even) one
        spdy.SynReply(1, {}),
        spdy.Data(1, b"back"),
        spdy.Data(1, b"", True),
        spdy.GoAway(1, 0),
    ]
    assert await conn.accept() is None


async def test_a_stream_id_used_twice_or_even_is_refused() -> None:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    conn = SpdyConnection(send)
    client = spdy.Framer()
    conn.feed(client.syn_stream(1, {}) + client.syn_stream(1, {}) + client.syn_stream(2, {}))
    await asyncio.sleep(0)
    assert (await conn.accept()) is not None
    await conn.close()
    frames = client.feed(b"".join(sent))
    assert frames[:2] == [
        spdy.RstStream(1, spdy.RstStatus.PROTOCOL_ERROR),
        spdy.RstStream(2, spdy.RstStatus.PROTOCOL_ERROR),
    ]
