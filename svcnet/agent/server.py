"""The agent's HTTP endpoint (kubelet's server on :10250): container logs and exec.

Served on the node's InternalIP, plain HTTP, and only to callers that present the cluster's
bearer token (the API server proxies pods/log and pods/exec here with it; see
:mod:`svcnet.apiserver.podproxy`).

* ``GET /containerLogs/{namespace}/{pod}/{container}`` — ``follow``, ``previous``,
  ``tailLines``, ``limitBytes``, ``timestamps``, ``sinceSeconds``/``sinceTime`` as kubelet,
  over log files in the CRI format (:mod:`svcnet.agent.crilog`): each line carries the time
  the agent read it.
* ``GET /exec/{namespace}/{pod}/{container}?command=…&stdin=1&stdout=1&stderr=1&tty=1`` — a
  WebSocket upgrade speaking the remotecommand channel protocol (``v5.channel.k8s.io``,
  ``v4.channel.k8s.io``, ``channel.k8s.io``): every binary frame starts with its channel byte
  (0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize, 255 close — v5 only). The command
  runs in the container's net, mount and UTS namespaces with the container's environment;
  its end is reported on channel 3 as a ``Status`` (v4+) — Success, or Failure with reason
  NonZeroExitCode and the exit code as the cause, which kubectl turns into its exit code.
* ``POST /run/{namespace}/{pod}/{container}?cmd=…`` — kubelet's non-streaming run: output
  of the command as the answer.
* ``GET /flows?since=SEQ&follow=1`` — the node's flow log (:mod:`svcnet.agent.flowtap`), one
  JSON object a line, oldest first, those numbered above ``since``; with ``follow`` the answer
  stays open and streams new flows. Reached through the API server's node proxy
  (``/api/v1/nodes/NODE/proxy/flows``), as kubelet's own endpoints are.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import struct
import termios
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from svcnet.agent import crilog
from svcnet.agent.containers import OUTPUT_DRAIN, RestartPolicy
from svcnet.agent.flowtap import node_flows
from svcnet.agent.portforward import (
    CHANNEL_PROTOCOLS as PF_CHANNEL_PROTOCOLS,
)
from svcnet.agent.portforward import (
    TUNNEL_PROTOCOLS,
    netns_dialer,
    parse_ports,
    serve_channels,
    serve_spdy,
)
from svcnet.agent.streamio import (
    CHANNEL_PROTOCOLS,
    CLOSE,
    ERROR,
    RESIZE,
    SPDY_TUNNEL_PREFIX,
    STDERR,
    STDIN,
    STDOUT,
    SpdyIO,
    StreamIO,
    WebSocketIO,
    exit_status,
    pump_tunnel,
    tunnel_connection,
)
from svcnet.api.errors import AGENT_REFUSAL_HEADER
from svcnet.dataplane.process import command_for_exec

if TYPE_CHECKING:
    from svcnet.agent.agent import Agent
    from svcnet.agent.containers import PodContainers
    from svcnet.agent.pod_worker import PodWorker

log = logging.getLogger(__name__)

FOLLOW_POLL = 0.1
FLOWS_WAIT = 30.0


@web.middleware
async def _refusal_text(request: web.Request, handler: Any) -> web.StreamResponse:
    """A refused stream upgrade keeps its words for the API server (see AGENT_REFUSAL_HEADER)."""
    try:
        resp: web.StreamResponse = await handler(request)
    except web.HTTPException as e:
        if e.status >= 400 and e.text and request.headers.get("Upgrade"):
            e.headers[AGENT_REFUSAL_HEADER] = " ".join(e.text.split())
        raise
    return resp


class AgentServer:
    def __init__(self, agent: Agent, token: str) -> None:
        self.agent = agent
        self.token = token
        self._runner: web.AppRunner | None = None
        self._tunnels: set[asyncio.Task[None]] = set()

    async def _setup(self) -> web.AppRunner:
        app = web.Application(middlewares=[self._auth, _refusal_text])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", self._exec)
        app.router.add_route("*", "/attach/{namespace}/{pod}/{container}", self._attach)
        app.router.add_route("*", "/portforward/{namespace}/{pod}", self._portforward)
        app.router.add_post("/run/{namespace}/{pod}/{container}", self._run)
        app.router.add_get("/flows", self._flows)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        return self._runner

    async def start(self, host: str, port: int) -> None:
        runner = await self._setup()
        await web.TCPSite(runner, host, port, reuse_address=True).start()

    async def start_on(self, sock: socket.socket) -> None:
        """Serve on an already listening socket (see :class:`svcnet.agent.agent.LazyServer`)."""
        runner = await self._setup()
        await web.SockSite(runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            request.path != "/healthz"
            and request.headers.get("Authorization", "") != f"Bearer {self.token}"
        ):
            return web.Response(status=401, text="Unauthorized")
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _worker(self, request: web.Request) -> tuple[PodWorker, str]:
        ns = request.match_info["namespace"]
        name = request.match_info["pod"]
        container = request.match_info["container"]
        worker = self.agent.worker_for(ns, name)
        if worker is None:
            raise web.HTTPNotFound(text=f'pod "{name}" not found on node {self.agent.ident.name}')
        if container not in worker.container_names():
            raise web.HTTPBadRequest(text=f"container {container} is not valid for pod {name}")
        return worker, container

    # -- flows -----------------------------------------------------------------------------
    async def _flows(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            seq = int(q.get("since", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="since: expected a flow number") from None
        follow = q.get("follow", "").lower() in ("1", "true")
        flows = node_flows(self.agent.ident.name)
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        batch = flows.ring.since(seq)
        while True:
            if batch:
                seq = batch[-1].seq
                lines = "".join(json.dumps(f.to_json()) + "\n" for f in batch)
                await resp.write(lines.encode())
            elif follow:
                await resp.write(b"\n")  # a reader that left is noticed here
            if not follow:
                break
            batch = await flows.after(seq, FLOWS_WAIT)
        await resp.write_eof()
        return resp

    # -- logs ------------------------------------------------------------------------------
    async def _logs(self, request: web.Request) -> web.StreamResponse:
        worker, container = self._worker(request)
        q = request.query
        try:
            opts = LogOptions.parse(q)
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from e
        pc = worker.containers
        path = pc.log_file(container, opts.previous) if pc is not None else None
        name = worker.name
        if path is None or not os.path.exists(path):
            if opts.previous:
                msg = f'previous terminated container "{container}" in pod "{name}" not found'
            else:
                msg = f'container "{container}" in pod "{name}" is waiting to start: ' + (
                    _waiting_reason(worker, container)
                )
            raise web.HTTPBadRequest(text=msg)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0

        async def write(entries: list[crilog.Entry]) -> bool:
            """Send entries; False once limitBytes is reached."""
            nonlocal sent
            data = b"".join(e.output(opts.timestamps) for e in entries)
            if opts.limit is not None:
                data = data[: max(0, opts.limit - sent)]
            if data:
                await resp.write(data)
                sent += len(data)
            return opts.limit is None or sent < opts.limit

        with open(path, "rb") as f:
            data = f.read()
            entries, used = crilog.parse(data)
            more = await write(crilog.select(entries, opts.since_ns, opts.tail))
            buf = data[used:]
            while more and opts.follow and not opts.previous:
                chunk = f.read()
                if chunk:
                    entries, used = crilog.parse(buf + chunk)
                    buf = (buf + chunk)[used:]
                    more = await write(crilog.select(entries, opts.since_ns, None))
                    continue
                if pc is None or pc.log_file(container) != path or pc.pid(container) is None:
                    # The container ended (or restarted): its log is complete once the agent
                    # has copied the last of its output.
                    io = pc.ios.get(container) if pc is not None else None
                    if io is not None and io.log_path == path:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(io.ended.wait(), 2.0)
                    entries, _ = crilog.parse(buf + f.read())
                    await write(crilog.select(entries, opts.since_ns, None))
                    break
                if worker.finished.is_set():
                    break
                await asyncio.sleep(FOLLOW_POLL)
        await resp.write_eof()
        return resp

    # -- exec ------------------------------------------------------------------------------
    def _exec_argv(
        self, worker: PodWorker, container: str, command: list[str]
    ) -> tuple[list[str], dict[str, str]]:
        pc = worker.containers
        pid = pc.pid(container) if pc is not None else None
        if pid is None:
            raise web.HTTPBadRequest(
                text=f'container {container} is not running in pod "{worker.name}"'
            )
        if not command:
            raise web.HTTPBadRequest(text="you must specify at least one command for the container")
        assert pc is not None
        return command_for_exec(pid, command), pc.environ(container)

    async def _run(self, request: web.Request) -> web.Response:
        worker, container = self._worker(request)
        cmd = request.query.get("cmd", "").split()
        argv, env = self._exec_argv(worker, container, cmd)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        out, _ = await proc.communicate()
        return web.Response(body=out, content_type="text/plain")

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        worker, container = self._worker(request)
        q = request.query
        command = q.getall("command", [])
        argv, env = self._exec_argv(worker, container, command)
        want_stdin, tty = (q.get(k, "").lower() in ("1", "true") for k in ("stdin", "tty"))
        ws, io = await self._remotecommand(request, want_stdin, tty)
        await ExecSession(io, argv, env, want_stdin, tty).run()
        return ws

    async def _remotecommand(
        self, request: web.Request, stdin: bool, tty: bool
    ) -> tuple[web.WebSocketResponse, StreamIO]:
        """Upgrade to a WebSocket with the client's first protocol we speak: channels, or
        SPDY tunnelled (then wait for the streams the options ask for)."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="Upgrade request required")
        q = request.query
        tunnels = tuple(SPDY_TUNNEL_PREFIX + p for p in CHANNEL_PROTOCOLS)
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS + tunnels, max_msg_size=0)
        await ws.prepare(request)
        protocol = ws.ws_protocol or "channel.k8s.io"
        if not protocol.startswith(SPDY_TUNNEL_PREFIX):
            return ws, WebSocketIO(ws, protocol)
        protocol = protocol.removeprefix(SPDY_TUNNEL_PREFIX)
        conn = tunnel_connection(ws)
        feeder = asyncio.create_task(pump_tunnel(ws, conn))
        self._tunnels.add(feeder)
        feeder.add_done_callback(self._tunnels.discard)
        expected = {ERROR}
        for name, channel in (("stdin", STDIN), ("stdout", STDOUT), ("stderr", STDERR)):
            if q.get(name, "").lower() in ("1", "true") and not (tty and channel == STDERR):
                expected.add(channel)
        if tty and protocol != "channel.k8s.io" and protocol != "v2.channel.k8s.io":
            expected.add(RESIZE)
        return ws, await SpdyIO.open(conn, protocol, expected)

    # -- attach ----------------------------------------------------------------------------
    async def _attach(self, request: web.Request) -> web.StreamResponse:
        worker, container = self._worker(request)
        pc = worker.containers
        if pc is None or (pc.pid(container) is None and not replayable(pc, container)):
            # kubelet's GetAttach finds running containers only, and its streaming.WriteError
            # answers 500.
            raise web.HTTPInternalServerError(
                text=f"container {container} not found in pod {worker.name}_{worker.namespace}"
            )
        ended = pc.pid(container) is None
        cio = pc.ios.get(container)
        if ended and cio is not None:
            # Ended before its first attach: the output is still being copied to its log.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cio.ended.wait(), OUTPUT_DRAIN)
        path = pc.log_file(container)
        assert path is not None
        want_stdin, tty = (
            request.query.get(k, "").lower() in ("1", "true") for k in ("stdin", "tty")
        )
        ws, io = await self._remotecommand(request, want_stdin, tty)
        session = AttachSession(io, pc, container, path, want_stdin, ended)
        await session.run()
        return ws

    # -- port-forward ----------------------------------------------------------------------
    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["namespace"]
        name = request.match_info["pod"]
        worker = self.agent.worker_for(ns, name)
        if worker is None:
            raise web.HTTPNotFound(text=f'pod "{name}" not found on node {self.agent.ident.name}')
        netns = worker.netns_path()
        if netns is None:
            raise web.HTTPBadRequest(text=f'pod "{name}" has no network namespace yet')
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="Upgrade request required")
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        tunnel = any(p in TUNNEL_PROTOCOLS for p in offered)
        ports: list[int] = []
        if not tunnel:
            try:
                ports = parse_ports(request.query.getall("ports", []))
            except ValueError as e:
                raise web.HTTPBadRequest(text=str(e)) from e
        ws = web.WebSocketResponse(
            protocols=TUNNEL_PROTOCOLS + PF_CHANNEL_PROTOCOLS, max_msg_size=0
        )
        await ws.prepare(request)
        dial = netns_dialer(netns)
        if ws.ws_protocol in TUNNEL_PROTOCOLS:
            conn = tunnel_connection(ws)
            feeder = asyncio.create_task(pump_tunnel(ws, conn))
            try:
                await serve_spdy(conn, dial, name, worker.uid)
            finally:
                feeder.cancel()
                await ws.close()
        else:
            await serve_channels(ws, ports, dial, name, worker.uid)
        return ws


