"""networking.k8s.io/v1 defaults: ``pkg/apis/networking/v1/defaults.go``."""

from __future__ import annotations

from svcnet.api.objects import Obj


def default_network_policy(np: Obj) -> None:
    spec = np.get("spec")
    if not isinstance(spec, dict):
        spec = np["spec"] = {}
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule or {}).get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        # A policy without policyTypes always isolates ingress, and egress only when it
        # has egress rules.
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def default_ingress(ing: Obj) -> None:
    # IngressBackend's service port has no defaults; only pathType of older clients
    # would be defaulted, and networking/v1 requires it. Nothing to fill.
    del ing
