"""The API server's HTTP/1.1 connections: requests parsed by httptools (llhttp, the parser of
Node.js) straight into the API handlers, each answer written in one piece.

Why not aiohttp's server: its per-request machinery (request and response objects, the
router, middlewares, the payload writer) cost about 90 µs per request on this machine, as much
as the whole create pipeline of a Service; here a request costs a parser callback per header
and one write. The HTTP semantics kept are the ones Kubernetes clients use: keep-alive
(HTTP/1.0 and ``Connection: close`` honoured), requests answered in order when a client
pipelines, ``Expect: 100-continue``, chunked request bodies, HEAD, the 3 MiB body limit (413
before the body is buffered when Content-Length says so), chunked streaming responses (watch,
followed logs) with write flow control, idle keep-alive connections closed after
:data:`IDLE_TIMEOUT`. HTTP/2 is not offered (kubectl falls back to HTTP/1.1, as it does
against aiohttp).

Connection upgrades are handed over whole. A WebSocket upgrade (kubectl exec, attach,
port-forward) goes to aiohttp: the transport moves to an aiohttp ``RequestHandler``, which is
given the bytes of the request read so far and serves the connection from then on. Any other
upgrade (SPDY/3.1, what older clients ask for) goes to the server's ``raw_upgrade`` handler
with the parsed request and the connection as an asyncio stream pair: it answers the
upgrade itself and owns the bytes that follow.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

import httptools
from multidict import CIMultiDict, MultiDict, MultiDictProxy

from svcnet.api.errors import ApiError, BadRequest, RequestEntityTooLarge
from svcnet.apiserver.request import MAX_BODY_BYTES
from svcnet.apiserver.response import Response
from svcnet.apiserver.status import error_response

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 90.0  # seconds a keep-alive connection may sit idle (Go's http.Transport's)
MAX_PIPELINED = 16  # requests queued on one connection before it stops reading
MAX_HEAD_BYTES = 1 << 20  # request line and headers (Go's http.DefaultMaxHeaderBytes)
LINGER_SECONDS = 0.5  # reading after a final error answer before closing (Go's server's)

_EMPTY_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in http.HTTPStatus}


def _head(status: int, content_type: str) -> bytes:
    """Status line, Content-Type and Date: what every answer's head starts with."""
    line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()
    return (
        line
        + b"Content-Type: "
        + content_type.encode("latin-1")
        + b"\r\nDate: "
        + http_date()
        + b"\r\n"
    )


def too_large() -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY_BYTES}")


