"""LoadBalancer address allocation and announcer election.

Fixture pool: 172.18.255.0/24 (the default) and tiny /30s carved from it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svcnet.controllers.lbipam.plan import (
    Allocated,
    Allocator,
    Failed,
    Pool,
    allocation_failed_message,
    announcer_for,
    elect_announcer,
    parse_pools,
    pools_from_configmap,
    requested_ips,
    wants_address,
)


def alloc(*specs: str) -> Allocator:
    return Allocator(parse_pools({"p": list(specs)}))


def test_default_pool_skips_dot_zero_and_dot_255() -> None:
    pool = Pool.parse("default", ["172.18.255.0/24"])
    addrs = [str(a) for a in pool.addresses(4)]
    assert addrs[0] == "172.18.255.1" and addrs[-1] == "172.18.255.254" and len(addrs) == 254


def test_lowest_free_address_first() -> None:
    a = alloc("172.18.255.0/30")
    assert a.allocate("default/a") == Allocated("172.18.255.1", "p")
    assert a.allocate("default/b") == Allocated("172.18.255.2", "p")


def test_allocation_is_sticky() -> None:
    a = alloc("172.18.255.0/29")
    first = a.allocate("default/a")
    a.allocate("default/b")
    assert a.allocate("default/a") == first


def test_exhausted_pool() -> None:
    a = alloc("172.18.255.1-172.18.255.1")
    a.allocate("default/a")
    result = a.allocate("default/b")
    assert result == Failed("no available IPs")
    assert (
        allocation_failed_message("default/b", result.reason)
        == 'Failed to allocate IP for "default/b": no available IPs'
    )


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.0.0.1", '"10.0.0.1" is not allowed in config'),
        ("172.18.255.0", '"172.18.255.0" is not allowed in config'),
        (
            "172.18.255.1",
            'can\'t change sharing key for "default/b", address also in use by default/a',
        ),
    ],
    ids=["outside-pool", "buggy-ip", "taken"],
)
def test_requested_ip_refused(ip: str, reason: str) -> None:
    a = alloc("172.18.255.0/24")
    a.assign("default/a", "172.18.255.1")
    assert a.assign("default/b", ip) == Failed(reason)


def test_release_frees_the_address() -> None:
    a = alloc("172.18.255.1-172.18.255.1")
    a.allocate("default/a")
    assert a.release("default/a") == "172.18.255.1"
    assert a.allocate("default/b") == Allocated("172.18.255.1", "p")


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        ({"spec": {"type": "LoadBalancer"}}, True),
        ({"spec": {"type": "LoadBalancer", "loadBalancerClass": "svcnet.io/lb"}}, True),
        ({"spec": {"type": "LoadBalancer", "loadBalancerClass": "other.io/lb"}}, False),
        ({"spec": {"type": "ClusterIP"}}, False),
    ],
    ids=["no-class", "our-class", "other-class", "cluster-ip"],
)
def test_wants_address(svc: dict[str, Any], expected: bool) -> None:
    assert wants_address(svc) is expected


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        ({"spec": {"loadBalancerIP": "172.18.255.9"}}, ["172.18.255.9"]),
        (
            {
                "metadata": {
                    "annotations": {"metallb.universe.tf/loadBalancerIPs": "172.18.255.7, fd00::7"}
                },
                "spec": {"loadBalancerIP": "172.18.255.9"},
            },
            ["172.18.255.7", "fd00::7"],
        ),
        ({"spec": {}}, []),
    ],
    ids=["spec", "annotation-wins", "none"],
)
def test_requested_ips(svc: dict[str, Any], expected: list[str]) -> None:
    assert requested_ips(svc) == expected


def test_election_is_stable_and_moves_only_the_lost_nodes_addresses() -> None:
    nodes = ["node-1", "node-2", "node-3"]
    ips = [f"172.18.255.{i}" for i in range(1, 60)]
    before = {ip: elect_announcer(ip, nodes) for ip in ips}
    assert len(set(before.values())) == 3  # spread over all nodes
    after = {ip: elect_announcer(ip, ["node-1", "node-3"]) for ip in ips}
    assert all(after[ip] == before[ip] for ip in ips if before[ip] != "node-2")
    assert all(after[ip] in ("node-1", "node-3") for ip in ips)
    assert elect_announcer("172.18.255.1", []) is None


def _node(name: str, ready: str = "True", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_announcer_only_among_ready_not_excluded_nodes() -> None:
    nodes = [
        _node("node-1", "Unknown"),
        _node("node-2"),
        _node("node-3", labels={"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
    ]
    assert announcer_for({"spec": {}}, "172.18.255.1", nodes, []) == "node-2"


def test_local_policy_announces_from_a_node_with_a_ready_endpoint() -> None:
    nodes = [_node("node-1"), _node("node-2"), _node("node-3")]
    slices = [
        {
            "endpoints": [
                {"nodeName": "node-3", "conditions": {"ready": True}},
                {"nodeName": "node-1", "conditions": {"ready": False}},
            ]
        }
    ]
    svc = {"spec": {"externalTrafficPolicy": "Local"}}
    assert all(
        announcer_for(svc, f"172.18.255.{i}", nodes, slices) == "node-3" for i in range(1, 20)
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["alloc", "assign", "release"]), st.integers(0, 8), st.integers(0, 8)
        ),
        max_size=80,
    )
)
def test_never_two_services_on_one_address(ops: list[tuple[str, int, int]]) -> None:
    a = alloc("172.18.255.0/29")  # .1 … .7 usable: only .0 and .255 are avoided
    for op, svc_i, ip_i in ops:
        svc = f"default/s{svc_i}"
        if op == "alloc":
            result = a.allocate(svc)
            if isinstance(result, Failed):
                assert len(a.in_use()) == 7 and a.ip_of(svc) is None
        elif op == "assign":
            a.assign(svc, f"172.18.255.{ip_i}")
        else:
            a.release(svc)
        owners = a.in_use()
        assert all(a.ip_of(s) == ip for ip, s in owners.items())
        held = [a.ip_of(f"default/s{i}") for i in range(9)]
        held_ips = [ip for ip in held if ip is not None]
        assert len(held_ips) == len(set(held_ips)) == len(owners)
        assert all(ip not in ("172.18.255.0", "172.18.255.8") for ip in held_ips)


def test_configmap_pools_parse_commas_and_newlines() -> None:
    assert pools_from_configmap({"a": "172.18.254.0/30,\n172.18.253.1-172.18.253.3", "b": " "}) == {
        "a": ["172.18.254.0/30", "172.18.253.1-172.18.253.3"]
    }


def test_new_pools_must_hold_the_addresses_handed_out() -> None:
    a = alloc("172.18.255.0/24")
    a.assign("default/a", "172.18.255.9")
    refused = a.set_pools(parse_pools({"other": ["172.18.254.0/24"]}))
    assert refused == (
        'new config not compatible with assigned IPs: service "default/a" cannot '
        'own "172.18.255.9" under new config'
    )
    assert a.set_pools(parse_pools({"wide": ["172.18.0.0/16"]})) is None
    assert a.allocate("default/b") == Allocated("172.18.0.1", "wide")
