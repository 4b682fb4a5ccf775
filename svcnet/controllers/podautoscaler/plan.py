"""The horizontal pod autoscaler's status without a metrics pipeline, pure.

svcnet serves no ``metrics.k8s.io``: every Resource metric fails as upstream's controller
(``pkg/controller/podautoscaler/horizontal.go``, Kubernetes 1.32) reports it when the resource
metrics API is absent. So an HPA's status says what it can: ``AbleToScale`` from reading the
target's scale, ``ScalingActive`` False with reason ``FailedGetResourceMetric`` and upstream's
message chain, ``currentReplicas`` from the target; it never scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from svcnet.api.jsonvalue import copy_json
from svcnet.api.objects import ObjView, meta, spec, status
from svcnet.controllers.job.plan import Event

# What the metrics client says when the API server has no metrics.k8s.io.
NO_METRICS_API = (
    "unable to fetch metrics from resource metrics API: the server could not find the "
    "requested resource (get pods.metrics.k8s.io)"
)


@dataclass
class HpaPlan:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def _set_condition(
    conditions: list[dict[str, Any]], kind: str, state: str, reason: str, message: str, now: str
) -> None:
    """setCondition: the transition time moves only when the status does."""
    old = next((c for c in conditions if c.get("type") == kind), None)
    since = old.get("lastTransitionTime", now) if old and old.get("status") == state else now
    conditions[:] = [c for c in conditions if c.get("type") != kind]
    conditions.append(
        {
            "type": kind,
            "status": state,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }
    )


def _metric_error(metric: ObjView) -> tuple[str, str]:
    """(condition reason, error) of one metric, as the controller's compute functions word it."""
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        name = source.get("name", "")
        inner = f"failed to get {name} utilization: unable to get metrics for resource {name}: "
        reason = (
            "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
        )
        return reason, f"{inner}{NO_METRICS_API}"
    reason = {
        "Pods": "FailedGetPodsMetric",
        "Object": "FailedGetObjectMetric",
        "External": "FailedGetExternalMetric",
    }.get(str(kind), "InvalidMetricSourceType")
    return reason, "unable to get metric: no custom or external metrics API is served"


def plan_hpa(hpa: ObjView, target_replicas: int | None, target_error: str, now: str) -> HpaPlan:
    """``target_replicas``: the scale target's ``spec.replicas``, None when it could not be read
    (``target_error`` then says why, as the scale client would)."""
    new_status = copy_json(dict(status(hpa)))
    new_status.setdefault("desiredReplicas", 0)
    new_status["observedGeneration"] = int(meta(hpa).get("generation") or 0)
    conditions: list[dict[str, Any]] = list(new_status.get("conditions") or [])
    plan = HpaPlan(new_status)
    if target_replicas is None:
        message = f"the HPA controller was unable to get the target's current scale: {target_error}"
        plan.events.append(Event("Warning", "FailedGetScale", target_error))
        _set_condition(conditions, "AbleToScale", "False", "FailedGetScale", message, now)
        new_status["conditions"] = conditions
        return plan
    new_status["currentReplicas"] = target_replicas
    _set_condition(
        conditions,
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        now,
    )
    metrics = list(spec(hpa).get("metrics") or [])
    if metrics:
        reason, error = _metric_error(metrics[0])
        plan.events.append(Event("Warning", reason, error))
        _set_condition(
            conditions,
            "ScalingActive",
            "False",
            reason,
            f"the HPA was unable to compute the replica count: {error}",
            now,
        )
        first = f"failed to get {(metrics[0].get('resource') or {}).get('name', '')} resource metric value: {error}"
        plan.events.append(
            Event(
                "Warning",
                "FailedComputeMetricsReplicas",
                f"invalid metrics ({len(metrics)} invalid out of {len(metrics)}), first error "
                f"is: {first}",
            )
        )
    new_status["conditions"] = conditions
    return plan
