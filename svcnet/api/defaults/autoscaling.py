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
