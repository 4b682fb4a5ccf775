"""Defaulting: each default upstream sets, as a table of (kind, input, path, value)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.defaults import default_object


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"kind": "Pod", "metadata": {"name": "p"}, "spec": base}


def _svc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": "web"}}
    base.update(spec)
    return {"kind": "Service", "metadata": {"name": "web"}, "spec": base}


def _deploy(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    base.update(spec)
    return {"kind": "Deployment", "metadata": {"name": "web"}, "spec": base}


PROBE = {"httpGet": {"port": 80}}

CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    # Pod
    ("pod restartPolicy", _pod(), "spec.restartPolicy", "Always"),
    ("pod dnsPolicy", _pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("pod terminationGracePeriodSeconds", _pod(), "spec.terminationGracePeriodSeconds", 30),
    ("pod schedulerName", _pod(), "spec.schedulerName", "default-scheduler"),
    ("pod securityContext", _pod(), "spec.securityContext", {}),
    ("pod enableServiceLinks", _pod(), "spec.enableServiceLinks", True),
    ("pod keeps restartPolicy", _pod(restartPolicy="Never"), "spec.restartPolicy", "Never"),
    ("pull policy tag", _pod(), "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    (
        "pull policy no tag",
        _pod(containers=[{"name": "c", "image": "nginx"}]),
        "spec.containers.0.imagePullPolicy",
        "Always",
    ),
    (
        "pull policy latest",
        _pod(containers=[{"name": "c", "image": "reg:5000/nginx:latest"}]),
        "spec.containers.0.imagePullPolicy",
        "Always",
    ),
    (
        "pull policy registry port",
        _pod(containers=[{"name": "c", "image": "reg:5000/nginx"}]),
        "spec.containers.0.imagePullPolicy",
        "Always",
    ),
    (
        "pull policy digest",
        _pod(containers=[{"name": "c", "image": "nginx@sha256:abc"}]),
        "spec.containers.0.imagePullPolicy",
        "IfNotPresent",
    ),
    (
        "termination message path",
        _pod(),
        "spec.containers.0.terminationMessagePath",
        "/dev/termination-log",
    ),
    ("termination message policy", _pod(), "spec.containers.0.terminationMessagePolicy", "File"),
    ("container resources", _pod(), "spec.containers.0.resources", {}),
    (
        "container port protocol",
        _pod(containers=[{"name": "c", "image": "x:1", "ports": [{"containerPort": 80}]}]),
        "spec.containers.0.ports.0.protocol",
        "TCP",
    ),
    (
        "hostNetwork hostPort",
        _pod(
            hostNetwork=True,
            containers=[{"name": "c", "image": "x:1", "ports": [{"containerPort": 80}]}],
        ),
        "spec.containers.0.ports.0.hostPort",
        80,
    ),
    (
        "probe timeout",
        _pod(containers=[{"name": "c", "image": "x:1", "livenessProbe": PROBE}]),
        "spec.containers.0.livenessProbe.timeoutSeconds",
        1,
    ),
    (
        "probe period",
        _pod(containers=[{"name": "c", "image": "x:1", "readinessProbe": PROBE}]),
        "spec.containers.0.readinessProbe.periodSeconds",
        10,
    ),
    (
        "probe success",
        _pod(containers=[{"name": "c", "image": "x:1", "startupProbe": PROBE}]),
        "spec.containers.0.startupProbe.successThreshold",
        1,
    ),
    (
        "probe failure",
        _pod(containers=[{"name": "c", "image": "x:1", "livenessProbe": PROBE}]),
        "spec.containers.0.livenessProbe.failureThreshold",
        3,
    ),
    (
        "httpGet scheme",
        _pod(containers=[{"name": "c", "image": "x:1", "livenessProbe": PROBE}]),
        "spec.containers.0.livenessProbe.httpGet.scheme",
        "HTTP",
    ),
    (
        "httpGet path",
        _pod(containers=[{"name": "c", "image": "x:1", "livenessProbe": PROBE}]),
        "spec.containers.0.livenessProbe.httpGet.path",
        "/",
    ),
    (
        "requests from limits",
        _pod(containers=[{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]),
        "spec.containers.0.resources.requests",
        {"cpu": "1"},
    ),
    (
        "init container defaults",
        _pod(initContainers=[{"name": "i", "image": "busybox"}]),
        "spec.initContainers.0.terminationMessagePolicy",
        "File",
    ),
    ("volume without source", _pod(volumes=[{"name": "v"}]), "spec.volumes.0.emptyDir", {}),
    (
        "configMap volume mode",
        _pod(volumes=[{"name": "v", "configMap": {"name": "c"}}]),
        "spec.volumes.0.configMap.defaultMode",
        420,
    ),
    (
        "fieldRef apiVersion",
        _pod(
            containers=[
                {
                    "name": "c",
                    "image": "x:1",
                    "env": [
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                    ],
                }
            ]
        ),
        "spec.containers.0.env.0.valueFrom.fieldRef.apiVersion",
        "v1",
    ),
    # Service
    ("service type", _svc(), "spec.type", "ClusterIP"),
    ("service sessionAffinity", _svc(), "spec.sessionAffinity", "None"),
    ("service port protocol", _svc(), "spec.ports.0.protocol", "TCP"),
    ("service targetPort", _svc(), "spec.ports.0.targetPort", 80),
    (
        "service keeps named targetPort",
        _svc(ports=[{"port": 80, "targetPort": "http"}]),
        "spec.ports.0.targetPort",
        "http",
    ),
    ("service ipFamilyPolicy", _svc(), "spec.ipFamilyPolicy", "SingleStack"),
    ("service ipFamilies", _svc(), "spec.ipFamilies", ["IPv4"]),
    ("headless with selector", _svc(clusterIP="None"), "spec.ipFamilyPolicy", "SingleStack"),
    (
        "headless without selector",
        {"kind": "Service", "spec": {"clusterIP": "None"}},
        "spec.ipFamilyPolicy",
        "RequireDualStack",
    ),
    ("service internalTrafficPolicy", _svc(), "spec.internalTrafficPolicy", "Cluster"),
    (
        "nodeport externalTrafficPolicy",
        _svc(type="NodePort"),
        "spec.externalTrafficPolicy",
        "Cluster",
    ),
    (
        "lb externalTrafficPolicy",
        _svc(type="LoadBalancer"),
        "spec.externalTrafficPolicy",
        "Cluster",
    ),
    (
        "lb allocateLoadBalancerNodePorts",
        _svc(type="LoadBalancer"),
        "spec.allocateLoadBalancerNodePorts",
        True,
    ),
    (
        "externalIPs externalTrafficPolicy",
        _svc(externalIPs=["1.2.3.4"]),
        "spec.externalTrafficPolicy",
        "Cluster",
    ),
    (
        "client ip timeout",
        _svc(sessionAffinity="ClientIP"),
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        10800,
    ),
    # apps
    ("deployment replicas", _deploy(), "spec.replicas", 1),
    (
        "deployment strategy",
        _deploy(),
        "spec.strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    ),
    (
        "deployment keeps recreate",
        _deploy(strategy={"type": "Recreate"}),
        "spec.strategy",
        {"type": "Recreate"},
    ),
    ("deployment revisionHistoryLimit", _deploy(), "spec.revisionHistoryLimit", 10),
    ("deployment progressDeadlineSeconds", _deploy(), "spec.progressDeadlineSeconds", 600),
    ("deployment keeps replicas 0", _deploy(replicas=0), "spec.replicas", 0),
    ("deployment template pod defaults", _deploy(), "spec.template.spec.dnsPolicy", "ClusterFirst"),
    ("replicaset replicas", {"kind": "ReplicaSet", "spec": {}}, "spec.replicas", 1),
    (
        "statefulset podManagementPolicy",
        {"kind": "StatefulSet", "spec": {}},
        "spec.podManagementPolicy",
        "OrderedReady",
    ),
    (
        "statefulset updateStrategy",
        {"kind": "StatefulSet", "spec": {}},
        "spec.updateStrategy",
        {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    ),
    (
        "statefulset revisionHistoryLimit",
        {"kind": "StatefulSet", "spec": {}},
        "spec.revisionHistoryLimit",
        10,
    ),
    (
        "statefulset pvc retention",
        {"kind": "StatefulSet", "spec": {}},
        "spec.persistentVolumeClaimRetentionPolicy",
        {"whenDeleted": "Retain", "whenScaled": "Retain"},
    ),
    # Namespace, Secret, EndpointSlice, Endpoints
    ("namespace phase", {"kind": "Namespace", "metadata": {"name": "a"}}, "status.phase", "Active"),
    (
        "namespace name label",
        {"kind": "Namespace", "metadata": {"name": "a"}},
        "metadata.labels",
        {"kubernetes.io/metadata.name": "a"},
    ),
    (
        "namespace name label overrides",
        {
            "kind": "Namespace",
            "metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "b"}},
        },
        "metadata.labels",
        {"kubernetes.io/metadata.name": "a"},
    ),
    ("secret type", {"kind": "Secret"}, "type", "Opaque"),
    (
        "secret stringData",
        {"kind": "Secret", "data": {"a": "eA=="}, "stringData": {"b": "hi"}},
        "data",
        {"a": "eA==", "b": "aGk="},
    ),
    (
        "secret stringData wins",
        {"kind": "Secret", "data": {"a": "eA=="}, "stringData": {"a": "y"}},
        "data",
        {"a": "eQ=="},
    ),
    (
        "endpointslice port protocol",
        {"kind": "EndpointSlice", "ports": [{"port": 80}]},
        "ports.0",
        {"port": 80, "name": "", "protocol": "TCP"},
    ),
    (
        "endpoints port protocol",
        {"kind": "Endpoints", "subsets": [{"ports": [{"port": 80}]}]},
        "subsets.0.ports.0.protocol",
        "TCP",
    ),
    # networking
    (
        "netpol ingress only",
        {"kind": "NetworkPolicy", "spec": {"podSelector": {}}},
        "spec.policyTypes",
        ["Ingress"],
    ),
    (
        "netpol with egress",
        {"kind": "NetworkPolicy", "spec": {"podSelector": {}, "egress": [{}]}},
        "spec.policyTypes",
        ["Ingress", "Egress"],
    ),
    (
        "netpol keeps policyTypes",
        {"kind": "NetworkPolicy", "spec": {"podSelector": {}, "policyTypes": ["Egress"]}},
        "spec.policyTypes",
        ["Egress"],
    ),
    (
        "netpol port protocol",
        {"kind": "NetworkPolicy", "spec": {"ingress": [{"ports": [{"port": 80}]}]}},
        "spec.ingress.0.ports.0.protocol",
        "TCP",
    ),
    # Gateway API
    (
        "httproute rules",
        {"kind": "HTTPRoute", "spec": {}},
        "spec.rules",
        [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}],
    ),
    (
        "httproute rule matches",
        {"kind": "HTTPRoute", "spec": {"rules": [{}]}},
        "spec.rules.0.matches",
        [{"path": {"type": "PathPrefix", "value": "/"}}],
    ),
    (
        "httproute backendRef",
        {"kind": "HTTPRoute", "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}},
        "spec.rules.0.backendRefs.0",
        {"name": "web", "port": 80, "group": "", "kind": "Service", "weight": 1},
    ),
    (
        "httproute parentRef",
        {"kind": "HTTPRoute", "spec": {"parentRefs": [{"name": "gw"}]}},
        "spec.parentRefs.0",
        {"name": "gw", "group": "gateway.networking.k8s.io", "kind": "Gateway"},
    ),
    (
        "httproute header match type",
        {
            "kind": "HTTPRoute",
            "spec": {"rules": [{"matches": [{"headers": [{"name": "a", "value": "b"}]}]}]},
        },
        "spec.rules.0.matches.0.headers.0.type",
        "Exact",
    ),
    (
        "gateway allowedRoutes",
        {
            "kind": "Gateway",
            "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        },
        "spec.listeners.0.allowedRoutes",
        {"namespaces": {"from": "Same"}},
    ),
]


@pytest.mark.parametrize(
    ("obj", "path", "value"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_default(obj: dict[str, Any], path: str, value: Any) -> None:
    obj = copy.deepcopy(obj)
    default_object(obj)
    assert _get(obj, path) == value


@pytest.mark.parametrize(
    ("obj", "absent"),
    [
        (_svc(), "externalTrafficPolicy"),
        (_svc(), "allocateLoadBalancerNodePorts"),
        (_svc(), "sessionAffinityConfig"),
        (_svc(type="ExternalName", externalName="a.b"), "ipFamilies"),
        (_svc(type="ExternalName", externalName="a.b"), "internalTrafficPolicy"),
        (_deploy(strategy={"type": "Recreate"}), "strategy.rollingUpdate"),
        (_deploy(), "template.spec.enableServiceLinks"),
    ],
)
def test_default_leaves_field_unset(obj: dict[str, Any], absent: str) -> None:
    obj = copy.deepcopy(obj)
    default_object(obj)
    with pytest.raises(KeyError):
        _get(obj["spec"], absent)


def test_secret_string_data_is_not_stored() -> None:
    secret: dict[str, Any] = {"kind": "Secret", "stringData": {"a": "b"}}
    default_object(secret)
    assert "stringData" not in secret


@pytest.mark.parametrize("kind", ["Pod", "Service", "Deployment", "NetworkPolicy", "HTTPRoute"])
def test_defaulting_twice_changes_nothing(kind: str) -> None:
    obj = {c[1]["kind"]: c[1] for c in CASES}[kind]
    once = copy.deepcopy(obj)
    default_object(once)
    twice = copy.deepcopy(once)
    default_object(twice)
    assert twice == once
