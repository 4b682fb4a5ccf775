"""LoadBalancer address announcement: pure planning, ARP frames, and the informer-driven loop.

Fixture ranges: LoadBalancer pool 172.18.255.0/24, nodes node-1 / node-2.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from svcnet.agent.lbannounce import (
    AddressPlan,
    LbAnnouncer,
    desired_addresses,
    gratuitous_arp_frames,
    ingress_ips,
    owned_addresses,
    plan_addresses,
)
from svcnet.api.registry import SERVICES
from svcnet.api.wellknown import LB_ANNOUNCE_ANNOTATION
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient

SERVICES = SERVICES
LB1, LB2, LB3 = "172.18.255.1", "172.18.255.2", "172.18.255.3"


def lb_service(
    name: str, ips: list[str], node: str | None, stype: str = "LoadBalancer"
) -> dict[str, Any]:
    ann = {LB_ANNOUNCE_ANNOTATION: node} if node else {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "annotations": ann},
        "spec": {"type": stype, "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


@pytest.mark.parametrize(
    ("services", "want"),
    [
        ([], set()),
        ([lb_service("a", [LB1], "node-1")], {LB1}),
        ([lb_service("a", [LB1], "node-2")], set()),
        ([lb_service("a", [LB1], None)], set()),
        ([lb_service("a", [], "node-1")], set()),
        ([lb_service("a", [LB1, LB2], "node-1")], {LB1, LB2}),
        ([lb_service("a", [LB1], "node-1"), lb_service("b", [LB2], "node-2")], {LB1}),
        # a Service changed back to ClusterIP keeps a stale status until the controller clears
        # it; it is no longer a LoadBalancer, so nothing is announced for it
        ([lb_service("a", [LB1], "node-1", stype="ClusterIP")], set()),
    ],
    ids=[
        "nothing",
        "named-node-announces",
        "other-node-announces",
        "no-announcer-yet",
        "no-address-yet",
        "every-ingress-ip",
        "only-own-services",
        "not-a-loadbalancer",
    ],
)
def test_desired_addresses(services: list[dict[str, Any]], want: set[str]) -> None:
    assert desired_addresses(services, "node-1") == want


@pytest.mark.parametrize(
    ("ingress", "want"),
    [
        ([{"ip": LB1}], (LB1,)),
        ([{"hostname": "lb.example.com"}], ()),
        ([{"ip": "fd00::1"}], ()),
        ([{"ip": "not-an-ip"}, {"ip": LB2}], (LB2,)),
    ],
    ids=["ipv4", "hostname-only", "ipv6-not-announced", "bad-entry-skipped"],
)
def test_ingress_ips(ingress: list[dict[str, str]], want: tuple[str, ...]) -> None:
    svc = lb_service("a", [], "node-1")
    svc["status"]["loadBalancer"]["ingress"] = ingress
    assert ingress_ips(svc) == want


@pytest.mark.parametrize(
    ("desired", "present", "plan"),
    [
        (set(), set(), AddressPlan((), ())),
        ({LB1}, set(), AddressPlan((LB1,), ())),
        (set(), {LB1}, AddressPlan((), (LB1,))),
        ({LB1, LB2}, {LB2, LB3}, AddressPlan((LB1,), (LB3,))),
        ({LB1}, {LB1}, AddressPlan((), ())),
    ],
    ids=["empty", "add", "remove", "move", "steady"],
)
def test_plan_addresses(desired: set[str], present: set[str], plan: AddressPlan) -> None:
    assert plan_addresses(desired, present) == plan


def test_owned_addresses_are_only_labelled_slash_32s() -> None:
    dump = [
        {
            "ifname": "eth0",
            "addr_info": [
                {"family": "inet", "local": "172.18.0.11", "prefixlen": 16, "label": "eth0"},
                {"family": "inet", "local": LB1, "prefixlen": 32, "label": "eth0:lb"},
                # someone else's /32 on the same link is not ours to remove
                {"family": "inet", "local": LB2, "prefixlen": 32, "label": "eth0"},
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
            ],
        }
    ]
    assert owned_addresses(dump, "eth0") == {LB1}


def test_gratuitous_arp_frames_announce_the_address_at_our_mac() -> None:
    mac = bytes.fromhex("020000000001")
    for frame, op, target_mac in zip(
        gratuitous_arp_frames(mac, LB1), (1, 2), (b"\0" * 6, b"\xff" * 6), strict=True
    ):
        assert len(frame) == 42
        assert frame[0:6] == b"\xff" * 6 and frame[6:12] == mac
        assert struct.unpack("!H", frame[12:14])[0] == 0x0806
        htype, ptype, hlen, plen, got_op = struct.unpack("!HHBBH", frame[14:22])
        assert (htype, ptype, hlen, plen, got_op) == (1, 0x0800, 6, 4, op)
        assert frame[22:28] == mac and frame[28:32] == socket.inet_aton(LB1)
        assert frame[32:38] == target_mac and frame[38:42] == socket.inet_aton(LB1)


def test_gratuitous_arp_rejects_a_non_ethernet_address() -> None:
    with pytest.raises(ValueError, match="Ethernet"):
        gratuitous_arp_frames(b"\x01\x02", LB1)


# -- the loop over the fake API server ---------------------------------------------------------


class LinkAddresses:
    """An in-memory link: the owned addresses and the ARP announcements made."""

    def __init__(self) -> None:
        self.addresses: set[str] = set()
        self.announced: list[str] = []

    def present(self) -> frozenset[str]:
        return frozenset(self.addresses)

    def apply(self, plan: AddressPlan) -> None:
        self.addresses -= set(plan.remove)
        self.addresses |= set(plan.add)

    def announce(self, ip: str) -> None:
        self.announced.append(ip)


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


async def test_announcer_follows_the_annotation_and_gives_back_on_exit(
    fake: FakeApiServer,
) -> None:
    fake.put(lb_service("web-lb", [LB1], "node-1"))
    link = LinkAddresses()
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        factory = SharedInformerFactory(client)
        announcer = LbAnnouncer(factory, "node-1", link, garp_schedule=(0.0, 0.05))
        tasks = factory.start()
        run = asyncio.create_task(announcer.run())
        try:
            await eventually(lambda: link.addresses == {LB1} and link.announced == [LB1, LB1])
            fake.put(lb_service("web-lb", [LB1], "node-2"))  # taken over by another node
            await eventually(lambda: link.addresses == set())
            fake.put(lb_service("other", [LB2], "node-1"))
            await eventually(lambda: link.addresses == {LB2})
        finally:
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert link.addresses == set(), "a stopped announcer must stop answering ARP"