class Request:
    """One complete request: method, decoded path, query and headers, the whole body (at most
    3 MiB: a larger one is answered 413 before any handler runs)."""

    __slots__ = ("_conn", "body", "headers", "keep_alive", "method", "path", "query", "refused")

    def __init__(
        self,
        conn: Http1Connection,
        method: str,
        path: str,
        query: MultiDictProxy[str],
        headers: CIMultiDict[str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self._conn = conn
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        # An error found while reading (a body over the limit): the answer, without a handler.
        self.refused: ApiError | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def start_stream(self, status: int = 200, content_type: str = "application/json") -> Stream:
        """Send the head of a chunked response now; the body follows through the stream."""
        return self._conn.start_stream(self, status, content_type)


class Stream:
    """A chunked response being written (watch events, followed logs)."""

    __slots__ = ("_conn", "ended")

    def __init__(self, conn: Http1Connection) -> None:
        self._conn = conn
        self.ended = False

    async def write(self, data: bytes) -> None:
        """Send one chunk; waits while the client reads slower than we write. Raises
        ConnectionResetError once the client is gone."""
        if data:
            await self._conn.write_chunk(b"%x\r\n%b\r\n" % (len(data), data))

    async def write_eof(self) -> None:
        if not self.ended:
            self.ended = True
            await self._conn.write_chunk(b"0\r\n\r\n")


Answer = Response | Stream
Handler = Callable[[Request], Awaitable[Answer]]
RawUpgradeHandler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Http1Server:
    """The protocol factory for ``loop.create_server`` and the set of live connections."""

    def __init__(
        self,
        handle: Handler,
        upgrade_protocol: Callable[[], asyncio.Protocol],
        raw_upgrade: RawUpgradeHandler | None = None,
    ) -> None:
        self.handle = handle
        self.upgrade_protocol = upgrade_protocol
        self.raw_upgrade = raw_upgrade
        self.raw_tasks: set[asyncio.Task[None]] = set()
        self.connections: set[Http1Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def __call__(self) -> Http1Connection:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle())
        return Http1Connection(self)

    async def _sweep_idle(self) -> None:
        # One timer for all connections instead of one per request.
        while True:
            await asyncio.sleep(IDLE_TIMEOUT / 3)
            deadline = time.monotonic() - IDLE_TIMEOUT
            for conn in [c for c in self.connections if c.idle_since(deadline)]:
                conn.close()

    def close(self) -> None:
        """Close every connection (in-flight handlers see ConnectionResetError on writes)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            conn.close()
        for task in list(self.raw_tasks):
            task.cancel()


class Http1Connection(asyncio.Protocol):
    """One client connection: parses, queues complete requests, answers them in order."""

    def __init__(self, server: Http1Server) -> None:
        self._server = server
        self._transport: Any = None
        self._parser = httptools.HttpRequestParser(self)
        self._closed = False
        self._draining = False  # answered a request it could not read; closing soon
        # The request being parsed.
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._size = 0
        self._refused: ApiError | None = None
        self._close_after_message = False
        self._in_refused_body = False  # refused, answered early, the body still coming
        self._upgrade = False
        # The raw bytes of the request being parsed, for a hand-over to aiohttp. Exact when the
        # request began a chunk (always, unless the client pipelines).
        self._chunk = b""
        self._raw: list[bytes] = []
        self._keep_raw = False
        self._completed_in_chunk = False
        self._raw_exact = True
        # Requests waiting for their answer, and the task answering them.
        self._pending: collections.deque[Request] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._streaming = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._last_active = time.monotonic()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client went away"))
            self._drained.exception()  # retrieved: nobody may be waiting any more
        if self._task is not None and self._streaming:
            # A watch or a followed log would otherwise wait for its next event to notice.
            # Ordinary requests run to the end, as upstream's do.
            self._task.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        self._chunk = data
        self._completed_in_chunk = False
        if self._keep_raw:
            self._raw.append(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._hand_over()
        except httptools.HttpParserCallbackError as exc:
            if self._head_size > MAX_HEAD_BYTES:
                self._fail(431, f"request line and headers over {MAX_HEAD_BYTES} bytes")
            else:  # one of our callbacks failed: a bug, answered like a request we cannot read
                log.error("HTTP request callback failed", exc_info=exc)
                self._fail(400, f"malformed HTTP request: {exc}")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._body = []
        self._size = 0
        self._refused = None
        self._upgrade = False
        self._raw = [self._chunk]
        self._keep_raw = True
        self._raw_exact = not self._completed_in_chunk

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self._count_head(len(name) + len(value))

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            # Raised out of feed_data as a parser error: answered 431, connection closed.
            raise ValueError("request header fields too large")

    def on_headers_complete(self) -> None:
        self._upgrade = self._parser.should_upgrade()
        if self._upgrade:
            return
        self._keep_raw = False
        self._raw = []
        expect_continue = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == "content-length":
                if value.strip().isdigit() and int(value) > MAX_BODY_BYTES:
                    self._refused = too_large()
            elif lowered == "expect":
                expect_continue = value.lower() == "100-continue"
        if self._refused is not None:
            self._refuse()
        elif expect_continue and not self._closed:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refused is not None:
            return  # the answer is on its way; the rest of the body is dropped
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            self._refused = too_large()
            self._body = []
            self._refuse()
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._completed_in_chunk = True
        if self._refused is not None:
            self._in_refused_body = False
            if self._close_after_message:
                self.close()
            return  # answered already
        if self._upgrade:
            return  # handed over when feed_data raises HttpParserUpgrade
        self._queue(self._request())

    def _refuse(self) -> None:
        """Answer a body over the limit at once (before the client sends or finishes it) and
        close the connection after the answer, as Go's server does for a body it did not
        read."""
        self._in_refused_body = True
        request = self._request()
        request.refused = self._refused
        request.keep_alive = False
        self._queue(request)

    def _queue(self, request: Request) -> None:
        self._last_active = time.monotonic()
        self._pending.append(request)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._answer_pending())
        elif len(self._pending) >= MAX_PIPELINED and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def _request(self) -> Request:
        url = self._url
        if url[:1] != b"/":  # absolute form (proxies) or "*"
            parsed = httptools.parse_url(url)
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        raw_path, _, raw_query = url.decode("latin-1").partition("?")
        path = unquote(raw_path) if "%" in raw_path else raw_path
        query = (
            MultiDictProxy(MultiDict(parse_qsl(raw_query, keep_blank_values=True)))
            if raw_query
            else _EMPTY_QUERY
        )
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        return Request(
            self,
            self._parser.get_method().decode("latin-1"),
            path,
            query,
            CIMultiDict(self._headers),
            body,
            self._parser.should_keep_alive(),
        )

    # -- answering -----------------------------------------------------------------------

    async def _answer_pending(self) -> None:
        try:
            while self._pending and not self._closed:
                request = self._pending.popleft()
                if self._reading_paused and len(self._pending) < MAX_PIPELINED // 2:
                    self._reading_paused = False
                    self._transport.resume_reading()
                answer: Answer
                if request.refused is not None:
                    answer = error_response(request.refused)
                else:
                    answer = await self._server.handle(request)
                if isinstance(answer, Stream):
                    if not answer.ended and not self._closed:
                        await answer.write_eof()
                    self._streaming = False
                elif self._streaming:
                    # The handler failed after its stream's head went out: no answer can
                    # follow on this connection.
                    self._streaming = False
                    self.close()
                    break
                else:
                    self._write_response(request, answer)
                if not request.keep_alive:
                    if request.refused is not None and self._in_refused_body:
                        # Closing while the client still sends the body would reset the
                        # connection under the answer: close once the body is read.
                        self._close_after_message = True
                    else:
                        self.close()
        except ConnectionResetError:
            pass  # the client went away mid-answer
        except asyncio.CancelledError:
            if not self._closed:
                raise
        finally:
            self._task = None
            self._last_active = time.monotonic()

    def _write_response(self, request: Request, answer: Response) -> None:
        self._write_answer(answer, request.keep_alive, with_body=request.method != "HEAD")

    def _write_answer(self, answer: Response, keep_alive: bool, with_body: bool = True) -> None:
        if self._closed:
            return
        self._transport.write(render_answer(answer, keep_alive, with_body))

    def start_stream(self, request: Request, status: int, content_type: str) -> Stream:
        if self._closed:
            raise ConnectionResetError("the client went away")
        self._streaming = True
        self._transport.write(_head(status, content_type) + b"Transfer-Encoding: chunked\r\n\r\n")
        return Stream(self)

    async def write_chunk(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("the client went away")
        self._transport.write(data)
        if self._write_paused:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    # -- the rest ------------------------------------------------------------------------

    def idle_since(self, deadline: float) -> bool:
        return self._task is None and not self._keep_raw and self._last_active < deadline

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.close()

    def _fail(self, status: int, message: str) -> None:
        """Answer a request that cannot be parsed and drop the connection (nothing after it
        can be framed). The close lingers: what the client is still sending is read and
        dropped for a moment, or the kernel would reset the connection under the answer."""
        err: ApiError = BadRequest(message)
        err.code = status
        if self._task is None:
            self._write_answer(error_response(err), keep_alive=False)
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close)

    def _hand_over(self) -> None:
        """Give this connection to aiohttp (a WebSocket upgrade) or to the raw upgrade
        handler (SPDY)."""
        if not self._raw_exact or self._task is not None or self._pending:
            self._fail(400, "an upgrade request must not be pipelined behind other requests")
            return
        upgrade = next((v for n, v in self._headers if n.lower() == "upgrade"), "")
        if upgrade.lower() != "websocket" and self._server.raw_upgrade is not None:
            self._hand_over_raw(self._server.raw_upgrade)
            return
        protocol = self._server.upgrade_protocol()
        transport = self._transport
        self._server.connections.discard(self)
        self._closed = True  # for this object: the connection lives on in aiohttp
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(b"".join(self._raw))

    def _hand_over_raw(self, handler: RawUpgradeHandler) -> None:
        request = self._request()
        raw = b"".join(self._raw)
        head_end = raw.find(b"\r\n\r\n")
        early = raw[head_end + 4 :] if head_end >= 0 else b""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 16)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport = self._transport
        self._server.connections.discard(self)
        self._closed = True  # for this object: the connection lives on in the handler
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if early:
            reader.feed_data(early)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)

        async def serve() -> None:
            try:
                await handler(request, reader, writer)
            except Exception:
                log.exception("upgraded connection failed")
            finally:
                writer.close()

        task = loop.create_task(serve())
        self._server.raw_tasks.add(task)
        task.add_done_callback(self._server.raw_tasks.discard)


def render_answer(answer: Response, keep_alive: bool, with_body: bool = True) -> bytes:
    body = answer.body
    parts = [_head(answer.status, answer.content_type), b"Content-Length: %d\r\n" % len(body)]
    for name, value in answer.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if with_body:
        parts.append(body)
    return b"".join(parts)


_date_second = 0
_date_value = b""


def http_date() -> bytes:
    """The Date header's value, formatted once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_value = email.utils.formatdate(now, usegmt=True).encode()
    return _date_value
