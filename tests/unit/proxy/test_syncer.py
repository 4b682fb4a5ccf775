"""The sync loop over the fake nftables: partial after full, full after a failure or drift."""

from __future__ import annotations

import asyncio

import pytest

from svcnet.dataplane.conntrack import FakeConntrack, FlowFilter
from svcnet.dataplane.nft_fake import FakeNft, FlakyNft
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig
from svcnet.proxy.syncer import Syncer
from svcnet.testing.packet_tracer import Packet, record_updates, trace
from svcnet.util.clock import FakeClock

from .builders import LOCAL_ADDRESSES, POD_A, endpoint, endpoint_slice, service

CFG = ProxyConfig(node_name="node-1")


def make(check_interval: float = 3600.0) -> tuple[ChangeTracker, FlakyNft, FakeConntrack, Syncer]:
    t, nft, ct = ChangeTracker(), FlakyNft(), FakeConntrack()
    return t, nft, ct, Syncer(CFG, t, nft, ct, check_interval=check_interval)


def dnat_targets(nft: FakeNft) -> set[tuple[str, int] | None]:
    return {
        o.dnat
        for o in trace(nft, FAMILY, TABLE, Packet(POD_A, "10.96.0.5", "tcp", 80), LOCAL_ADDRESSES)
    }


async def test_first_sync_is_full_then_partial() -> None:
    t, nft, _, s = make()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    assert (await s.sync()).full
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.6")]))
    r = await s.sync()
    assert r.ok and not r.full
    assert dnat_targets(nft) == {("10.244.1.6", 8080)}


async def test_sync_without_changes_applies_nothing() -> None:
    t, nft, _, s = make()
    t.upsert_service(service())
    await s.sync()
    await s.sync()
    assert len(nft.applied) == 1


async def test_failed_partial_sync_falls_back_to_a_full_sync_at_once() -> None:
    t, nft, _, s = make()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    await s.sync()
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.6")]))
    nft.fail = 1
    r = await s.sync()
    assert r.ok and r.full
    assert dnat_targets(nft) == {("10.244.1.6", 8080)}


async def test_sync_failing_partial_and_full_is_followed_by_a_full_sync() -> None:
    t, nft, _, s = make()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    await s.sync()
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.6")]))
    nft.fail = 2
    assert not (await s.sync()).ok
    r = await s.sync()
    assert r.ok and r.full
    assert dnat_targets(nft) == {("10.244.1.6", 8080)}


async def test_udp_flush_of_a_failed_sync_runs_after_the_next_good_one() -> None:
    t, nft, ct, s = make()
    udp = [{"name": "dns", "port": 53, "protocol": "UDP"}]
    udp_ep = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
    t.upsert_service(service(ports=udp))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")], ports=udp_ep))
    await s.sync()
    ct.deleted.clear()
    t.upsert_slice(endpoint_slice(endpoints=[], ports=udp_ep))
    nft.fail = 2
    assert not (await s.sync()).ok
    assert ct.deleted == []
    assert (await s.sync()).ok
    assert ct.deleted == [FlowFilter("udp", "10.96.0.5", 53, "10.244.1.5")]


async def test_deleted_table_is_noticed_by_the_check_and_rebuilt() -> None:
    t, nft, _, s = make(check_interval=0.0)
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    await s.sync()
    nft.delete_table(FAMILY, TABLE)
    r = await s.sync()
    assert r.full and dnat_targets(nft) == {("10.244.1.5", 8080)}


async def test_udp_endpoint_removal_flushes_conntrack_after_the_rules() -> None:
    t, _, ct, s = make()
    udp = [{"name": "dns", "port": 53, "protocol": "UDP"}]
    udp_ep = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
    t.upsert_service(service(ports=udp))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")], ports=udp_ep))
    await s.sync()
    ct.deleted.clear()
    t.upsert_slice(endpoint_slice(endpoints=[], ports=udp_ep))
    await s.sync()
    assert ct.deleted == [FlowFilter("udp", "10.96.0.5", 53, "10.244.1.5")]


