"""The proxy's glue: informers over the fake API server feed the rules in the fake nftables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from svcnet.api.registry import SERVICES
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.conntrack import FakeConntrack
from svcnet.dataplane.nft_fake import FakeNft
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig
from svcnet.proxy.runner import ProxyRunner, node_addresses
from svcnet.testing.packet_tracer import Packet, trace

from .builders import LOCAL_ADDRESSES, POD_A, endpoint, endpoint_slice, service

SERVICES = SERVICES


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def targets(nft: FakeNft) -> set[tuple[str, int] | None]:
    if not nft.table_exists(FAMILY, TABLE):
        return set()
    pkt = Packet(POD_A, "10.96.0.5", "tcp", 80)
    return {o.dnat for o in trace(nft, FAMILY, TABLE, pkt, LOCAL_ADDRESSES)}


async def test_services_and_slices_from_the_api_reach_the_rules(fake: FakeApiServer) -> None:
    fake.put(service())
    fake.put(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    nft = FakeNft()
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        runner = ProxyRunner(
            SharedInformerFactory(client),
            ProxyConfig(node_name="node-1"),
            nft,
            FakeConntrack(),
            health_check_host=None,
            min_interval=0.0,
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: targets(nft) == {("10.244.1.5", 8080)})
            fake.put(
                endpoint_slice(endpoints=[endpoint("10.244.1.5"), endpoint("10.244.2.5", "node-2")])
            )
            await eventually(lambda: targets(nft) == {("10.244.1.5", 8080), ("10.244.2.5", 8080)})
            assert not runner.syncer.syncs[-1].full
            fake.remove(SERVICES, "web", "default")  # type: ignore[arg-type]
            await eventually(lambda: targets(nft) == {None})
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def test_node_addresses_are_its_ipv4_internal_and_external_ips() -> None:
    node = {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.11"},
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "fd00::11"},
                {"type": "ExternalIP", "address": "198.51.100.11"},
            ]
        }
    }
    assert node_addresses(node) == ("172.18.0.11", "198.51.100.11")
