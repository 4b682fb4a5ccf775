"""pods/log, pods/exec (and the other streaming subresources): forwarded to the node agent.

As kube-apiserver forwards these to the kubelet, the API server finds the pod's node and the
agent's address on it — the node's ``InternalIP`` and ``status.daemonEndpoints.
kubeletEndpoint.Port`` (what the node agent registers) — and proxies the request to the
agent's kubelet-style endpoints:

* ``GET  http://<ip>:<port>/containerLogs/<namespace>/<pod>/<container>?<log options>``
  (streamed back as is, ``text/plain``);
* ``exec`` over WebSocket (``v5/v4.channel.k8s.io``), relayed frame by frame; the HTTP layer
  hands such upgraded connections to aiohttp (:mod:`svcnet.apiserver.http1`);
* ``attach``/``portforward`` and SPDY upgrades answer a clear error naming what is missing.

The agent authenticates the API server with the same bearer token clients use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from svcnet.api.errors import BadRequest, NotFound, ServiceUnavailable
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
        init = [c.get("name", "") for c in (pod.get("spec") or {}).get("initContainers") or []]
        if requested not in names and requested not in init:
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
        """pods/log (the one streaming subresource served without a connection upgrade)."""
        container, address = await self._target(info, rt, request.query.get("container", ""))
        if info.subresource != "log":
            raise self._not_served(info)
        return await self._proxy_log(request, info, container, address)

    async def serve_upgrade(
        self, request: web.Request, info: req.RequestInfo, rt: ResourceType
    ) -> web.StreamResponse:
        """pods/exec over WebSocket (the connection aiohttp was handed)."""
        container, address = await self._target(info, rt, request.query.get("container", ""))
        if info.subresource == "exec" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._proxy_exec(request, info, container, address)
        raise self._not_served(info)

    @staticmethod
    def _not_served(info: req.RequestInfo) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"pods/{info.subresource} needs a streaming connection that the svcnet node agent "
            "does not serve yet (exec is served over WebSocket only, not SPDY)"
        )

    async def _target(
        self, info: req.RequestInfo, rt: ResourceType, requested_container: str
    ) -> tuple[str, tuple[str, int]]:
        """The container and the address of the agent serving it."""
        if not (rt.group == "" and rt.kind == "Pod"):
            raise ServiceUnavailable(
                f"the {info.subresource} subresource of {rt.plural} is not served by svcnet yet"
            )
        pod = await self.objects.get(rt, info.namespace, info.name)
        if pod is None:
            raise NotFound.for_object("pods", info.name)
        container = pick_container(pod, requested_container)
        node_name = (pod.get("spec") or {}).get("nodeName")
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

    async def _proxy_exec(
        self, request: web.Request, info: req.RequestInfo, container: str, address: tuple[str, int]
    ) -> web.StreamResponse:
        """kubectl's WebSocket exec (v5/v4.channel.k8s.io), relayed frame by frame to the agent.

        The agent's handshake comes first so that the client gets the subprotocol the agent
        chose; an agent error (container not running...) becomes the API error kubectl shows.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=5)
            )
        ip, port = address
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        params = [(k, v) for k, v in request.query.items() if k != "container"]
        url = f"http://{ip}:{port}/exec/{info.namespace}/{info.name}/{container}"
        try:
            upstream = await self._session.ws_connect(
                url,
                params=params,
                protocols=offered,
                max_msg_size=0,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise BadRequest(exc.message or f"node agent answered {exc.status}") from exc
        except aiohttp.ClientError as exc:
            raise ServiceUnavailable(
                f"error talking to the node agent at {ip}:{port}: {exc}"
            ) from exc
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

        up = asyncio.create_task(pump(client, upstream))
        down = asyncio.create_task(pump(upstream, client))
        await down
        up.cancel()
        await upstream.close()
        return client

    async def _proxy_log(
        self, request: Request, info: req.RequestInfo, container: str, address: tuple[str, int]
    ) -> Stream:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=5)
            )
        ip, port = address
        params = {k: v for k, v in request.query.items() if k in _LOG_PARAMS}
        url = f"http://{ip}:{port}/containerLogs/{info.namespace}/{info.name}/{container}"
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
            out = request.start_stream(200, "text/plain")
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
