"""Flow logging: which packets the NetworkPolicy table logs (traced through the fake nft with
the packet tracer), how a node turns NFLOG and conntrack events into flows, and its ring.

Fixture ranges (see ``builders``): node-1's pods 10.244.1.0/24 (gateway 10.244.1.1), node-2's
10.244.2.0/24; x/a 10.244.1.10, x/b 10.244.1.11, y/a 10.244.1.20, x/c 10.244.2.12; a Service
address 10.96.0.5.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.dataplane.nfnetlink import CtEntry, CtEvent, CtEventKind, LoggedPacket, Tuple
from svcnet.dataplane.nft import (
    BaseChain,
    ChainType,
    DnatMap,
    Element,
    Field,
    Hook,
    SetSpec,
    TransactionBuilder,
    rule,
)
from svcnet.dataplane.nft_fake import FakeNft
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.compiler import Compiled
from svcnet.netpol.flowlog import Flow, FlowRecorder, FlowRing, State, Verdict
from svcnet.netpol.model import Direction
from svcnet.netpol.rules import (
    CLOSED,
    FAMILY,
    FLOW_LOG,
    TABLE,
    NetpolConfig,
    build_full,
    desired_state,
    log_prefix,
    parse_log_prefix,
)
from svcnet.testing.packet_tracer import Origin, Packet, Result, trace

from .builders import layout, pod, policy

BLOCK = "10.244.1.0/24"
XA, XB, YA, XC = "10.244.1.10", "10.244.1.11", "10.244.1.20", "10.244.2.12"
SVC = "10.96.0.5"
LOCAL = ("172.18.0.11", "10.244.1.1")
GROUP = FLOW_LOG.group

DENY_X = policy("deny-all", policy_types=["Ingress", "Egress"])
ALLOW_B_TO_A = policy(
    "a-from-b",
    podSelector={"matchLabels": {"pod": "a"}},
    ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
)


def compiled(*objs: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> Compiled:
    t = ChangeTracker()
    for o in [*layout(), *(extra or []), *objs]:
        {"Pod": t.upsert_pod, "Namespace": t.upsert_namespace}.get(o["kind"], t.upsert_policy)(o)
    return t.compile("node-1")


def kernel(model: Compiled, flow_log: Any = FLOW_LOG) -> FakeNft:
    """node-1's netpol table, behind a one-Service nat table (10.96.0.5:80 -> x/a:80)."""
    nft = FakeNft()
    cfg = NetpolConfig("node-1", pod_cidr=BLOCK, flow_log=flow_log)
    nft.apply_sync(build_full(cfg, desired_state(model, BLOCK, flow_log)))
    b = TransactionBuilder(FAMILY, "svc")
    b.add_table()
    b.add_chain("pre", BaseChain(ChainType.NAT, Hook.PREROUTING, -100))
    spec = SetSpec("ipv4_addr . inet_proto . inet_service", "ipv4_addr . inet_service")
    b.add_set("vips", spec)
    key = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
    b.add_rule("pre", rule(DnatMap(key, "vips")))
    b.add_elements("vips", [Element((SVC, "tcp", "80"), (XA, "80"))])
    nft.apply_sync(b.build())
    return nft


def logs(nft: FakeNft, src: str, dst: str, port: int = 80) -> tuple[Result, Any]:
    (outcome,) = trace(
        nft, FAMILY, ("svc", TABLE), Packet(src, dst, "tcp", port, Origin.NETWORK, "cni0"), LOCAL
    )
    return outcome.result, outcome.logs


@pytest.mark.parametrize(
    ("objs", "src", "dst", "want"),
    [
        ((DENY_X,), YA, XA, (Result.DROP, ((log_prefix(Direction.INGRESS, "x"), GROUP),))),
        ((DENY_X,), XA, YA, (Result.DROP, ((log_prefix(Direction.EGRESS, "x"), GROUP),))),
        (
            (DENY_X,),
            YA,
            SVC,
            (Result.DROP, ((log_prefix(Direction.INGRESS, "x", dnat=True), GROUP),)),
        ),
        ((), YA, XA, (Result.ACCEPT, ())),
        ((ALLOW_B_TO_A,), XB, XA, (Result.ACCEPT, ())),
        (
            (ALLOW_B_TO_A,),
            YA,
            SVC,
            (Result.DROP, ((log_prefix(Direction.INGRESS, "x", True), GROUP),)),
        ),
    ],
    ids=[
        "ingress-drop",
        "egress-drop",
        "drop-via-service",
        "open",
        "allowed",
        "allowed-other-denied",
    ],
)
def test_drops_are_logged_with_their_side_and_allowed_packets_never(
    objs: tuple[dict[str, Any], ...], src: str, dst: str, want: tuple[Result, Any]
) -> None:
    assert logs(kernel(compiled(*objs)), src, dst) == want


