"""healthCheckNodePort answers 200/503 with kube-proxy's JSON, by local endpoint count."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.healthcheck import HealthCheckServer, local_endpoint_counts, response
from svcnet.proxy.model import ServiceKey

from .builders import endpoint, endpoint_slice, service

WEB = ServiceKey("default", "web")
LB = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]


def counts(eps: list[dict[str, object]]) -> dict[int, tuple[ServiceKey, int]]:
    t = ChangeTracker()
    t.upsert_service(
        service(
            type="LoadBalancer", ports=LB, externalTrafficPolicy="Local", healthCheckNodePort=32000
        )
    )
    t.upsert_slice(endpoint_slice(endpoints=eps))
    return local_endpoint_counts(t.snapshots(), "node-1")


@pytest.mark.parametrize(
    ("eps", "expected"),
    [
        ([endpoint("10.244.1.5"), endpoint("10.244.1.6"), endpoint("10.244.2.5", "node-2")], 2),
        ([endpoint("10.244.2.5", "node-2")], 0),
        ([endpoint("10.244.1.5", ready=False, serving=False)], 0),
    ],
    ids=["two-local", "only-remote", "not-ready"],
)
def test_local_endpoint_count(eps: list[dict[str, object]], expected: int) -> None:
    assert counts(eps) == {32000: (WEB, expected)}


@pytest.mark.parametrize(("count", "status"), [(1, 200), (0, 503)])
def test_response_status_and_body(count: int, status: int) -> None:
    code, body = response(WEB, count)
    assert code == status
    assert json.loads(body) == {
        "service": {"namespace": "default", "name": "web"},
        "localEndpoints": count,
        "serviceProxyHealthy": True,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_server_answers_on_loopback_and_stops_when_the_service_goes() -> None:
    port = _free_port()
    srv = HealthCheckServer("127.0.0.1")
    try:
        await srv.update({port: (WEB, 0)})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await reader.read()
        writer.close()
        assert data.startswith(b"HTTP/1.1 503 ")
        await srv.update({})
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        await srv.close()
