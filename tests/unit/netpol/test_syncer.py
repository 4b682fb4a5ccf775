"""NetworkPolicy's sync loop over the fake nftables: full first, then partial for policy, pod-label
and namespace-label changes; full after a failure, after drift and every full_sync_period.

Fixture ranges: see ``builders``.
"""

from __future__ import annotations

from svcnet.dataplane.nft import ElementOp
from svcnet.dataplane.nft_fake import FakeNft, FlakyNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import FAMILY, TABLE, NetpolConfig
from svcnet.netpol.syncer import Syncer
from svcnet.testing.packet_tracer import Packet, Result, trace
from svcnet.util.clock import FakeClock

from .builders import NODE_GW, NODE_IPS, layout, namespace, pod, pod_ip, policy

CFG = NetpolConfig("node-1")
LOCAL = (NODE_IPS["node-1"], NODE_GW["node-1"])
ALLOW_FROM_B = policy(
    "allow-b",
    podSelector={"matchLabels": {"pod": "a"}},
    ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
)


def make(**options: float) -> tuple[ChangeTracker, FlakyNft, Syncer, FakeClock]:
    tracker, nft, clock = ChangeTracker(), FlakyNft(), FakeClock()
    for o in layout():
        if o["kind"] == "Pod":
            tracker.upsert_pod(o)
        else:
            tracker.upsert_namespace(o)
    return tracker, nft, Syncer(CFG, tracker, nft, clock=clock, **options), clock


def verdict(nft: FakeNft, src: str, dst: str = pod_ip("x", "a")) -> Result:
    [out] = trace(nft, FAMILY, TABLE, Packet(src, dst, "tcp", 80, iif="cni0"), LOCAL)
    return out.result


async def test_first_sync_is_full_then_partial_for_a_policy() -> None:
    tracker, nft, s, _ = make()
    assert (await s.sync()).full
    assert verdict(nft, pod_ip("y", "a")) is Result.ACCEPT
    tracker.upsert_policy(ALLOW_FROM_B)
    r = await s.sync()
    assert r.ok and not r.full and r.changes == 1
    assert verdict(nft, pod_ip("y", "a")) is Result.DROP
    assert verdict(nft, pod_ip("x", "b")) is Result.ACCEPT
    tracker.delete_policy(ALLOW_FROM_B)
    assert not (await s.sync()).full
    assert verdict(nft, pod_ip("y", "a")) is Result.ACCEPT


async def test_pod_label_change_is_a_partial_sync_of_elements_only() -> None:
    tracker, nft, s, _ = make()
    tracker.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    tracker.upsert_pod(pod("x", "c", {"pod": "b"}))
    r = await s.sync()
    assert not r.full
    assert all(isinstance(op, ElementOp) for op in nft.applied[-1].ops)
    assert verdict(nft, pod_ip("x", "c")) is Result.ACCEPT


async def test_namespace_label_change_is_a_partial_sync() -> None:
    tracker, nft, s, _ = make()
    tracker.upsert_policy(
        policy(
            "from-blue",
            ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
        )
    )
    await s.sync()
    assert verdict(nft, pod_ip("z", "b")) is Result.DROP
    tracker.upsert_namespace(namespace("z", {"ns": "z", "team": "blue"}))
    r = await s.sync()
    assert r.ok and not r.full
    assert verdict(nft, pod_ip("z", "b")) is Result.ACCEPT


async def test_change_the_compiler_cannot_see_costs_nothing() -> None:
    tracker, nft, s, _ = make()
    await s.sync()
    ready = pod("x", "a")
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    tracker.upsert_pod(ready)
    assert tracker.pending() == 0
    r = await s.sync()
    assert r.operations == 0 and len(nft.applied) == 1


async def test_failure_makes_the_next_sync_full_and_keeps_the_old_rules() -> None:
    tracker, nft, s, _ = make()
    tracker.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    nft.fail = 2  # the partial transaction, and the full one tried at once after it
    tracker.upsert_pod(pod("x", "c", {"pod": "b"}))
    r = await s.sync()
    assert not r.ok and r.full
    # The table the failed transaction would have changed still enforces the policy.
    assert verdict(nft, pod_ip("y", "a")) is Result.DROP
    r = await s.sync()
    assert r.ok and r.full
    assert verdict(nft, pod_ip("x", "c")) is Result.ACCEPT


async def test_refused_partial_falls_back_to_a_full_sync_at_once() -> None:
    tracker, nft, s, _ = make()
    tracker.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    nft.delete_table(FAMILY, TABLE)  # an administrator, behind our back
    tracker.upsert_pod(pod("x", "c", {"pod": "b"}))
    r = await s.sync()
    assert r.ok and r.full
    assert verdict(nft, pod_ip("x", "c")) is Result.ACCEPT
    assert verdict(nft, pod_ip("y", "a")) is Result.DROP


async def test_drift_is_repaired_by_the_periodic_check() -> None:
    tracker, nft, s, clock = make(check_interval=10.0)
    tracker.upsert_policy(ALLOW_FROM_B)
    await s.sync()
    nft.delete_table(FAMILY, TABLE)
    clock.advance(11)
    r = await s.sync()
    assert r.ok and r.full
    assert verdict(nft, pod_ip("y", "a")) is Result.DROP


async def test_full_sync_period_rebuilds_without_changes() -> None:
    _, _, s, clock = make(full_sync_period=60.0)
    await s.sync()
    assert not (await s.sync()).full
    clock.advance(61)
    assert (await s.sync()).full
