"""EndpointSlice planning: endpoints from pods, and the create/update/delete lists, as tables.

Fixture addresses: pods 10.244.1.0/24 (node-1) and 10.244.2.0/24 (node-2); ClusterIP 10.96.0.0/16.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.wellknown import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION
from svcnet.controllers.endpointslice.plan import (
    CONTROLLER_NAME,
    desired_endpoints,
    find_port,
    plan_slices,
)

T0 = "2026-01-01T00:00:00Z"


def svc(
    name: str = "web",
    *,
    ports: list[dict[str, Any]] | None = None,
    cluster_ip: str = "10.96.0.10",
    publish_not_ready: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "creationTimestamp": T0,
            "labels": labels or {},
        },
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": cluster_ip,
            "ports": ports
            if ports is not None
            else [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "publishNotReadyAddresses": publish_not_ready,
        },
    }


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    node: str = "node-1",
    terminating: bool = False,
    phase: str = "Running",
    ports: list[dict[str, Any]] | None = None,
    hostname: str = "",
    subdomain: str = "",
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "labels": {"app": "web"},
            "creationTimestamp": T0,
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-01T00:00:05Z",
                }
            ],
        },
    }
    if ip:
        p["status"]["podIP"] = ip
        p["status"]["podIPs"] = [{"ip": ip}]
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    if hostname:
        p["spec"]["hostname"] = hostname
    if subdomain:
        p["spec"]["subdomain"] = subdomain
    return p


def existing(plan_create: dict[str, Any], name: str, rv: str = "5") -> dict[str, Any]:
    """A slice as the API would return it after creating it."""
    s = dict(plan_create)
    s["metadata"] = {**plan_create["metadata"], "name": name, "resourceVersion": rv}
    s["metadata"].pop("generateName", None)
    return s


def conditions(slices: list[dict[str, Any]]) -> dict[str, dict[str, bool]]:
    return {e["targetRef"]["name"]: e["conditions"] for s in slices for e in s["endpoints"]}


def test_three_ready_pods_make_one_slice_with_three_ready_endpoints() -> None:
    s = svc()
    pods = [pod(f"web-{i}", f"10.244.1.{i + 10}") for i in range(3)]
    plan = plan_slices(s, desired_endpoints(s, pods), [])
    assert len(plan.create) == 1 and not plan.update and not plan.delete
    sl = plan.create[0]
    assert sl["metadata"]["generateName"] == "web-"
    assert sl["metadata"]["labels"] == {
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
    }
    assert sl["metadata"]["ownerReferences"][0]["uid"] == "uid-web"
    assert sl["metadata"]["ownerReferences"][0]["controller"] is True
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert sorted(a for e in sl["endpoints"] for a in e["addresses"]) == [
        "10.244.1.10",
        "10.244.1.11",
        "10.244.1.12",
    ]
    assert all(
        e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        for e in sl["endpoints"]
    )
    assert sl["endpoints"][0]["nodeName"] == "node-1"
    assert sl["endpoints"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "web-0",
        "uid": "uid-web-0",
    }
    assert sl["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2026-01-01T00:00:05Z"


@pytest.mark.parametrize(
    ("ready", "terminating", "publish", "expected"),
    [
        (True, False, False, {"ready": True, "serving": True, "terminating": False}),
        (False, False, False, {"ready": False, "serving": False, "terminating": False}),
        (True, True, False, {"ready": False, "serving": True, "terminating": True}),
        (False, True, False, {"ready": False, "serving": False, "terminating": True}),
        (False, False, True, {"ready": True, "serving": False, "terminating": False}),
        (True, True, True, {"ready": True, "serving": True, "terminating": True}),
    ],
    ids=[
        "ready",
        "not-ready",
        "terminating-serving",
        "terminating-not-serving",
        "publish-not-ready",
        "publish-not-ready-terminating",
    ],
)
def test_endpoint_conditions(
    ready: bool, terminating: bool, publish: bool, expected: dict[str, bool]
) -> None:
    s = svc(publish_not_ready=publish)
    plan = plan_slices(
        s, desired_endpoints(s, [pod("p", "10.244.1.5", ready=ready, terminating=terminating)]), []
    )
    assert conditions(plan.create) == {"p": expected}


@pytest.mark.parametrize(
    "bad",
    [
        pod("noip", None),
        pod("done", "10.244.1.9", phase="Succeeded"),
        pod("failed", "10.244.1.9", phase="Failed"),
    ],
    ids=["no-ip", "succeeded", "failed"],
)
def test_pods_without_ip_or_finished_are_skipped(bad: dict[str, Any]) -> None:
    s = svc()
    plan = plan_slices(s, desired_endpoints(s, [bad, pod("ok", "10.244.1.5")]), [])
    assert list(conditions(plan.create)) == ["ok"]


def test_named_target_port_resolves_per_pod_into_separate_slices() -> None:
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [
        pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}]),
        pod("b", "10.244.1.2", ports=[{"name": "web", "containerPort": 9090}]),
    ]
    plan = plan_slices(s, desired_endpoints(s, pods), [])
    by_port = {
        sl["ports"][0]["port"]: [e["targetRef"]["name"] for e in sl["endpoints"]]
        for sl in plan.create
    }
    assert by_port == {8080: ["a"], 9090: ["b"]}


def test_named_target_port_no_pod_defines_gives_portless_slice_and_reports_it() -> None:
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "nope", "protocol": "TCP"}])
    desired = desired_endpoints(
        s, [pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 80}])]
    )
    plan = plan_slices(s, desired, [])
    assert [sl["ports"] for sl in plan.create] == [[]]
    assert desired.unresolved_ports == ("http",)


def test_named_port_requires_same_protocol() -> None:
    sp = {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"}
    assert (
        find_port(pod("a", "10.244.1.1", ports=[{"name": "dns", "containerPort": 53}]), sp) is None
    )
    assert (
        find_port(
            pod(
                "a", "10.244.1.1", ports=[{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]
            ),
            sp,
        )
        == 5353
    )


def test_app_protocol_is_copied() -> None:
    s = svc(
        ports=[
            {
                "name": "h2",
                "port": 80,
                "targetPort": 80,
                "protocol": "TCP",
                "appProtocol": "kubernetes.io/h2c",
            }
        ]
    )
    plan = plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), [])
    assert plan.create[0]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"


@pytest.mark.parametrize(
    ("hostname", "subdomain", "expected"),
    [
        ("web-0", "web", "web-0"),
        ("web-0", "other", None),
        ("", "web", None),
    ],
    ids=["subdomain-matches", "other-subdomain", "no-hostname"],
)
def test_hostname_only_when_subdomain_names_the_service(
    hostname: str, subdomain: str, expected: str | None
) -> None:
    s = svc(cluster_ip="None")
    plan = plan_slices(
        s,
        desired_endpoints(s, [pod("web-0", "10.244.1.1", hostname=hostname, subdomain=subdomain)]),
        [],
    )
    assert plan.create[0]["endpoints"][0].get("hostname") == expected


def test_headless_service_slices_get_the_headless_label() -> None:
    s = svc(cluster_ip="None")
    plan = plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), [])
    assert plan.create[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_zone_comes_from_the_node() -> None:
    s = svc()
    plan = plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")], {"node-1": "z1"}), [])
    assert plan.create[0]["endpoints"][0]["zone"] == "z1"


def test_more_than_100_endpoints_split_into_slices_of_at_most_100() -> None:
    s = svc()
    pods = [pod(f"p{i}", f"10.244.{1 + i // 250}.{i % 250 + 1}") for i in range(250)]
    plan = plan_slices(s, desired_endpoints(s, pods), [])
    assert sorted(len(sl["endpoints"]) for sl in plan.create) == [50, 100, 100]


def test_no_endpoints_gives_a_placeholder_slice() -> None:
    s = svc()
    plan = plan_slices(s, desired_endpoints(s, []), [])
    assert [(sl["endpoints"], sl["ports"]) for sl in plan.create] == [([], [])]


def test_existing_placeholder_is_kept_as_is() -> None:
    s = svc()
    placeholder = existing(plan_slices(s, desired_endpoints(s, []), []).create[0], "web-abc")
    assert plan_slices(s, desired_endpoints(s, []), [placeholder]).empty


def test_unchanged_slice_needs_no_write() -> None:
    s = svc()
    pods = [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")]
    first = existing(plan_slices(s, desired_endpoints(s, pods), []).create[0], "web-abc")
    assert plan_slices(s, desired_endpoints(s, pods), [first]).empty


def test_readiness_change_updates_the_slice_in_place() -> None:
    s = svc()
    first = existing(
        plan_slices(
            s, desired_endpoints(s, [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")]), []
        ).create[0],
        "web-abc",
    )
    plan = plan_slices(
        s,
        desired_endpoints(s, [pod("a", "10.244.1.1", ready=False), pod("b", "10.244.1.2")]),
        [first],
    )
    assert not plan.create and not plan.delete
    assert [u["metadata"]["name"] for u in plan.update] == ["web-abc"]
    assert plan.update[0]["metadata"]["resourceVersion"] == "5"
    assert conditions(plan.update)["a"]["ready"] is False


def test_new_endpoint_fills_an_existing_slice_with_room() -> None:
    s = svc()
    first = existing(
        plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), []).create[0], "web-abc"
    )
    plan = plan_slices(
        s, desired_endpoints(s, [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")]), [first]
    )
    assert not plan.create and [u["metadata"]["name"] for u in plan.update] == ["web-abc"]
    assert sorted(conditions(plan.update)) == ["a", "b"]


def test_removed_endpoint_shrinks_the_slice() -> None:
    s = svc()
    first = existing(
        plan_slices(
            s, desired_endpoints(s, [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")]), []
        ).create[0],
        "web-abc",
    )
    plan = plan_slices(s, desired_endpoints(s, [pod("b", "10.244.1.2")]), [first])
    assert sorted(conditions(plan.update)) == ["b"] and not plan.create and not plan.delete


def test_emptied_slice_is_reused_instead_of_delete_plus_create() -> None:
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    old = existing(
        plan_slices(
            s,
            desired_endpoints(
                s, [pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}])]
            ),
            [],
        ).create[0],
        "web-abc",
    )
    # The pod is replaced by one serving on another port number: a different port key.
    plan = plan_slices(
        s,
        desired_endpoints(
            s, [pod("b", "10.244.1.2", ports=[{"name": "web", "containerPort": 9090}])]
        ),
        [old],
    )
    assert not plan.create and not plan.delete
    assert plan.update[0]["metadata"]["name"] == "web-abc"
    assert plan.update[0]["ports"][0]["port"] == 9090


def test_slices_not_managed_by_us_are_never_touched() -> None:
    s = svc()
    foreign = {
        "metadata": {
            "name": "custom",
            "namespace": "default",
            "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: "someone-else"},
        },
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [],
    }
    plan = plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), [foreign])
    assert all(d["metadata"]["name"] != "custom" for d in (*plan.update, *plan.delete))


def test_service_label_change_updates_slice_labels() -> None:
    s = svc()
    first = existing(
        plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), []).create[0], "web-abc"
    )
    s2 = svc(labels={"tier": "front"})
    plan = plan_slices(s2, desired_endpoints(s2, [pod("a", "10.244.1.1")]), [first])
    assert plan.update[0]["metadata"]["labels"]["tier"] == "front"


def test_slice_of_a_family_the_service_no_longer_has_is_deleted() -> None:
    s = svc()
    v6 = {
        "metadata": {
            "name": "web-v6",
            "namespace": "default",
            "resourceVersion": "3",
            "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
        },
        "addressType": "IPv6",
        "endpoints": [],
        "ports": [],
    }
    plan = plan_slices(s, desired_endpoints(s, [pod("a", "10.244.1.1")]), [v6])
    # Reused for the IPv4 slice would change its addressType (immutable): a delete and a create.
    assert [d["metadata"]["name"] for d in plan.delete] == ["web-v6"]
    assert len(plan.create) == 1