async def test_run_coalesces_a_burst_into_syncs_min_interval_apart() -> None:
    """20 changes 5 ms apart on virtual time: the first syncs at once, the rest wait for
    min_interval (50 ms) after the previous sync and take everything that came meanwhile."""
    clock = FakeClock()
    t, nft, ct = ChangeTracker(), FlakyNft(), FakeConntrack()
    synced_at: list[float] = []
    s = Syncer(
        CFG, t, nft, ct, clock=clock, min_interval=0.05, check_interval=3600.0,
        on_sync=lambda _: synced_at.append(clock.monotonic()),
    )  # fmt: skip
    task = asyncio.create_task(s.run())
    try:
        t.upsert_service(service())
        for i in range(20):
            t.upsert_slice(endpoint_slice(endpoints=[endpoint(f"10.244.1.{i + 2}")]))
            s.request()
            await clock.step(0.005)
        await clock.step(0.2)
    finally:
        task.cancel()
    assert synced_at == pytest.approx([0.0, 0.05, 0.10])
    assert all(r.ok for r in s.syncs)
    assert dnat_targets(nft) == {("10.244.1.21", 8080)}


async def test_affinity_entries_of_a_removed_endpoint_are_forgotten() -> None:
    t, nft, _, s = make()
    t.upsert_service(service(sessionAffinity="ClientIP"))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5"), endpoint("10.244.1.6")]))
    await s.sync()
    outcomes = trace(nft, FAMILY, TABLE, Packet(POD_A, "10.96.0.5", "tcp", 80), LOCAL_ADDRESSES)
    to_5 = next(o for o in outcomes if o.dnat == ("10.244.1.5", 8080))
    record_updates(nft, FAMILY, TABLE, to_5)
    assert dnat_targets(nft) == {("10.244.1.5", 8080)}
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.6")]))
    await s.sync()
    assert dnat_targets(nft) == {("10.244.1.6", 8080)}
    assert nft.table(FAMILY, TABLE).sets["affinity"].elements == {}


async def test_affinity_entries_of_surviving_endpoints_are_kept() -> None:
    t, nft, _, s = make()
    t.upsert_service(service(sessionAffinity="ClientIP"))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5"), endpoint("10.244.1.6")]))
    await s.sync()
    outcomes = trace(nft, FAMILY, TABLE, Packet(POD_A, "10.96.0.5", "tcp", 80), LOCAL_ADDRESSES)
    record_updates(nft, FAMILY, TABLE, next(o for o in outcomes if o.dnat == ("10.244.1.5", 8080)))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5"), endpoint("10.244.1.7")]))
    await s.sync()
    assert dnat_targets(nft) == {("10.244.1.5", 8080)}


async def test_cleanup_removes_the_table_and_the_next_sync_rebuilds_it() -> None:
    t, nft, _, s = make()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    await s.sync()
    await s.cleanup()
    assert not nft.table_exists(FAMILY, TABLE)
    await s.cleanup()  # idempotent
    assert (await s.sync()).full
    assert dnat_targets(nft) == {("10.244.1.5", 8080)}


async def test_a_deleted_static_chain_is_noticed_by_the_check() -> None:
    t, nft, _, s = make(check_interval=0.0)
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    await s.sync()
    del nft.table(FAMILY, TABLE).chains["nat-output"]
    assert (await s.sync()).full
    assert "nat-output" in nft.chain_names(FAMILY, TABLE)


async def test_first_udp_service_is_added_by_a_partial_sync() -> None:
    # nft 1.0.6 refused this partial transaction while the endpoint map was shared by all
    # protocols (its first rule, the new udp selector chain, met the map's "tcp dport"), and
    # the syncer fell back to a full sync: the fake models that refusal.
    t, nft, _, s = make()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    assert (await s.sync()).full
    dns = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]
    t.upsert_service(service("dns", "10.96.0.10", ports=dns))
    t.upsert_slice(
        endpoint_slice(
            "dns",
            endpoints=[endpoint("10.244.1.7")],
            ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}],
        )
    )
    r = await s.sync()
    assert r.ok and not r.full, r
    outcomes = trace(nft, FAMILY, TABLE, Packet(POD_A, "10.96.0.10", "udp", 53), LOCAL_ADDRESSES)
    assert {o.dnat for o in outcomes} == {("10.244.1.7", 5353)}
