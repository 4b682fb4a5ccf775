"""The EndpointSlice controller, wired: Services, Pods, EndpointSlices (and Nodes, for zones)
→ a queue of Service keys → :func:`plan_slices` → API writes.

Handlers only enqueue: a Service change its own key; a Pod change the keys of the Services
whose selectors match its old or new labels (only when something a slice shows changed: IP,
readiness, labels, deletion, node, hostname); a slice change the key of its Service unless it
is the echo of our own write. ``reconcile`` refuses to plan from a slice cache older than our
last write (the ``EndpointSliceTracker`` of upstream): a stale cache would make it create
slices it already created. Writes go creates first, then updates, then deletes, so that a
watcher never sees an endpoint vanish before its new slice exists.

Every arrow here is a watch event, never a poll: a pod turning Ready reaches its slice within
one reconcile (milliseconds).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import ApiError, Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import ENDPOINTSLICES, NODES, PODS, SERVICES
from svcnet.api.wellknown import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, ZONE_LABEL
from svcnet.client.events import WARNING, EventRecorder
from svcnet.client.informer import (
    SERVICE_NAME_INDEX,
    FuncHandler,
    SharedInformerFactory,
    enqueue_handler,
    index_by_namespaced_label,
    meta_namespace_key,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpointslice.membership import Membership
from svcnet.controllers.endpointslice.plan import (
    SlicePlan,
    desired_endpoints,
    is_managed,
    plan_slices,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "endpointslice-controller"


def _rv_int(rv: Any) -> int | None:
    try:
        return int(str(rv))
    except ValueError:
        return None


def pod_view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What about a pod a slice or an Endpoints object shows (``podEndpointsChanged``)."""
    meta, spec, status = objects.meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or () if c.get("type") == "Ready"), None
    )
    ports = tuple(
        (p.get("name"), p.get("containerPort"), p.get("protocol"))
        for c in spec.get("containers") or ()
        for p in c.get("ports") or ()
    )
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        status.get("podIP"),
        tuple(p.get("ip") for p in status.get("podIPs") or ()),
        ready,
        status.get("phase"),
        bool(meta.get("deletionTimestamp")),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
        ports,
    )


class WriteTracker:
    """Our last writes per slice: to tell their echoes from others' changes and to notice a
    cache that has not caught up with them yet (upstream's ``EndpointSliceTracker``)."""

    def __init__(self) -> None:
        # service key → {slice key → resourceVersion we wrote, or None for "we deleted it"}.
        self._written: dict[str, dict[str, int | None]] = {}

    def wrote(self, service_key: str, obj: Mapping[str, Any]) -> None:
        self._written.setdefault(service_key, {})[meta_namespace_key(obj)] = _rv_int(
            objects.meta(obj).get("resourceVersion")
        )

    def deleted(self, service_key: str, slice_key: str) -> None:
        self._written.setdefault(service_key, {})[slice_key] = None

    def is_echo(self, service_key: str, obj: Mapping[str, Any]) -> bool:
        mine = self._written.get(service_key, {}).get(meta_namespace_key(obj))
        return mine is not None and mine == _rv_int(objects.meta(obj).get("resourceVersion"))

    def stale(self, service_key: str, lookup: Callable[[str], Mapping[str, Any] | None]) -> bool:
        """True while the cache misses one of our writes for this Service."""
        written = self._written.get(service_key)
        if not written:
            return False
        for key, mine in list(written.items()):
            cached = lookup(key)
            if mine is None:
                if cached is not None:
                    return True
                del written[key]
                continue
            if cached is None:
                return True
            have = _rv_int(objects.meta(cached).get("resourceVersion"))
            if have is not None and have < mine:
                return True
        return False

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)


