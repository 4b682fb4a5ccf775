""":class:`StreamApiClient`: the :class:`ApiClient` of the long-running, mostly idle processes
(node agents, DNS pods) over asyncio streams and h11 instead of aiohttp.

Why: aiohttp (with yarl, multidict, its parsers and email) costs ~11-13 MiB of resident memory
per process; an idle 3-node cluster runs five such processes and counts every one (issue 3:
idle cluster under 250 MB). h11 is the sans-I/O HTTP/1.1 protocol machine httpcore is built
on; this module is only its thin I/O driver (STYLE.md: protocol logic sans-I/O, a thin
driver, errors translated at the boundary).

Everything the informers and callers rely on is kept from :class:`ApiClient` — paths and
parameters, the bearer token, TLS verified against the cluster CA, API errors as ApiError
(410 → Gone), ConnectionFailed on transport failures, GET retries, the watch read timeout —
only the transport differs: keep-alive connections in a small pool (a watch holds its own
connection until it ends, then closes it).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

from svcnet.client.rest import (
    ApiClient,
    WatchEvent,
    error_from_response,
    watch_events,
)

log = logging.getLogger(__name__)

READ_SIZE = 1 << 16
# Idle keep-alive connections kept per client; more concurrent requests open more
# connections, which are closed instead of pooled once the pool is full.
MAX_IDLE = 4
# Transport failures worth a retry on a fresh connection, and those that end a request.
_TRANSPORT_ERRORS = (OSError, TimeoutError, EOFError, ValueError, h11.ProtocolError)


class _Connection:
    """One TCP (+TLS) connection and its h11 state machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self.reused = False

    async def next_event(self, read_timeout: float | None) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            read = self.reader.read(READ_SIZE)
            data = await (asyncio.wait_for(read, read_timeout) if read_timeout else read)
            self.h11.receive_data(data)  # b"" is EOF: h11 turns it into an error or close

    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        self.writer.close()


class _Response:
    def __init__(self, status: int, conn: _Connection, client: StreamApiClient) -> None:
        self.status = status
        self.conn = conn
        self._client = client
        self._done = False

    async def chunks(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        """The body as it arrives; each read waits at most ``read_timeout`` seconds."""
        while True:
            event = await self.conn.next_event(read_timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("connection closed before the end of the body")

    async def read(self, read_timeout: float | None) -> bytes:
        return b"".join([c async for c in self.chunks(read_timeout)])

    def release(self) -> None:
        """Back to the pool when the exchange ended cleanly, closed otherwise."""
        self._client._release(self.conn, keep=self._done)


class StreamApiClient(ApiClient):
    """``async with StreamApiClient(config) as c``: :class:`ApiClient` without aiohttp."""

    def open(self) -> None:
        url = urlsplit(self.config.server)
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        host = self._host if ":" not in self._host else f"[{self._host}]"
        self._authority = f"{host}:{self._port}"
        self._idle: list[_Connection] = []
        self._opened = True

    async def close(self) -> None:
        self._opened = False
        for conn in getattr(self, "_idle", ()):
            conn.close()
        self._idle = []

    async def _connect(self) -> _Connection:
        ctx = self._ssl if isinstance(self._ssl, ssl.SSLContext) else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self._host, self._port, ssl=ctx, server_hostname=self._host if ctx else None
            ),
            self.timeout,
        )
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, keep: bool) -> None:
        if keep and self._opened and conn.reusable() and len(self._idle) < MAX_IDLE:
            conn.h11.start_next_cycle()
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
    ) -> _Response:
        if not getattr(self, "_opened", False):
            self.open()
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = [
            ("Host", self._authority),
            ("User-Agent", self.config.user_agent),
            *self._headers(content_type, accept).items(),
            ("Content-Length", str(len(body or b""))),
        ]
        while True:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                out = conn.h11.send(h11.Request(method=method, target=target, headers=headers))
                out += conn.h11.send(h11.Data(data=body or b"")) or b""
                out += conn.h11.send(h11.EndOfMessage()) or b""
                conn.writer.write(out)
                await conn.writer.drain()
                event = await conn.next_event(self.timeout)
                if not isinstance(event, h11.Response):
                    raise ConnectionError(f"no HTTP response: {event!r}")
                return _Response(event.status_code, conn, self)
            except _TRANSPORT_ERRORS:
                conn.close()
                # A pooled connection the server closed while idle fails before any answer:
                # the request never ran, so it is sent again on a new connection.
                if conn.reused:
                    continue
                raise
            except BaseException:
                conn.close()
                raise

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        return _TRANSPORT_ERRORS

    async def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
    ) -> tuple[int, bytes]:
        resp = await self._request(method, path, params, body, content_type, accept)
        try:
            return resp.status, await resp.read(self.timeout)
        finally:
            resp.release()

    async def _watch_stream(
        self, path: str, params: Mapping[str, str], read_timeout: float | None
    ) -> AsyncGenerator[WatchEvent, None]:
        resp = await self._request("GET", path, params, None, None, "application/json")
        try:
            if resp.status >= 300:
                raise error_from_response(resp.status, await resp.read(self.timeout), "watch")
            async for event in watch_events(resp.chunks(read_timeout)):
                yield event
        finally:
            resp.conn.close()  # a watch's connection is not pooled
