"""The lean API client (svcnet.client.streams: h11 over asyncio streams, used by agents and DNS pods) against a real API server over TLS: the
same answers as the aiohttp client, watch events, errors and transport failures."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from svcnet.api.errors import NotFound
from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.client.streams import StreamApiClient


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(ApiServerConfig(data_dir=tmp_path, port=0, store_url="memory:"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _service(name: str, ns: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    }


async def test_lists_what_the_aiohttp_client_lists(server: ApiServer) -> None:
    config = load_kubeconfig(server.kubeconfig_path)
    ns = "s-" + uuid.uuid4().hex[:6]
    async with ApiClient(config) as api, StreamApiClient(config) as lean:
        await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for i in range(7):
            await api.create(_service(f"web{i}", ns))
        # A small page size: the continue tokens are followed as by ApiClient.list_all.
        want = await api.list_all("services", ns, page_size=3)
        got = await lean.list_all("services", ns, page_size=3)
        assert [s["metadata"]["name"] for s in got["items"]] == [f"web{i}" for i in range(7)]
        assert got == want
        selected = await lean.list_all("services", ns, label_selector="app=web3")
        assert [s["metadata"]["name"] for s in selected["items"]] == ["web3"]


async def test_watch_follows_changes_from_the_listed_version(server: ApiServer) -> None:
    config = load_kubeconfig(server.kubeconfig_path)
    ns = "w-" + uuid.uuid4().hex[:6]
    async with ApiClient(config) as api, StreamApiClient(config) as lean:
        await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        rv = (await lean.list_all("services", ns))["metadata"]["resourceVersion"]
        seen: list[tuple[str, str]] = []

        async def follow() -> None:
            async for ev in lean.watch("services", ns, resource_version=rv, timeout_seconds=30):
                if ev.type != "BOOKMARK":
                    seen.append((ev.type, ev.object["metadata"]["name"]))
                if len(seen) == 2:
                    return

        task = asyncio.create_task(follow())
        await api.create(_service("a", ns))
        await api.delete("services", "a", ns)
        await asyncio.wait_for(task, 10)
        assert seen == [("ADDED", "a"), ("DELETED", "a")]


async def test_a_watch_ends_when_the_server_ends_it(server: ApiServer) -> None:
    async with StreamApiClient(load_kubeconfig(server.kubeconfig_path)) as lean:
        events = [e async for e in lean.watch("namespaces", timeout_seconds=1)]
        # Ended by the server after ~1 s (the chunked stream's last chunk), not by an error.
        assert all(e.type in ("ADDED", "BOOKMARK") for e in events)


async def test_api_errors_are_api_errors(server: ApiServer) -> None:
    async with StreamApiClient(load_kubeconfig(server.kubeconfig_path)) as lean:
        with pytest.raises(NotFound):
            await lean.get("services", "nope", "default")


async def test_an_unreachable_server_is_a_connection_failure(server: ApiServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    config = load_kubeconfig(server.kubeconfig_path)
    config = replace(config, server=f"https://127.0.0.1:{port}")
    async with StreamApiClient(config, read_retries=1, retry_backoff=0.01) as lean:
        with pytest.raises(ConnectionFailed):
            await lean.list_all("services")
        with pytest.raises(ConnectionFailed):
            async for _ in lean.watch("services", timeout_seconds=5):
                pass


async def test_a_wrong_ca_is_refused(server: ApiServer, tmp_path: Path) -> None:
    config = load_kubeconfig(server.kubeconfig_path)
    # The system trust store does not know the cluster's CA: TLS must fail, not fall back.
    config = replace(config, ca_data=None)
    async with StreamApiClient(config, read_retries=0) as lean:
        with pytest.raises(ConnectionFailed):
            await lean.list_all("services")


async def test_sequential_requests_reuse_one_keepalive_connection(server: ApiServer) -> None:
    async with StreamApiClient(load_kubeconfig(server.kubeconfig_path)) as lean:
        await lean.get("namespaces", "default")
        (conn,) = lean._idle
        await lean.get("namespaces", "kube-system")
        assert lean._idle == [conn]  # the same connection went back to the pool


async def test_a_pooled_connection_the_server_closed_is_replaced(server: ApiServer) -> None:
    async with StreamApiClient(load_kubeconfig(server.kubeconfig_path)) as lean:
        await lean.get("namespaces", "default")
        (stale,) = lean._idle
        # The far end goes away while the connection idles in the pool (as after the
        # server's keep-alive timeout): the next write (PATCH, not retried as a read) still
        # succeeds, on a new connection.
        stale.writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        await asyncio.sleep(0.05)
        patched = await lean.patch(
            "namespaces", "default", {"metadata": {"labels": {"pooled": "yes"}}}
        )
        assert patched["metadata"]["labels"]["pooled"] == "yes"
        assert lean._idle and lean._idle[0] is not stale
