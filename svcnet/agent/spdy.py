"""SPDY/3.1 framing, sans-I/O: what kubectl's port-forward and older clients' exec speak.

Kubernetes streams (``k8s.io/apimachinery/pkg/util/httpstream/spdy`` over moby/spdystream)
use SPDY/3.1 as a stream multiplexer only: the client opens one stream per role
(SYN_STREAM with headers such as ``streamtype: stdout`` or ``streamtype: data`` + ``port``),
the server answers each with SYN_REPLY, data flows in DATA frames, a DATA or SYN frame with
the FIN flag half-closes a stream. Header blocks are zlib-compressed with the SPDY/3
dictionary, one compression context per direction for the whole connection. spdystream
keeps no flow-control windows (WINDOW_UPDATE and SETTINGS are read and ignored), and PINGs
from the peer are echoed.

:class:`Framer` turns bytes into frames and frames into bytes; it does no I/O.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 3
FLAG_FIN = 0x01
MAX_DATA = (1 << 24) - 1
MAX_HEADER_BLOCK = 1 << 20  # a decompressed header block; real ones are a few dozen bytes


class FrameType(IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6


class SpdyError(Exception):
    """A frame that cannot be read: the connection is over (spdystream drops it too)."""


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1)."""
    words = [
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
    ]
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive"]
    words += ["origin"]
    head = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words)
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
        "charset=iso-8859-1,utf-,*,enq=0."
    )
    return head + tail.encode()


DICTIONARY = _dictionary()


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Mapping[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Mapping[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class Ignored:
    """SETTINGS, WINDOW_UPDATE, HEADERS: read and dropped, as spdystream does."""

    frame_type: int


Frame = SynStream | SynReply | Data | RstStream | Ping | GoAway | Ignored


class Framer:
    """One side of a SPDY connection: :meth:`feed` bytes in, frame builders out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    # -- reading --------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 8:
            first, second = struct.unpack_from(">II", buf, pos)
            length = second & 0xFFFFFF
            if len(buf) - pos - 8 < length:
                break
            flags = second >> 24
            payload = bytes(buf[pos + 8 : pos + 8 + length])
            pos += 8 + length
            if first & 0x80000000:
                frames.append(self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload))
            else:
                stream_id = first & 0x7FFFFFFF
                if stream_id == 0:
                    raise SpdyError("stream id zero is disallowed")
                frames.append(Data(stream_id, payload, bool(flags & FLAG_FIN)))
        del buf[:pos]
        return frames

    def _control(self, version: int, ftype: int, flags: int, payload: bytes) -> Frame:
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        fin = bool(flags & FLAG_FIN)
        try:
            if ftype == FrameType.SYN_STREAM:
                (sid,) = struct.unpack_from(">I", payload)
                return SynStream(sid & 0x7FFFFFFF, self._headers(payload[10:]), fin)
            if ftype == FrameType.SYN_REPLY:
                (sid,) = struct.unpack_from(">I", payload)
                return SynReply(sid & 0x7FFFFFFF, self._headers(payload[4:]), fin)
            if ftype == FrameType.HEADERS:
                self._headers(payload[4:])  # keeps the shared decompression context in step
                return Ignored(ftype)
            if ftype == FrameType.RST_STREAM:
                sid, status = struct.unpack_from(">II", payload)
                return RstStream(sid & 0x7FFFFFFF, status)
            if ftype == FrameType.PING:
                (pid,) = struct.unpack_from(">I", payload)
                return Ping(pid)
            if ftype == FrameType.GOAWAY:
                last, status = struct.unpack_from(">II", payload)
                return GoAway(last & 0x7FFFFFFF, status)
        except struct.error as e:
            raise SpdyError(f"short {FrameType(ftype).name} frame") from e
        if ftype in (FrameType.SETTINGS, FrameType.WINDOW_UPDATE):
            return Ignored(ftype)
        raise SpdyError(f"unknown control frame type {ftype}")

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise SpdyError(f"header block: {e}") from e
        if self._inflate.unconsumed_tail:
            raise SpdyError("header block too large")
        try:
            (count,) = struct.unpack_from(">I", raw)
            pos = 4
            headers: dict[str, str] = {}
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4 : pos + 4 + n].decode("latin-1").lower()
                pos += 4 + n
                (n,) = struct.unpack_from(">I", raw, pos)
                # Several values are joined by NUL; Kubernetes headers carry one each.
                headers[name] = raw[pos + 4 : pos + 4 + n].decode("latin-1").split("\0")[0]
                pos += 4 + n
        except struct.error as e:
            raise SpdyError("truncated header block") from e
        return headers

    # -- writing --------------------------------------------------------------------------
    def _block(self, headers: Mapping[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            n, v = name.lower().encode("latin-1"), value.encode("latin-1")
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control_head(ftype: FrameType, flags: int, length: int) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | length)

    def syn_stream(self, stream_id: int, headers: Mapping[str, str], fin: bool = False) -> bytes:
        block = self._block(headers)
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + block
        return self._control_head(FrameType.SYN_STREAM, FLAG_FIN if fin else 0, len(body)) + body

    def syn_reply(
        self, stream_id: int, headers: Mapping[str, str] | None = None, fin: bool = False
    ) -> bytes:
        body = struct.pack(">I", stream_id) + self._block(headers or {})
        return self._control_head(FrameType.SYN_REPLY, FLAG_FIN if fin else 0, len(body)) + body

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        out = b""
        while len(data) > MAX_DATA:
            out += struct.pack(">II", stream_id, MAX_DATA) + data[:MAX_DATA]
            data = data[MAX_DATA:]
        return (
            out + struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data
        )

    @classmethod
    def rst_stream(cls, stream_id: int, status: int) -> bytes:
        return cls._control_head(FrameType.RST_STREAM, 0, 8) + struct.pack(">II", stream_id, status)

    @classmethod
    def ping(cls, ping_id: int) -> bytes:
        return cls._control_head(FrameType.PING, 0, 4) + struct.pack(">I", ping_id)

    @classmethod
    def goaway(cls, last_stream_id: int, status: int = 0) -> bytes:
        return cls._control_head(FrameType.GOAWAY, 0, 8) + struct.pack(
            ">II", last_stream_id, status
        )
