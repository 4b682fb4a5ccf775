"""Pure LoadBalancer address management, as MetalLB's controller and L2 speaker do it
(``internal/allocator``, ``controller/service.go``, ``speaker/layer2_controller.go``).

* :class:`Allocator` owns address pools (CIDRs or ``first-last`` ranges; the ``.0`` and
  ``.255`` of IPv4 /24s skipped, MetalLB's ``avoidBuggyIPs``) and hands each Service one
  address: the one it asked for (spec.loadBalancerIP, or the
  ``metallb.universe.tf/loadBalancerIPs`` annotation) when that is in a pool and free, else
  the lowest free one. No address is ever held by two Services (no IP sharing).
* :func:`elect_announcer` picks the node that answers ARP for an address: of the eligible
  nodes (Ready, not excluded from load balancers, and for ``externalTrafficPolicy: Local``
  hosting a ready endpoint), the one whose ``sha256(node + "#" + ip)`` is smallest —
  rendezvous hashing, so a node leaving moves only the addresses it announced.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.ranges import DEFAULT_LB_CIDR
from svcnet.api.wellknown import (
    EXCLUDE_FROM_LB_LABEL,
    LB_CLASS,
    LB_IPS_ANNOTATION,
)

DEFAULT_POOLS: dict[str, list[str]] = {"default": [DEFAULT_LB_CIDR]}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PoolError(ValueError):
    pass


def _buggy(ip: IPAddress) -> bool:
    """``ipConfusesBuggyFirmwares``: IPv4 addresses ending in .0 or .255."""
    return ip.version == 4 and int(ip) & 0xFF in (0, 255)


@dataclass(frozen=True)
class Pool:
    name: str
    ranges: tuple[tuple[IPAddress, IPAddress], ...]
    avoid_buggy_ips: bool = True

    @staticmethod
    def parse(name: str, specs: Sequence[str], avoid_buggy_ips: bool = True) -> Pool:
        ranges: list[tuple[IPAddress, IPAddress]] = []
        for spec in specs:
            try:
                if "-" in spec:
                    first_s, last_s = (s.strip() for s in spec.split("-", 1))
                    first, last = ipaddress.ip_address(first_s), ipaddress.ip_address(last_s)
                    if first.version != last.version or first > last:  # type: ignore[operator]
                        raise PoolError(f"pool {name}: invalid range {spec!r}")
                else:
                    net = ipaddress.ip_network(spec.strip(), strict=False)
                    first, last = net.network_address, net.broadcast_address
            except ValueError as e:
                raise PoolError(f"pool {name}: invalid address range {spec!r}: {e}") from e
            ranges.append((first, last))
        return Pool(name, tuple(ranges), avoid_buggy_ips)

    def contains(self, ip: IPAddress) -> bool:
        if self.avoid_buggy_ips and _buggy(ip):
            return False
        return any(
            first.version == ip.version and first <= ip <= last  # type: ignore[operator]
            for first, last in self.ranges
        )

    def addresses(self, version: int) -> Iterator[IPAddress]:
        for first, last in self.ranges:
            if first.version != version:
                continue
            for n in range(int(first), int(last) + 1):
                ip = ipaddress.ip_address(n)
                if not (self.avoid_buggy_ips and _buggy(ip)):
                    yield ip

    def size(self) -> int:
        return sum(1 for v in (4, 6) for _ in self.addresses(v))


def parse_pools(pools: Mapping[str, Sequence[str]], avoid_buggy_ips: bool = True) -> list[Pool]:
    return [Pool.parse(name, specs, avoid_buggy_ips) for name, specs in sorted(pools.items())]


POOLS_CONFIGMAP = "svcnet-lb-pools"
POOLS_NAMESPACE = "kube-system"


def pools_from_configmap(data: Mapping[str, str]) -> dict[str, list[str]]:
    """ConfigMap ``kube-system/svcnet-lb-pools``: one key per pool, its value CIDRs or
    ``first-last`` ranges separated by commas or newlines."""
    out: dict[str, list[str]] = {}
    for name, value in data.items():
        specs = [s.strip() for s in str(value).replace("\n", ",").split(",") if s.strip()]
        if specs:
            out[name] = specs
    return out


@dataclass(frozen=True)
class Allocated:
    ip: str
    pool: str


@dataclass(frozen=True)
class Failed:
    reason: str


class Allocator:
    """Service key → address; never one address for two Services."""

    def __init__(self, pools: Sequence[Pool]) -> None:
        self.pools = list(pools)
        self._by_service: dict[str, tuple[IPAddress, str]] = {}
        self._by_ip: dict[IPAddress, str] = {}

    def set_pools(self, pools: Sequence[Pool]) -> str | None:
        """Switch to new pools, unless an address already handed out would fall outside them
        (MetalLB refuses such a configuration rather than move live addresses)."""
        for ip, svc in sorted(self._by_ip.items(), key=lambda kv: str(kv[0])):
            if not any(p.contains(ip) for p in pools):
                return (
                    f'new config not compatible with assigned IPs: service "{svc}" cannot '
                    f'own "{ip}" under new config'
                )
        self.pools = list(pools)
        for svc, (ip, _pool) in list(self._by_service.items()):
            self._by_service[svc] = (ip, self.pool_for(ip) or "")
        return None

    def pool_for(self, ip: IPAddress) -> str | None:
        return next((p.name for p in self.pools if p.contains(ip)), None)

    def ip_of(self, service: str) -> str | None:
        got = self._by_service.get(service)
        return str(got[0]) if got else None

    def owner_of(self, ip: str) -> str | None:
        try:
            return self._by_ip.get(ipaddress.ip_address(ip))
        except ValueError:
            return None

    def in_use(self) -> dict[str, str]:
        return {str(ip): svc for ip, svc in self._by_ip.items()}

    def assign(self, service: str, ip_s: str) -> Allocated | Failed:
        """Give ``service`` exactly ``ip_s`` (its request, or what it held before a restart)."""
        try:
            ip = ipaddress.ip_address(ip_s)
        except ValueError:
            return Failed(f"invalid IP {ip_s!r}")
        pool = self.pool_for(ip)
        if pool is None:
            return Failed(f'"{ip}" is not allowed in config')
        owner = self._by_ip.get(ip)
        if owner is not None and owner != service:
            # MetalLB's words when the holder does not share its address.
            return Failed(
                f'can\'t change sharing key for "{service}", address also in use by {owner}'
            )
        self.release(service)
        self._by_service[service] = (ip, pool)
        self._by_ip[ip] = service
        return Allocated(str(ip), pool)

    def allocate(self, service: str, version: int = 4) -> Allocated | Failed:
        """The Service's current address, else the lowest free one of any pool."""
        held = self._by_service.get(service)
        if held is not None and held[0].version == version:
            return Allocated(str(held[0]), held[1])
        for pool in self.pools:
            for ip in pool.addresses(version):
                if ip not in self._by_ip:
                    return self.assign(service, str(ip))
        return Failed("no available IPs")

    def release(self, service: str) -> str | None:
        held = self._by_service.pop(service, None)
        if held is None:
            return None
        self._by_ip.pop(held[0], None)
        return str(held[0])


