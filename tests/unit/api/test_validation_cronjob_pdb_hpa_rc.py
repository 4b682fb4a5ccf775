"""CronJob, PodDisruptionBudget, HorizontalPodAutoscaler and ReplicationController defaults and
validation: upstream's messages and field paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.defaults import default_object
from svcnet.api.validation.apps import validate_replication_controller
from svcnet.api.validation.autoscaling import validate_horizontal_pod_autoscaler
from svcnet.api.validation.batch import validate_cron_job, validate_cron_job_update
from svcnet.api.validation.policy import validate_pod_disruption_budget


def cronjob(name: str = "tick", restart: str = "OnFailure", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": restart,
                            "containers": [{"name": "c", "image": "busybox"}],
                        }
                    }
                }
            },
            **spec,
        },
    }
    default_object(obj)
    return obj


def messages(errors: list[Any]) -> list[str]:
    return [str(e) for e in errors]


def test_cronjob_defaults() -> None:
    spec = cronjob()["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["suspend"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", False, 3, 1)
    pod_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # a Job's defaults come per Job


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (cronjob(), []),
        (cronjob(schedule=""), ["spec.schedule: Required value"]),
        (
            cronjob(schedule="* * *"),
            ['spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]'],
        ),
        (
            cronjob(schedule="CRON_TZ=UTC 0 3 * * *"),
            [
                'spec.schedule: Invalid value: "CRON_TZ=UTC 0 3 * * *": cannot use TZ or CRON_TZ '
                "in schedule, use timeZone field instead"
            ],
        ),
        (
            cronjob(timeZone="Local"),
            [
                'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as '
                "defined in https://www.iana.org/time-zones"
            ],
        ),
        (
            cronjob(timeZone="Mars/Olympus"),
            ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
        ),
        (
            cronjob(concurrencyPolicy="Sometimes"),
            [
                'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'
            ],
        ),
        (
            cronjob(startingDeadlineSeconds=-1),
            ["spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            cronjob(name="x" * 53),
            [f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters'],
        ),
        (
            cronjob(restart="Always"),
            [
                'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": '
                'supported values: "OnFailure", "Never"'
            ],
        ),
    ],
)
def test_cronjob_validation(obj: dict[str, Any], expected: list[str]) -> None:
    assert messages(validate_cron_job(obj)) == expected


def test_a_schedule_stored_with_tz_may_keep_it_on_update() -> None:
    old = cronjob(schedule="TZ=UTC 0 3 * * *")
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    assert validate_cron_job_update(new, old) == []
    assert validate_cron_job_update(new, cronjob()) != []


def pdb(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pdb(minAvailable="50%"), []),
        (pdb(maxUnavailable=1), []),
        (
            pdb(minAvailable="150%"),
            ['spec.minAvailable: Invalid value: "150%": must not be greater than 100%'],
        ),
        (
            pdb(maxUnavailable=-1),
            ["spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            pdb(unhealthyPodEvictionPolicy="Never"),
            [
                'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: '
                '"AlwaysAllow", "IfHealthyBudget"'
            ],
        ),
    ],
)
def test_pdb_validation(obj: dict[str, Any], expected: list[str]) -> None:
    assert messages(validate_pod_disruption_budget(obj)) == expected


def test_pdb_with_both_bounds_is_refused() -> None:
    errors = validate_pod_disruption_budget(pdb(minAvailable=1, maxUnavailable=1))
    assert [(e.field, e.detail) for e in errors] == [
        ("spec", "minAvailable and maxUnavailable cannot be both set")
    ]


def hpa(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
            **spec,
        },
    }
    default_object(obj)
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (hpa(), []),
        (
            hpa(minReplicas=0),
            ["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"],
        ),
        (hpa(maxReplicas=0), ["spec.maxReplicas: Invalid value: 0: must be greater than 0"]),
        (
            hpa(minReplicas=4),
            ["spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"],
        ),
        (hpa(scaleTargetRef={"kind": "Deployment"}), ["spec.scaleTargetRef.name: Required value"]),
    ],
)
def test_hpa_validation(obj: dict[str, Any], expected: list[str]) -> None:
    assert messages(validate_horizontal_pod_autoscaler(obj)) == expected


def rc(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
            **spec,
        },
    }
    default_object(obj)
    return obj


def test_rc_defaults_its_selector_labels_and_replicas_from_the_template() -> None:
    obj = rc()
    assert obj["spec"]["selector"] == {"app": "legacy"}
    assert obj["metadata"]["labels"] == {"app": "legacy"}
    assert obj["spec"]["replicas"] == 1
    assert validate_replication_controller(obj) == []


def test_rc_selector_must_match_the_template() -> None:
    assert messages(validate_replication_controller(rc(selector={"app": "other"}))) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"legacy"}: '
        "`selector` does not match template `labels`"
    ]
