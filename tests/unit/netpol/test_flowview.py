"""``svcnet flows``' view: the nodes' events merged per connection, named, filtered.

Fixture ranges: node-1 172.18.0.11 with pods 10.244.1.0/24, node-2 172.18.0.12 with
10.244.2.0/24; Services 10.96.0.0/16.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.netpol.flowlog import Flow, State, Verdict
from svcnet.netpol.flowview import Endpoint, Filter, Names, merge, names_from, row

FRONT, BACK, OTHER, HOSTNET = "10.244.1.10", "10.244.2.20", "10.244.1.30", "172.18.0.12"
VIP = "10.96.0.50"


def obj(kind: str, ns: str, name: str, **rest: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, **rest.pop("meta", {})},
        **rest,
    }


PODS = [
    obj("Pod", "prod", "frontend", status={"podIP": FRONT, "phase": "Running"}),
    obj("Pod", "prod", "backend", status={"podIP": BACK, "phase": "Running"}),
    obj("Pod", "prod", "old", status={"podIP": OTHER, "phase": "Succeeded"}),
    obj("Pod", "dev", "tool", status={"podIP": OTHER, "phase": "Running"}),
    obj("Pod", "kube-system", "agent", spec={"hostNetwork": True}, status={"podIP": HOSTNET}),
]
SERVICES = [
    obj("Service", "prod", "backend-api", spec={"clusterIP": VIP, "clusterIPs": [VIP]}),
    obj("Service", "prod", "headless", spec={"clusterIP": "None"}),
]
NODES = [
    {
        "metadata": {"name": f"node-{i}"},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.18.0.1{i}"}]},
    }
    for i in (1, 2)
]
SLICES = [
    obj(
        "EndpointSlice", "default", "kubernetes",
        meta={"labels": {"kubernetes.io/service-name": "kubernetes"}},
        ports=[{"port": 6443}], endpoints=[{"addresses": ["172.18.0.1"]}],
    ),
    obj(
        "EndpointSlice", "prod", "backend-api-x",
        meta={"labels": {"kubernetes.io/service-name": "backend-api"}},
        ports=[{"port": 8080}], endpoints=[{"addresses": [BACK]}],
    ),
]  # fmt: skip
NAMES = names_from(PODS, SERVICES, NODES, SLICES)


def flow(seq: int, node: str, verdict: Verdict, state: State, **kw: Any) -> Flow:
    base: dict[str, Any] = {
        "proto": "tcp",
        "src": FRONT,
        "sport": 40000,
        "dst": BACK,
        "dport": 8080,
    }
    base.update(kw)
    return Flow(seq, float(seq), node, verdict, state, **base)


NEW_SENDER = flow(1, "node-1", Verdict.ALLOWED, State.NEW, orig_dst=VIP, orig_dport=80, dnat=True)
NEW_RECEIVER = flow(1, "node-2", Verdict.ALLOWED, State.NEW, orig_dst=BACK, orig_dport=8080)
DROP_RECEIVER = flow(
    2, "node-2", Verdict.DROPPED, State.DROPPED, direction="ingress",
    policies=("prod/default-deny-all",), reason="no rule of these policies allows it",
)  # fmt: skip


def test_names_pods_services_nodes() -> None:
    assert NAMES.endpoint(FRONT, 1) == Endpoint(FRONT, 1, "pod", "prod", "frontend")
    assert NAMES.endpoint(VIP, 80) == Endpoint(VIP, 80, "service", "prod", "backend-api")
    assert NAMES.endpoint("172.18.0.11", 0).label() == "node/node-1"
    assert NAMES.endpoint("10.1.2.3", 9).label() == "10.1.2.3"


def test_an_endpoint_that_is_no_pod_says_whose_it_is() -> None:
    assert NAMES.endpoint("172.18.0.1", 6443).label() == "172.18.0.1 (default/kubernetes)"
    assert NAMES.endpoint(BACK, 8080).label() == "prod/backend"  # a pod stays the pod


def test_a_running_pod_owns_an_address_a_finished_one_had() -> None:
    assert NAMES.endpoint(OTHER, 0).label() == "dev/tool"


def test_a_host_network_pod_leaves_the_address_to_its_node() -> None:
    assert NAMES.endpoint(HOSTNET, 0).label() == "node/node-2"


def test_both_nodes_views_of_a_connection_merge_into_one_with_its_service() -> None:
    (v,) = merge([NEW_RECEIVER, NEW_SENDER], NAMES)
    assert (v.verdict, v.state, v.nodes, v.count) == (
        Verdict.ALLOWED, State.NEW, ("node-1", "node-2"), 2,
    )  # fmt: skip
    assert v.service == Endpoint(VIP, 80, "service", "prod", "backend-api")
    assert row(v) == (
        "prod/frontend:40000", "prod/backend", "prod/backend-api:80", "8080/TCP",
        "allowed (new)", "", "node-1,node-2",
    )  # fmt: skip


def test_a_drop_on_the_receiver_makes_the_connection_dropped_with_its_policies() -> None:
    (v,) = merge([NEW_SENDER, DROP_RECEIVER], NAMES)
    assert (v.verdict, v.direction, v.policies) == (
        Verdict.DROPPED, "ingress", ("prod/default-deny-all",),
    )  # fmt: skip
    assert row(v)[4:6] == ("dropped", "ingress: prod/default-deny-all")
    assert v.to_json()["time"] == "1970-01-01T00:00:01.000Z"
    assert v.to_json()["droppedBy"] == {
        "direction": "ingress",
        "policies": ["prod/default-deny-all"],
        "reason": "no rule of these policies allows it",
    }


def test_a_dnat_drop_without_the_address_names_the_service_holding_the_backend() -> None:
    drop = flow(3, "node-2", Verdict.DROPPED, State.DROPPED, dnat=True, direction="ingress")
    (v,) = merge([drop], NAMES)
    assert v.service is not None and v.service.label() == "prod/backend-api"


def test_a_dnat_drop_to_a_backend_of_no_known_service_names_none() -> None:
    drop = flow(3, "node-2", Verdict.DROPPED, State.DROPPED, dnat=True, dport=9999)
    (v,) = merge([drop], NAMES)
    assert v.service is None


def test_closed_connection_and_separate_connections() -> None:
    closed = flow(5, "node-1", Verdict.ALLOWED, State.CLOSED, orig_dst=VIP, orig_dport=80)
    other = flow(6, "node-1", Verdict.ALLOWED, State.NEW, sport=40001)
    views = merge([other, closed, NEW_SENDER], NAMES)
    assert [(v.src.port, v.state) for v in views] == [(40000, State.CLOSED), (40001, State.NEW)]


@pytest.mark.parametrize(
    ("keep", "want"),
    [
        (Filter(), {"allowed", "dropped", "dev"}),
        (Filter(verdict=Verdict.DROPPED), {"dropped"}),
        (Filter(verdict=Verdict.ALLOWED), {"allowed", "dev"}),
        (Filter(namespace="dev"), {"dev"}),
        (Filter(namespace="prod"), {"allowed", "dropped", "dev"}),
        (Filter(pod="backend"), {"allowed", "dropped"}),
        (Filter(pod="tool"), {"dev"}),
        (Filter(namespace="dev", pod="frontend"), set()),
        (Filter(pod="backend-api"), set()),  # a Service is not a pod
    ],
)
def test_filters(keep: Filter, want: set[str]) -> None:
    to_dev = flow(7, "node-1", Verdict.ALLOWED, State.NEW, dst=OTHER, sport=40002, dport=22)
    dropped = flow(8, "node-2", Verdict.DROPPED, State.DROPPED, sport=40003)
    views = merge([NEW_SENDER, to_dev, dropped], NAMES)
    label = {40000: "allowed", 40002: "dev", 40003: "dropped"}
    assert {label[v.src.port] for v in views if keep(v)} == want


def test_empty_names_show_addresses() -> None:
    (v,) = merge([NEW_RECEIVER], Names())
    assert row(v)[:3] == (f"{FRONT}:40000", BACK, "")