def _waiting_reason(worker: PodWorker, container: str) -> str:
    if container in worker.config_errors:
        return worker.config_errors[container][0]
    pc = worker.containers
    if pc is None:
        return "ContainerCreating"
    for st in pc.statuses():
        if st.name == container and st.state.reason:
            return st.state.reason
    return "ContainerCreating"


@dataclass(frozen=True)
class LogOptions:
    """kubelet's container log options, from the query the API server forwards."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail: int | None = None
    limit: int | None = None
    since_ns: int | None = None

    @classmethod
    def parse(cls, q: Mapping[str, str]) -> LogOptions:
        def flag(name: str) -> bool:
            return q.get(name, "false").lower() in ("1", "true")

        def number(name: str) -> int | None:
            raw = q.get(name)
            if not raw:
                return None
            try:
                return int(raw)
            except ValueError as e:
                raise ValueError(f"invalid {name}: {raw!r}") from e

        since_ns = None
        since_seconds = number("sinceSeconds")
        if since_seconds is not None:
            since_ns = time.time_ns() - since_seconds * 1_000_000_000
        elif q.get("sinceTime"):
            since_ns = crilog.parse_time(q["sinceTime"])
        return cls(
            follow=flag("follow"),
            previous=flag("previous"),
            timestamps=flag("timestamps"),
            tail=number("tailLines"),
            limit=number("limitBytes"),
            since_ns=since_ns,
        )


class ExecSession:
    """One exec: a process wired to the session's streams (a pty when tty was asked)."""

    def __init__(
        self,
        io: StreamIO,
        argv: list[str],
        env: dict[str, str],
        want_stdin: bool,
        tty: bool,
    ) -> None:
        self.io = io
        self.argv = argv
        self.env = env
        self.want_stdin = want_stdin
        self.tty = tty
        self._master: int | None = None

    async def run(self) -> None:
        slave: int | None = None
        if self.tty:
            self._master, slave = os.openpty()
            # setsid -c: a new session whose controlling terminal is the pty, so ^C and job
            # control reach the command as they would in `docker exec -it`.
            proc = await asyncio.create_subprocess_exec(
                "setsid", "-c", *self.argv, stdin=slave, stdout=slave, stderr=slave, env=self.env
            )
            os.close(slave)
        else:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE if self.want_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                start_new_session=True,
            )
        pumps: list[asyncio.Task[None]] = []
        if self._master is not None:
            pumps.append(asyncio.create_task(pump_fd(self._master, STDOUT, self.io.send)))
        else:
            assert proc.stdout is not None and proc.stderr is not None
            pumps.append(asyncio.create_task(self._pump_stream(proc.stdout, STDOUT)))
            pumps.append(asyncio.create_task(self._pump_stream(proc.stderr, STDERR)))
        reader = asyncio.create_task(self._read_client(proc))
        code = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 2.0)
        reader.cancel()
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
        await self.io.finish(exit_status(code))

    async def _pump_stream(self, stream: asyncio.StreamReader, channel: int) -> None:
        while True:
            data = await stream.read(32768)
            if not data:
                return
            await self.io.send(channel, data)

    async def _read_client(self, proc: asyncio.subprocess.Process) -> None:
        async for channel, data in self.io.incoming():
            if channel == STDIN:
                if self._master is not None:
                    os.write(self._master, data)
                elif proc.stdin is not None:
                    proc.stdin.write(data)
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
            elif channel == RESIZE and self._master is not None:
                set_size(self._master, data)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                if self._master is not None:
                    with contextlib.suppress(OSError):
                        os.write(self._master, b"\x04")
                elif proc.stdin is not None:
                    proc.stdin.close()
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()