def test_unprogrammed_pod_address_is_logged_as_closed() -> None:
    """10.244.1.99 is in the node's block but no compile has seen it: closed, and logged so."""
    result, logged = logs(kernel(compiled()), YA, "10.244.1.99")
    assert (result, logged) == (Result.DROP, ((log_prefix(Direction.INGRESS, CLOSED), GROUP),))


def test_without_flow_log_drops_are_silent() -> None:
    assert logs(kernel(compiled(DENY_X), flow_log=None), YA, XA) == (Result.DROP, ())


def test_log_prefix_round_trips_and_fits_nft() -> None:
    ns = "n" * 63  # the longest namespace name
    for d in Direction:
        for dnat in (False, True):
            text = log_prefix(d, ns, dnat)
            assert len(text) <= 127
            assert parse_log_prefix(text) == (d, ns, dnat)
    for foreign in ("", "np", "np:up:x", "np:in:", "other:in:x", "np:in:x:nat", "np:in:x:svc:1"):
        assert parse_log_prefix(foreign) is None


# --- the recorder ------------------------------------------------------------------------------


def recorder(model: Compiled | None, capacity: int = 16) -> FlowRecorder:
    return FlowRecorder("node-1", BLOCK, FlowRing(capacity), lambda: model)


def dropped(prefix: str, src: str, dst: str, dport: int = 80, ct: CtEntry | None = None) -> Any:
    return LoggedPacket(GROUP, prefix, Tuple("tcp", src, dst, 41000, dport), ct)


def ct(kind: CtEventKind, src: str, dst: str, to: str | None = None, port: int = 80) -> CtEvent:
    back = to or dst
    return CtEvent(
        kind,
        CtEntry(Tuple("tcp", src, dst, 41000, port), Tuple("tcp", back, src, port, 41000)),
    )


def test_a_drop_names_the_policies_isolating_the_pod() -> None:
    model = compiled(DENY_X, ALLOW_B_TO_A)
    r = recorder(model)
    r.record([dropped("np:in:x", YA, XA)], now=5.0)
    (flow,) = r.ring.since(0)
    assert flow == Flow(
        1, 5.0, "node-1", Verdict.DROPPED, State.DROPPED, "tcp", YA, 41000, XA, 80,
        direction="ingress", policies=("x/a-from-b", "x/deny-all"),
        reason="no rule of these policies allows it",
    )  # fmt: skip


def test_an_egress_drop_judges_the_source_pod() -> None:
    r = recorder(compiled(DENY_X))
    r.record([dropped("np:eg:x", XA, YA)], now=1.0)
    (flow,) = r.ring.since(0)
    assert (flow.direction, flow.policies) == ("egress", ("x/deny-all",))


def test_an_icmp_drop_is_judged_as_no_port_would_be() -> None:
    ports_only = policy(
        "web-from-y",
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                  "ports": [{"port": 80}]}],
    )  # fmt: skip
    r = recorder(compiled(DENY_X, ports_only))
    ping = LoggedPacket(GROUP, "np:in:x", Tuple("icmp", YA, XA, 0, 0), None)
    r.record([ping], now=1.0)
    (flow,) = r.ring.since(0)
    assert (flow.proto, flow.policies) == ("icmp", ("x/deny-all", "x/web-from-y"))


def test_a_drop_the_current_policies_allow_says_they_changed() -> None:
    r = recorder(compiled(policy("open", ingress=[{}])))
    r.record([dropped("np:in:x", YA, XA)], now=1.0)
    (flow,) = r.ring.since(0)
    assert (flow.policies, flow.reason) == (
        (),
        "isolated for ingress in namespace x (since changed)",
    )


