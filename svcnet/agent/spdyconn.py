"""A SPDY/3.1 connection over any byte pipe (a WebSocket tunnel or a raw upgraded socket).

The server side of ``httpstream/spdy``: streams opened by the peer are handed out by
:meth:`SpdyConnection.accept` (the handler replies with :meth:`SpdyStream.reply` or resets
it), data is queued per stream, a FIN half-closes. Writes go through one ordered queue —
compressed header blocks must leave in the order they were compressed — drained by a writer
task into ``send``; a writer that queued more than :data:`HIGH_WATER` bytes waits in
:meth:`SpdyConnection.drain`, which is how a slow client slows the pod side of a
port-forward down (spdystream has no flow-control windows: TCP's are the only ones).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Mapping

from svcnet.agent.spdy import (
    Data,
    Framer,
    GoAway,
    Ping,
    RstStatus,
    RstStream,
    SynStream,
)

HIGH_WATER = 1 << 20
MAX_COALESCE = 1 << 18  # bytes joined into one write of the pipe


class SpdyStream:
    def __init__(self, conn: SpdyConnection, stream_id: int, headers: Mapping[str, str]) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reset_seen = False

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def reply(self) -> None:
        self.conn._queue(self.conn.framer.syn_reply(self.id))

    def reset(self, status: int = RstStatus.CANCEL) -> None:
        self.local_closed = True
        self.conn._queue(Framer.rst_stream(self.id, status))
        self._remote_end()

    async def read(self) -> bytes:
        """The next chunk from the peer; b"" once it half-closed (or the stream is gone)."""
        if self.remote_closed and self._inbox.empty():
            return b""
        return await self._inbox.get()

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.conn.closed:
            raise ConnectionResetError("stream closed")
        if data:
            self.conn._queue(Framer.data(self.id, data))
            await self.conn.drain()

    def close(self) -> None:
        """Half-close: a FIN, as httpstream's Stream.Close."""
        if not self.local_closed:
            self.local_closed = True
            if not self.conn.closed:
                self.conn._queue(Framer.data(self.id, b"", fin=True))

    def _remote_end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._inbox.put_nowait(b"")


class SpdyConnection:
    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.framer = Framer()
        self._send = send
        self.streams: dict[int, SpdyStream] = {}
        self._accepted: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._out: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.closed = False
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    # -- input --------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes from the peer (raises SpdyError on a frame that cannot be read)."""
        for frame in self.framer.feed(data):
            if isinstance(frame, SynStream):
                if frame.stream_id in self.streams or frame.stream_id % 2 == 0:
                    self._queue(Framer.rst_stream(frame.stream_id, RstStatus.PROTOCOL_ERROR))
                    continue
                stream = SpdyStream(self, frame.stream_id, frame.headers)
                self.streams[frame.stream_id] = stream
                if frame.fin:
                    stream._remote_end()
                self._accepted.put_nowait(stream)
            elif isinstance(frame, Data):
                s = self.streams.get(frame.stream_id)
                if s is None or s.remote_closed:
                    continue
                if frame.data:
                    s._inbox.put_nowait(frame.data)
                if frame.fin:
                    s._remote_end()
            elif isinstance(frame, RstStream):
                s = self.streams.pop(frame.stream_id, None)
                if s is not None:
                    s.reset_seen = True
                    s.local_closed = True
                    s._remote_end()
            elif isinstance(frame, Ping):
                if frame.ping_id % 2 == 1:  # the client's (odd): echoed; ours are even
                    self._queue(Framer.ping(frame.ping_id))
            elif isinstance(frame, GoAway):
                self.connection_lost()

    def connection_lost(self) -> None:
        """The pipe ended: every stream reads its end, accept() returns None."""
        if self.closed:
            return
        self.closed = True
        for s in self.streams.values():
            s._remote_end()
        self._accepted.put_nowait(None)
        self._wake.set()
        self._drained.set()

    async def accept(self) -> SpdyStream | None:
        return await self._accepted.get()

    def forget(self, stream: SpdyStream) -> None:
        self.streams.pop(stream.id, None)

    # -- output -------------------------------------------------------------------------
    def _queue(self, data: bytes) -> None:
        if self.closed:
            return
        self._out.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._drained.clear()
        self._wake.set()

    async def drain(self) -> None:
        await self._drained.wait()
        if self.closed:
            raise ConnectionResetError("connection closed")

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self._out:
                    parts = []
                    size = 0
                    while self._out and size < MAX_COALESCE:
                        part = self._out.popleft()
                        parts.append(part)
                        size += len(part)
                    self._buffered -= size
                    await self._send(b"".join(parts))
                    if self._buffered <= HIGH_WATER // 2:
                        self._drained.set()
        except (ConnectionError, RuntimeError, OSError):
            self.connection_lost()

    async def close(self) -> None:
        """GOAWAY after what is queued, then stop writing."""
        if self.closed:
            return
        self._queue(Framer.goaway(max((i for i in self.streams), default=0)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(), 5.0)
        self.connection_lost()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _flush(self) -> None:
        while self._out and not self.closed:
            await asyncio.sleep(0.01)
