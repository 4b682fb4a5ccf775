"""healthCheckNodePort: tells load balancers whether this node has local endpoints.

For each Service with ``externalTrafficPolicy: Local``, kube-proxy serves HTTP on the Service's
``healthCheckNodePort``: 200 when the node has at least one local endpoint, 503 otherwise, with
the body ``{"service": {"namespace": ..., "name": ...}, "localEndpoints": N,
"serviceProxyHealthy": true}``. One small asyncio server per port; the set of ports follows the
Services after every sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Mapping

from svcnet.proxy.changetracker import Snapshot
from svcnet.proxy.model import ServiceKey, usable_endpoints

log = logging.getLogger(__name__)


def local_endpoint_counts(
    snapshots: Mapping[ServiceKey, Snapshot], node_name: str
) -> dict[int, tuple[ServiceKey, int]]:
    """healthCheckNodePort -> (Service, number of distinct local usable endpoint addresses)."""
    out: dict[int, tuple[ServiceKey, int]] = {}
    for key, snap in snapshots.items():
        ports = snap.port_endpoints()
        hc = next((sp.health_check_node_port for sp, _ in ports if sp.health_check_node_port), 0)
        if not hc:
            continue
        ips = {
            e.ip
            for _, eps in ports
            for e in usable_endpoints(x for x in eps if x.node_name == node_name)
        }
        out[hc] = (key, len(ips))
    return out


def response(key: ServiceKey, count: int) -> tuple[int, bytes]:
    body = json.dumps(
        {
            "service": {"namespace": key.namespace, "name": key.name},
            "localEndpoints": count,
            "serviceProxyHealthy": True,
        }
    ).encode()
    return (200 if count > 0 else 503), body


class HealthCheckServer:
    def __init__(self, host: str = "0.0.0.0") -> None:
        self.host = host
        self._servers: dict[int, asyncio.Server] = {}
        self._counts: dict[int, tuple[ServiceKey, int]] = {}

    @property
    def ports(self) -> set[int]:
        return set(self._servers)

    async def update(self, counts: Mapping[int, tuple[ServiceKey, int]]) -> None:
        self._counts = dict(counts)
        for port in sorted(set(self._servers) - set(counts)):
            srv = self._servers.pop(port)
            srv.close()
            await srv.wait_closed()
        for port in sorted(set(counts) - set(self._servers)):
            try:
                self._servers[port] = await asyncio.start_server(
                    functools.partial(self._serve, port), self.host, port
                )
            except OSError as e:
                log.warning("healthCheckNodePort %d: %s", port, e)

    async def _serve(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            key, count = self._counts.get(port, (ServiceKey("", ""), 0))
            status, body = response(key, count)
            reason = "OK" if status == 200 else "Service Unavailable"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        await self.update({})
