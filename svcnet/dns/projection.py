"""Slim projections of the API objects the DNS server needs, built when they arrive.

Pure. Like CoreDNS plugin/kubernetes/object: a Service or an EndpointSlice dict from the API is
converted once, at the door, into a frozen dataclass holding only what answers need. Names are
lowercased here, so the record table never lowercases per query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from svcnet.api.wellknown import SERVICE_NAME_LABEL


@dataclass(frozen=True, slots=True)
class PortInfo:
    name: str  # "" for an unnamed port
    protocol: str  # "TCP", "UDP", "SCTP"
    port: int  # -1: a slice that declares no ports (CoreDNS's marker)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    headless: bool = False
    external_name: str = ""
    ports: tuple[PortInfo, ...] = ()
    publish_not_ready: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    addresses: tuple[str, ...]
    hostname: str = ""
    ready: bool = True
    serving: bool = True
    node_name: str = ""
    target_pod: str = ""


@dataclass(frozen=True, slots=True)
class EndpointSliceInfo:
    namespace: str
    name: str
    service: str  # from the kubernetes.io/service-name label
    address_type: str = "IPv4"
    endpoints: tuple[EndpointInfo, ...] = ()
    ports: tuple[PortInfo, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def service_key(self) -> tuple[str, str]:
        return (self.namespace, self.service)


def _map(obj: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(obj: Mapping[str, object], key: str) -> list[object]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def _str(obj: Mapping[str, object], key: str, default: str = "") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else default


def _int(obj: Mapping[str, object], key: str, default: int) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _ports(items: list[object], default_port: int | None) -> tuple[PortInfo, ...]:
    out: list[PortInfo] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        port = _int(item, "port", -1 if default_port is None else default_port)
        out.append(PortInfo(_str(item, "name").lower(), _str(item, "protocol", "TCP"), port))
    return tuple(out)


def service_from_api(obj: Mapping[str, object]) -> ServiceInfo:
    meta = _map(obj, "metadata")
    spec = _map(obj, "spec")
    svc_type = _str(spec, "type", "ClusterIP")
    cluster_ip = _str(spec, "clusterIP")
    ips = [x for x in _list(spec, "clusterIPs") if isinstance(x, str)]
    if not ips and cluster_ip:
        ips = [cluster_ip]
    headless = cluster_ip == "None" or ips == ["None"]
    if headless or svc_type == "ExternalName":
        ips = []
    return ServiceInfo(
        namespace=_str(meta, "namespace", "default").lower(),
        name=_str(meta, "name").lower(),
        type=svc_type,
        cluster_ips=tuple(ip for ip in ips if ip and ip != "None"),
        headless=headless and svc_type != "ExternalName",
        external_name=_str(spec, "externalName").rstrip(".").lower()
        if svc_type == "ExternalName"
        else "",
        ports=_ports(_list(spec, "ports"), 0),
        publish_not_ready=spec.get("publishNotReadyAddresses") is True,
    )


def _endpoint(item: Mapping[str, object]) -> EndpointInfo:
    cond = _map(item, "conditions")
    # Per the EndpointSlice API a missing condition means "unknown", read as ready/serving.
    ready = cond.get("ready") is not False
    serving = cond.get("serving") is not False if "serving" in cond else ready
    target = _map(item, "targetRef")
    target_name = _str(target, "name") if _str(target, "kind", "Pod") == "Pod" else ""
    return EndpointInfo(
        addresses=tuple(a for a in _list(item, "addresses") if isinstance(a, str)),
        hostname=_str(item, "hostname").lower(),
        ready=ready,
        serving=serving,
        node_name=_str(item, "nodeName"),
        target_pod=target_name,
    )


def endpoint_slice_from_api(obj: Mapping[str, object]) -> EndpointSliceInfo | None:
    """The projection of an EndpointSlice, or None when it belongs to no Service."""
    meta = _map(obj, "metadata")
    labels = _map(meta, "labels")
    service = _str(labels, SERVICE_NAME_LABEL)
    if not service:
        return None
    return EndpointSliceInfo(
        namespace=_str(meta, "namespace", "default").lower(),
        name=_str(meta, "name"),
        service=service.lower(),
        address_type=_str(obj, "addressType", "IPv4"),
        endpoints=tuple(_endpoint(e) for e in _list(obj, "endpoints") if isinstance(e, Mapping)),
        # A slice port without a port number means "all ports"; CoreDNS then uses -1.
        ports=_ports(_list(obj, "ports"), None),
    )


def namespace_from_api(obj: Mapping[str, object]) -> str:
    return _str(_map(obj, "metadata"), "name").lower()
