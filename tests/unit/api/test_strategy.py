"""Strategies: status and generation handling around creates, updates and status writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.errors import MethodNotAllowed
from svcnet.api.registry import REGISTRY
from svcnet.api.strategy import Strategy, pod_qos_class, strategy_for, strategy_for_kind

POD_SPEC = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
WORKLOAD_SPEC = {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}

OBJECTS: dict[str, dict[str, Any]] = {
    "Pod": {"apiVersion": "v1", "kind": "Pod", "spec": POD_SPEC},
    "Service": {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}},
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "spec": {}},
    "Deployment": {"apiVersion": "apps/v1", "kind": "Deployment", "spec": WORKLOAD_SPEC},
    "ReplicaSet": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": WORKLOAD_SPEC},
    "StatefulSet": {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": WORKLOAD_SPEC},
    "Ingress": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "spec": {"defaultBackend": {"service": {"name": "w", "port": {"number": 80}}}},
    },
    "NetworkPolicy": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "spec": {"podSelector": {}},
    },
    "Gateway": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "spec": {
            "gatewayClassName": "c",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    },
    "HTTPRoute": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "spec": {}},
    "ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}},
    "EndpointSlice": {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "endpoints": [],
    },
}


def _new(kind: str, status: Any = None) -> dict[str, Any]:
    obj = copy.deepcopy(OBJECTS[kind])
    scope_ns = REGISTRY.by_kind(obj["apiVersion"], kind)
    assert scope_ns is not None
    obj["metadata"] = {"name": "x", **({"namespace": "default"} if scope_ns.namespaced else {})}
    if status is not None:
        obj["status"] = status
    return obj


def _strategy(kind: str) -> Strategy:
    return strategy_for_kind(OBJECTS[kind]["apiVersion"], kind)


def _created(kind: str) -> dict[str, Any]:
    obj = _new(kind, status={"phase": "Bogus", "replicas": 9})
    s = _strategy(kind)
    s.default(obj)
    s.prepare_for_create(obj)
    obj["metadata"].update(uid="u1", resourceVersion="1", creationTimestamp="2024-01-01T00:00:00Z")
    return obj


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("Pod", {"phase": "Pending", "qosClass": "BestEffort"}),
        ("Service", {"loadBalancer": {}}),
        ("Namespace", {"phase": "Active"}),
        ("Deployment", {}),
        ("ReplicaSet", {"replicas": 0}),
        ("StatefulSet", {"replicas": 0, "availableReplicas": 0}),
        ("Ingress", {"loadBalancer": {}}),
        (
            "Gateway",
            {
                "conditions": [
                    {
                        "type": "Accepted",
                        "status": "Unknown",
                        "reason": "Pending",
                        "message": "Waiting for controller",
                        "lastTransitionTime": "1970-01-01T00:00:00Z",
                    },
                    {
                        "type": "Programmed",
                        "status": "Unknown",
                        "reason": "Pending",
                        "message": "Waiting for controller",
                        "lastTransitionTime": "1970-01-01T00:00:00Z",
                    },
                ]
            },
        ),
        ("HTTPRoute", None),
    ],
)
def test_create_resets_status(kind: str, status: dict[str, Any] | None) -> None:
    assert _created(kind).get("status") == status


@pytest.mark.parametrize(
    ("kind", "generation"),
    [
        ("Deployment", 1),
        ("ReplicaSet", 1),
        ("StatefulSet", 1),
        ("Ingress", 1),
        ("NetworkPolicy", 1),
        ("Gateway", 1),
        ("HTTPRoute", 1),
        ("EndpointSlice", 1),
        ("Pod", None),
        ("Service", None),
        ("ConfigMap", None),
        ("Namespace", None),
    ],
)
def test_create_sets_generation_for_kinds_that_track_it(kind: str, generation: int | None) -> None:
    assert _created(kind)["metadata"].get("generation") == generation


def _update(kind: str, mutate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = _created(kind)
    old["status"] = {"observedGeneration": 1, "phase": "Running"}
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Hacked"}
    mutate(new)
    s = _strategy(kind)
    s.default(new)
    s.prepare_for_update(new, old)
    return new, old


@pytest.mark.parametrize(
    "kind", ["Pod", "Service", "Deployment", "Ingress", "Namespace", "Gateway"]
)
def test_update_keeps_old_status(kind: str) -> None:
    new, old = _update(kind, lambda o: None)
    assert new["status"] == old["status"]


def _set_replicas(obj: dict[str, Any]) -> None:
    obj["spec"]["replicas"] = 5


def _set_label(obj: dict[str, Any]) -> None:
    obj["metadata"]["labels"] = {"a": "b"}


def _set_annotation(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"] = {"a": "b"}


@pytest.mark.parametrize(
    ("kind", "mutate", "generation"),
    [
        ("Deployment", _set_replicas, 2),
        ("Deployment", _set_label, 1),
        ("Deployment", _set_annotation, 2),  # annotations are copied to ReplicaSets
        ("ReplicaSet", _set_replicas, 2),
        ("ReplicaSet", _set_annotation, 1),
        ("StatefulSet", _set_replicas, 2),
        ("NetworkPolicy", lambda o: o["spec"].update(policyTypes=["Egress"]), 2),
        ("NetworkPolicy", _set_label, 1),
        ("EndpointSlice", lambda o: o.update(endpoints=[{"addresses": ["10.0.0.1"]}]), 2),
        ("Gateway", lambda o: o["spec"].update(gatewayClassName="d"), 2),
        ("Pod", lambda o: o["spec"]["containers"][0].update(image="nginx:2"), None),
    ],
)
def test_update_bumps_generation_when_spec_changes(
    kind: str, mutate: Any, generation: int | None
) -> None:
    new, _ = _update(kind, mutate)
    assert new["metadata"].get("generation") == generation


def test_status_update_keeps_spec_and_metadata_but_takes_status() -> None:
    old = _created("Deployment")
    old["metadata"]["labels"] = {"app": "web"}
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 10
    new["metadata"]["labels"] = {"app": "hacked"}
    new["status"] = {"replicas": 1, "readyReplicas": 1}
    s = _strategy("Deployment")
    s.prepare_for_status_update(new, old)
    assert new["spec"] == old["spec"]
    assert new["metadata"]["labels"] == {"app": "web"}
    assert new["status"] == {"replicas": 1, "readyReplicas": 1}
    assert s.validate_status_update(new, old) == []


def test_status_update_rejects_negative_counts() -> None:
    old = _created("Deployment")
    new = copy.deepcopy(old)
    new["status"] = {"replicas": -1}
    s = _strategy("Deployment")
    s.prepare_for_status_update(new, old)
    assert [str(e) for e in s.validate_status_update(new, old)] == [
        "status.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_namespace_create_requires_kubernetes_finalizer() -> None:
    ns = _new("Namespace")
    ns["spec"] = {"finalizers": ["example.com/x"]}
    s = _strategy("Namespace")
    s.default(ns)
    s.prepare_for_create(ns)
    assert ns["spec"]["finalizers"] == ["example.com/x", "kubernetes"]
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x"}


def test_namespace_update_cannot_change_finalizers() -> None:
    new, old = _update("Namespace", lambda o: o["spec"].update(finalizers=[]))
    assert new["spec"]["finalizers"] == old["spec"]["finalizers"] == ["kubernetes"]


def test_namespace_finalize_changes_only_finalizers() -> None:
    old = _created("Namespace")
    new = copy.deepcopy(old)
    new["spec"]["finalizers"] = []
    new["metadata"]["labels"] = {"x": "y"}
    s = _strategy("Namespace")
    assert hasattr(s, "prepare_for_finalize")
    s.prepare_for_finalize(new, old)
    assert new["spec"]["finalizers"] == []
    assert new["metadata"] == old["metadata"]


def test_pod_create_adds_what_admission_plugins_add() -> None:
    pod = _created("Pod")
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    assert spec["serviceAccount"] == "default"
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 20,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 20,
        },
    ]


def test_pod_create_keeps_a_tolerate_everything_toleration_alone() -> None:
    pod = _new("Pod")
    pod["spec"]["tolerations"] = [{"operator": "Exists"}]
    s = _strategy("Pod")
    s.default(pod)
    s.prepare_for_create(pod)
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]


def _containers(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    }


@pytest.mark.parametrize(
    ("pod", "qos"),
    [
        (_containers({}), "BestEffort"),
        (_containers({"requests": {"cpu": "100m"}}), "Burstable"),
        (_containers({"limits": {"cpu": "1", "memory": "1Gi"}}), "Guaranteed"),
        (
            _containers(
                {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}
            ),
            "Guaranteed",
        ),
        (
            _containers({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}),
            "Burstable",
        ),
        (_containers({"limits": {"cpu": "1", "memory": "1Gi"}}, {}), "Burstable"),
    ],
)
def test_pod_qos_class(pod: dict[str, Any], qos: str) -> None:
    assert pod_qos_class(pod) == qos


def test_service_update_keeps_allocated_node_ports_when_omitted() -> None:
    s = _strategy("Service")
    old = _new("Service")
    old["spec"].update(type="NodePort", ports=[{"name": "http", "port": 80}])
    s.default(old)
    s.prepare_for_create(old)
    old["spec"].update(clusterIP="10.96.0.9", clusterIPs=["10.96.0.9"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = _new("Service")
    new["spec"].update(type="NodePort", ports=[{"name": "http", "port": 80}])
    s.default(new)
    s.prepare_for_update(new, old)
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert new["spec"]["clusterIPs"] == ["10.96.0.9"]
    assert new["spec"]["clusterIP"] == "10.96.0.9"


def test_service_create_fills_cluster_ips_from_cluster_ip() -> None:
    s = _strategy("Service")
    svc = _new("Service")
    svc["spec"]["clusterIP"] = "None"
    s.default(svc)
    s.prepare_for_create(svc)
    assert svc["spec"]["clusterIPs"] == ["None"]


@pytest.mark.parametrize("rt", REGISTRY.resources, ids=lambda rt: rt.kind)
def test_every_registered_kind_has_a_strategy(rt: Any) -> None:
    s = strategy_for(rt)
    assert s.resource is rt
    assert s is strategy_for(rt)
    assert s.has_status == ("status" in rt.subresources)


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [("Service", 'Service "x" is invalid: '), ("Deployment", 'Deployment.apps "x" is invalid: ')],
)
def test_invalid_error_names_kind_and_group(kind: str, prefix: str) -> None:
    s = _strategy(kind)
    obj = _new(kind)
    s.default(obj)
    obj["spec"]["replicas" if kind == "Deployment" else "ports"] = (
        -1 if kind == "Deployment" else []
    )
    err = s.invalid(obj, s.validate(obj))
    assert err.code == 422
    assert err.message.startswith(prefix)
    assert err.details is not None
    assert err.details["causes"]


# (kind, subresource, what the update may change): each kind's writable subresources.
SUBRESOURCE_UPDATES = [
    ("Namespace", "finalize", "spec.finalizers only"),
    ("Pod", "binding", "whatever the binding set"),
    ("Service", "status", "status only"),
    ("Pod", "", "spec, not status"),
]


@pytest.mark.parametrize(("kind", "subresource", "changes"), SUBRESOURCE_UPDATES)
def test_prepare_update_of_a_subresource(kind: str, subresource: str, changes: str) -> None:
    old = _created(kind)
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"x": "y"}
    new["status"] = {"phase": "Changed"}
    if "finalizers" in old["spec"]:
        new["spec"]["finalizers"] = []
    errors = _strategy(kind).prepare_update(new, old, subresource)
    assert errors == []
    kept_labels = new["metadata"].get("labels") == old["metadata"].get("labels")
    status_changed = new.get("status") == {"phase": "Changed"}
    if "finalizers" in old["spec"]:
        assert (new["spec"]["finalizers"] == []) is (subresource == "finalize")
    assert (kept_labels, status_changed) == {
        "spec.finalizers only": (True, False),
        "whatever the binding set": (False, True),
        "status only": (True, True),
        "spec, not status": (False, False),
    }[changes]


@pytest.mark.parametrize(("kind", "subresource"), [("Service", "finalize"), ("Pod", "eviction")])
def test_prepare_update_of_a_subresource_the_kind_cannot_update_is_405(
    kind: str, subresource: str
) -> None:
    old = _created(kind)
    with pytest.raises(MethodNotAllowed):
        _strategy(kind).prepare_update(copy.deepcopy(old), old, subresource)


@pytest.mark.parametrize(
    ("api_version", "kind", "creates"),
    [
        ("v1", "Endpoints", True),
        ("v1", "Event", True),
        ("coordination.k8s.io/v1", "Lease", True),
        ("v1", "ConfigMap", False),
        ("v1", "Service", False),
    ],
)
def test_which_kinds_a_put_may_create(api_version: str, kind: str, creates: bool) -> None:
    assert strategy_for_kind(api_version, kind).allow_create_on_update is creates
