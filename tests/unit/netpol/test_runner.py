"""NetworkPolicy's glue: informers over the fake API server feed the fake nftables table.

Fixture ranges: see ``builders``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from svcnet.agent.nodelocal import failed_to_program
from svcnet.api.registry import NETWORKPOLICIES
from svcnet.client.events import EventRecorder
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.rules import FAMILY, TABLE, NetpolConfig
from svcnet.netpol.runner import NetpolRunner
from svcnet.testing.packet_tracer import Packet, Result, trace

from .builders import NODE_GW, NODE_IPS, layout, namespace, pod, pod_ip, policy


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


def verdict(nft: FakeNft, src: str) -> Result | None:
    if not nft.table_exists(FAMILY, TABLE):
        return None
    packet = Packet(src, pod_ip("x", "a"), "tcp", 80, iif="cni0")
    [out] = trace(nft, FAMILY, TABLE, packet, (NODE_IPS["node-1"], NODE_GW["node-1"]))
    return out.result


async def test_policies_pods_and_namespaces_from_the_api_reach_the_table(
    fake: FakeApiServer,
) -> None:
    for obj in layout():
        fake.put(obj)
    fake.put(
        policy(
            "from-blue",
            podSelector={"matchLabels": {"pod": "a"}},
            ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
        )
    )
    nft = FakeNft()
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        runner = NetpolRunner(
            SharedInformerFactory(client), NetpolConfig("node-1"), nft, min_interval=0.0
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: verdict(nft, pod_ip("z", "b")) is Result.DROP)
            fake.put(namespace("z", {"ns": "z", "team": "blue"}))
            await eventually(lambda: verdict(nft, pod_ip("z", "b")) is Result.ACCEPT)
            assert not runner.syncer.syncs[-1].full
            assert verdict(nft, pod_ip("y", "b")) is Result.DROP
            fake.put(pod("y", "b", labels={"pod": "b"}))  # unchanged: no sync
            fake.remove(NETWORKPOLICIES, "from-blue", "x")
            await eventually(lambda: verdict(nft, pod_ip("y", "b")) is Result.ACCEPT)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def put_layout_and_unreadable_policy(fake: FakeApiServer) -> None:
    for obj in layout():
        fake.put(obj)
    # The fake API server stores what the real one would refuse (an invalid CIDR).
    fake.put(
        policy(
            "bad",
            podSelector={"matchLabels": {"pod": "b"}},
            ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}],
        )
    )


async def test_a_policy_the_compiler_cannot_read_closes_the_namespace_and_says_why(
    fake: FakeApiServer,
) -> None:
    put_layout_and_unreadable_policy(fake)
    told: list[tuple[str, str]] = []
    nft = FakeNft()
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        runner = NetpolRunner(
            SharedInformerFactory(client),
            NetpolConfig("node-1"),
            nft,
            on_unreadable=lambda obj, why: told.append((obj["metadata"]["name"], why)),
            min_interval=0.0,
        )
        task = asyncio.create_task(runner.run())
        try:
            # x/a is closed although the policy selects only pod b: its whole namespace is.
            await eventually(lambda: verdict(nft, pod_ip("y", "b")) is Result.DROP)
            assert told and told[0] == ("bad", "'33' is not a valid netmask")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_a_policy_it_cannot_program_gets_a_warning_event_saying_why(
    fake: FakeApiServer,
) -> None:
    put_layout_and_unreadable_policy(fake)
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        recorder = EventRecorder(client, "svcnet-netpol", "node-1")
        runner = NetpolRunner(
            SharedInformerFactory(client),
            NetpolConfig("node-1"),
            FakeNft(),
            on_unreadable=failed_to_program(recorder, "node-1"),
            min_interval=0.0,
        )
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(recorder.run())]
        try:
            events: list[dict[str, object]] = []

            async def written() -> bool:
                events[:] = (await client.list("events", "x"))["items"]
                return bool(events)

            deadline = asyncio.get_running_loop().time() + 5
            while not await written():
                assert asyncio.get_running_loop().time() < deadline, "no event"
                await asyncio.sleep(0.02)
            [ev] = events
            assert (ev["type"], ev["reason"]) == ("Warning", "FailedToProgram")
            assert ev["involvedObject"]["name"] == "bad"  # type: ignore[index]
            assert ev["message"] == (
                "node node-1 cannot program this policy ('33' is not a valid netmask): every "
                "pod of its namespace stays closed for its policy types"
            )
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
