"""An HPA's status without a metrics pipeline (upstream's wording when the resource metrics API
is absent), and the autoscaling/v1 ↔ v2 conversion kubectl autoscale goes through."""

from __future__ import annotations

from typing import Any

from svcnet.api.defaults.autoscaling import default_horizontal_pod_autoscaler, v1_to_v2, v2_to_v1
from svcnet.controllers.podautoscaler.plan import NO_METRICS_API, plan_hpa

NOW = "2026-01-01T10:00:00Z"


def hpa(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "ns", "generation": 1},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            **spec,
        },
        "status": {"desiredReplicas": 0},
    }
    default_horizontal_pod_autoscaler(obj)
    return obj


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_without_metrics_scaling_is_inactive_with_upstreams_reason() -> None:
    plan = plan_hpa(hpa(), 3, "", NOW)
    assert plan.status["currentReplicas"] == 3
    assert conditions(plan.status) == {
        "AbleToScale": (
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ),
        "ScalingActive": (
            "False",
            "FailedGetResourceMetric",
            "the HPA was unable to compute the replica count: failed to get cpu utilization: "
            f"unable to get metrics for resource cpu: {NO_METRICS_API}",
        ),
    }
    assert [e.reason for e in plan.events] == [
        "FailedGetResourceMetric",
        "FailedComputeMetricsReplicas",
    ]
    assert plan.events[1].message.startswith(
        "invalid metrics (1 invalid out of 1), first error is: "
    )


def test_a_missing_target_is_not_able_to_scale() -> None:
    plan = plan_hpa(hpa(), None, 'deployments/scale.apps "web" not found', NOW)
    assert conditions(plan.status)["AbleToScale"] == (
        "False",
        "FailedGetScale",
        "the HPA controller was unable to get the target's current scale: "
        'deployments/scale.apps "web" not found',
    )
    assert "currentReplicas" not in plan.status


def test_a_condition_keeps_its_transition_time_while_unchanged() -> None:
    first = plan_hpa(hpa(), 3, "", NOW).status
    again = plan_hpa({**hpa(), "status": first}, 3, "", "2026-01-01T11:00:00Z").status
    assert again == first


def test_defaults_give_min_one_and_a_cpu_target_of_80_percent() -> None:
    spec = hpa()["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }


def test_v1_round_trip_keeps_the_cpu_target() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 70,
        },
    }
    v2 = v1_to_v2(v1)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    back = v2_to_v1({**v2, "status": {"currentReplicas": 2, "desiredReplicas": 2}})
    assert back["spec"] == v1["spec"]
    assert back["status"] == {"currentReplicas": 2, "desiredReplicas": 2}
