"""Port-forward into a pod (kubelet's ``/portforward``), over both wire forms kubectl uses.

The connection is made where kubelet's runtime makes it: to ``localhost:<port>`` inside the
pod's network namespace, so a server bound to the pod's loopback answers too. The socket is
created by a thread that has entered the pod's namespace (a socket keeps the namespace it was
made in); connect, reads and writes then run in the agent's event loop.

- SPDY (``portforward.k8s.io``, tunnelled in WebSocket as ``SPDY/3.1+portforward.k8s.io`` or
  ``v2.portforward.k8s.io``): per forwarded connection the client opens an ``error`` and a
  ``data`` stream carrying ``port`` and ``requestid`` headers; a pair is forwarded once both
  exist. The client's FIN on data half-closes the pod connection; the pod's EOF ends data
  with a FIN; then the error stream is closed (kubectl waits for it) — with
  ``error forwarding port …`` written on it first when the connection failed.
- WebSocket channels (``v4.channel.k8s.io``, no subprotocol): ``?ports=80,443``; per port a
  data channel 2i and an error channel 2i+1, each starting with the port as two
  little-endian bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from svcnet.agent.spdyconn import SpdyConnection, SpdyStream
from svcnet.agent.streamio import channel_frame

CLONE_NEWNET = 0x40000000
PAIR_TIMEOUT = 30.0  # kubelet's streamCreationTimeout
READ_SIZE = 1 << 16
TUNNEL_PROTOCOLS = ("SPDY/3.1+portforward.k8s.io", "v2.portforward.k8s.io")
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")

Dial = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns-socket")
_libc = ctypes.CDLL(None, use_errno=True)


class PortForwardError(Exception):
    pass


def socket_in(
    netns_path: str,
    family: socket.AddressFamily,
    kind: socket.SocketKind = socket.SOCK_STREAM,
) -> socket.socket:
    """A socket made in ``netns_path``; the calling thread returns to its own namespace."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"entering {netns_path}: {os.strerror(err)}")
        finally:
            os.close(target)
        try:
            return socket.socket(family, kind)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                # A thread left in a pod's namespace would make every later socket there.
                os.abort()
    finally:
        os.close(own)


def netns_dialer(netns_path: str) -> Dial:
    """Connect to localhost:port in the namespace (IPv4, then IPv6, as containerd tries)."""

    async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        errors = []
        for family, host, label in (
            (socket.AF_INET, "127.0.0.1", "IPv4: dial tcp4"),
            (socket.AF_INET6, "::1", "IPv6 dial tcp6"),
        ):
            sock = await loop.run_in_executor(_executor, socket_in, netns_path, family)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, (host, port))
            except OSError as e:
                sock.close()
                shown = f"[{host}]" if ":" in host else host
                errors.append(
                    f"{label} {shown}:{port}: connect: {os.strerror(e.errno or 0).lower()}"
                )
                continue
            return await asyncio.open_connection(sock=sock, limit=READ_SIZE)
        raise PortForwardError(
            f'failed to connect to localhost:{port} inside namespace "{netns_path}", '
            + " ".join(errors)
        )

    return dial


async def _copy_to_pod(read: Callable[[], Awaitable[bytes]], writer: asyncio.StreamWriter) -> None:
    try:
        while data := await read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def forward(
    dial: Dial,
    port: int,
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[bytes], Awaitable[None]],
    end: Callable[[], None],
    half_close: bool = True,
) -> None:
    """One forwarded connection: client bytes from ``read`` to the pod, pod bytes to ``write``;
    ``end`` when the pod has no more to send. With ``half_close`` (SPDY streams) the client may
    still send after that; WebSocket channels cannot half-close, so the forward ends there.
    Raises PortForwardError when it cannot connect."""
    reader, writer = await dial(port)
    up = asyncio.create_task(_copy_to_pod(read, writer))
    try:
        while data := await reader.read(READ_SIZE):
            await write(data)
        end()
        if half_close:
            await up
    except (ConnectionError, OSError):
        pass
    finally:
        up.cancel()
        writer.close()


def forward_error(port: int, pod: str, uid: str, err: Exception) -> bytes:
    return f"error forwarding port {port} to pod {pod}, uid {uid}: {err}".encode()


