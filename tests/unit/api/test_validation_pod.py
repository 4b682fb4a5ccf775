"""Pod validation and update rules through the strategy, with upstream's texts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.strategy import strategy_for_kind

STRATEGY = strategy_for_kind("v1", "Pod")


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": base,
    }


def _c(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.25", **fields}


def _errors(pod: dict[str, Any]) -> list[str]:
    pod = copy.deepcopy(pod)
    STRATEGY.default(pod)
    STRATEGY.prepare_for_create(pod)
    return [str(e) for e in STRATEGY.validate(pod)]


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("valid", _pod(), []),
    (
        "valid with ports and probes",
        _pod(
            containers=[
                _c(
                    ports=[{"name": "http", "containerPort": 80}],
                    livenessProbe={"httpGet": {"port": "http"}},
                    readinessProbe={"tcpSocket": {"port": 80}},
                )
            ]
        ),
        [],
    ),
    ("no containers", _pod(containers=[]), ["spec.containers: Required value"]),
    (
        "container name missing",
        _pod(containers=[{"image": "nginx"}]),
        ["spec.containers[0].name: Required value"],
    ),
    (
        "container name not a label",
        _pod(containers=[_c(name="Web")]),
        [
            'spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist '
            "of lower case alphanumeric characters or '-', and must start and end with an "
            "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ],
    ),
    (
        "duplicate container names",
        _pod(containers=[_c(), _c()]),
        ['spec.containers[1].name: Duplicate value: "web"'],
    ),
    (
        "init and app container share a name",
        _pod(initContainers=[_c()]),
        ['spec.containers[0].name: Duplicate value: "web"'],
    ),
    (
        "image missing",
        _pod(containers=[{"name": "web"}]),
        ["spec.containers[0].image: Required value"],
    ),
    (
        "image whitespace",
        _pod(containers=[_c(image=" nginx")]),
        [
            'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace'
        ],
    ),
    (
        "container port zero",
        _pod(containers=[_c(ports=[{"containerPort": 0}])]),
        ["spec.containers[0].ports[0].containerPort: Required value"],
    ),
    (
        "container port too big",
        _pod(containers=[_c(ports=[{"containerPort": 70000}])]),
        [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
            "65535, inclusive"
        ],
    ),
    (
        "container port protocol",
        _pod(containers=[_c(ports=[{"containerPort": 80, "protocol": "ICMP"}])]),
        [
            'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
            '"SCTP", "TCP", "UDP"'
        ],
    ),
    (
        "duplicate container port names",
        _pod(
            containers=[
                _c(
                    ports=[
                        {"name": "http", "containerPort": 80},
                        {"name": "http", "containerPort": 81},
                    ]
                )
            ]
        ),
        ['spec.containers[0].ports[1].name: Duplicate value: "http"'],
    ),
    (
        "container port name too long",
        _pod(containers=[_c(ports=[{"name": "a-very-long-port-name", "containerPort": 80}])]),
        [
            'spec.containers[0].ports[0].name: Invalid value: "a-very-long-port-name": must be no more '
            "than 15 characters"
        ],
    ),
    (
        "restartPolicy",
        _pod(restartPolicy="Sometimes"),
        [
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", '
            '"OnFailure"'
        ],
    ),
    (
        "dnsPolicy",
        _pod(dnsPolicy="Cluster"),
        [
            'spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirst", '
            '"ClusterFirstWithHostNet", "Default", "None"'
        ],
    ),
    (
        "probe without handler",
        _pod(containers=[_c(livenessProbe={"periodSeconds": 5})]),
        ["spec.containers[0].livenessProbe: Required value: must specify a handler type"],
    ),
    (
        "liveness successThreshold",
        _pod(containers=[_c(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2})]),
        ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
    ),
    (
        "negative probe period",
        _pod(containers=[_c(readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": -1})]),
        [
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than "
            "or equal to 0"
        ],
    ),
    (
        "mount of unknown volume",
        _pod(containers=[_c(volumeMounts=[{"name": "data", "mountPath": "/d"}])]),
        ['spec.containers[0].volumeMounts[0].name: Not found: "data"'],
    ),
    (
        "subPath absolute or climbing",
        _pod(
            volumes=[{"name": "data", "emptyDir": {}}],
            containers=[
                _c(
                    volumeMounts=[
                        {"name": "data", "mountPath": "/a", "subPath": "/etc"},
                        {"name": "data", "mountPath": "/b", "subPath": "x/../../y"},
                        {"name": "data", "mountPath": "/c", "subPath": "ok/..data"},
                    ]
                )
            ],
        ),
        [
            'spec.containers[0].volumeMounts[0].subPath: Invalid value: "/etc": '
            "must be a relative path",
            'spec.containers[0].volumeMounts[1].subPath: Invalid value: "x/../../y": '
            "must not contain '..'",
        ],
    ),
    (
        "duplicate volumes",
        _pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
        ['spec.volumes[1].name: Duplicate value: "v"'],
    ),
    (
        "negative grace period",
        _pod(terminationGracePeriodSeconds=-5),
        [
            "spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0"
        ],
    ),
    (
        "requests above limits",
        _pod(containers=[_c(resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}})]),
        [
            'spec.containers[0].resources.requests: Invalid value: "1": must be less than or '
            "equal to cpu limit of 500m"
        ],
    ),
    (
        "requests equal to limits in other units",
        _pod(
            containers=[
                _c(resources={"limits": {"memory": "1Gi"}, "requests": {"memory": "1024Mi"}})
            ]
        ),
        [],
    ),
    (
        "hugepages requests must equal limits",
        _pod(
            containers=[
                _c(
                    resources={
                        "limits": {"hugepages-2Mi": "4Mi"},
                        "requests": {"hugepages-2Mi": "2Mi"},
                    }
                )
            ]
        ),
        [
            'spec.containers[0].resources.requests: Invalid value: "2Mi": must be equal to '
            "hugepages-2Mi limit of 4Mi"
        ],
    ),
    (
        "unknown resource",
        _pod(containers=[_c(resources={"limits": {"gpu": "1"}})]),
        [
            'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
            "resource for containers",
            # requests were defaulted from limits, so they carry the same name
            'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a '
            "standard resource for containers",
        ],
    ),
    (
        "negative resource",
        _pod(containers=[_c(resources={"requests": {"cpu": "-1"}})]),
        [
            'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater '
            "than or equal to 0"
        ],
    ),
    (
        "duplicate host ports",
        _pod(
            containers=[
                _c(ports=[{"containerPort": 80, "hostPort": 8080}]),
                _c(name="side", ports=[{"containerPort": 81, "hostPort": 8080}]),
            ]
        ),
        ['spec.containers[1].ports[0].hostPort: Duplicate value: "/TCP/8080"'],
    ),
    (
        "hostNetwork hostPort mismatch",
        _pod(hostNetwork=True, containers=[_c(ports=[{"containerPort": 80, "hostPort": 8080}])]),
        [
            "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when "
            "`hostNetwork` is true"
        ],
    ),
]


@pytest.mark.parametrize(("pod", "errors"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pod_validation(pod: dict[str, Any], errors: list[str]) -> None:
    assert _errors(pod) == errors


def _stored(**spec: Any) -> dict[str, Any]:
    pod = _pod(**spec)
    STRATEGY.default(pod)
    STRATEGY.prepare_for_create(pod)
    pod["metadata"].update(uid="u1", resourceVersion="1", creationTimestamp="2024-01-01T00:00:00Z")
    return pod


FORBIDDEN_PREFIX = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)\n"
)


@pytest.mark.parametrize(
    ("name", "mutate", "allowed"),
    [
        ("same spec", lambda s: None, True),
        ("image", lambda s: s["containers"][0].update(image="nginx:1.26"), True),
        ("activeDeadlineSeconds", lambda s: s.update(activeDeadlineSeconds=30), True),
        (
            "added toleration",
            lambda s: s["tolerations"].append(
                {"key": "a", "operator": "Exists", "effect": "NoSchedule"}
            ),
            True,
        ),
        ("labels only", lambda s: None, True),
        (
            "container port",
            lambda s: s["containers"][0].update(ports=[{"containerPort": 81}]),
            False,
        ),
        ("nodeName", lambda s: s.update(nodeName="node-2"), False),
        (
            "removed toleration",
            lambda s: s.update(tolerations=[]),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its "
            "tolerationSeconds",
        ),
        ("restartPolicy", lambda s: s.update(restartPolicy="Never"), False),
    ],
)
def test_pod_update(name: str, mutate: Any, allowed: bool | str) -> None:
    old = _stored()
    new = copy.deepcopy(old)
    mutate(new["spec"])
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    errors = [str(e) for e in STRATEGY.validate_update(new, old)]
    if allowed is True:
        assert errors == [], name
    elif isinstance(allowed, str):
        assert errors == [allowed]
    else:
        assert any(e.startswith(FORBIDDEN_PREFIX) for e in errors), errors


def test_pod_update_forbidden_message_shows_the_changed_field() -> None:
    old = _stored()
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "node-2"
    errors = [str(e) for e in STRATEGY.validate_update(new, old)]
    assert errors == [FORBIDDEN_PREFIX + '  core.PodSpec{\n+\tNodeName: "node-2",\n  }']


def test_active_deadline_may_only_decrease() -> None:
    old = _stored(activeDeadlineSeconds=30)
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 60
    assert [str(e) for e in STRATEGY.validate_update(new, old)] == [
        "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"
    ]


def test_pod_status_update_validates_phase() -> None:
    old = _stored()
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Exploded"}
    STRATEGY.prepare_for_status_update(new, old)
    assert [str(e) for e in STRATEGY.validate_status_update(new, old)] == [
        'status.phase: Unsupported value: "Exploded": supported values: "Failed", "Pending", '
        '"Running", "Succeeded", "Unknown"'
    ]