def test_a_drop_sent_to_a_service_keeps_the_address_when_the_kernel_gives_it() -> None:
    r = recorder(compiled(DENY_X))
    entry = CtEntry(Tuple("tcp", YA, SVC, 41000, 80), None)
    r.record([dropped("np:in:x:svc", YA, XA, ct=entry), dropped("np:in:x:svc", YA, XB)], now=1.0)
    with_ct, without = r.ring.since(0)
    assert (with_ct.orig_dst, with_ct.orig_dport, with_ct.dnat) == (SVC, 80, True)
    assert (without.orig_dst, without.dnat) == ("", True)


@pytest.mark.parametrize(
    ("prefix", "model", "reason"),
    [
        (
            "np:in:(closed)",
            None,
            "pod not yet known to this node's rules (closed until programmed)",
        ),
        ("np:in:x", None, "isolated for ingress in namespace x"),
    ],
    ids=["closed", "no-model-yet"],
)
def test_a_drop_without_policies_says_why(prefix: str, model: Compiled | None, reason: str) -> None:
    r = recorder(model)
    r.record([dropped(prefix, YA, XA)], now=1.0)
    (flow,) = r.ring.since(0)
    assert (flow.policies, flow.reason) == ((), reason)


def test_connections_become_allowed_flows_with_the_address_they_were_sent_to() -> None:
    r = recorder(None)
    r.record(
        [ct(CtEventKind.NEW, YA, SVC, to=XA), ct(CtEventKind.DESTROY, YA, SVC, to=XA)], now=2.0
    )
    new, closed = r.ring.since(0)
    assert (new.verdict, new.state, new.dst, new.orig_dst, new.dnat) == (
        Verdict.ALLOWED, State.NEW, XA, SVC, True,
    )  # fmt: skip
    assert closed.state is State.CLOSED and closed.key == new.key


@pytest.mark.parametrize(
    "event",
    [
        ct(CtEventKind.NEW, "10.244.1.1", XA),  # the node's probe: not NetworkPolicy's
        ct(CtEventKind.NEW, "172.18.0.11", "172.18.0.1", port=6443),  # the agent's own
        ct(CtEventKind.NEW, XC, "10.244.3.5"),  # neither end is this node's pod
        dropped("np:in:x", "10.244.3.5", XC),
        dropped("kernel:other", YA, XA),  # another table's log
    ],
    ids=["probe", "node-traffic", "foreign-ct", "foreign-drop", "foreign-prefix"],
)
def test_what_is_not_this_nodes_pods_is_left_out(event: Any) -> None:
    r = recorder(compiled(DENY_X))
    r.record([event], now=1.0)
    assert r.ring.since(0) == []


def test_connection_to_a_pod_of_another_node_is_kept_on_the_senders() -> None:
    r = recorder(None)
    r.record([ct(CtEventKind.NEW, XA, XC)], now=1.0)
    assert [f.dst for f in r.ring.since(0)] == [XC]


def test_ring_keeps_the_last_flows_and_reads_after_a_sequence_number() -> None:
    r = recorder(None, capacity=3)
    r.record([ct(CtEventKind.NEW, XA, YA, port=p) for p in range(1, 6)], now=1.0)
    assert [f.seq for f in r.ring.since(0)] == [3, 4, 5]
    assert [f.seq for f in r.ring.since(3)] == [4, 5]
    assert r.ring.since(5) == []
    assert len(r.ring) == 3


def test_a_number_from_before_a_restart_reads_the_ring_from_its_start() -> None:
    ring = FlowRing(capacity=8, start=1000)
    r = FlowRecorder("node-1", BLOCK, ring, lambda: None)
    r.record([ct(CtEventKind.NEW, XA, YA, port=p) for p in (1, 2)], now=1.0)
    assert [f.seq for f in ring.since(5000)] == [1001, 1002]
    assert [f.seq for f in ring.since(1001)] == [1002]
    assert FlowRing(start=7).since(9) == []


def test_flow_json_round_trip() -> None:
    r = recorder(compiled(DENY_X))
    r.record([dropped("np:in:x:svc", YA, XA), ct(CtEventKind.NEW, XA, XC)], now=3.5)
    for f in r.ring.since(0):
        assert Flow.from_json(f.to_json()) == f


def test_pods_of_the_fixture_are_where_the_ranges_say() -> None:
    """Guards the addresses above against a change of the shared builders."""
    assert pod("x", "a")["status"]["podIP"] == XA and pod("y", "a")["status"]["podIP"] == YA
    assert pod("x", "c")["status"]["podIP"] == XC
