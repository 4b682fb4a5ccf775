"""The DNS add-on's process against the real API server: changes are answered (how soon is
bench/dns/change_latency.py's question).

The API server runs in-process on a free loopback port (memory store, temporary data dir);
`python -m svcnet.dns --kubeconfig ...` runs as a real process on another free loopback port
and is stopped by PID in a finally. Objects are written with the project's API client; the
EndpointSlices are written by the test (no EndpointSlice controller runs here). Needs no root:
nothing but loopback sockets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

from svcnet.api.registry import ENDPOINTSLICES, SERVICES
from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.testing.polling import eventually

HOST = "127.0.0.1"
# Only where a test gives up: how fast a change is answered is measured by the bench.
CHANGE_TIMEOUT = 10.0


@dataclass
class Cluster:
    api: ApiClient
    dns_port: int
    ready_port: int
    namespace: str


def free_port() -> int:
    """A port free for both UDP and TCP right now (the DNS process binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind((HOST, 0))
            port = int(u.getsockname()[1])
            try:
                t.bind((HOST, port))
            except OSError:
                continue
            return port
    raise OSError("no port free for both UDP and TCP")


async def query(port: int, name: str, qtype: str = "A") -> dns.message.Message | None:
    try:
        return await dns.asyncquery.udp(
            dns.message.make_query(name, qtype), HOST, port=port, timeout=0.5
        )
    except dns.exception.Timeout:
        return None


async def answered(port: int, name: str, want: list[str], timeout: float = CHANGE_TIMEOUT) -> None:
    """Wait until `name` answers exactly `want` (A record texts; none: NXDOMAIN)."""

    async def check() -> tuple[str, list[str]] | None:
        r = await query(port, name)
        if r is None:
            return None
        got = sorted(rd.to_text() for rrset in r.answer for rd in rrset)
        ok = got == sorted(want) and (bool(want) or r.rcode() == dns.rcode.NXDOMAIN)
        return (dns.rcode.to_text(r.rcode()), got) if ok else None

    await eventually(check, timeout, interval=0.02, what=f"{name} answering {want or 'NXDOMAIN'}")


async def http_status(port: int, path: str) -> int:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        return int(line.split()[1]) if line else 0
    finally:
        writer.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    server = ApiServer(ApiServerConfig(data_dir=tmp_path, port=0, store_url="memory:"))
    await server.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        dns_port, ready_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "svcnet.dns",
                "--listen",
                f"{HOST}:{dns_port}",
                "--kubeconfig",
                str(server.kubeconfig_path),
                "--ready",
                f"{HOST}:{ready_port}",
                "--log-level",
                "WARNING",
            ],
            env=env,
        )
        async with ApiClient(load_kubeconfig(server.kubeconfig_path)) as api:
            ns = "dns-" + uuid.uuid4().hex[:6]
            await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            deadline = time.monotonic() + 20
            while await http_status(ready_port, "/ready") != 200:
                assert proc.poll() is None, "the DNS process exited"
                assert time.monotonic() < deadline, "the DNS process never became ready"
                await asyncio.sleep(0.1)
            yield Cluster(api, dns_port, ready_port, ns)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        await server.stop()


def service(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    body = {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def endpoint_slice(name: str, ns: str, svc: str, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


async def test_a_created_service_is_answered(cluster: Cluster) -> None:
    created = await cluster.api.create(service("web", cluster.namespace))
    ip = created["spec"]["clusterIP"]
    await answered(cluster.dns_port, f"web.{cluster.namespace}.svc.cluster.local.", [ip])


async def test_a_deleted_service_is_gone(cluster: Cluster) -> None:
    created = await cluster.api.create(service("gone", cluster.namespace))
    name = f"gone.{cluster.namespace}.svc.cluster.local."
    await answered(cluster.dns_port, name, [created["spec"]["clusterIP"]])
    assert SERVICES is not None
    await cluster.api.delete(SERVICES, "gone", cluster.namespace)
    await answered(cluster.dns_port, name, [])


async def test_headless_service_follows_its_endpoint_slices(cluster: Cluster) -> None:
    ns = cluster.namespace
    await cluster.api.create(service("db", ns, clusterIP="None"))
    await cluster.api.create(
        endpoint_slice(
            "db-1",
            ns,
            "db",
            [
                {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": True}},
                {"addresses": ["10.244.2.6"], "hostname": "db-1", "conditions": {"ready": False}},
            ],
        )
    )
    await answered(cluster.dns_port, f"db.{ns}.svc.cluster.local.", ["10.244.1.5"])
    await answered(cluster.dns_port, f"db-0.db.{ns}.svc.cluster.local.", ["10.244.1.5"])
    assert ENDPOINTSLICES is not None
    current = await cluster.api.get(ENDPOINTSLICES, "db-1", ns)
    current["endpoints"][1]["conditions"]["ready"] = True
    await cluster.api.update(current)
    await answered(cluster.dns_port, f"db.{ns}.svc.cluster.local.", ["10.244.1.5", "10.244.2.6"])


async def test_a_new_namespace_exists_for_dns(cluster: Cluster) -> None:
    ns = "dns-" + uuid.uuid4().hex[:6]
    name = f"{ns}.svc.cluster.local."
    r = await query(cluster.dns_port, name)
    assert r is not None and r.rcode() == dns.rcode.NXDOMAIN
    await cluster.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    async def noerror() -> bool:
        r = await query(cluster.dns_port, name)
        return r is not None and r.rcode() == dns.rcode.NOERROR

    await eventually(noerror, CHANGE_TIMEOUT, interval=0.02, what=f"{name} NOERROR")


async def test_the_kubernetes_service_resolves(cluster: Cluster) -> None:
    await answered(cluster.dns_port, "kubernetes.default.svc.cluster.local.", ["10.96.0.1"])