class EndpointSliceController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder | None = None,
        *,
        workers: int = 4,
        max_endpoints_per_slice: int = 100,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.max_endpoints = max_endpoints_per_slice
        self.services = factory.informer_for(SERVICES)
        self.pods = factory.informer_for(PODS)
        self.slices = factory.informer_for(
            ENDPOINTSLICES,
            indexers={SERVICE_NAME_INDEX: index_by_namespaced_label(SERVICE_NAME_LABEL)},
        )
        self.nodes = factory.informer_for(NODES)
        self.membership = Membership(self.services, self.pods)
        self.tracker = WriteTracker()
        self._warned: dict[str, tuple[str, ...]] = {}
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=workers,
            informers=[self.services, self.pods, self.slices, self.nodes],
            recorder=recorder,
            clock=clock,
        )
        self.services.add_event_handler(enqueue_handler(self.controller.enqueue))
        self.pods.add_event_handler(
            FuncHandler(
                on_add=self._pod_changed_one,
                on_update=self._pod_updated,
                on_delete=lambda o: self._pod_changed_one(unwrap(o)),
            )
        )
        self.slices.add_event_handler(
            FuncHandler(
                on_add=self._slice_changed,
                on_update=lambda _o, n: self._slice_changed(n),
                on_delete=lambda o: self._slice_changed(unwrap(o), deleted=True),
            )
        )

    # -- handlers ----------------------------------------------------------------------------

    def _pod_changed_one(self, pod: Obj) -> None:
        for key in self.membership.services_for_pod(pod):
            self.controller.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if pod_view(old) == pod_view(new):
            return
        keys = set(self.membership.services_for_pod(new))
        if objects.meta(old).get("labels") != objects.meta(new).get("labels"):
            keys |= set(self.membership.services_for_pod(old))
        for key in sorted(keys):
            self.controller.enqueue(key)

    def _slice_changed(self, s: Obj, deleted: bool = False) -> None:
        if not is_managed(s):
            return
        svc = (objects.meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            return
        key = f"{objects.meta(s).get('namespace', '')}/{svc}"
        if not deleted and self.tracker.is_echo(key, s):
            return
        self.controller.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------------

    def _existing(self, key: str) -> list[Obj]:
        return [s for s in self.slices.store.by_index(SERVICE_NAME_INDEX, key) if is_managed(s)]

    async def reconcile(self, key: str) -> Result:
        svc = self.services.store.get(key)
        existing = self._existing(key)
        if self.tracker.stale(key, self.slices.store.get):
            # Our last write has not come back through the watch yet: planning now would
            # redo it. The echo re-enqueues the Service; the requeue is a safety net.
            return Result(requeue=True)
        if svc is None:
            # Deleted: its slices go (the garbage collector would too, via ownerReferences).
            self.membership.forget(key)
            self._warned.pop(key, None)
            for s in existing:
                await self._delete(key, s)
            return DONE
        sel = self.membership.selector(svc)
        if sel is None or (svc.get("spec") or {}).get("type") == "ExternalName":
            # Upstream: no selector, no managed endpoints; slices written by users are theirs.
            return DONE
        pods = self.membership.pods_for_service(svc)
        zones = {}
        for node_name in {str((p.get("spec") or {}).get("nodeName") or "") for p in pods}:
            node = self.nodes.store.get(node_name) if node_name else None
            zone = (objects.meta(node).get("labels") or {}).get(ZONE_LABEL) if node else None
            if zone:
                zones[node_name] = str(zone)
        desired = desired_endpoints(svc, pods, zones)
        self._warn_unresolved(key, svc, desired.unresolved_ports)
        plan = plan_slices(svc, desired, existing, max_endpoints=self.max_endpoints)
        try:
            await self.apply(key, plan, str(objects.meta(svc).get("namespace", "")))
        except ApiError as e:
            # Upstream's event, so that `kubectl describe service` shows why endpoints lag.
            if self.recorder is not None:
                self.recorder.event(
                    svc,
                    WARNING,
                    "FailedToUpdateEndpointSlices",
                    f"Error updating Endpoint Slices for Service {key}: {e}",
                )
            raise TemporaryError(f"service {key}: {e}") from e
        return DONE

    def _warn_unresolved(self, key: str, svc: Obj, unresolved: tuple[str, ...]) -> None:
        if self._warned.get(key, ()) == unresolved:
            return
        self._warned[key] = unresolved
        if unresolved and self.recorder is not None:
            # Upstream only logs this; an event makes "targetPort name no pod defines" visible
            # in `kubectl describe service`.
            names = ", ".join(f'"{n}"' for n in unresolved)
            self.recorder.event(
                svc,
                WARNING,
                "FailedToResolvePort",
                f"no selected pod defines a container port named {names} for the targetPort "
                f"of this Service: those pods get no endpoint port for it",
            )

    async def apply(self, key: str, plan: SlicePlan, namespace: str) -> None:
        for s in plan.create:
            created = await self.client.create(s, namespace=namespace)
            created.setdefault("metadata", {}).setdefault("namespace", namespace)
            self.tracker.wrote(key, created)
        for s in plan.update:
            try:
                updated = await self.client.update(s)
            except NotFound as e:
                raise TemporaryError(f"slice {objects.meta(s).get('name')} vanished: {e}") from e
            except Conflict as e:
                raise TemporaryError(f"slice {objects.meta(s).get('name')}: {e}") from e
            updated.setdefault("metadata", {}).setdefault("namespace", namespace)
            self.tracker.wrote(key, updated)
        for s in plan.delete:
            await self._delete(key, s)

    async def _delete(self, key: str, s: Mapping[str, Any]) -> None:
        m = objects.meta(s)
        with contextlib.suppress(NotFound):
            await self.client.delete(ENDPOINTSLICES, str(m.get("name")), str(m.get("namespace")))
        self.tracker.deleted(key, meta_namespace_key(s))

    async def run(self) -> None:
        await self.controller.run()


__all__ = ["MANAGED_BY_LABEL", "EndpointSliceController"]
