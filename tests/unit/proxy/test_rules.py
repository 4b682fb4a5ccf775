"""Behaviour of the proxy's nftables rules, asserted with the packet tracer over the fake.

Fixture ranges: see ``builders``. The node under test is node-1 (172.18.0.11, pods
10.244.1.0/24); node-2's pods are 10.244.2.0/24.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from svcnet.dataplane.nft_fake import FakeNft
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.rules import FAMILY, TABLE, ProxyConfig, build_full, build_partial, commit
from svcnet.testing.packet_tracer import Origin, Outcome, Packet, Result, record_updates, trace

from .builders import (
    LOCAL_ADDRESSES,
    NODE_IP,
    OUTSIDE,
    POD_A,
    endpoint,
    endpoint_slice,
    service,
)

CFG = ProxyConfig(node_name="node-1", cluster_cidr="10.244.0.0/16", node_ips=(NODE_IP,))
HALF = Fraction(1, 2)
TWO_EPS = [endpoint("10.244.1.5", "node-1"), endpoint("10.244.2.5", "node-2")]


class Proxy:
    """The rule builder + fake kernel, fed with API objects through the change tracker."""

    def __init__(self, objects: list[dict[str, Any]], cfg: ProxyConfig = CFG) -> None:
        self.cfg = cfg
        self.tracker = ChangeTracker()
        for o in objects:
            self.put(o)
        self.tracker.drain()
        self.nft = FakeNft()
        tx, self.state = build_full(cfg, self._input())
        self.nft.apply_sync(tx)

    def _input(self) -> dict[Any, Any]:
        return {k: s.port_endpoints() for k, s in self.tracker.snapshots().items()}

    def put(self, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Service":
            self.tracker.upsert_service(obj)
        else:
            self.tracker.upsert_slice(obj)

    def partial(self) -> int:
        changes = self.tracker.drain()
        changed = {k: c.current.port_endpoints() for k, c in changes.items() if c.current}
        removed = [k for k, c in changes.items() if c.current is None]
        tx, delta = build_partial(self.cfg, self.state, changed, removed)
        self.nft.apply_sync(tx)
        commit(self.state, delta)
        return len(tx)

    def trace(
        self, src: str, dst: str, port: int, proto: str = "tcp", origin: Origin = Origin.NETWORK
    ) -> list[Outcome]:
        return trace(
            self.nft, FAMILY, TABLE, Packet(src, dst, proto, port, origin), LOCAL_ADDRESSES
        )


def dnats(outcomes: list[Outcome]) -> dict[tuple[str, int] | None, Fraction]:
    return {o.dnat: o.probability for o in outcomes}


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


# --- ClusterIP -------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["TCP", "UDP", "SCTP"])
def test_cluster_ip_spreads_equally_over_ready_endpoints(proto: str) -> None:
    p = Proxy(
        [
            service(ports=[{"name": "p", "port": 53, "protocol": proto, "targetPort": 5353}]),
            endpoint_slice(
                endpoints=TWO_EPS, ports=[{"name": "p", "port": 5353, "protocol": proto}]
            ),
        ]
    )
    out = p.trace(POD_A, "10.96.0.5", 53, proto.lower())
    assert dnats(out) == {("10.244.1.5", 5353): HALF, ("10.244.2.5", 5353): HALF}
    assert all(o.result is Result.ACCEPT and not o.masquerade for o in out)


def test_cluster_ip_each_port_goes_to_its_target_port() -> None:
    p = Proxy(
        [
            service(
                ports=[
                    {"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "https", "port": 443, "protocol": "TCP"},
                ]
            ),
            endpoint_slice(
                endpoints=[endpoint("10.244.2.5", "node-2")],
                ports=[
                    {"name": "http", "port": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 8443, "protocol": "TCP"},
                ],
            ),
        ]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == ("10.244.2.5", 8080)
    assert only(p.trace(POD_A, "10.96.0.5", 443)).dnat == ("10.244.2.5", 8443)


def test_same_port_number_for_tcp_and_udp_keeps_protocols_apart() -> None:
    p = Proxy(
        [
            service(
                ports=[
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ]
            ),
            endpoint_slice(
                endpoints=[endpoint("10.244.2.5", "node-2")],
                ports=[
                    {"name": "dns-tcp", "port": 1053, "protocol": "TCP"},
                    {"name": "dns", "port": 2053, "protocol": "UDP"},
                ],
            ),
        ]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 53, "tcp")).dnat == ("10.244.2.5", 1053)
    assert only(p.trace(POD_A, "10.96.0.5", 53, "udp")).dnat == ("10.244.2.5", 2053)


def test_unknown_port_of_a_cluster_ip_is_left_alone() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    assert only(p.trace(POD_A, "10.96.0.5", 81)) == Outcome(Fraction(1), Result.ACCEPT, None, False)


@pytest.mark.parametrize(
    ("src", "origin", "masquerade"),
    [
        (POD_A, Origin.NETWORK, False),  # pod to pod keeps its source
        ("10.244.2.9", Origin.NETWORK, False),  # a pod of another node, routed here
        (OUTSIDE, Origin.NETWORK, True),  # off-cluster client
        (NODE_IP, Origin.LOCAL, True),  # the node itself
    ],
)
def test_cluster_ip_masquerades_only_traffic_not_from_pods(
    src: str, origin: Origin, masquerade: bool
) -> None:
    p = Proxy([service(), endpoint_slice(endpoints=[endpoint("10.244.2.5", "node-2")])])
    out = only(p.trace(src, "10.96.0.5", 80, origin=origin))
    assert (out.dnat, out.masquerade) == (("10.244.2.5", 8080), masquerade)


def test_hairpin_pod_reaching_itself_is_masqueraded() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    out = {o.dnat: o.masquerade for o in p.trace("10.244.1.5", "10.96.0.5", 80)}
    assert out == {("10.244.1.5", 8080): True, ("10.244.2.5", 8080): False}


# --- no endpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proto", "result"),
    [("TCP", Result.REJECT_TCP_RESET), ("UDP", Result.REJECT_ICMP), ("SCTP", Result.REJECT_ICMP)],
)
def test_no_endpoints_rejects_at_once(proto: str, result: Result) -> None:
    p = Proxy(
        [
            service(ports=[{"name": "p", "port": 80, "protocol": proto}]),
            endpoint_slice(endpoints=[]),
        ]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 80, proto.lower())).result is result


def test_no_endpoints_rejects_traffic_from_the_node_itself() -> None:
    p = Proxy([service()])
    assert (
        only(p.trace(NODE_IP, "10.96.0.5", 80, origin=Origin.LOCAL)).result
        is Result.REJECT_TCP_RESET
    )


def test_not_ready_endpoints_are_not_used() -> None:
    p = Proxy(
        [
            service(),
            endpoint_slice(
                endpoints=[endpoint("10.244.2.5", "node-2", ready=False, serving=False)]
            ),
        ]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 80)).result is Result.REJECT_TCP_RESET


def test_terminating_serving_endpoints_used_only_when_none_is_ready() -> None:
    terminating = endpoint("10.244.2.6", "node-2", ready=False, serving=True, terminating=True)
    p = Proxy([service(), endpoint_slice(endpoints=[terminating])])
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == ("10.244.2.6", 8080)
    p = Proxy(
        [service(), endpoint_slice(endpoints=[terminating, endpoint("10.244.2.5", "node-2")])]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == ("10.244.2.5", 8080)


# --- services that get no rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    "svc",
    [
        service(cluster_ip="None"),
        service(cluster_ip="", type="ExternalName", externalName="db.example.com"),
    ],
    ids=["headless", "external-name"],
)
def test_headless_and_external_name_services_get_no_rules(svc: dict[str, Any]) -> None:
    p = Proxy([svc, endpoint_slice(endpoints=TWO_EPS)])
    assert p.nft.counts(FAMILY, TABLE)[1] == 0


# --- session affinity --------------------------------------------------------------------------


def test_client_ip_affinity_sticks_to_the_first_choice() -> None:
    p = Proxy(
        [
            service(
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
            ),
            endpoint_slice(endpoints=TWO_EPS),
        ]
    )
    first = p.trace(POD_A, "10.96.0.5", 80)
    assert len(first) == 2
    chosen = first[1]
    assert [(u.key, u.timeout_seconds) for u in chosen.updates] == [
        ((POD_A, "10.96.0.5", "tcp", "80"), 60)
    ]
    record_updates(p.nft, FAMILY, TABLE, chosen)
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == chosen.dnat
    # Another client still gets a random choice.
    assert len(p.trace("10.244.1.10", "10.96.0.5", 80)) == 2


def test_no_affinity_records_nothing() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    assert all(o.updates == () for o in p.trace(POD_A, "10.96.0.5", 80))


# --- NodePort, externalIPs, LoadBalancer -------------------------------------------------------


def _np(policy: str = "Cluster", eps: list[dict[str, Any]] | None = None) -> Proxy:
    return Proxy(
        [
            service(
                type="NodePort",
                externalTrafficPolicy=policy,
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
            ),
            endpoint_slice(endpoints=TWO_EPS if eps is None else eps),
        ]
    )


def test_nodeport_cluster_policy_masquerades_to_any_endpoint() -> None:
    out = _np().trace(OUTSIDE, NODE_IP, 30080)
    assert dnats(out) == {("10.244.1.5", 8080): HALF, ("10.244.2.5", 8080): HALF}
    assert all(o.masquerade for o in out)


def test_nodeport_answers_on_a_node_without_backends() -> None:
    out = _np(eps=[endpoint("10.244.2.5", "node-2")]).trace(OUTSIDE, NODE_IP, 30080)
    assert only(out).dnat == ("10.244.2.5", 8080)


def test_nodeport_answers_on_every_local_address() -> None:
    out = _np().trace(POD_A, "10.244.1.1", 30080)
    assert len(out) == 2 and all(o.dnat for o in out)


def test_nodeport_is_not_matched_on_a_foreign_address() -> None:
    assert only(_np().trace(OUTSIDE, "172.18.0.12", 30080)).dnat is None


def test_nodeport_local_policy_keeps_the_source_and_local_endpoints() -> None:
    out = only(_np("Local").trace(OUTSIDE, NODE_IP, 30080))
    assert (out.dnat, out.masquerade) == (("10.244.1.5", 8080), False)


def test_nodeport_local_policy_without_local_endpoints_drops() -> None:
    out = _np("Local", [endpoint("10.244.2.5", "node-2")]).trace(OUTSIDE, NODE_IP, 30080)
    assert only(out).result is Result.DROP


def test_nodeport_without_endpoints_rejects() -> None:
    assert only(_np(eps=[]).trace(OUTSIDE, NODE_IP, 30080)).result is Result.REJECT_TCP_RESET


def _external(policy: str, eps: list[dict[str, Any]] | None = None) -> Proxy:
    return Proxy(
        [
            service(
                type="LoadBalancer",
                externalTrafficPolicy=policy,
                externalIPs=["198.51.100.9"],
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}],
                status={"loadBalancer": {"ingress": [{"ip": "172.18.255.3"}]}},
            ),
            endpoint_slice(endpoints=TWO_EPS if eps is None else eps),
        ]
    )


@pytest.mark.parametrize("address", ["172.18.255.3", "198.51.100.9"], ids=["lb-ip", "external-ip"])
def test_external_address_cluster_policy_masquerades(address: str) -> None:
    out = _external("Cluster").trace(OUTSIDE, address, 80)
    assert len(out) == 2 and all(o.masquerade and o.dnat for o in out)


@pytest.mark.parametrize("address", ["172.18.255.3", "198.51.100.9"], ids=["lb-ip", "external-ip"])
def test_external_address_local_policy_only_local_endpoints_source_kept(address: str) -> None:
    out = only(_external("Local").trace(OUTSIDE, address, 80))
    assert (out.dnat, out.masquerade) == (("10.244.1.5", 8080), False)


def test_external_address_local_policy_pods_still_reach_every_endpoint() -> None:
    out = _external("Local").trace(POD_A, "172.18.255.3", 80)
    assert len(out) == 2 and not any(o.masquerade for o in out)


def test_external_address_local_policy_without_local_endpoints_drops() -> None:
    out = _external("Local", [endpoint("10.244.2.5", "node-2")]).trace(OUTSIDE, "172.18.255.3", 80)
    assert only(out).result is Result.DROP


# --- loadBalancerSourceRanges ------------------------------------------------------------------

LB_IP = "172.18.255.3"
ALLOWED = "192.0.2.0/25"  # OUTSIDE (192.0.2.7) is in it
DENIED_SRC = "203.0.113.4"


def _firewalled(policy: str = "Cluster", ranges: list[str] | None = None) -> Proxy:
    return Proxy(
        [
            service(
                type="LoadBalancer",
                externalTrafficPolicy=policy,
                externalIPs=["198.51.100.9"],
                loadBalancerSourceRanges=[ALLOWED] if ranges is None else ranges,
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}],
                status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}},
            ),
            endpoint_slice(endpoints=TWO_EPS),
        ]
    )


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_source_ranges_let_allowed_sources_reach_the_lb_ip(policy: str) -> None:
    out = _firewalled(policy).trace(OUTSIDE, LB_IP, 80)
    assert out and all(o.dnat for o in out)


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
@pytest.mark.parametrize("src", [DENIED_SRC, POD_A], ids=["outside", "pod"])
def test_source_ranges_drop_other_sources_at_the_lb_ip(policy: str, src: str) -> None:
    assert only(_firewalled(policy).trace(src, LB_IP, 80)).result is Result.DROP


@pytest.mark.parametrize(
    ("dst", "port"), [("198.51.100.9", 80), (NODE_IP, 30081), ("10.96.0.5", 80)],
    ids=["external-ip", "nodeport", "cluster-ip"],
)  # fmt: skip
def test_source_ranges_restrict_only_the_lb_ip(dst: str, port: int) -> None:
    out = _firewalled().trace(DENIED_SRC, dst, port)
    assert out and all(o.dnat for o in out)


def test_source_ranges_other_port_of_the_lb_ip_is_not_restricted() -> None:
    p = _firewalled()
    assert only(p.trace(DENIED_SRC, LB_IP, 81)).dnat is None  # no such port: left alone
    assert only(p.trace(DENIED_SRC, LB_IP, 81)).result is not Result.DROP


def test_source_ranges_containing_the_node_allow_the_vip_as_source() -> None:
    p = _firewalled(ranges=["172.18.0.0/16"])
    assert all(o.dnat for o in p.trace(LB_IP, LB_IP, 80))
    assert all(o.dnat for o in p.trace(NODE_IP, LB_IP, 80))
    assert only(p.trace(DENIED_SRC, LB_IP, 80)).result is Result.DROP


def test_source_ranges_overlapping_are_merged() -> None:
    p = _firewalled(ranges=["192.0.2.0/24", "192.0.2.0/25", "192.0.2.7/32"])
    assert all(o.dnat for o in p.trace(OUTSIDE, LB_IP, 80))


def test_source_ranges_changed_by_a_partial_sync() -> None:
    p = _firewalled()
    p.put(
        service(
            type="LoadBalancer",
            externalIPs=["198.51.100.9"],
            loadBalancerSourceRanges=["203.0.113.0/24"],
            ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}],
            status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}},
        )
    )
    p.partial()
    assert all(o.dnat for o in p.trace(DENIED_SRC, LB_IP, 80))
    assert only(p.trace(OUTSIDE, LB_IP, 80)).result is Result.DROP
    p.put(
        service(
            type="LoadBalancer",
            externalIPs=["198.51.100.9"],
            ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}],
            status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}},
        )
    )
    p.partial()
    assert all(o.dnat for o in p.trace(OUTSIDE, LB_IP, 80))
    assert not p.nft.table(FAMILY, TABLE).sets["firewall-allow"].elements


# --- internalTrafficPolicy ---------------------------------------------------------------------


def test_internal_policy_local_uses_only_local_endpoints() -> None:
    p = Proxy([service(internalTrafficPolicy="Local"), endpoint_slice(endpoints=TWO_EPS)])
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == ("10.244.1.5", 8080)


def test_internal_policy_local_without_local_endpoints_drops() -> None:
    p = Proxy(
        [
            service(internalTrafficPolicy="Local"),
            endpoint_slice(endpoints=[endpoint("10.244.2.5", "node-2")]),
        ]
    )
    assert only(p.trace(POD_A, "10.96.0.5", 80)).result is Result.DROP


# --- partial syncs -----------------------------------------------------------------------------


def _sets_dump(nft: FakeNft) -> str:
    out: list[str] = []
    in_chain = False
    for line in nft.dump().splitlines():
        if line.startswith("  chain"):
            in_chain = True
        elif line.startswith("  map") or line.startswith("  set"):
            in_chain = False
        if not in_chain:
            out.append(line)
    return "\n".join(out)


STEPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("endpoint added", [endpoint_slice(endpoints=[*TWO_EPS, endpoint("10.244.2.7", "node-2")])]),
    ("endpoint removed", [endpoint_slice(endpoints=TWO_EPS[:1])]),
    ("all endpoints gone", [endpoint_slice(endpoints=[])]),
    ("port changed", [service(ports=[{"name": "http", "port": 81, "protocol": "TCP"}])]),
    (
        "becomes NodePort Local",
        [
            service(
                type="NodePort",
                externalTrafficPolicy="Local",
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
            )
        ],
    ),
    ("gains affinity", [service(sessionAffinity="ClientIP")]),
    ("second service", [service("api", "10.96.0.6"), endpoint_slice("api", endpoints=TWO_EPS)]),
]


@pytest.mark.parametrize(("name", "objects"), STEPS, ids=[s[0] for s in STEPS])
def test_partial_sync_reaches_the_same_maps_as_a_full_sync(
    name: str, objects: list[dict[str, Any]]
) -> None:
    p = Proxy(
        [
            service(),
            endpoint_slice(endpoints=TWO_EPS),
            service("db", "10.96.0.7"),
            endpoint_slice("db", endpoints=TWO_EPS),
        ]
    )
    for o in objects:
        p.put(o)
    p.partial()
    fresh = FakeNft()
    fresh.apply_sync(build_full(CFG, p._input())[0])
    assert _sets_dump(p.nft) == _sets_dump(fresh)


def test_partial_sync_of_a_deleted_service_removes_its_elements() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    p.tracker.delete_service(service())
    p.partial()
    assert p.nft.counts(FAMILY, TABLE)[1] == 0
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat is None


def test_partial_sync_touches_only_the_changed_service() -> None:
    p = Proxy(
        [
            service(),
            endpoint_slice(endpoints=TWO_EPS),
            service("db", "10.96.0.7"),
            endpoint_slice("db", endpoints=TWO_EPS),
        ]
    )
    p.put(endpoint_slice(endpoints=TWO_EPS[:1]))
    changes = p.tracker.drain()
    tx, _ = build_partial(
        CFG, p.state, {k: c.current.port_endpoints() for k, c in changes.items() if c.current}
    )
    assert "10.96.0.7" not in tx.render()


def test_hairpin_address_shared_by_two_services_stays_until_both_drop_it() -> None:
    p = Proxy(
        [
            service(),
            endpoint_slice(endpoints=TWO_EPS),
            service("db", "10.96.0.7"),
            endpoint_slice("db", endpoints=TWO_EPS),
        ]
    )
    p.put(endpoint_slice(endpoints=[endpoint("10.244.2.5", "node-2")]))
    p.partial()
    out = {o.dnat: o.masquerade for o in p.trace("10.244.1.5", "10.96.0.7", 80)}
    assert out[("10.244.1.5", 8080)] is True


def test_full_sync_restores_a_deleted_table() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    p.nft.delete_table(FAMILY, TABLE)
    tx, _ = build_full(CFG, p._input(), p.nft.chain_names(FAMILY, TABLE))
    p.nft.apply_sync(tx)
    assert len(p.trace(POD_A, "10.96.0.5", 80)) == 2


def test_full_sync_removes_selector_chains_no_longer_used() -> None:
    p = Proxy([service(), endpoint_slice(endpoints=TWO_EPS)])
    p.put(endpoint_slice(endpoints=TWO_EPS[:1]))
    p.partial()
    assert "svc-tcp-2" in p.nft.chain_names(FAMILY, TABLE)
    tx, _ = build_full(CFG, p._input(), p.nft.chain_names(FAMILY, TABLE))
    p.nft.apply_sync(tx)
    assert "svc-tcp-2" not in p.nft.chain_names(FAMILY, TABLE)
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == ("10.244.1.5", 8080)


def test_full_sync_keeps_affinity_entries() -> None:
    p = Proxy([service(sessionAffinity="ClientIP"), endpoint_slice(endpoints=TWO_EPS)])
    chosen = p.trace(POD_A, "10.96.0.5", 80)[0]
    record_updates(p.nft, FAMILY, TABLE, chosen)
    tx, _ = build_full(CFG, p._input(), p.nft.chain_names(FAMILY, TABLE))
    p.nft.apply_sync(tx)
    assert only(p.trace(POD_A, "10.96.0.5", 80)).dnat == chosen.dnat
