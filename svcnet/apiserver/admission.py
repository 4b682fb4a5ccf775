"""Service admission: ClusterIP and NodePort allocation, as upstream's service REST does it.

A create or update runs inside an :class:`AllocationTxn`: everything it allocates is recorded
and released again if the write fails or is a dry run, so a failed create never leaks an IP.
What an update gives up (old NodePorts, the ClusterIP of a Service turned ExternalName) is
released only after the write succeeded.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.errors import FieldError, FieldErrorType, InternalError, Invalid
from svcnet.apiserver.allocation import (
    AllocationError,
    AllocationErrorKind,
    IPAllocator,
    PortAllocator,
)

log = logging.getLogger(__name__)

HEADLESS = "None"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


class _GoStrings:
    """Prints a list as Go's %#v of a []string, the way upstream's field errors show it."""

    def __init__(self, values: list[str]) -> None:
        self.values = values

    def __str__(self) -> str:
        return "[]string{" + ", ".join(f'"{v}"' for v in self.values) + "}"


@dataclass
class AllocationTxn:
    """What one write of a Service allocated (given back on rollback) and what it gives up
    (given back on commit), ClusterIPs and NodePorts alike: one transaction, ended once
    (upstream's ``metaTransaction`` of the IP and port transactions)."""

    owner: ServiceAllocator
    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    release_ips_after: list[str] = field(default_factory=list)
    release_ports_after: list[int] = field(default_factory=list)

    def finish(self, success: bool) -> None:
        """Commit when the write happened, roll back otherwise (upstream's FinishFunc)."""
        if success:
            for ip in self.release_ips_after:
                self.owner.ip.release(ip)
            for port in self.release_ports_after:
                self.owner.ports.release(port)
        else:
            for ip in self.ips:
                self.owner.ip.release(ip)
            for port in self.ports:
                self.owner.ports.release(port)
        # Ending twice must not give back values another Service holds by then.
        self.ips.clear()
        self.ports.clear()
        self.release_ips_after.clear()
        self.release_ports_after.clear()

    def commit(self) -> None:
        self.finish(True)

    def rollback(self) -> None:
        self.finish(False)


def _node_ports(svc: dict[str, Any]) -> list[int]:
    spec = svc.get("spec") or {}
    out = [int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")]
    if spec.get("healthCheckNodePort"):
        out.append(int(spec["healthCheckNodePort"]))
    return out


def _cluster_ips(svc: dict[str, Any]) -> list[str]:
    spec = svc.get("spec") or {}
    ips = list(spec.get("clusterIPs") or [])
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip and ip != HEADLESS]


def _wants_node_ports(spec: dict[str, Any]) -> bool:
    t = spec.get("type") or "ClusterIP"
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _wants_health_check_port(spec: dict[str, Any]) -> bool:
    return (spec.get("type") == "LoadBalancer") and (spec.get("externalTrafficPolicy") == "Local")


def well_known_ips(service_cidr: str) -> tuple[str, str]:
    """The ``kubernetes`` Service's IP (first) and the cluster DNS IP (tenth) of the range."""
    net = ipaddress.ip_network(service_cidr)
    return str(net.network_address + 1), str(net.network_address + 10)


class ServiceAllocator:
    """The ClusterIP and NodePort allocators of one API server."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int]) -> None:
        self.service_cidr = service_cidr
        self.ip = IPAllocator(service_cidr, well_known_ips(service_cidr))
        self.ports = PortAllocator(*node_port_range)

    def rebuild(self, services: Iterable[dict[str, Any]]) -> None:
        """Mark what stored Services hold (at startup, before serving)."""
        for svc in services:
            for ip in _cluster_ips(svc):
                try:
                    self.ip.allocate_specific(ip)
                except AllocationError as exc:
                    log.warning("stored service %s: ClusterIP %s: %s", _name(svc), ip, exc)
            for port in _node_ports(svc):
                try:
                    self.ports.allocate_specific(port)
                except AllocationError as exc:
                    log.warning("stored service %s: nodePort %s: %s", _name(svc), port, exc)

    def admit_create(self, svc: dict[str, Any]) -> AllocationTxn:
        txn = AllocationTxn(self)
        try:
            self._allocate(svc, None, txn)
        except BaseException:
            txn.rollback()
            raise
        return txn

    def admit_update(self, new: dict[str, Any], old: dict[str, Any]) -> AllocationTxn:
        txn = AllocationTxn(self)
        try:
            self._allocate(new, old, txn)
        except BaseException:
            txn.rollback()
            raise
        return txn

    def release(self, svc: dict[str, Any]) -> None:
        """Give back what a deleted Service held."""
        for ip in _cluster_ips(svc):
            self.ip.release(ip)
        for port in _node_ports(svc):
            self.ports.release(port)

    # -- internals -------------------------------------------------------------------------

    def _allocate(
        self, svc: dict[str, Any], old: dict[str, Any] | None, txn: AllocationTxn
    ) -> None:
        spec = svc.setdefault("spec", {})
        errors: list[FieldError] = []
        self._allocate_cluster_ip(spec, old, txn, errors)
        self._allocate_node_ports(spec, old, txn, errors)
        if errors:
            meta = svc.get("metadata") or {}
            raise Invalid("Service", meta.get("name", ""), errors)

    def _allocate_cluster_ip(
        self,
        spec: dict[str, Any],
        old: dict[str, Any] | None,
        txn: AllocationTxn,
        errors: list[FieldError],
    ) -> None:
        old_ips = _cluster_ips(old) if old else []
        svc_type = spec.get("type") or "ClusterIP"
        if svc_type == "ExternalName":
            # An ExternalName Service has no ClusterIP; one it held before is given back.
            txn.release_ips_after.extend(old_ips)
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        requested = spec.get("clusterIP") or ""
        if not requested and spec.get("clusterIPs"):
            requested = spec["clusterIPs"][0]
        if requested == HEADLESS:
            spec["clusterIP"] = HEADLESS
            spec["clusterIPs"] = [HEADLESS]
            return
        if old_ips and (not requested or requested == old_ips[0]):
            spec["clusterIP"] = old_ips[0]
            spec["clusterIPs"] = list(old_ips)
            return
        try:
            if requested:
                self.ip.allocate_specific(requested)
                ip = requested
            else:
                ip = str(self.ip.allocate())
        except AllocationError as exc:
            if exc.kind is AllocationErrorKind.FULL:
                raise InternalError(exc.detail) from exc
            errors.append(
                FieldError(
                    FieldErrorType.INVALID, "spec.clusterIPs", exc.detail, _GoStrings([requested])
                )
            )
            return
        txn.ips.append(ip)
        txn.release_ips_after.extend(i for i in old_ips if i != ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _allocate_node_ports(
        self,
        spec: dict[str, Any],
        old: dict[str, Any] | None,
        txn: AllocationTxn,
        errors: list[FieldError],
    ) -> None:
        old_ports = set(_node_ports(old)) if old else set()
        kept: set[int] = set()
        ports = spec.get("ports") or []
        if _wants_node_ports(spec):
            # The same nodePort may serve one port number over several protocols.
            by_number: dict[int, int] = {}
            for i, port in enumerate(ports):
                requested = int(port.get("nodePort") or 0)
                if requested and (requested in old_ports or requested in kept):
                    kept.add(requested)
                    continue
                if not requested and port.get("port") in by_number:
                    port["nodePort"] = by_number[port["port"]]
                    continue
                got = self._one_port(requested, f"spec.ports[{i}].nodePort", txn, errors)
                if got:
                    port["nodePort"] = got
                    kept.add(got)
                    by_number[port.get("port", 0)] = got
        else:
            for port in ports:
                port.pop("nodePort", None)
        if _wants_health_check_port(spec):
            requested = int(spec.get("healthCheckNodePort") or 0)
            if requested and requested in old_ports:
                kept.add(requested)
            else:
                got = self._one_port(requested, "spec.healthCheckNodePort", txn, errors)
                if got:
                    spec["healthCheckNodePort"] = got
                    kept.add(got)
        else:
            spec.pop("healthCheckNodePort", None)
        txn.release_ports_after.extend(sorted(old_ports - kept))

    def _one_port(
        self, requested: int, path: str, txn: AllocationTxn, errors: list[FieldError]
    ) -> int:
        try:
            if requested:
                self.ports.allocate_specific(requested)
                got = requested
            else:
                got = int(self.ports.allocate())
        except AllocationError as exc:
            if exc.kind is AllocationErrorKind.FULL:
                raise InternalError(exc.detail) from exc
            errors.append(FieldError(FieldErrorType.INVALID, path, exc.detail, requested))
            return 0
        txn.ports.append(got)
        return got


def _name(svc: dict[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