_CHANNEL = {"stdout": STDOUT, "stderr": STDERR}


def read_log(path: str) -> list[crilog.Entry]:
    try:
        with open(path, "rb") as f:
            return crilog.parse(f.read())[0]
    except FileNotFoundError:
        return []


def replayable(pc: PodContainers, container: str) -> bool:
    """An instance that ended before anyone attached, started for ``kubectl run`` (stdinOnce,
    or a pod that does not restart it): its first attach is served its log. kubelet would have
    reported such a short container's pod completed before kubectl attached, and kubectl
    would have printed its logs; svcnet reports Running at once, so kubectl attaches. Any
    other attach to a finished container is refused, as kubelet refuses it."""
    cio = pc.ios.get(container)
    if cio is None or cio.attached_before:
        return False
    return cio.stdin_once or pc.policy is not RestartPolicy.ALWAYS


class AttachSession:
    """One attach: the container's output to the client, the client's stdin to the container,
    until the container instance ends (Success on the error stream) or the client leaves."""

    def __init__(
        self,
        io: StreamIO,
        pc: PodContainers,
        container: str,
        path: str,
        want_stdin: bool,
        ended: bool = False,
    ) -> None:
        self.io = io
        self.ended = ended
        self.pc = pc
        self.container = container
        self.path = path
        self.want_stdin = want_stdin
        self.cio = pc.ios.get(container)
        # kubectl run -i attaches once the container runs: what it wrote before belongs to
        # the first session of a stdinOnce container. So does all of it when the instance
        # ended before its first attach: kubelet, whose status lags the start by a PLEG
        # relist, would have reported the pod completed and kubectl would have printed the
        # logs; svcnet reports Running at once, so kubectl attaches to a finished container.
        self.replay = (
            self.cio is not None
            and not self.cio.attached_before
            and ((self.cio.stdin_once and not self.cio.tty) or ended)
        )
        if self.cio is not None:
            self.cio.attached_before = True

    async def _output(self) -> None:
        cio = self.cio
        if cio is None:
            return  # a container without agent-held streams: nothing to attach to
        queue = cio.subscribe()
        try:
            if self.replay:  # read now, before any later output is queued
                for entry in read_log(self.path):
                    await self.io.send(_CHANNEL[entry.stream], entry.output(False))
            if self.ended:  # its log is all there is (a child may still hold its pipes)
                return
            while True:
                stream, data = await queue.get()
                if not data:
                    return
                await self.io.send(STDOUT if cio.tty else _CHANNEL[stream], data)
        finally:
            cio.unsubscribe(queue)

    async def _input(self) -> None:
        cio = self.cio
        async for channel, data in self.io.incoming():
            if cio is None:
                continue
            if channel == STDIN and self.want_stdin:
                await cio.write_stdin(data)
            elif channel == RESIZE and cio.master is not None:
                set_size(cio.master, data)
            elif (
                channel == CLOSE
                and data[:1] == bytes([STDIN])
                and self.want_stdin
                and cio.stdin_once
            ):
                cio.close_stdin()

    async def run(self) -> None:
        output = asyncio.create_task(self._output())
        client = asyncio.create_task(self._input())
        try:
            await asyncio.wait({output, client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (output, client):
                t.cancel()
            await asyncio.gather(output, client, return_exceptions=True)
            if self.cio is not None and self.want_stdin and self.cio.stdin_once:
                self.cio.close_stdin()
        await self.io.finish(exit_status(0))


def set_size(fd: int, data: bytes) -> None:
    """A resize message ({"Width": w, "Height": h}) applied to a terminal."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        size = json.loads(data)
        fcntl.ioctl(
            fd,
            termios.TIOCSWINSZ,
            struct.pack("HHHH", int(size.get("Height", 24)), int(size.get("Width", 80)), 0, 0),
        )


async def pump_fd(fd: int, channel: int, send: Callable[[int, bytes], Awaitable[None]]) -> None:
    """Everything read from ``fd`` (a pty master) to ``send`` until it ends."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(fd, 32768)
        except OSError:
            data = b""
        queue.put_nowait(data)
        if not data:
            loop.remove_reader(fd)

    loop.add_reader(fd, readable)
    try:
        while True:
            data = await queue.get()
            if not data:
                return
            await send(channel, data)
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
