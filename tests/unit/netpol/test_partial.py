"""Partial transactions: applied one after another to a fake kernel, they leave exactly the
table a full rebuild gives; and traffic to a Service is judged after the proxy's DNAT.

Fixture ranges: see ``builders``; the Service's ClusterIP is 10.96.0.5.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import (
    FAMILY,
    TABLE,
    Desired,
    NetpolConfig,
    build_full,
    build_partial,
    desired_state,
)
from svcnet.proxy.changetracker import ChangeTracker as ProxyTracker
from svcnet.proxy.rules import TABLE as PROXY_TABLE
from svcnet.proxy.rules import ProxyConfig
from svcnet.proxy.rules import build_full as proxy_build_full
from svcnet.testing.packet_tracer import Packet, Result, trace

from .builders import NODE_GW, NODE_IPS, layout, namespace, pod, pod_ip, policy

CFG = NetpolConfig("node-1")


def _objects_after(step: int, rng: random.Random) -> list[dict[str, Any]]:
    """One random change of the kinds a sync sees: policies, pod labels, namespace labels."""
    choice = rng.randrange(6)
    ns = rng.choice("xyz")
    name = rng.choice("abc")
    if choice == 0:
        return [pod(ns, name, {"pod": rng.choice("abc"), "v": str(step % 3)})]
    if choice == 1:
        return [namespace(ns, {"ns": rng.choice("xyz"), "team": rng.choice(["a", "b"])})]
    if choice == 2:
        ports = rng.choice(
            [[], [{"port": 80}], [{"port": "serve-81-tcp"}], [{"port": 80, "endPort": 81}]]
        )
        peer = rng.choice(
            [
                {"podSelector": {"matchLabels": {"pod": rng.choice("abc")}}},
                {"namespaceSelector": {"matchLabels": {"ns": rng.choice("xyz")}}},
                {
                    "ipBlock": {
                        "cidr": "10.244.0.0/16",
                        "except": [f"10.244.{rng.choice('12')}.0/24"],
                    }
                },
            ]
        )
        return [
            policy(
                f"p{rng.randrange(4)}",
                ns=ns,
                podSelector={"matchLabels": {"pod": name}},
                ingress=[{"from": [peer], "ports": ports}],
                egress=rng.choice([[], [{"to": [peer]}]]),
            )
        ]
    if choice == 3:
        return [{**policy(f"p{rng.randrange(4)}", ns=ns), "deleted": True}]
    if choice == 4:
        return [{**pod(ns, name), "deleted": True}]
    return [pod(ns, name)]


def _feed(tracker: ChangeTracker, obj: dict[str, Any]) -> None:
    deleted = obj.get("deleted", False)
    if obj["kind"] == "Pod":
        (tracker.delete_pod if deleted else tracker.upsert_pod)(obj)
    elif obj["kind"] == "Namespace":
        tracker.upsert_namespace(obj)
    else:
        (tracker.delete_policy if deleted else tracker.upsert_policy)(obj)


@pytest.mark.parametrize("seed", range(8))
def test_partial_syncs_leave_the_table_a_full_sync_builds(seed: int) -> None:
    rng = random.Random(seed)
    tracker = ChangeTracker()
    for o in layout():
        _feed(tracker, o)
    kernel = FakeNft()
    applied = desired_state(tracker.compile("node-1"))
    kernel.apply_sync(build_full(CFG, applied))
    for step in range(40):
        for o in _objects_after(step, rng):
            _feed(tracker, o)
        new = desired_state(tracker.compile("node-1"))
        kernel.apply_sync(build_partial(CFG, applied, new))
        applied = new
        rebuilt = FakeNft()
        rebuilt.apply_sync(build_full(CFG, new))
        assert kernel.dump() == rebuilt.dump(), step


def test_unchanged_state_makes_an_empty_transaction() -> None:
    tracker = ChangeTracker()
    for o in [*layout(), policy("deny", policy_types=["Ingress"])]:
        _feed(tracker, o)
    d = desired_state(tracker.compile("node-1"))
    assert len(build_partial(CFG, d, d)) == 0
    assert len(build_partial(CFG, Desired(), Desired())) == 0


def test_pod_label_change_is_only_element_changes() -> None:
    tracker = ChangeTracker()
    allow_b = policy(
        "allow-b",
        podSelector={"matchLabels": {"pod": "a"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
    )
    for o in [*layout(), allow_b]:
        _feed(tracker, o)
    before = desired_state(tracker.compile("node-1"))
    _feed(tracker, pod("x", "c", {"pod": "b"}))
    after = desired_state(tracker.compile("node-1"))
    tx = build_partial(CFG, before, after)
    from svcnet.dataplane.nft import ElementOp

    assert len(tx) == 1 and isinstance(tx.ops[0], ElementOp)
    assert tx.ops[0].elements[0].key == (pod_ip("x", "c"),)


def _service_to_xa() -> list[dict[str, Any]]:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "x"},
        "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 8080, "targetPort": 80}]},
    }
    slc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-1",
            "namespace": "x",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [pod_ip("x", "a")], "nodeName": "node-1"}],
    }
    return [svc, slc]


@pytest.mark.parametrize(
    ("peer_ns", "port", "want"),
    [
        ("y", 80, Result.ACCEPT),  # allowed peer, allowed target port after DNAT
        ("z", 80, Result.DROP),  # a peer no rule allows
    ],
)
def test_service_traffic_is_judged_after_dnat(peer_ns: str, port: int, want: Result) -> None:
    kernel = FakeNft()
    proxy = ProxyTracker()
    svc, slc = _service_to_xa()
    proxy.upsert_service(svc)
    proxy.upsert_slice(slc)
    services = {k: s.port_endpoints() for k, s in proxy.snapshots().items()}
    pcfg = ProxyConfig("node-1", "10.244.1.0/24", (NODE_IPS["node-1"],))
    kernel.apply_sync(proxy_build_full(pcfg, services)[0])
    tracker = ChangeTracker()
    only_y_on_80 = policy(
        "y-on-80",
        podSelector={"matchLabels": {"pod": "a"}},
        ingress=[
            {
                "from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                "ports": [{"port": port}],
            }
        ],
    )
    for o in [*layout(), only_y_on_80]:
        _feed(tracker, o)
    kernel.apply_sync(build_full(CFG, desired_state(tracker.compile("node-1"))))
    # The Service port (8080) is not what the policy names: the pod's port (80) is.
    packet = Packet(pod_ip(peer_ns, "b"), "10.96.0.5", "tcp", 8080, iif="cni0")
    local = (NODE_IPS["node-1"], NODE_GW["node-1"])
    [out] = trace(kernel, FAMILY, (PROXY_TABLE, TABLE), packet, local)
    assert out.dnat == (pod_ip("x", "a"), 80)
    assert out.result is want
