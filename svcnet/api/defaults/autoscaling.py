"""autoscaling/v2 defaults: ``pkg/apis/autoscaling/v2/defaults.go`` (Kubernetes 1.32)."""

from __future__ import annotations

from svcnet.api.objects import Obj

# The target an HPA without metrics gets (DefaultCPUUtilization).
DEFAULT_CPU_UTILIZATION = 80


def default_horizontal_pod_autoscaler(hpa: Obj) -> None:
    spec = hpa.get("spec")
    if not isinstance(spec, dict):
        spec = hpa["spec"] = {}
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": DEFAULT_CPU_UTILIZATION,
                    },
                },
            }
        ]


def v1_to_v2(hpa: Obj) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler as the v2 object it is stored as (upstream's
    conversion: ``targetCPUUtilizationPercentage`` is one Resource metric of cpu)."""
    spec = dict(hpa.get("spec") or {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": target},
                },
            }
        ]
    out = {**hpa, "apiVersion": "autoscaling/v2", "spec": spec}
    out.pop("status", None)
    return out


def v2_to_v1(hpa: Obj) -> Obj:
    """The v1 view of a stored v2 HorizontalPodAutoscaler: its cpu utilization target and
    status; other metrics have no v1 field (upstream keeps them in annotations)."""
    spec = dict(hpa.get("spec") or {})
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        resource = m.get("resource") or {}
        target = resource.get("target") or {}
        cpu = m.get("type") == "Resource" and resource.get("name") == "cpu"
        if cpu and target.get("averageUtilization") is not None:
            spec["targetCPUUtilizationPercentage"] = target["averageUtilization"]
    status = dict(hpa.get("status") or {})
    v1_status = {
        k: status[k]
        for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
        if k in status
    }
    v1_status.setdefault("currentReplicas", 0)
    v1_status.setdefault("desiredReplicas", 0)
    return {**hpa, "apiVersion": "autoscaling/v1", "spec": spec, "status": v1_status}
