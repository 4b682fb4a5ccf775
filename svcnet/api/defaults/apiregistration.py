"""Defaulting of APIService (apiregistration.k8s.io/v1), as kube-aggregator's
``SetDefaults_ServiceReference``: a Service is reached on port 443 unless told otherwise."""

from __future__ import annotations

from svcnet.api.objects import Obj


def default_api_service(apiservice: Obj) -> None:
    spec = apiservice.get("spec")
    service = spec.get("service") if isinstance(spec, dict) else None
    if isinstance(service, dict):
        service.setdefault("port", 443)
