"""NetworkPolicy semantics, asserted as 9 x 9 reachability matrices traced through both nodes'
fake nftables tables (upstream's e2e layout, see ``builders``), and cross-checked against
:func:`judge` on the compiled model on every cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from svcnet.netpol.compiler import judge
from svcnet.netpol.model import Direction, PolicyKey, Protocol
from svcnet.testing.packet_tracer import Result

from .builders import PODS, FakeCluster, layout, namespace, pod, pod_ip, policy

Expect = Callable[[str, str], bool]  # (from "ns/pod", to "ns/pod") -> allowed


def ns_of(p: str) -> str:
    return p.split("/")[0]


def name_of(p: str) -> str:
    return p.split("/")[1]


DENY_INGRESS_X = policy("deny-ingress", policy_types=["Ingress"])
DENY_EGRESS_X = policy("deny-egress", policy_types=["Egress"])
A_ONLY = {"matchLabels": {"pod": "a"}}


def from_peers(*peers: dict[str, Any], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return policy("allow", podSelector=A_ONLY, ingress=[rule])


CASES: list[tuple[str, list[dict[str, Any]], str, int, Expect]] = [
    ("no policy: all open", [], "tcp", 80, lambda s, d: True),
    ("deny all ingress into x", [DENY_INGRESS_X], "tcp", 80, lambda s, d: ns_of(d) != "x"),
    ("deny all ingress: UDP too", [DENY_INGRESS_X], "udp", 81, lambda s, d: ns_of(d) != "x"),
    ("deny all egress from x", [DENY_EGRESS_X], "tcp", 80, lambda s, d: ns_of(s) != "x"),
    (
        "deny all ingress and egress in x",
        [policy("deny", policy_types=["Ingress", "Egress"])],
        "tcp",
        80,
        lambda s, d: "x" not in (ns_of(s), ns_of(d)),
    ),
    (
        "empty rule allows all",
        [policy("all", ingress=[{}])],
        "tcp",
        80,
        lambda s, d: True,
    ),
    (
        "podSelector peer: own namespace only",
        [from_peers({"podSelector": {"matchLabels": {"pod": "b"}}})],
        "tcp",
        80,
        lambda s, d: d != "x/a" or s == "x/b",
    ),
    (
        "namespaceSelector peer",
        [from_peers({"namespaceSelector": {"matchLabels": {"ns": "y"}}})],
        "tcp",
        80,
        lambda s, d: d != "x/a" or ns_of(s) == "y",
    ),
    (
        "both selectors in one peer: AND",
        [
            from_peers(
                {
                    "namespaceSelector": {"matchLabels": {"ns": "y"}},
                    "podSelector": {"matchLabels": {"pod": "b"}},
                }
            )
        ],
        "tcp",
        80,
        lambda s, d: d != "x/a" or s == "y/b",
    ),
    (
        "selectors in two peers: OR",
        [
            from_peers(
                {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                {"podSelector": {"matchLabels": {"pod": "b"}}},
            )
        ],
        "tcp",
        80,
        lambda s, d: d != "x/a" or ns_of(s) == "y" or s == "x/b",
    ),
    (
        "matchExpressions on kubernetes.io/metadata.name",
        [
            from_peers(
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "NotIn",
                                "values": ["x", "y"],
                            }
                        ]
                    }
                }
            )
        ],
        "tcp",
        80,
        lambda s, d: d != "x/a" or ns_of(s) == "z",
    ),
    (
        "empty namespaceSelector: every namespace",
        [from_peers({"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "c"}}})],
        "tcp",
        80,
        lambda s, d: d != "x/a" or name_of(s) == "c",
    ),
    (
        "ipBlock with except",
        # node-1's and node-2's pods are in the cidr; node-2's block is excepted.
        [from_peers({"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.2.0/24"]}})],
        "tcp",
        80,
        lambda s, d: d != "x/a" or name_of(s) != "c",
    ),
    (
        "ipBlock of one pod's /32 inside an except",
        [
            from_peers(
                {"ipBlock": {"cidr": "10.244.1.0/24", "except": ["10.244.1.20/31"]}},
            )
        ],
        "tcp",
        80,
        lambda s, d: d != "x/a" or (name_of(s) != "c" and ns_of(s) != "y"),
    ),
    (
        "numeric port: 81 allowed",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81}])],
        "tcp",
        81,
        lambda s, d: True,
    ),
    (
        "numeric port: 80 refused",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81}])],
        "tcp",
        80,
        lambda s, d: d != "x/a",
    ),
    (
        "numeric TCP port refuses UDP",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81, "protocol": "TCP"}])],
        "udp",
        81,
        lambda s, d: d != "x/a",
    ),
    (
        "UDP port allows UDP",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81, "protocol": "UDP"}])],
        "udp",
        81,
        lambda s, d: True,
    ),
    (
        "named port resolves on the destination pod",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": "serve-81-tcp"}])],
        "tcp",
        81,
        lambda s, d: True,
    ),
    (
        "named port: other port refused",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": "serve-81-tcp"}])],
        "tcp",
        80,
        lambda s, d: d != "x/a",
    ),
    (
        "named port with the wrong protocol matches nothing",
        [
            from_peers(
                {"namespaceSelector": {}}, ports=[{"port": "serve-81-tcp", "protocol": "UDP"}]
            )
        ],
        "udp",
        81,
        lambda s, d: d != "x/a",
    ),
    (
        "endPort range covers 81",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81, "endPort": 90}])],
        "tcp",
        81,
        lambda s, d: True,
    ),
    (
        "endPort range excludes 80",
        [from_peers({"namespaceSelector": {}}, ports=[{"port": 81, "endPort": 90}])],
        "tcp",
        80,
        lambda s, d: d != "x/a",
    ),
    (
        "ports of two protocols in one rule: UDP 80",
        [
            from_peers(
                {"namespaceSelector": {}},
                ports=[
                    {"port": 81, "protocol": "UDP"},
                    {"port": 80, "protocol": "UDP"},
                    {"port": 80, "endPort": 85},
                ],
            )
        ],
        "udp",
        80,
        lambda s, d: True,
    ),
    (
        "ports of two protocols in one rule: TCP 82 in the range",
        [
            from_peers(
                {"namespaceSelector": {}},
                ports=[{"port": 81, "protocol": "UDP"}, {"port": 80, "endPort": 85}, {"port": 81}],
            )
        ],
        "tcp",
        82,
        lambda s, d: True,
    ),
    (
        "protocol without port: every port of it",
        [from_peers({"namespaceSelector": {}}, ports=[{"protocol": "UDP"}])],
        "udp",
        80,
        lambda s, d: True,
    ),
    (
        "several policies combine (union)",
        [
            from_peers({"podSelector": {"matchLabels": {"pod": "b"}}}),
            {
                **from_peers({"namespaceSelector": {"matchLabels": {"ns": "z"}}}),
                "metadata": {"name": "allow-z", "namespace": "x"},
            },
        ],
        "tcp",
        80,
        lambda s, d: d != "x/a" or s == "x/b" or ns_of(s) == "z",
    ),
    (
        "policy of another namespace does not isolate x",
        [policy("deny", ns="y", podSelector=A_ONLY, policy_types=["Ingress"])],
        "tcp",
        80,
        lambda s, d: d != "y/a",
    ),
    (
        "egress to one namespace and port only",
        [
            policy(
                "dns-like",
                policy_types=["Egress"],
                egress=[
                    {
                        "to": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
                        "ports": [{"port": 81, "protocol": "UDP"}],
                    }
                ],
            )
        ],
        "udp",
        81,
        lambda s, d: ns_of(s) != "x" or ns_of(d) == "z",
    ),
    (
        "egress named port resolves on the peer",
        [
            policy(
                "egress-named",
                policy_types=["Egress"],
                egress=[{"ports": [{"port": "serve-80-udp", "protocol": "UDP"}]}],
            )
        ],
        "udp",
        80,
        lambda s, d: True,
    ),
    (
        "egress rules default policyTypes to Ingress and Egress",
        [policy("both", egress=[{"to": [{"podSelector": {}}]}])],
        "tcp",
        80,
        lambda s, d: ns_of(d) != "x" and (ns_of(s) != "x" or ns_of(d) == "x"),
    ),
    (
        "selector matching nothing denies",
        [from_peers({"podSelector": {"matchLabels": {"pod": "nobody"}}})],
        "tcp",
        80,
        lambda s, d: d != "x/a",
    ),
]


@pytest.mark.parametrize(
    ("policies", "proto", "port", "expect"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_matrix(policies: list[dict[str, Any]], proto: str, port: int, expect: Expect) -> None:
    cluster = FakeCluster([*layout(), *policies])
    want = {(s, d) for s in PODS for d in PODS if s == d or expect(s, d)}
    got = cluster.matrix(proto, port)
    assert sorted(want - got) == [] and sorted(got - want) == []
    # The compiled model gives the same verdict as the kernel state built from it.
    protocol = Protocol(proto)
    for s in PODS:
        for d in PODS:
            if s == d:
                continue
            s_ip, d_ip = pod_ip(*s.split("/")), pod_ip(*d.split("/"))
            s_node = cluster.nodes[cluster.node_of_ip(s_ip) or ""]
            d_node = cluster.nodes[cluster.node_of_ip(d_ip) or ""]
            eg = judge(s_node.compiled, Direction.EGRESS, s_ip, d_ip, protocol, port)
            ing = judge(d_node.compiled, Direction.INGRESS, d_ip, s_ip, protocol, port)
            assert (eg.allowed and ing.allowed) == ((s, d) in got), (s, d)


def test_sctp_rule_allows_sctp_only() -> None:
    ports = [{"port": 81, "protocol": "SCTP"}]
    cluster = FakeCluster([*layout(), from_peers({"namespaceSelector": {}}, ports=ports)])
    src, dst = pod_ip("y", "b"), pod_ip("x", "a")
    assert cluster.verdict(src, dst, "sctp", 81) is Result.ACCEPT
    assert cluster.verdict(src, dst, "tcp", 81) is Result.DROP
    assert cluster.verdict(src, dst, "sctp", 80) is Result.DROP


def test_judge_names_the_rule_that_allowed_and_the_policies_that_isolate() -> None:
    allow_b = from_peers({"podSelector": {"matchLabels": {"pod": "b"}}})
    cluster = FakeCluster([*layout(), DENY_INGRESS_X, allow_b])
    node = cluster.nodes["node-1"].compiled
    a, b, c = pod_ip("x", "a"), pod_ip("x", "b"), pod_ip("y", "a")
    ok = judge(node, Direction.INGRESS, a, b, Protocol.TCP, 80)
    assert ok.allowed and ok.allowed_by == (PolicyKey("x", "allow"), 0)
    no = judge(node, Direction.INGRESS, a, c, Protocol.TCP, 80)
    assert not no.allowed
    assert no.isolated_by == (PolicyKey("x", "allow"), PolicyKey("x", "deny-ingress"))
    free = judge(node, Direction.INGRESS, pod_ip("y", "a"), a, Protocol.TCP, 80)
    assert free.allowed and free.isolated_by == ()


def test_replies_of_allowed_connections_pass_under_deny() -> None:
    from svcnet.netpol.rules import FAMILY, TABLE
    from svcnet.testing.packet_tracer import Packet, trace

    cluster = FakeCluster([*layout(), policy("deny", policy_types=["Ingress", "Egress"])])
    node = cluster.nodes["node-1"]
    a, other = pod_ip("x", "a"), pod_ip("y", "a")
    for state, want in (("new", Result.DROP), ("established", Result.ACCEPT)):
        for src, dst in ((a, other), (other, a)):
            packet = Packet(src, dst, "tcp", 80, iif="cni0", ct_state=state)
            [out] = trace(node.nft, FAMILY, TABLE, packet, node.local_addresses)
            assert out.result is want, (state, src, dst)


def test_the_node_always_reaches_its_pods_and_they_reach_it() -> None:
    from svcnet.netpol.rules import FAMILY, TABLE
    from svcnet.testing.packet_tracer import Origin, Packet, trace

    cluster = FakeCluster([*layout(), policy("deny", policy_types=["Ingress", "Egress"])])
    node = cluster.nodes["node-1"]
    a = pod_ip("x", "a")
    probe = Packet("10.244.1.1", a, "tcp", 80, origin=Origin.LOCAL)
    to_node = Packet(a, "172.18.0.11", "tcp", 10250, iif="cni0")
    for packet in (probe, to_node):
        [out] = trace(node.nft, FAMILY, TABLE, packet, node.local_addresses)
        assert out.result is Result.ACCEPT, packet
    # Another node is not "the node": a default deny refuses it.
    assert cluster.verdict("172.18.0.12", a) is Result.DROP


def test_pod_label_change_moves_the_pod_in_and_out_of_a_peer() -> None:
    allow_b = from_peers({"podSelector": {"matchLabels": {"pod": "b"}}})
    cluster = FakeCluster([*layout(), allow_b])
    a, c = pod_ip("x", "a"), pod_ip("x", "c")
    assert cluster.verdict(c, a) is Result.DROP
    cluster.add(pod("x", "c", labels={"pod": "b"}))
    cluster.sync()
    assert cluster.verdict(c, a) is Result.ACCEPT


def test_namespace_label_change_flips_the_verdict() -> None:
    cluster = FakeCluster(
        [*layout(), from_peers({"namespaceSelector": {"matchLabels": {"team": "blue"}}})]
    )
    src, dst = pod_ip("z", "b"), pod_ip("x", "a")
    assert cluster.verdict(src, dst) is Result.DROP
    cluster.add(namespace("z", {"ns": "z", "team": "blue"}))
    cluster.sync()
    assert cluster.verdict(src, dst) is Result.ACCEPT


def test_rule_count_grows_with_policies_not_pods() -> None:
    from svcnet.netpol.rules import desired_state

    def counts(pods_per_ns: int) -> tuple[int, int]:
        objs: list[dict[str, Any]] = [namespace(ns) for ns in ("x", "y", "z")]
        for ns_i, ns in enumerate(("x", "y", "z")):
            for i in range(pods_per_ns):
                objs.append(
                    pod(
                        ns,
                        f"p{i}",
                        {"pod": "a" if i % 2 else "b"},
                        "node-1",
                        f"10.244.{1 + ns_i}.{i + 2}",
                    )
                )
        objs += [DENY_INGRESS_X, from_peers({"podSelector": {"matchLabels": {"pod": "b"}}})]
        cluster = FakeCluster(objs)
        d = desired_state(cluster.nodes["node-1"].compiled)
        return d.rule_count(), d.element_count()

    small, big = counts(10), counts(200)
    assert small[0] == big[0]
    assert big[1] > small[1]


def test_policies_repeating_a_selector_share_its_sets() -> None:
    from svcnet.netpol.rules import desired_state

    def sets(*policies: dict[str, Any]) -> set[str]:
        cluster = FakeCluster([*layout(), *policies])
        return set(desired_state(cluster.nodes["node-1"].compiled).sets)

    one = sets(from_peers({"podSelector": {"matchLabels": {"pod": "b"}}}, ports=[{"port": 80}]))
    twin = {
        **from_peers({"podSelector": {"matchLabels": {"pod": "b"}}}, ports=[{"port": 80}]),
        "metadata": {"name": "twin", "namespace": "x"},
    }
    assert sets(from_peers({"podSelector": {"matchLabels": {"pod": "b"}}}, ports=[{"port": 80}]),
                twin) == one  # fmt: skip
    other_ns = {**twin, "metadata": {"name": "twin", "namespace": "y"}}
    assert len(sets(twin, other_ns) - one) == 2  # y's own targets and peers sets