# -- Services ------------------------------------------------------------------------------


def wants_address(service: ObjView) -> bool:
    """A LoadBalancer Service of no class, or of ours."""
    spec = objects.spec(service)
    return spec.get("type") == "LoadBalancer" and spec.get("loadBalancerClass") in (
        None,
        "",
        LB_CLASS,
    )


def requested_ips(service: ObjView) -> list[str]:
    ann = (objects.meta(service).get("annotations") or {}).get(LB_IPS_ANNOTATION)
    if ann:
        return [s.strip() for s in str(ann).split(",") if s.strip()]
    ip = objects.spec(service).get("loadBalancerIP")
    return [str(ip)] if ip else []


def ip_version(service: ObjView) -> int:
    families = objects.spec(service).get("ipFamilies") or ["IPv4"]
    return 6 if families[0] == "IPv6" else 4


def ingress_for(ip: str | None) -> list[dict[str, Any]]:
    return [{"ip": ip, "ipMode": "VIP"}] if ip else []


def current_ingress(service: ObjView) -> list[Any]:
    return list(((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])


def allocation_failed_message(service_key: str, reason: str) -> str:
    return f'Failed to allocate IP for "{service_key}": {reason}'


# -- who announces -------------------------------------------------------------------------


def node_is_eligible(node: ObjView) -> bool:
    if EXCLUDE_FROM_LB_LABEL in (objects.meta(node).get("labels") or {}):
        return False
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def elect_announcer(ip: str, candidates: Sequence[str]) -> str | None:
    if not candidates:
        return None
    return min(candidates, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest())


def local_endpoint_nodes(slices: Sequence[ObjView]) -> set[str]:
    """Nodes that host a ready endpoint (where a Local-policy address may be announced)."""
    out = set()
    for s in slices:
        for ep in s.get("endpoints") or ():
            if (ep.get("conditions") or {}).get("ready") is not False and ep.get("nodeName"):
                out.add(str(ep["nodeName"]))
    return out


def announcer_for(
    service: ObjView, ip: str, nodes: Sequence[ObjView], slices: Sequence[ObjView]
) -> str | None:
    names = [str(objects.meta(n).get("name")) for n in nodes if node_is_eligible(n)]
    if objects.spec(service).get("externalTrafficPolicy") == "Local":
        hosting = local_endpoint_nodes(slices)
        names = [n for n in names if n in hosting]
    return elect_announcer(ip, names)
