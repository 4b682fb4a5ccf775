"""pods/log, pods/exec (and the other streaming subresources): forwarded to the node agent.

As kube-apiserver forwards these to the kubelet, the API server finds the pod's node and the
agent's address on it — the node's ``InternalIP`` and ``status.daemonEndpoints.
kubeletEndpoint.Port`` (what the node agent registers) — and proxies the request to the
agent's kubelet-style endpoints:

* ``GET  http://<ip>:<port>/containerLogs/<namespace>/<pod>/<container>?<log options>``
  (streamed back as is, ``text/plain``);
* ``exec``, ``attach`` and ``portforward`` over WebSocket (``v5/v4.channel.k8s.io``,
  ``SPDY/3.1+portforward.k8s.io``...), relayed message by message; the HTTP layer hands such
  upgraded connections to aiohttp (:mod:`svcnet.apiserver.http1`);
* the same over a SPDY/3.1 upgrade (kubectl before 1.31, or with the WebSocket feature gates
  off): answered here, the SPDY bytes then carried to the agent in a WebSocket tunnel, so
  the agent serves one transport.

``nodes/NODE/proxy/PATH`` (GET) reaches ``http://<ip>:<port>/PATH`` of that node's agent, its
answer streamed back as is (kubectl get --raw /api/v1/nodes/node-1/proxy/flows); the agent
serves its own endpoints only (``/healthz``, ``/flows``...), so nothing else is reachable.

The agent authenticates the API server with the same bearer token clients use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from svcnet.api.errors import (
    AGENT_REFUSAL_HEADER,
    ApiError,
    BadRequest,
    Forbidden,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from svcnet.api.registry import NODES, Registry, ResourceType
from svcnet.apiserver import request as req
from svcnet.apiserver.http1 import Request, Stream
from svcnet.apiserver.storage import ObjectStore

_LOG_PARAMS = (
    "follow",
    "previous",
    "sinceSeconds",
    "sinceTime",
    "tailLines",
    "timestamps",
    "limitBytes",
)


STREAMING = ("exec", "attach", "portforward")
SPDY_TUNNEL = "SPDY/3.1+"
SERVED_PROTOCOLS = {
    "exec": (
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
        "v2.channel.k8s.io",
        "channel.k8s.io",
    ),
    "attach": (
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
        "v2.channel.k8s.io",
        "channel.k8s.io",
    ),
    "portforward": ("portforward.k8s.io",),
}


def agent_address(node: dict[str, Any]) -> tuple[str, int] | None:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addrs = status.get("addresses") or []
    ip = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None)
    if not port or not ip:
        return None
    return str(ip), int(port)


def pick_container(pod: dict[str, Any], requested: str) -> str:
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    name = (pod.get("metadata") or {}).get("name", "")
    if requested:
        spec = pod.get("spec") or {}
        others = [
            c.get("name", "")
            for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or [])
        ]
        if requested not in names and requested not in others:
            raise BadRequest(f"container {requested} is not valid for pod {name}")
        return requested
    if len(names) == 1:
        return str(names[0])
    raise BadRequest(
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
    )


class PodProxy:
    def __init__(self, registry: Registry, objects: ObjectStore, token: str) -> None:
        self.registry = registry
        self.objects = objects
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def serve(self, request: Request, info: req.RequestInfo, rt: ResourceType) -> Stream:
        """pods/log (the one streaming subresource served without a connection upgrade) and
        nodes/proxy."""
        if rt.group == "" and rt.kind == "Node" and info.subresource.split("/")[0] == "proxy":
            return await self._proxy_node(request, info)
        if info.subresource != "log":
            raise self._not_served(info)
        container, address = await self._target(info, rt, request.query.get("container", ""))
        return await self._proxy_log(request, info, container, address)

    @staticmethod
    def _not_served(info: req.RequestInfo) -> ApiError:
        if info.subresource in STREAMING:
            return BadRequest("Upgrade request required")
        return ServiceUnavailable(f"pods/{info.subresource} is not served by svcnet yet")

    async def _target(
        self, info: req.RequestInfo, rt: ResourceType, requested_container: str | None
    ) -> tuple[str, tuple[str, int]]:
        """The container (None: the pod itself) and the address of the agent serving it."""
        if not (rt.group == "" and rt.kind == "Pod"):
            raise ServiceUnavailable(
                f"the {info.subresource} subresource of {rt.plural} is not served by svcnet yet"
            )
        pod = await self.objects.get(rt, info.namespace, info.name)
        if pod is None:
            raise NotFound.for_object("pods", info.name)
        container = "" if requested_container is None else pick_container(pod, requested_container)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name and not container:
            raise BadRequest(f'pod "{info.name}" is not scheduled to a node yet')
        if not node_name:
            raise BadRequest(
                f'container "{container}" in pod "{info.name}" is waiting to start: '
                "the pod is not scheduled to a node yet"
            )
        node = await self.objects.get(NODES, None, node_name)
        address = agent_address(node) if node is not None else None
        if address is None:
            raise ServiceUnavailable(
                f'no node agent is serving node "{node_name}": the node has no '
                "status.daemonEndpoints.kubeletEndpoint and InternalIP address"
            )
        return container, address

    async def serve_upgrade(
        self, request: web.Request, info: req.RequestInfo, rt: ResourceType
    ) -> web.StreamResponse:
        """exec, attach and port-forward over WebSocket (the connection aiohttp was handed)."""
        if (
            info.subresource not in STREAMING
            or request.headers.get("Upgrade", "").lower() != "websocket"
        ):
            raise self._not_served(info)
        url = await self._agent_url(info, rt, request.query.get("container", ""))
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        upstream = await self._connect(url, request.query, offered)
        chosen = upstream.protocol
        client = web.WebSocketResponse(protocols=(chosen,) if chosen else (), max_msg_size=0)
        await client.prepare(request)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        await self._relay(pump(client, upstream), pump(upstream, client))
        await upstream.close()
        return client

    async def serve_spdy(
        self,
        request: Request,
        info: req.RequestInfo,
        rt: ResourceType,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """A SPDY upgrade, answered here and carried to the agent tunnelled in a WebSocket
        (``SPDY/3.1+<protocol>``): kube-apiserver's stream tunnelling, the other way round.
        The protocol is negotiated as httpstream.Handshake does: the client's
        ``X-Stream-Protocol-Version`` values in its order, the first the agent accepts."""
        if info.subresource not in STREAMING:
            raise self._not_served(info)
        url = await self._agent_url(info, rt, request.query.get("container", ""))
        offered = [
            p.strip()
            for v in request.headers.getall("X-Stream-Protocol-Version", [])
            for p in v.split(",")
            if p.strip()
        ]
        if not offered:  # clients from before protocol negotiation speak version 1
            offered = [
                "portforward.k8s.io" if info.subresource == "portforward" else "channel.k8s.io"
            ]
        upstream = await self._connect(url, request.query, [SPDY_TUNNEL + p for p in offered])
        chosen = (upstream.protocol or "").removeprefix(SPDY_TUNNEL)
        if not upstream.protocol or chosen not in offered:
            await upstream.close()
            raise Forbidden(
                "unable to upgrade: unable to negotiate protocol: client supports "
                f"{offered}, server supports {list(SERVED_PROTOCOLS[info.subresource])}"
            )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            + f"X-Stream-Protocol-Version: {chosen}\r\n\r\n".encode("latin-1")
        )

        async def up() -> None:
            while data := await reader.read(1 << 16):
                await upstream.send_bytes(data)
            await upstream.close()

        async def down() -> None:
            async for msg in upstream:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                writer.write(msg.data)
                await writer.drain()

        try:
            await self._relay(up(), down())
        finally:
            await upstream.close()

    @staticmethod
    async def _relay(up: Coroutine[Any, Any, None], down: Coroutine[Any, Any, None]) -> None:
        """Both directions until the agent's side ends (or the client goes away)."""
        up_task = asyncio.ensure_future(up)
        down_task = asyncio.ensure_future(down)
        try:
            await asyncio.wait({up_task, down_task}, return_when=asyncio.FIRST_COMPLETED)
            # The client finished sending (or left): the agent's answer may still come.
            if up_task.done() and not down_task.done() and up_task.exception() is None:
                await down_task
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            for t in (up_task, down_task):
                t.cancel()
            await asyncio.gather(up_task, down_task, return_exceptions=True)

    async def _agent_url(self, info: req.RequestInfo, rt: ResourceType, container: str) -> str:
        if info.subresource == "portforward":
            _, (ip, port) = await self._target(info, rt, None)
            return f"http://{ip}:{port}/portforward/{info.namespace}/{info.name}"
        name, (ip, port) = await self._target(info, rt, container)
        return f"http://{ip}:{port}/{info.subresource}/{info.namespace}/{info.name}/{name}"

    async def _connect(
        self, url: str, query: Any, protocols: list[str]
    ) -> aiohttp.ClientWebSocketResponse:
        """The agent's WebSocket; its refusal (container not running...) as the API error."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=5)
            )
        params = [(k, v) for k, v in query.items() if k != "container"]
        try:
            return await self._session.ws_connect(
                url,
                params=params,
                protocols=protocols,
                max_msg_size=0,
                autoping=True,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except aiohttp.WSServerHandshakeError as exc:
            said = exc.message
            if exc.headers is not None:
                said = exc.headers.get(AGENT_REFUSAL_HEADER) or said
            text = said or f"node agent answered {exc.status}"
            # kubelet answers "container ... not found in pod ..." with 500 (streaming.WriteError)
            raise (InternalError if exc.status >= 500 else BadRequest)(text) from exc
        except aiohttp.ClientError as exc:
            raise ServiceUnavailable(f"error talking to the node agent at {url}: {exc}") from exc

    async def _proxy_node(self, request: Request, info: req.RequestInfo) -> Stream:
        if request.method != "GET":
            raise MethodNotAllowed(
                f"nodes/proxy: only GET is served by svcnet, not {request.method}"
            )
        node = await self.objects.get(NODES, None, info.name)
        if node is None:
            raise NotFound.for_object("nodes", info.name)
        address = agent_address(node)
        if address is None:
            raise ServiceUnavailable(f'no node agent is serving node "{info.name}"')
        path = info.subresource.removeprefix("proxy").lstrip("/")
        return await self._stream(request, address, "/" + path, dict(request.query))

    async def _proxy_log(
        self, request: Request, info: req.RequestInfo, container: str, address: tuple[str, int]
    ) -> Stream:
        params = {k: v for k, v in request.query.items() if k in _LOG_PARAMS}
        path = f"/containerLogs/{info.namespace}/{info.name}/{container}"
        return await self._stream(request, address, path, params, "text/plain")

    async def _stream(
        self,
        request: Request,
        address: tuple[str, int],
        path: str,
        params: dict[str, str],
        content_type: str | None = None,
    ) -> Stream:
        """GET ``path`` of the agent at ``address``, its body streamed back as it comes (with
        the agent's content type unless given); an error answer becomes a 400."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=5)
            )
        ip, port = address
        url = f"http://{ip}:{port}{path}"
        try:
            upstream = await self._session.get(
                url, params=params, headers={"Authorization": f"Bearer {self.token}"}
            )
        except aiohttp.ClientError as exc:
            raise ServiceUnavailable(
                f"error talking to the node agent at {ip}:{port}: {exc}"
            ) from exc
        async with upstream:
            if upstream.status >= 400:
                text = (await upstream.text()).strip()
                raise BadRequest(text or f"node agent answered {upstream.status}")
            out = request.start_stream(
                200, content_type or upstream.headers.get("Content-Type") or "text/plain"
            )
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
