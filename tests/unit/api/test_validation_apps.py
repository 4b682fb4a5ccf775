"""apps/v1 validation through the strategy: Deployment, ReplicaSet, StatefulSet."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.errors import Invalid
from svcnet.api.strategy import strategy_for_kind

DEPLOY = strategy_for_kind("apps/v1", "Deployment")
RS = strategy_for_kind("apps/v1", "ReplicaSet")
STS = strategy_for_kind("apps/v1", "StatefulSet")

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
}


def _workload(kind: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": copy.deepcopy(TEMPLATE),
    }
    base.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": base,
    }


def _errors(obj: dict[str, Any]) -> list[str]:
    obj = copy.deepcopy(obj)
    strategy = strategy_for_kind("apps/v1", obj["kind"])
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return [str(e) for e in strategy.validate(obj)]


def _template(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    t = copy.deepcopy(TEMPLATE)
    t["metadata"]["labels"] = labels
    t["spec"].update(spec)
    return t


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("deployment valid", _workload("Deployment"), []),
    (
        "deployment selector with expressions",
        _workload(
            "Deployment",
            selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
        ),
        [],
    ),
    (
        "deployment selector mismatch",
        _workload("Deployment", template=_template({"app": "x"})),
        [
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
            "does not match template `labels`"
        ],
    ),
    (
        "deployment template without labels",
        _workload("Deployment", template={"spec": TEMPLATE["spec"]}),
        [
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` "
            "does not match template `labels`"
        ],
    ),
    (
        "deployment selector missing",
        _workload("Deployment", selector=None),
        [
            "spec.selector: Required value",
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
            "`selector` does not match template `labels`",
        ],
    ),
    (
        "deployment selector empty",
        _workload("Deployment", selector={}),
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
            "deployment"
        ],
    ),
    (
        "deployment invalid selector",
        _workload("Deployment", selector={"matchExpressions": [{"key": "app", "operator": "Is"}]}),
        [
            'spec.selector.matchExpressions[0].operator: Invalid value: "Is": not a valid '
            "selector operator",
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
            'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", '
            'Operator:"Is", Values:[]string(nil)}}}: invalid label selector',
        ],
    ),
    (
        "deployment negative replicas",
        _workload("Deployment", replicas=-1),
        ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
    ),
    (
        "deployment restartPolicy",
        _workload("Deployment", template=_template({"app": "web"}, restartPolicy="Never")),
        [
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
        ],
    ),
    (
        "deployment recreate with rollingUpdate",
        _workload("Deployment", strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        [
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
            "'Recreate'"
        ],
    ),
    (
        "deployment both zero",
        _workload(
            "Deployment",
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0},
            },
        ),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
        ],
    ),
    (
        "deployment bad percent",
        _workload(
            "Deployment",
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25", "maxUnavailable": 1},
            },
        ),
        [
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: "25": a valid percent string must be '
            "a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
            "validation is '[0-9]+%')"
        ],
    ),
    (
        "deployment over 100%",
        _workload(
            "Deployment",
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "150%"},
            },
        ),
        [
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'
        ],
    ),
    (
        "deployment progress deadline",
        _workload("Deployment", minReadySeconds=700),
        ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
    ),
    (
        "deployment pod spec error path",
        _workload("Deployment", template=_template({"app": "web"}, containers=[{"name": "web"}])),
        ["spec.template.spec.containers[0].image: Required value"],
    ),
    ("replicaset valid", _workload("ReplicaSet"), []),
    (
        "replicaset selector mismatch",
        _workload("ReplicaSet", template=_template({"app": "x"})),
        [
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
            "does not match template `labels`"
        ],
    ),
    ("statefulset valid", _workload("StatefulSet", serviceName="web"), []),
    (
        "statefulset podManagementPolicy",
        _workload("StatefulSet", podManagementPolicy="Random"),
        [
            'spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", '
            '"Parallel"'
        ],
    ),
    (
        "statefulset negative partition",
        _workload(
            "StatefulSet",
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}},
        ),
        [
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or "
            "equal to 0"
        ],
    ),
]


@pytest.mark.parametrize(("obj", "errors"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_apps_validation(obj: dict[str, Any], errors: list[str]) -> None:
    assert _errors(obj) == errors


def _stored(kind: str, **spec: Any) -> dict[str, Any]:
    obj = _workload(kind, **spec)
    strategy = strategy_for_kind("apps/v1", kind)
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    obj["metadata"].update(uid="u1", resourceVersion="1", creationTimestamp="2024-01-01T00:00:00Z")
    return obj


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_is_immutable(kind: str) -> None:
    old = _stored(kind)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    errors = strategy_for_kind("apps/v1", kind).validate_update(new, old)
    assert [str(e) for e in errors] == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", '
        '"v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]


def test_deployment_invalid_message_names_the_group() -> None:
    obj = _workload("Deployment", template=_template({"app": "x"}))
    DEPLOY.default(obj)
    err = Invalid("Deployment", "web", DEPLOY.validate(obj), group="apps")
    assert err.message == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"x"}: `selector` does not match template `labels`'
    )


def test_statefulset_forbids_changing_service_name() -> None:
    old = _stored("StatefulSet", serviceName="web")
    new = copy.deepcopy(old)
    new["spec"]["serviceName"] = "other"
    assert [str(e) for e in STS.validate_update(new, old)] == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden"
    ]


def test_statefulset_allows_scaling_and_template_changes() -> None:
    old = _stored("StatefulSet", serviceName="web")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert STS.validate_update(new, old) == []


def test_replicaset_strategy_is_shared() -> None:
    assert strategy_for_kind("apps/v1", "ReplicaSet") is RS
