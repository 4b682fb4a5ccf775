"""Fail-closed: an address of the node's pod block that no sync knows is dropped both ways; a pod
the agent admits is known before its status says so; the sync loop tells when what was recorded
is in the kernel, and which NetworkPolicy revision it holds.

Fixture ranges: see ``builders``; node-1's pod block 10.244.1.0/24, 10.244.1.99 a pod not yet known.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import FAMILY, TABLE, NetpolConfig
from svcnet.netpol.syncer import Syncer
from svcnet.testing.packet_tracer import Packet, Result, trace
from svcnet.util.clock import FakeClock

from .builders import NODE_GW, NODE_IPS, layout, pod, pod_ip, policy

CFG = NetpolConfig("node-1", pod_cidr="10.244.1.0/24")
LOCAL = (NODE_IPS["node-1"], NODE_GW["node-1"])
NEW_IP = "10.244.1.99"
PEER = pod_ip("y", "c")  # on node-2


def make() -> tuple[ChangeTracker, FakeNft, Syncer]:
    tracker, nft = ChangeTracker(), FakeNft()
    for o in layout():
        if o["kind"] == "Pod":
            tracker.upsert_pod(o)
        else:
            tracker.upsert_namespace(o)
    return tracker, nft, Syncer(CFG, tracker, nft, clock=FakeClock())


def verdict(nft: FakeNft, src: str, dst: str) -> Result:
    [out] = trace(nft, FAMILY, TABLE, Packet(src, dst, "tcp", 80, iif="cni0"), LOCAL)
    return out.result


def new_pod(ip: str | None) -> dict[str, Any]:
    p = pod("x", "d", {"pod": "d"}, node="node-1", ip=ip or NEW_IP)
    p["metadata"]["uid"] = "uid-d"
    if ip is None:
        p["status"] = {"phase": "Pending"}
    return p


@pytest.mark.parametrize(
    ("src", "dst"),
    [(PEER, NEW_IP), (NEW_IP, PEER)],
    ids=["ingress", "egress"],
)
async def test_an_unknown_address_of_the_pod_block_is_dropped(src: str, dst: str) -> None:
    _, nft, s = make()
    await s.sync()
    assert verdict(nft, src, dst) is Result.DROP
    assert verdict(nft, PEER, pod_ip("x", "a")) is Result.ACCEPT  # a known pod, no policy


async def test_an_admitted_pod_is_open_in_an_open_namespace_and_closed_under_a_deny() -> None:
    tracker, nft, s = make()
    await s.sync()
    tracker.admit_pod(new_pod(None), NEW_IP)
    await s.sync()
    assert verdict(nft, PEER, NEW_IP) is Result.ACCEPT
    tracker.upsert_policy(policy("deny", ns="x"))
    await s.sync()
    assert verdict(nft, PEER, NEW_IP) is Result.DROP


async def test_an_admitted_pod_outlives_a_status_without_address() -> None:
    tracker, nft, s = make()
    tracker.admit_pod(new_pod(None), NEW_IP)
    tracker.upsert_pod(new_pod(None))  # the informer's view, written before the sandbox
    await s.sync()
    assert verdict(nft, PEER, NEW_IP) is Result.ACCEPT
    tracker.upsert_pod(new_pod(NEW_IP))  # the API caught up: the status alone now counts
    tracker.upsert_pod(new_pod(None))
    await s.sync()
    assert verdict(nft, PEER, NEW_IP) is Result.DROP


async def test_a_new_pod_of_the_same_name_forgets_the_admitted_address() -> None:
    tracker, nft, s = make()
    tracker.admit_pod(new_pod(None), NEW_IP)
    other = new_pod(None)
    other["metadata"]["uid"] = "uid-other"
    tracker.upsert_pod(other)
    await s.sync()
    assert verdict(nft, PEER, NEW_IP) is Result.DROP


async def test_wait_applied_returns_once_a_later_sync_is_in_the_kernel() -> None:
    tracker, nft, s = make()
    await s.sync()
    tracker.admit_pod(new_pod(None), NEW_IP)
    waiter = asyncio.create_task(s.wait_applied())
    await asyncio.sleep(0)
    assert not waiter.done()
    await s.sync()
    await asyncio.wait_for(waiter, 1)
    assert verdict(nft, PEER, NEW_IP) is Result.ACCEPT


async def test_programmed_revision_follows_policy_events_into_the_kernel() -> None:
    tracker, _, s = make()
    deny = policy("deny", ns="x")
    deny["metadata"]["resourceVersion"] = "42"
    tracker.upsert_policy(deny)
    assert s.programmed_revision == 0
    await s.sync()
    assert s.programmed_revision == 42
    deny["metadata"]["resourceVersion"] = "43"  # a change the compiler cannot see
    tracker.upsert_policy(deny)
    assert await asyncio.wait_for(_sync_then_next(s, 42), 1) == 43


async def _sync_then_next(s: Syncer, last: int) -> int:
    await s.sync()
    return await s.next_programmed(last)
