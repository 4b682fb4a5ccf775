"""autoscaling/v2 validation: ``pkg/apis/autoscaling/validation/validation.go`` (Kubernetes
1.32), the spec's bounds and target; metric specs are checked for their type only."""

from __future__ import annotations

from svcnet.api.errors import FieldError, invalid, not_supported, required
from svcnet.api.objects import Obj
from svcnet.api.validation.fields import mapping

_METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]


def validate_horizontal_pod_autoscaler(hpa: Obj) -> list[FieldError]:
    spec = mapping(hpa.get("spec"))
    errors: list[FieldError] = []
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(min_replicas, int) and min_replicas < 1:
        errors.append(
            invalid("spec.minReplicas", min_replicas, "must be greater than or equal to 1")
        )
    if not isinstance(max_replicas, int) or max_replicas < 1:
        errors.append(invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    elif isinstance(min_replicas, int) and max_replicas < min_replicas:
        errors.append(
            invalid(
                "spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`"
            )
        )
    ref = mapping(spec.get("scaleTargetRef"))
    for field in ("kind", "name"):
        if not ref.get(field):
            errors.append(required(f"spec.scaleTargetRef.{field}"))
    for i, metric in enumerate(spec.get("metrics") or []):
        kind = mapping(metric).get("type")
        if not kind:
            errors.append(required(f"spec.metrics[{i}].type", "must specify a metric source type"))
        elif kind not in _METRIC_TYPES:
            errors.append(not_supported(f"spec.metrics[{i}].type", kind, _METRIC_TYPES))
    return errors


def validate_horizontal_pod_autoscaler_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_horizontal_pod_autoscaler(new)
