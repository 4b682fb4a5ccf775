"""discovery.k8s.io/v1 EndpointSlice validation: ``pkg/apis/discovery/validation``."""

from __future__ import annotations

import ipaddress

from svcnet.api.errors import FieldError, duplicate, invalid, not_supported, required
from svcnet.api.names import is_dns1123_subdomain
from svcnet.api.objects import Obj
from svcnet.api.validation.fields import (
    dns_label,
    dns_subdomain,
    items,
    port_num,
    protocol,
    too_many,
)

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000


def _validate_address(address: str, address_type: str, path: str) -> list[FieldError]:
    if address_type == "FQDN":
        msgs = is_dns1123_subdomain(address.removesuffix("."))
        if msgs:
            return [invalid(path, address, ",".join(msgs))]
        if "." not in address.removesuffix("."):
            return [
                invalid(
                    path, address, "should be a domain with at least two segments separated by dots"
                )
            ]
        return []
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    version = 4 if address_type == "IPv4" else 6
    if ip is None or ip.version != version:
        return [invalid(path, address, f"must be a valid {address_type} address")]
    return []


def validate_endpoint_slice(es: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    address_type = es.get("addressType")
    if not address_type:
        errors.append(required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errors.append(not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = items(es.get("endpoints"))
    if len(endpoints) > MAX_ENDPOINTS:
        errors.append(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        return errors
    for i, ep in enumerate(endpoints):
        p = f"endpoints[{i}]"
        addresses = ep.get("addresses") or []
        if not addresses:
            errors.append(required(f"{p}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errors.append(too_many(f"{p}.addresses", len(addresses), MAX_ADDRESSES))
        elif address_type in ADDRESS_TYPES:
            for j, address in enumerate(addresses):
                errors.extend(
                    _validate_address(str(address), str(address_type), f"{p}.addresses[{j}]")
                )
        if ep.get("nodeName"):
            errors.extend(dns_subdomain(f"{p}.nodeName", str(ep["nodeName"])))
        if ep.get("hostname"):
            errors.extend(dns_label(f"{p}.hostname", str(ep["hostname"])))
        conditions = ep.get("conditions")
        if conditions is not None and not isinstance(conditions, dict):
            errors.append(invalid(f"{p}.conditions", str(conditions), "must be an object"))
    ports = items(es.get("ports"))
    if len(ports) > MAX_PORTS:
        errors.append(too_many("ports", len(ports), MAX_PORTS))
        return errors
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            errors.extend(dns_label(f"{p}.name", str(name)))
        if name in names:
            errors.append(duplicate(f"{p}.name", name))
        names.add(str(name))
        errors.extend(protocol(f"{p}.protocol", port.get("protocol")))
        if port.get("port") is not None:
            errors.extend(port_num(f"{p}.port", port["port"]))
    return errors


def validate_endpoint_slice_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_endpoint_slice(new)
    if new.get("addressType") != old.get("addressType"):
        errors.append(invalid("addressType", new.get("addressType"), "field is immutable"))
    return errors


__all__ = ["ADDRESS_TYPES", "validate_endpoint_slice", "validate_endpoint_slice_update"]
