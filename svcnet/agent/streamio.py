"""The remotecommand streams of exec and attach, over either transport the agent serves.

kubelet's remotecommand server speaks two wire forms of the same five streams (stdin,
stdout, stderr, error, resize):
- WebSocket channels (``v5/v4/v3/v2.channel.k8s.io``, ``channel.k8s.io``): every binary
  message starts with its channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize,
  255 close (v5: ``[255, 0]`` half-closes stdin);
- SPDY streams (``httpstream``), one per role, named by their ``streamtype`` header; the
  client creates them and the server waits until all that the options ask for exist (30 s,
  kubelet's streamCreationTimeout). The SPDY connection itself arrives tunnelled in
  WebSocket binary messages (``SPDY/3.1+<protocol>``): the API server turns an old client's
  SPDY upgrade into that tunnel, so the agent serves WebSocket only.
The session (:mod:`svcnet.agent.server`) sees one interface, :class:`StreamIO`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import WSMessage, WSMsgType, web

from svcnet.agent.spdy import SpdyError
from svcnet.agent.spdyconn import SpdyConnection, SpdyStream

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHANNEL_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
SPDY_TUNNEL_PREFIX = "SPDY/3.1+"
STREAM_CREATION_TIMEOUT = 30.0
_STREAM_TYPES = {
    "stdin": STDIN,
    "stdout": STDOUT,
    "stderr": STDERR,
    "error": ERROR,
    "resize": RESIZE,
}


def channel_frame(msg: WSMessage) -> bytes:
    """The bytes of a channel message, channel byte first; empty for a control message.

    kubelet reads a message whatever its opcode (``websocket.Message.Receive`` into a
    ``[]byte``), and clients rely on it: the Python client sends text written to stdin as a
    text message, ``chr(channel) + text``, and bytes as a binary one."""
    if msg.type is WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type is WSMsgType.TEXT:
        return str(msg.data).encode()
    return b""


def exit_status(code: int) -> dict[str, Any]:
    """The error-stream Status kubectl reads (remotecommand's ``errorDecoderV4``)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def status_bytes(protocol: str, status: dict[str, Any]) -> bytes:
    """v4+ writes the Status as JSON; older protocols only an error's text."""
    if protocol.startswith(("v4.", "v5.")):
        return json.dumps(status).encode()
    if status.get("status") == "Success":
        return b""
    return str(status.get("message", "")).encode()


class StreamIO(Protocol):
    protocol: str

    async def send(self, channel: int, data: bytes) -> None: ...

    def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        """(STDIN, data), (RESIZE, one JSON size) and (CLOSE, bytes([STDIN])) at stdin's end."""
        ...

    async def finish(self, status: dict[str, Any]) -> None:
        """Write the final Status on the error stream and end the session."""
        ...


class WebSocketIO:
    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, channel: int, data: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(bytes([channel]) + data)

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        async for msg in self.ws:
            if data := channel_frame(msg):
                yield data[0], data[1:]
        yield CLOSE, bytes([STDIN])

    async def finish(self, status: dict[str, Any]) -> None:
        data = status_bytes(self.protocol, status)
        if data:
            await self.send(ERROR, data)
        await self.ws.close()


class SpdyIO:
    """The streams of one exec/attach on a SPDY connection."""

    def __init__(self, conn: SpdyConnection, protocol: str, streams: dict[int, SpdyStream]):
        self.conn = conn
        self.protocol = protocol
        self.streams = streams

    @classmethod
    async def open(cls, conn: SpdyConnection, protocol: str, expected: set[int]) -> SpdyIO:
        streams: dict[int, SpdyStream] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_CREATION_TIMEOUT
        while not expected <= streams.keys():
            try:
                stream = await asyncio.wait_for(conn.accept(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                stream = None
            if stream is None:
                raise ConnectionError("timed out waiting for client to create streams")
            stream.reply()
            kind = _STREAM_TYPES.get(stream.header("streamtype"))
            if kind is None:
                stream.reset()
                continue
            streams[kind] = stream
        return cls(conn, protocol, streams)

    async def send(self, channel: int, data: bytes) -> None:
        stream = self.streams.get(channel)
        if stream is not None:
            with contextlib.suppress(ConnectionError):
                await stream.write(data)

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

        async def stdin(stream: SpdyStream) -> None:
            while data := await stream.read():
                await queue.put((STDIN, data))
            await queue.put((CLOSE, bytes([STDIN])))

        async def resize(stream: SpdyStream) -> None:
            # A stream of JSON objects, one per size change (json.Decoder upstream).
            buf = ""
            decoder = json.JSONDecoder()
            while data := await stream.read():
                buf += data.decode(errors="replace")
                while buf.strip():
                    try:
                        obj, end = decoder.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    await queue.put((RESIZE, json.dumps(obj).encode()))

        tasks = []
        if STDIN in self.streams:
            tasks.append(asyncio.create_task(stdin(self.streams[STDIN])))
        if RESIZE in self.streams:
            tasks.append(asyncio.create_task(resize(self.streams[RESIZE])))

        async def ended() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)
            while not self.conn.closed:  # stdin done: wait for the connection's end
                stream = await self.conn.accept()
                if stream is None:
                    break
                stream.reset()
            await queue.put(None)

        waiter = asyncio.create_task(ended())
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            waiter.cancel()
            for t in tasks:
                t.cancel()

    async def finish(self, status: dict[str, Any]) -> None:
        data = status_bytes(self.protocol, status)
        error = self.streams.get(ERROR)
        if error is not None and data:
            with contextlib.suppress(ConnectionError):
                await error.write(data)
        for stream in self.streams.values():
            stream.close()
        await self.conn.close()


async def pump_tunnel(ws: web.WebSocketResponse, conn: SpdyConnection) -> None:
    """Feed the SPDY connection from the WebSocket tunnel until either ends."""
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                conn.feed(msg.data)
            elif msg.type is not WSMsgType.TEXT:
                break
    except SpdyError:
        pass
    finally:
        conn.connection_lost()


def tunnel_connection(ws: web.WebSocketResponse) -> SpdyConnection:
    async def send(data: bytes) -> None:
        await ws.send_bytes(data)

    return SpdyConnection(send)
