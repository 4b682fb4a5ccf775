"""The proxy's slim view of Services and EndpointSlices, converted once at the door.

API dicts become frozen dataclasses with everything the rule builder needs precomputed (the
nft literal of the protocol, the service port's name), so that building 10,000 Services' rules
never re-reads a dict. Headless and ExternalName Services convert to nothing: they get no rules
(kube-proxy: ``ShouldSkipService``).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.api.wellknown import SERVICE_NAME_LABEL

# kube-proxy's default ("sessionAffinityConfig.clientIP.timeoutSeconds" defaults to 10800).
DEFAULT_AFFINITY_TIMEOUT = 10800


class Protocol(enum.Enum):
    """The nft literal of each Service protocol."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"

    @classmethod
    def parse(cls, text: str | None) -> Protocol:
        return cls((text or "TCP").lower())


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service, with all the addresses it is reachable on."""

    service: ServiceKey
    port_name: str
    protocol: Protocol
    port: int
    cluster_ip: str
    node_port: int  # 0: none
    external_ips: tuple[str, ...]
    load_balancer_ips: tuple[str, ...]
    external_policy_local: bool
    internal_policy_local: bool
    affinity_timeout: int | None  # None: no session affinity
    health_check_node_port: int  # 0: none
    # spec.loadBalancerSourceRanges (IPv4, normalised); they restrict the LoadBalancer IPs only
    # (not externalIPs, not NodePorts), as kube-proxy does. Empty: every source.
    source_ranges: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """``namespace/name:port`` as kube-proxy's ServicePortName prints it."""
        return f"{self.service}:{self.port_name}"

    @property
    def proto(self) -> str:
        return self.protocol.value

    @property
    def external_addresses(self) -> tuple[str, ...]:
        return self.external_ips + self.load_balancer_ips

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One endpoint of one service port (address . port), with its conditions."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""


ServicePorts = tuple[ServicePort, ...]
# port name -> endpoints, merged over all slices of a Service.
EndpointsByPort = Mapping[tuple[str, Protocol], tuple[Endpoint, ...]]


def _source_ranges(ranges: Iterable[Any]) -> tuple[str, ...]:
    """IPv4 CIDRs, host bits cleared (kube-proxy parses them the same lenient way)."""
    out: set[str] = set()
    for r in ranges:
        try:
            net = ipaddress.ip_network(str(r).strip(), strict=False)
        except ValueError:
            continue  # the API server validates them; a bad one is ignored, not fatal
        if net.version == 4:
            out.add(str(net))
    return tuple(sorted(out))


def service_ports(svc: Mapping[str, Any]) -> ServicePorts:
    """The Service's ports as the proxy sees them; empty when it gets no rules."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    key = ServiceKey(meta.get("namespace") or "default", meta.get("name") or "")
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") == "ExternalName" or cluster_ip in ("", "None"):
        return ()
    if ":" in cluster_ip:  # IPv6 is not served by this IPv4 table.
        return ()
    stype = spec.get("type") or "ClusterIP"
    lb_ips: tuple[str, ...] = ()
    if stype == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(sorted({i["ip"] for i in ingress if i.get("ip") and ":" not in i["ip"]}))
    external_ips = tuple(sorted({ip for ip in spec.get("externalIPs") or [] if ":" not in ip}))
    # externalTrafficPolicy only means something for Services reachable from outside.
    external_local = spec.get("externalTrafficPolicy") == "Local" and (
        stype in ("NodePort", "LoadBalancer") or bool(external_ips)
    )
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    affinity: int | None = None
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
        affinity = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    hc = int(spec.get("healthCheckNodePort") or 0) if external_local else 0
    source_ranges = _source_ranges(spec.get("loadBalancerSourceRanges") or ()) if lb_ips else ()
    out: list[ServicePort] = []
    for p in spec.get("ports") or []:
        node_port = int(p.get("nodePort") or 0) if stype in ("NodePort", "LoadBalancer") else 0
        out.append(
            ServicePort(
                service=key,
                port_name=p.get("name") or "",
                protocol=Protocol.parse(p.get("protocol")),
                port=int(p["port"]),
                cluster_ip=cluster_ip,
                node_port=node_port,
                external_ips=external_ips,
                load_balancer_ips=lb_ips,
                external_policy_local=external_local,
                internal_policy_local=internal_local,
                affinity_timeout=affinity,
                health_check_node_port=hc,
                source_ranges=source_ranges,
            )
        )
    return tuple(out)


def slice_service(slc: Mapping[str, Any]) -> ServiceKey | None:
    meta = slc.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not name:
        return None
    return ServiceKey(meta.get("namespace") or "default", name)


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """One EndpointSlice, reduced to (port name, protocol) -> endpoints."""

    service: ServiceKey
    name: str
    endpoints: Mapping[tuple[str, Protocol], tuple[Endpoint, ...]]


def slice_info(slc: Mapping[str, Any]) -> SliceInfo | None:
    svc = slice_service(slc)
    if svc is None or slc.get("addressType", "IPv4") != "IPv4":
        return None
    by_port: dict[tuple[str, Protocol], tuple[Endpoint, ...]] = {}
    eps = slc.get("endpoints") or []
    for p in slc.get("ports") or []:
        if p.get("port") is None:
            continue
        port = int(p["port"])
        items: list[Endpoint] = []
        for ep in eps:
            cond = ep.get("conditions") or {}
            # EndpointSlice API: a nil "ready" means ready; serving defaults to ready.
            ready = cond.get("ready") is not False
            serving = cond.get("serving", ready) is not False
            terminating = cond.get("terminating") is True
            for addr in ep.get("addresses") or []:
                items.append(
                    Endpoint(addr, port, ready, serving, terminating, ep.get("nodeName") or "")
                )
        by_port[(p.get("name") or "", Protocol.parse(p.get("protocol")))] = tuple(items)
    return SliceInfo(svc, (slc.get("metadata") or {}).get("name") or "", by_port)


def merge_slices(slices: Iterable[SliceInfo]) -> dict[tuple[str, Protocol], tuple[Endpoint, ...]]:
    """All slices of one Service merged; an address listed twice keeps its first conditions."""
    merged: dict[tuple[str, Protocol], dict[tuple[str, int], Endpoint]] = {}
    for s in sorted(slices, key=lambda s: s.name):
        for port, eps in s.endpoints.items():
            bucket = merged.setdefault(port, {})
            for ep in eps:
                bucket.setdefault((ep.ip, ep.port), ep)
    return {port: tuple(sorted(b.values())) for port, b in merged.items()}


def usable_endpoints(eps: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """Ready endpoints; only when none is ready, the terminating ones still serving.

    kube-proxy's "ProxyTerminatingEndpoints": a rolling update must not refuse connections in
    the moment when every old pod terminates and no new one is ready yet.
    """
    all_eps = tuple(eps)
    ready = tuple(e for e in all_eps if e.ready)
    if ready:
        return ready
    return tuple(e for e in all_eps if e.serving and e.terminating)