# -- SPDY ----------------------------------------------------------------------------------
def _check_stream(stream: SpdyStream) -> str:
    """httpStreamReceived's checks; the error text, or "" for a valid stream."""
    port = stream.header("port")
    if not port:
        return '"port" header is required'
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return f'unable to parse "{port}" as a port'
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = stream.header("streamtype")
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return ""


def _request_id(stream: SpdyStream) -> str:
    rid = stream.header("requestid")
    if rid:
        return rid
    # Clients older than request ids: error then data, consecutive odd ids (as kubelet does).
    return str(stream.id if stream.header("streamtype") == "error" else stream.id - 2)


async def serve_spdy(conn: SpdyConnection, dial: Dial, pod: str, uid: str) -> None:
    pairs: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def run_pair(data: SpdyStream, error: SpdyStream) -> None:
        port = int(data.header("port"))

        def end() -> None:
            data.close()

        try:
            await forward(dial, port, data.read, data.write, end)
        except PortForwardError as e:
            with contextlib.suppress(ConnectionError):
                await error.write(forward_error(port, pod, uid, e))
        finally:
            data.close()
            error.close()
            conn.forget(data)
            conn.forget(error)

    async def expire(rid: str) -> None:
        await asyncio.sleep(PAIR_TIMEOUT)
        pair = pairs.pop(rid, {})
        if "error" in pair:
            msg = f"(conn={id(conn):#x}, request={rid}) timed out waiting for streams"
            with contextlib.suppress(ConnectionError):
                await pair["error"].write(msg.encode())
            pair["error"].close()

    timers: dict[str, asyncio.Task[None]] = {}
    try:
        while (stream := await conn.accept()) is not None:
            problem = _check_stream(stream)
            if problem:
                stream.reset()
                continue
            stream.reply()
            rid = _request_id(stream)
            kind = stream.header("streamtype")
            pair = pairs.setdefault(rid, {})
            if not pair:
                timers[rid] = asyncio.create_task(expire(rid))
            if kind in pair:
                msg = f"error processing stream for request {rid}: {kind} stream already assigned"
                if "error" in pair:
                    with contextlib.suppress(ConnectionError):
                        await pair["error"].write(msg.encode())
                stream.reset()
                continue
            pair[kind] = stream
            if "data" in pair and "error" in pair:
                pairs.pop(rid)
                timer = timers.pop(rid, None)
                if timer is not None:
                    timer.cancel()
                task = asyncio.create_task(run_pair(pair["data"], pair["error"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for t in [*tasks, *timers.values()]:
            t.cancel()
        await conn.close()


# -- WebSocket channels ------------------------------------------------------------------------
def parse_ports(values: list[str]) -> list[int]:
    """``?ports=`` as kubelet's NewV4Options reads it; ValueError with its message."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for p in value.split(","):
            if not p.isdigit() or int(p) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port')
            if int(p) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(p))
    return ports


async def serve_channels(
    ws: web.WebSocketResponse, ports: list[int], dial: Dial, pod: str, uid: str
) -> None:
    inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]

    async def send(channel: int, data: bytes) -> None:
        if not ws.closed:
            await ws.send_bytes(bytes([channel]) + data)

    for i, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await send(2 * i, prefix)
        await send(2 * i + 1, prefix)

    async def one(i: int, port: int) -> None:
        async def write(data: bytes) -> None:
            await send(2 * i, data)

        try:
            await forward(dial, port, inboxes[i].get, write, lambda: None, half_close=False)
        except PortForwardError as e:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send(2 * i + 1, forward_error(port, pod, uid, e))

    async def reader() -> None:
        async for msg in ws:
            data = channel_frame(msg)
            if data and data[0] % 2 == 0:
                i = data[0] // 2
                if i < len(inboxes) and len(data) > 1:
                    inboxes[i].put_nowait(data[1:])
        for q in inboxes:
            q.put_nowait(b"")

    read_task = asyncio.create_task(reader())
    try:
        await asyncio.gather(*(one(i, p) for i, p in enumerate(ports)))
    finally:
        read_task.cancel()
        await ws.close()
