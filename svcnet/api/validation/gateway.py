"""Gateway API validation: the key checks of the standard-channel CRDs (v1.2).

A real cluster validates these objects with the CRDs' OpenAPI schema and CEL rules, so the
messages here are worded as apiextensions-apiserver words them (``... in body should be
greater than or equal to 1``) and as the CEL rules' messages read.
"""

from __future__ import annotations

import re
from typing import Any

from svcnet.api.errors import FieldError, invalid, not_supported, required
from svcnet.api.objects import Obj
from svcnet.api.validation.fields import items, mapping, too_many

_HOSTNAME_FMT = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SECTION_NAME_FMT = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_PROTOCOL_FMT = (
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$"
)
_CONTROLLER_FMT = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/"
    r"[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
_OBJECT_NAME_FMT = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_RE = {
    f: re.compile(f)
    for f in (_HOSTNAME_FMT, _SECTION_NAME_FMT, _PROTOCOL_FMT, _CONTROLLER_FMT, _OBJECT_NAME_FMT)
}
PATH_MATCH_TYPES = ["Exact", "PathPrefix", "RegularExpression"]


def _pattern(path: str, value: Any, fmt: str) -> list[FieldError]:
    if not isinstance(value, str) or not _RE[fmt].search(value):
        return [invalid(path, value, f"{path} in body should match '{fmt}'")]
    return []


def _range(path: str, value: Any, lo: int, hi: int) -> list[FieldError]:
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, f"{path} in body must be of type integer")]
    if value < lo:
        return [invalid(path, value, f"{path} in body should be greater than or equal to {lo}")]
    if value > hi:
        return [invalid(path, value, f"{path} in body should be less than or equal to {hi}")]
    return []


def _cel(path: str, message: str) -> FieldError:
    # A failed x-kubernetes-validations rule on a list or object prints its type as the value.
    return invalid(path, "object", message)


def validate_gateway_class(gc: Obj) -> list[FieldError]:
    controller = mapping(gc.get("spec")).get("controllerName")
    if not controller:
        return [required("spec.controllerName")]
    return _pattern("spec.controllerName", controller, _CONTROLLER_FMT)


def validate_gateway_class_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_gateway_class(new)
    if mapping(new.get("spec")).get("controllerName") != mapping(old.get("spec")).get(
        "controllerName"
    ):
        errors.append(
            invalid(
                "spec.controllerName",
                mapping(new.get("spec")).get("controllerName"),
                "Value is immutable",
            )
        )
    return errors


def validate_gateway(gw: Obj) -> list[FieldError]:
    spec = mapping(gw.get("spec"))
    errors: list[FieldError] = []
    if not spec.get("gatewayClassName"):
        errors.append(required("spec.gatewayClassName"))
    listeners = items(spec.get("listeners"))
    if not listeners:
        errors.append(required("spec.listeners"))
    elif len(listeners) > 64:
        errors.append(too_many("spec.listeners", len(listeners), 64))
    names: set[str] = set()
    combos: set[tuple[Any, Any, Any]] = set()
    for i, listener in enumerate(listeners):
        p = f"spec.listeners[{i}]"
        name = listener.get("name")
        if not name:
            errors.append(required(f"{p}.name"))
        else:
            errors.extend(_pattern(f"{p}.name", name, _SECTION_NAME_FMT))
        port = listener.get("port")
        if port is None:
            errors.append(required(f"{p}.port"))
        else:
            errors.extend(_range(f"{p}.port", port, 1, 65535))
        proto = listener.get("protocol")
        if not proto:
            errors.append(required(f"{p}.protocol"))
        else:
            errors.extend(_pattern(f"{p}.protocol", proto, _PROTOCOL_FMT))
        hostname = listener.get("hostname")
        if hostname is not None:
            errors.extend(_pattern(f"{p}.hostname", hostname, _HOSTNAME_FMT))
        tls = listener.get("tls")
        if tls is not None and proto in ("HTTP", "TCP", "UDP"):
            errors.append(
                _cel(
                    "spec.listeners",
                    "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
                )
            )
        if proto in ("HTTPS", "TLS") and not mapping(tls).get("mode"):
            errors.append(
                _cel("spec.listeners", "tls mode must be set for protocols ['HTTPS', 'TLS']")
            )
        if hostname is not None and proto in ("TCP", "UDP"):
            errors.append(
                _cel(
                    "spec.listeners", "hostname must not be specified for protocols ['TCP', 'UDP']"
                )
            )
        if name in names:
            errors.append(_cel("spec.listeners", "Listener name must be unique within the Gateway"))
        names.add(str(name))
        combo = (port, proto, hostname or "")
        if combo in combos:
            errors.append(
                _cel(
                    "spec.listeners",
                    "Combination of port, protocol and hostname must be unique for each listener",
                )
            )
        combos.add(combo)
        allowed = mapping(mapping(listener.get("allowedRoutes")).get("namespaces")).get("from")
        if allowed is not None and allowed not in ("All", "Selector", "Same"):
            errors.append(
                not_supported(
                    f"{p}.allowedRoutes.namespaces.from", allowed, ["All", "Selector", "Same"]
                )
            )
    return errors


