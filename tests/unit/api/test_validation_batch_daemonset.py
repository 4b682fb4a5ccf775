"""Job and DaemonSet defaults and validation: upstream's messages and field paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.defaults import default_object
from svcnet.api.validation.apps import validate_daemon_set, validate_daemon_set_update
from svcnet.api.validation.batch import validate_job, validate_job_update


def job(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            },
            **spec,
        },
    }
    default_object(obj)
    return obj


def daemon_set(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
            **spec,
        },
    }
    default_object(obj)
    return obj


def test_job_defaults() -> None:
    spec = job()["spec"]
    assert {k: spec[k] for k in ("completions", "parallelism", "backoffLimit")} == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
    }
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    # A work queue (parallelism only) keeps completions unset.
    queue = job(parallelism=3)["spec"]
    assert "completions" not in queue and queue["parallelism"] == 3
    assert job(podFailurePolicy={"rules": []})["spec"]["podReplacementPolicy"] == "Failed"
    assert job(backoffLimitPerIndex=1)["spec"]["backoffLimit"] == 2**31 - 1


def test_job_selector_is_generated_from_the_uid() -> None:
    obj = job()
    assert validate_job(obj) == []
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {
        "job-name": "pi",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1",
        "batch.kubernetes.io/controller-uid": "u-1",
    }
    manual = job(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    errors = validate_job(manual)
    assert [str(e) for e in errors] == [
        "spec.template.metadata.labels: Invalid value: map[string]string(nil): "
        "`selector` does not match template `labels`"
    ]


POLICY_OK = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 2]}}]}


@pytest.mark.parametrize(
    ("case", "spec", "errors"),
    [
        ("valid", {}, []),
        ("valid policy", {"podFailurePolicy": POLICY_OK}, []),
        ("negative counts", {"parallelism": -1, "backoffLimit": -2},
         ["spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
          "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0"]),
        ("restartPolicy Always", {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "b"}]}}},
         ['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']),
        ("unknown completion mode", {"completionMode": "Sometimes"},
         ['spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"']),
        ("policy: unknown action, both matchers", {"podFailurePolicy": {"rules": [
            {"action": "Retry", "onExitCodes": {"operator": "In", "values": [1]},
             "onPodConditions": [{"type": "DisruptionTarget"}]}]}},
         ['spec.podFailurePolicy.rules[0].action: Unsupported value: "Retry": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
          "spec.podFailurePolicy.rules[0]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"]),
        ("policy: exit codes", {"podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"containerName": "x", "operator": "In", "values": [0, 3, 3]}}]}},
         ['spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "x": must be one of the container or initContainer names in the pod template',
          "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
          "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 3",
          "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Invalid value: 3: must be ordered"]),
        ("policy: no matcher", {"podFailurePolicy": {"rules": [{"action": "Count"}]}},
         ["spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required"]),
        ("policy with OnFailure", {"podFailurePolicy": POLICY_OK, "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "b"}]}}},
         ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified']),
    ],
)  # fmt: skip
def test_job_validation(case: str, spec: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_job(job(**spec))] == errors, case


def test_job_update_keeps_template_and_selector() -> None:
    old = job()
    validate_job(old)
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 3
    assert validate_job_update(new, old) == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    new["spec"]["completions"] = 4
    assert [e.field for e in validate_job_update(new, old)] == ["spec.template", "spec.completions"]


def test_daemon_set_defaults() -> None:
    spec = daemon_set()["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    ("case", "spec", "errors"),
    [
        ("valid", {}, []),
        ("percent", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}}, []),
        ("both zero", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}},
         ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]),
        ("both set", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}},
         ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"]),
        ("over 100%", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%", "maxSurge": 0}}},
         ['spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be greater than 100%']),
        ("empty selector", {"selector": {}},
         ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"]),
        ("selector misses", {"selector": {"matchLabels": {"app": "other"}}},
         ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"agent"}: `selector` does not match template `labels`']),
        ("deadline", {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"activeDeadlineSeconds": 5, "containers": [{"name": "c", "image": "b"}]}}},
         ["spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in DaemonSet is not Supported"]),
    ],
)  # fmt: skip
def test_daemon_set_validation(case: str, spec: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_daemon_set(daemon_set(**spec))] == errors, case


def test_daemon_set_selector_is_immutable() -> None:
    old = daemon_set()
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "x"
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert [e.field for e in validate_daemon_set_update(new, old)] == ["spec.selector"]
