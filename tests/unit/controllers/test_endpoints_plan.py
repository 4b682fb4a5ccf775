"""Legacy Endpoints planning: subsets from pods, repacked, as tables.

Fixture addresses: pods 10.244.1.0/24; ClusterIP 10.96.0.10.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.wellknown import OVER_CAPACITY_ANNOTATION
from svcnet.controllers.endpoints.plan import endpoint_subsets, plan_endpoints


def svc(
    *,
    ports: list[dict[str, Any]] | None = None,
    cluster_ip: str = "10.96.0.10",
    publish: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-web",
            "labels": {"app": "web"},
        },
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": cluster_ip,
            "publishNotReadyAddresses": publish,
            "ports": ports
            if ports is not None
            else [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


def pod(
    name: str,
    ip: str,
    *,
    ready: bool = True,
    terminating: bool = False,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports or []}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def ips(subsets: list[dict[str, Any]], field: str = "addresses") -> list[str]:
    return [a["ip"] for s in subsets for a in s.get(field, ())]


def test_ready_and_not_ready_pods_share_one_subset() -> None:
    subsets = endpoint_subsets(svc(), [pod("a", "10.244.1.1"), pod("b", "10.244.1.2", ready=False)])
    assert len(subsets) == 1
    assert ips(subsets) == ["10.244.1.1"]
    assert ips(subsets, "notReadyAddresses") == ["10.244.1.2"]
    assert subsets[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subsets[0]["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "a",
        "uid": "u-a",
    }
    assert subsets[0]["addresses"][0]["nodeName"] == "node-1"


@pytest.mark.parametrize(
    ("publish", "expected"), [(False, []), (True, ["10.244.1.3"])], ids=["left-out", "published"]
)
def test_terminating_pods_only_with_publish_not_ready(publish: bool, expected: list[str]) -> None:
    subsets = endpoint_subsets(svc(publish=publish), [pod("t", "10.244.1.3", terminating=True)])
    assert ips(subsets) == expected


def test_pods_with_different_port_numbers_get_different_subsets() -> None:
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    subsets = endpoint_subsets(
        s,
        [
            pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.244.1.2", ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "10.244.1.3", ports=[{"name": "web", "containerPort": 8080}]),
        ],
    )
    assert [(ips([s_]), s_["ports"][0]["port"]) for s_ in subsets] == [
        (["10.244.1.1", "10.244.1.3"], 8080),
        (["10.244.1.2"], 9090),
    ]


def test_pod_without_the_named_port_is_left_out() -> None:
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    assert endpoint_subsets(s, [pod("a", "10.244.1.1")]) == []


def test_headless_service_without_ports_lists_addresses_without_ports() -> None:
    subsets = endpoint_subsets(svc(ports=[], cluster_ip="None"), [pod("a", "10.244.1.1")])
    assert subsets == [{"addresses": subsets[0]["addresses"]}]
    assert ips(subsets) == ["10.244.1.1"]


def test_multiple_ports_are_listed_together() -> None:
    s = svc(
        ports=[
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
        ]
    )
    subsets = endpoint_subsets(s, [pod("a", "10.244.1.1")])
    assert [p["name"] for p in subsets[0]["ports"]] == ["dns", "http"]


def test_unchanged_endpoints_need_no_write() -> None:
    s, pods = svc(), [pod("a", "10.244.1.1")]
    first = plan_endpoints(s, pods, None, "2026-01-01T00:00:00Z")
    assert first is not None
    current = {**first, "metadata": {**first["metadata"], "resourceVersion": "7"}}
    assert plan_endpoints(s, pods, current, "2026-01-01T00:00:09Z") is None


def test_change_is_an_update_with_the_resource_version() -> None:
    s = svc()
    first = plan_endpoints(s, [pod("a", "10.244.1.1")], None, None)
    assert first is not None
    current = {**first, "metadata": {**first["metadata"], "resourceVersion": "7"}}
    upd = plan_endpoints(s, [pod("a", "10.244.1.1", ready=False)], current, "2026-01-01T00:00:01Z")
    assert upd is not None and upd["metadata"]["resourceVersion"] == "7"
    assert ips(upd["subsets"], "notReadyAddresses") == ["10.244.1.1"]
    assert (
        upd["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
        == "2026-01-01T00:00:01Z"
    )


def test_labels_are_the_services_plus_headless() -> None:
    obj = plan_endpoints(svc(cluster_ip="None"), [], None, None)
    assert obj is not None
    assert obj["metadata"]["labels"] == {"app": "web", "service.kubernetes.io/headless": ""}


def test_more_than_1000_addresses_are_truncated_and_annotated() -> None:
    pods = [pod(f"p{i}", f"10.244.{i // 250}.{i % 250 + 1}") for i in range(1100)]
    obj = plan_endpoints(svc(), pods, None, None)
    assert obj is not None
    assert len(ips(obj["subsets"])) == 1000
    assert obj["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION] == "truncated"
