"""networking.k8s.io/v1 validation: ``pkg/apis/networking/validation/validation.go``."""

from __future__ import annotations

import ipaddress

from svcnet.api.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from svcnet.api.names import (
    is_dns1035_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
    is_wildcard_dns1123_subdomain,
)
from svcnet.api.objects import Obj
from svcnet.api.selectors import validate_label_selector
from svcnet.api.validation.fields import dns_subdomain, items, mapping
from svcnet.api.validation.goformat import GoValue

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_NETPOL_PROTOCOLS = ["TCP", "UDP", "SCTP"]  # upstream lists these unsorted here


# -- NetworkPolicy ----------------------------------------------------------------------


def _validate_netpol_port(port: Obj, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    proto = port.get("protocol")
    if proto is not None and proto not in _NETPOL_PROTOCOLS:
        errors.append(not_supported(f"{path}.protocol", proto, _NETPOL_PROTOCOLS))
    value, end = port.get("port"), port.get("endPort")
    if value is not None:
        if isinstance(value, int) and not isinstance(value, bool):
            errors.extend(invalid(f"{path}.port", value, m) for m in is_valid_port_num(value))
            if end is not None:
                if isinstance(end, int) and end < value:
                    errors.append(
                        invalid(f"{path}.endPort", value, "must be greater than or equal to `port`")
                    )
                if isinstance(end, int):
                    errors.extend(
                        invalid(f"{path}.endPort", end, m) for m in is_valid_port_num(end)
                    )
        else:
            if end is not None:
                errors.append(
                    invalid(
                        f"{path}.endPort", end, "may not be specified when `port` is non-numeric"
                    )
                )
            errors.extend(invalid(f"{path}.port", value, m) for m in is_valid_port_name(str(value)))
    elif end is not None:
        errors.append(
            invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified")
        )
    return errors


def _parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _validate_ip_block(block: Obj, path: str) -> list[FieldError]:
    cidr = str(block.get("cidr") or "")
    if not cidr:
        return [required(f"{path}.cidr")]
    net = _parse_cidr(cidr)
    if net is None:
        return [invalid(f"{path}.cidr", cidr, "not a valid CIDR")]
    errors: list[FieldError] = []
    for i, except_cidr in enumerate(block.get("except") or []):
        p = f"{path}.except[{i}]"
        sub = _parse_cidr(str(except_cidr))
        if sub is None:
            errors.append(invalid(p, except_cidr, "not a valid CIDR"))
            return errors
        if sub.version != net.version or not sub.subnet_of(net) or sub.prefixlen <= net.prefixlen:  # type: ignore[arg-type]
            errors.append(invalid(p, except_cidr, "must be a strict subset of `cidr`"))
    return errors


def _validate_peer(peer: Obj, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            errors.extend(validate_label_selector(mapping(peer[key]), f"{path}.{key}"))
    if peer.get("ipBlock") is not None:
        count += 1
        errors.extend(_validate_ip_block(mapping(peer["ipBlock"]), f"{path}.ipBlock"))
    if count == 0:
        errors.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errors.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errors


def validate_network_policy(np: Obj) -> list[FieldError]:
    spec = mapping(np.get("spec"))
    errors = validate_label_selector(mapping(spec.get("podSelector")), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(items(spec.get(direction))):
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(items(rule.get("ports"))):
                errors.extend(_validate_netpol_port(port, f"{rp}.ports[{j}]"))
            for j, peer in enumerate(items(rule.get(peers))):
                errors.extend(_validate_peer(peer, f"{rp}.{peers}[{j}]"))
    types = spec.get("policyTypes") or []
    if len(types) > 2:
        shown = GoValue(
            types, "&[]networking.PolicyType{" + ", ".join(f'"{t}"' for t in types) + "}"
        )
        errors.append(
            invalid("spec.policyTypes", shown, "may not specify more than two policyTypes")
        )
        return errors
    for i, policy_type in enumerate(types):
        if policy_type not in ("Ingress", "Egress"):
            errors.append(
                not_supported(f"spec.policyTypes[{i}]", policy_type, ["Ingress", "Egress"])
            )
    return errors


# -- Ingress, IngressClass ------------------------------------------------------------------


def _validate_backend(backend: Obj, path: str) -> list[FieldError]:
    has_resource = backend.get("resource") is not None
    has_service = backend.get("service") is not None
    if has_resource and has_service:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if has_resource:
        resource = mapping(backend["resource"])
        errors: list[FieldError] = []
        if not resource.get("kind"):
            errors.append(required(f"{path}.resource.kind"))
        if not resource.get("name"):
            errors.append(required(f"{path}.resource.name"))
        return errors
    if not has_service:
        return [invalid(path, "", "resource or service backend is required")]
    service = mapping(backend["service"])
    errors = []
    name = str(service.get("name") or "")
    if not name:
        errors.append(required(f"{path}.service.name"))
    else:
        errors.extend(invalid(f"{path}.service.name", name, m) for m in is_dns1035_label(name))
    port = mapping(service.get("port"))
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        errors.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errors.extend(
            invalid(f"{path}.service.port.name", port_name, m)
            for m in is_valid_port_name(str(port_name))
        )
    elif number:
        if isinstance(number, int):
            errors.extend(
                invalid(f"{path}.service.port.number", number, m) for m in is_valid_port_num(number)
            )
        else:
            errors.append(invalid(f"{path}.service.port.number", number, "must be an integer"))
    else:
        errors.append(required(path, "port name or number is required"))
    return errors


def _validate_http_path(p: Obj, path: str) -> list[FieldError]:
    path_type = p.get("pathType")
    if path_type is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    value = str(p.get("path") or "")
    errors: list[FieldError] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errors.append(invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    errors.append(invalid(f"{path}.path", value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errors.append(invalid(f"{path}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errors.append(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errors.append(not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    errors.extend(_validate_backend(mapping(p.get("backend")), f"{path}.backend"))
    return errors


def _validate_host(host: str, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    try:
        ipaddress.ip_address(host)
        errors.append(invalid(path, host, "must be a DNS name, not an IP address"))
    except ValueError:
        pass
    check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
    errors.extend(invalid(path, host, m) for m in check(host))
    return errors


def validate_ingress(ing: Obj) -> list[FieldError]:
    spec = mapping(ing.get("spec"))
    errors: list[FieldError] = []
    rules = items(spec.get("rules"))
    default_backend = spec.get("defaultBackend")
    if not rules and default_backend is None:
        errors.append(
            invalid(
                "spec.rules",
                GoValue([], "[]networking.IngressRule(nil)"),
                "either `defaultBackend` or `rules` must be specified",
            )
        )
    if default_backend is not None:
        errors.extend(_validate_backend(mapping(default_backend), "spec.defaultBackend"))
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        host = str(rule.get("host") or "")
        if host:
            errors.extend(_validate_host(host, f"{rp}.host"))
        http = rule.get("http")
        if http is None:
            continue
        paths = items(mapping(http).get("paths"))
        if not paths:
            errors.append(required(f"{rp}.http.paths"))
        for j, p in enumerate(paths):
            errors.extend(_validate_http_path(p, f"{rp}.http.paths[{j}]"))
    for i, tls in enumerate(items(spec.get("tls"))):
        for j, host in enumerate(tls.get("hosts") or []):
            check = is_wildcard_dns1123_subdomain if "*" in str(host) else is_dns1123_subdomain
            errors.extend(invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in check(str(host)))
        secret = tls.get("secretName")
        if secret:
            errors.extend(dns_subdomain(f"spec.tls[{i}].secretName", str(secret)))
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errors.extend(dns_subdomain("spec.ingressClassName", str(class_name)))
    return errors


def validate_ingress_status(ing: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    lb = mapping(mapping(ing.get("status")).get("loadBalancer"))
    for i, entry in enumerate(items(lb.get("ingress"))):
        ip = entry.get("ip")
        if ip:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                errors.append(
                    invalid(
                        f"status.loadBalancer.ingress[{i}].ip", ip, "must be a valid IP address"
                    )
                )
    return errors


def _is_domain_prefixed_path(path: str, value: str) -> list[FieldError]:
    if not value:
        return [required(path)]
    parts = value.split("/", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    return [invalid(path, parts[0], m) for m in is_dns1123_subdomain(parts[0])]


def validate_ingress_class(ic: Obj) -> list[FieldError]:
    spec = mapping(ic.get("spec"))
    controller = str(spec.get("controller") or "")
    errors = _is_domain_prefixed_path("spec.controller", controller)
    if len(controller) > 250:
        errors.append(too_long("spec.controller", 250))
    return errors


def validate_ingress_class_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_ingress_class(new)
    new_c = mapping(new.get("spec")).get("controller")
    old_c = mapping(old.get("spec")).get("controller")
    if new_c != old_c:
        errors.append(invalid("spec.controller", new_c, "field is immutable"))
    return errors