def _validate_parent_refs(refs: Any, path: str) -> list[FieldError]:
    refs_list = items(refs)
    errors: list[FieldError] = []
    if len(refs_list) > 32:
        errors.append(too_many(path, len(refs_list), 32))
    for i, ref in enumerate(refs_list):
        p = f"{path}[{i}]"
        if not ref.get("name"):
            errors.append(required(f"{p}.name"))
        if ref.get("sectionName") is not None:
            errors.extend(_pattern(f"{p}.sectionName", ref["sectionName"], _SECTION_NAME_FMT))
        if ref.get("port") is not None:
            errors.extend(_range(f"{p}.port", ref["port"], 1, 65535))
    return errors


def _validate_hostnames(hostnames: Any, path: str) -> list[FieldError]:
    values = hostnames if isinstance(hostnames, list) else []
    errors: list[FieldError] = []
    if len(values) > 16:
        errors.append(too_many(path, len(values), 16))
    for i, host in enumerate(values):
        errors.extend(_pattern(f"{path}[{i}]", host, _HOSTNAME_FMT))
    return errors


def _route_common(route: Obj) -> tuple[list[FieldError], list[Any]]:
    """parentRefs, hostnames and the number of rules: alike in every route kind."""
    spec = mapping(route.get("spec"))
    errors = _validate_parent_refs(spec.get("parentRefs"), "spec.parentRefs")
    errors.extend(_validate_hostnames(spec.get("hostnames"), "spec.hostnames"))
    rules = items(spec.get("rules"))
    if len(rules) > 16:
        errors.append(too_many("spec.rules", len(rules), 16))
    return errors, rules


def validate_http_route(route: Obj) -> list[FieldError]:
    errors, rules = _route_common(route)
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        for j, match in enumerate(items(rule.get("matches"))):
            mp = f"{rp}.matches[{j}].path"
            path = mapping(match.get("path"))
            path_type = path.get("type")
            if path_type not in PATH_MATCH_TYPES:
                errors.append(not_supported(f"{mp}.type", path_type, PATH_MATCH_TYPES))
            value = path.get("value")
            if path_type in ("Exact", "PathPrefix") and not str(value or "").startswith("/"):
                errors.append(
                    _cel(
                        mp,
                        "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
                    )
                )
        errors.extend(_validate_backend_refs(rule.get("backendRefs"), f"{rp}.backendRefs"))
    return errors


def _validate_backend_refs(refs: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for j, backend in enumerate(items(refs)):
        bp = f"{path}[{j}]"
        if not backend.get("name"):
            errors.append(required(f"{bp}.name"))
        kind, group = backend.get("kind", "Service"), backend.get("group", "")
        if kind == "Service" and group in ("", "core") and backend.get("port") is None:
            errors.append(_cel(bp, "Must have port for Service reference"))
        if backend.get("port") is not None:
            errors.extend(_range(f"{bp}.port", backend["port"], 1, 65535))
        if backend.get("weight") is not None:
            errors.extend(_range(f"{bp}.weight", backend["weight"], 0, 1000000))
    return errors


GRPC_METHOD_MATCH_TYPES = ["Exact", "RegularExpression"]


def validate_grpc_route(route: Obj) -> list[FieldError]:
    errors, rules = _route_common(route)
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        for j, match in enumerate(items(rule.get("matches"))):
            if match.get("method") is None:
                continue
            mp = f"{rp}.matches[{j}].method"
            method = mapping(match.get("method"))
            kind = method.get("type", "Exact")
            if kind not in GRPC_METHOD_MATCH_TYPES:
                errors.append(not_supported(f"{mp}.type", kind, GRPC_METHOD_MATCH_TYPES))
            if not method.get("service") and not method.get("method"):
                errors.append(_cel(mp, "One or both of 'service' or 'method' must be specified"))
        errors.extend(_validate_backend_refs(rule.get("backendRefs"), f"{rp}.backendRefs"))
    return errors


def validate_tls_route(route: Obj) -> list[FieldError]:
    errors, rules = _route_common(route)
    if not rules:
        errors.append(invalid("spec.rules", 0, "spec.rules in body should have at least 1 items"))
    for i, rule in enumerate(rules):
        refs = items(rule.get("backendRefs"))
        bp = f"spec.rules[{i}].backendRefs"
        if not refs:
            errors.append(invalid(bp, 0, f"{bp} in body should have at least 1 items"))
        errors.extend(_validate_backend_refs(refs, bp))
    return errors


def validate_reference_grant(grant: Obj) -> list[FieldError]:
    spec = mapping(grant.get("spec"))
    errors: list[FieldError] = []
    for key in ("from", "to"):
        entries = items(spec.get(key))
        if not entries:
            errors.append(required(f"spec.{key}"))
        for i, entry in enumerate(entries):
            if not entry.get("kind"):
                errors.append(required(f"spec.{key}[{i}].kind"))
            if key == "from" and not entry.get("namespace"):
                errors.append(required(f"spec.{key}[{i}].namespace"))
            if "group" not in entry:
                errors.append(required(f"spec.{key}[{i}].group"))
    return errors
