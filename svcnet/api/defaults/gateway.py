"""Gateway API defaults, as the standard-channel CRDs (v1.2) declare them in their schemas."""

from __future__ import annotations

from typing import Any

from svcnet.api.objects import Obj

GATEWAY_GROUP = "gateway.networking.k8s.io"


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def default_parent_ref(ref: Obj) -> None:
    ref.setdefault("group", GATEWAY_GROUP)
    ref.setdefault("kind", "Gateway")


def default_gateway(gw: Obj) -> None:
    spec = gw.get("spec")
    if not isinstance(spec, dict):
        return
    for listener in _dicts(spec.get("listeners")):
        allowed = listener.setdefault("allowedRoutes", {"namespaces": {"from": "Same"}})
        if isinstance(allowed, dict):
            namespaces = allowed.setdefault("namespaces", {"from": "Same"})
            if isinstance(namespaces, dict):
                namespaces.setdefault("from", "Same")
        tls = listener.get("tls")
        if isinstance(tls, dict):
            tls.setdefault("mode", "Terminate")
            for ref in _dicts(tls.get("certificateRefs")):
                ref.setdefault("group", "")
                ref.setdefault("kind", "Secret")
    for address in _dicts(spec.get("addresses")):
        address.setdefault("type", "IPAddress")


def _default_match(match: Obj) -> None:
    path = match.setdefault("path", {"type": "PathPrefix", "value": "/"})
    if isinstance(path, dict):
        path.setdefault("type", "PathPrefix")
        path.setdefault("value", "/")
    for header in _dicts(match.get("headers")):
        header.setdefault("type", "Exact")
    for param in _dicts(match.get("queryParams")):
        param.setdefault("type", "Exact")


def default_http_route(route: Obj) -> None:
    spec = route.get("spec")
    if not isinstance(spec, dict):
        spec = route["spec"] = {}
    for ref in _dicts(spec.get("parentRefs")):
        default_parent_ref(ref)
    if "rules" not in spec:
        spec["rules"] = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
    for rule in _dicts(spec.get("rules")):
        if "matches" not in rule:
            rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
        for match in _dicts(rule.get("matches")):
            _default_match(match)
        for backend in _dicts(rule.get("backendRefs")):
            backend.setdefault("group", "")
            backend.setdefault("kind", "Service")
            backend.setdefault("weight", 1)
