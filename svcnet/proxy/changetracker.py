"""Pending changes of Services and their endpoints, per Service, drained by one sync.

kube-proxy's ServiceChangeTracker / EndpointsChangeTracker, folded into one: informer handlers
only call :meth:`ChangeTracker.upsert_service` & co., which convert the object at the door and
record, per Service, the snapshot it had at the last drain (``previous``) and now
(``current``). A change that is undone before the next sync (an endpoint flapping, an update
that changes nothing the proxy reads) cancels out and costs no nft transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.proxy.model import (
    Endpoint,
    Protocol,
    ServiceKey,
    ServicePort,
    ServicePorts,
    SliceInfo,
    merge_slices,
    service_ports,
    slice_info,
    slice_service,
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the rules of one Service depend on."""

    ports: ServicePorts
    endpoints: tuple[tuple[tuple[str, Protocol], tuple[Endpoint, ...]], ...]

    def port_endpoints(self) -> tuple[tuple[ServicePort, tuple[Endpoint, ...]], ...]:
        """(service port, its endpoints) pairs: the rule builder's input for this Service."""
        eps = dict(self.endpoints)
        return tuple((sp, eps.get((sp.port_name, sp.protocol), ())) for sp in self.ports)


@dataclass(frozen=True, slots=True)
class Change:
    previous: Snapshot | None
    current: Snapshot | None


def _key_of(obj: Mapping[str, Any]) -> ServiceKey:
    meta = obj.get("metadata") or {}
    return ServiceKey(meta.get("namespace") or "default", meta.get("name") or "")


class ChangeTracker:
    def __init__(self) -> None:
        self._ports: dict[ServiceKey, ServicePorts] = {}
        self._slices: dict[ServiceKey, dict[str, SliceInfo]] = {}
        self._pending: dict[ServiceKey, Snapshot | None] = {}  # key -> snapshot at last drain

    # --- recording (called by informer handlers) ----------------------------------------------

    def upsert_service(self, obj: Mapping[str, Any]) -> None:
        key = _key_of(obj)
        self._record(key, lambda: self._ports.__setitem__(key, service_ports(obj)))

    def delete_service(self, obj: Mapping[str, Any]) -> None:
        key = _key_of(obj)
        self._record(key, lambda: self._ports.pop(key, None))

    def upsert_slice(self, obj: Mapping[str, Any]) -> None:
        info = slice_info(obj)
        if info is None:
            return
        self._record(
            info.service,
            lambda: self._slices.setdefault(info.service, {}).__setitem__(info.name, info),
        )

    def delete_slice(self, obj: Mapping[str, Any]) -> None:
        svc = slice_service(obj)
        if svc is None:
            return
        name = (obj.get("metadata") or {}).get("name") or ""

        def remove() -> None:
            slices = self._slices.get(svc, {})
            slices.pop(name, None)
            if not slices:
                self._slices.pop(svc, None)

        self._record(svc, remove)

    def _record(self, key: ServiceKey, mutate: Callable[[], object]) -> None:
        before = self.snapshot(key)
        mutate()
        if key not in self._pending:
            self._pending[key] = before
        if self._pending[key] == self.snapshot(key):
            del self._pending[key]  # the change undid itself

    # --- reading (called by the sync loop) ----------------------------------------------------

    def snapshot(self, key: ServiceKey) -> Snapshot | None:
        ports = self._ports.get(key)
        if not ports:
            return None  # absent, headless or ExternalName: no rules
        merged = merge_slices(self._slices.get(key, {}).values())
        return Snapshot(
            ports, tuple(sorted(merged.items(), key=lambda kv: (kv[0][0], kv[0][1].value)))
        )

    def snapshots(self) -> dict[ServiceKey, Snapshot]:
        out = {}
        for key in self._ports:
            snap = self.snapshot(key)
            if snap is not None:
                out[key] = snap
        return out

    def pending(self) -> int:
        return len(self._pending)

    def drain(self) -> dict[ServiceKey, Change]:
        """Every Service changed since the last drain, as (previous, current); then forget them."""
        out = {key: Change(prev, self.snapshot(key)) for key, prev in self._pending.items()}
        self._pending.clear()
        return out
