"""LoadBalancer IPAM, wired: Services, Nodes and EndpointSlices → a queue of Service keys →
the :class:`Allocator` → status.loadBalancer.ingress and the announcing-node annotation.

On start, before anything is handed out, the addresses Services already show in their status
are taken back (oldest Service first), so a restart never moves or doubles an address. A
Service that cannot get one stays pending with an ``AllocationFailed`` Warning event saying
why, and is retried whenever an address is released. A change of a node's readiness
re-elects at once the announcer of every address (no polling): how fast a dead node's
addresses move is the node lifecycle controller's detection time plus a few milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from svcnet.api import objects
from svcnet.api.errors import Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import CONFIGMAPS, ENDPOINTSLICES, NODES, SERVICES
from svcnet.api.wellknown import LB_ANNOUNCE_ANNOTATION, LB_POOL_ANNOTATION, SERVICE_NAME_LABEL
from svcnet.client.events import NORMAL, WARNING, EventRecorder
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
from svcnet.controllers.lbipam.plan import (
    DEFAULT_POOLS,
    POOLS_CONFIGMAP,
    POOLS_NAMESPACE,
    Allocated,
    Allocator,
    Failed,
    PoolError,
    allocation_failed_message,
    announcer_for,
    current_ingress,
    ingress_for,
    ip_version,
    node_is_eligible,
    parse_pools,
    pools_from_configmap,
    requested_ips,
    wants_address,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "svcnet-lb-controller"


class LoadBalancerIpam:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        pools: Mapping[str, Sequence[str]] | None = None,
        recorder: EventRecorder | None = None,
        *,
        avoid_buggy_ips: bool = True,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.avoid_buggy_ips = avoid_buggy_ips
        self.default_pools = parse_pools(pools or DEFAULT_POOLS, avoid_buggy_ips)
        self.allocator = Allocator(self.default_pools)
        self.config_error: str | None = None
        self._started = False
        self.services = factory.informer_for(SERVICES)
        self.nodes = factory.informer_for(NODES)
        self.slices = factory.informer_for(
            ENDPOINTSLICES,
            indexers={SERVICE_NAME_INDEX: index_by_namespaced_label(SERVICE_NAME_LABEL)},
        )
        # The pools may also come from a ConfigMap, which then replaces the constructor's.
        self.config = factory.informer_for(
            CONFIGMAPS, POOLS_NAMESPACE, field_selector=f"metadata.name={POOLS_CONFIGMAP}"
        )
        self.pending: set[str] = set()
        self._failed: dict[str, str] = {}
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=1,
            informers=[self.services, self.nodes, self.slices, self.config],
            recorder=recorder,
            clock=clock,
        )
        self.services.add_event_handler(enqueue_handler(self.controller.enqueue))
        self.nodes.add_event_handler(
            FuncHandler(
                on_add=lambda _n: self._reelect_all(),
                on_update=self._node_updated,
                on_delete=lambda _n: self._reelect_all(),
            )
        )
        self.slices.add_event_handler(
            FuncHandler(
                on_add=self._slice_changed,
                on_update=lambda _o, n: self._slice_changed(n),
                on_delete=lambda o: self._slice_changed(unwrap(o)),
            )
        )

        self.config.add_event_handler(
            FuncHandler(
                on_add=lambda _o: self._config_changed(),
                on_update=lambda _o, _n: self._config_changed(),
                on_delete=lambda _o: self._config_changed(),
            )
        )

    # -- handlers ----------------------------------------------------------------------------

    def _config_changed(self) -> None:
        if self._started:
            self.apply_config()
            for svc in self.services.store.list():
                if wants_address(svc):
                    self.controller.enqueue(meta_namespace_key(svc))

    def apply_config(self) -> None:
        """Pools from the ConfigMap when there is one, else the constructor's. A bad or
        incompatible configuration is refused and logged; the pools in force stay."""
        cm = self.config.store.get(f"{POOLS_NAMESPACE}/{POOLS_CONFIGMAP}")
        try:
            pools = (
                parse_pools(pools_from_configmap(cm.get("data") or {}), self.avoid_buggy_ips)
                if cm is not None
                else self.default_pools
            )
        except PoolError as e:
            self.config_error = str(e)
            log.error("lbipam: ConfigMap %s/%s refused: %s", POOLS_NAMESPACE, POOLS_CONFIGMAP, e)
            return
        error = self.allocator.set_pools(pools)
        self.config_error = error
        if error is not None:
            log.error("lbipam: pools not changed: %s", error)
        else:
            log.info("lbipam: pools %s", ", ".join(p.name for p in pools))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_is_eligible(old) != node_is_eligible(new):
            self._reelect_all()

    def _reelect_all(self) -> None:
        for key in sorted(self.allocator.in_use().values()):
            self.controller.enqueue(key)

    def _slice_changed(self, s: Obj) -> None:
        svc = (objects.meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            return
        key = f"{objects.meta(s).get('namespace', '')}/{svc}"
        cached = self.services.store.get(key)
        # Only Local-policy addresses follow their endpoints.
        if (
            cached is not None
            and (cached.get("spec") or {}).get("externalTrafficPolicy") == "Local"
        ):
            self.controller.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------------

    def _released(self) -> None:
        for key in sorted(self.pending):
            self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result:
        svc = self.services.store.get(key)
        if svc is None:
            self.pending.discard(key)
            self._failed.pop(key, None)
            if self.allocator.release(key) is not None:
                self._released()
            return DONE
        if not wants_address(svc):
            self.pending.discard(key)
            self._failed.pop(key, None)
            held = self.allocator.release(key)
            if held is not None:
                self._released()
                await self._write(svc, None, None, None)
            return DONE
        result = self._allocate(key, svc)
        if isinstance(result, Failed):
            self.pending.add(key)
            if self._failed.get(key) != result.reason:
                self._failed[key] = result.reason
                message = allocation_failed_message(key, result.reason)
                log.warning("lbipam: %s", message)
                if self.recorder is not None:
                    self.recorder.event(svc, WARNING, "AllocationFailed", message)
            await self._write(svc, None, None, None)
            return DONE
        self.pending.discard(key)
        self._failed.pop(key, None)
        ns = str(objects.meta(svc).get("namespace", ""))
        slices = self.slices.store.by_index(SERVICE_NAME_INDEX, key)
        announcer = announcer_for(
            svc,
            result.ip,
            self.nodes.store.list(),
            [s for s in slices if objects.meta(s).get("namespace") == ns],
        )
        await self._write(svc, result.ip, result.pool, announcer)
        return DONE

    def _allocate(self, key: str, svc: Obj) -> Allocated | Failed:
        requested = requested_ips(svc)
        held = self.allocator.ip_of(key)
        if requested:
            if held in requested:
                return self.allocator.allocate(key, ip_version(svc))
            if held is not None:
                self.allocator.release(key)
                self._released()
            return self.allocator.assign(key, requested[0])
        return self.allocator.allocate(key, ip_version(svc))

    async def _write(
        self, svc: Obj, ip: str | None, pool: str | None, announcer: str | None
    ) -> None:
        meta = objects.meta(svc)
        name, ns = str(meta.get("name")), str(meta.get("namespace"))
        ann = meta.get("annotations") or {}
        want_ann = {LB_POOL_ANNOTATION: pool, LB_ANNOUNCE_ANNOTATION: announcer}
        patch = {k: v for k, v in want_ann.items() if ann.get(k) != v}
        try:
            if patch:
                await self.client.patch(
                    SERVICES, name, {"metadata": {"annotations": patch}}, "merge", ns
                )
                if (
                    announcer
                    and ann.get(LB_ANNOUNCE_ANNOTATION) != announcer
                    and self.recorder is not None
                ):
                    self.recorder.event(
                        svc,
                        NORMAL,
                        "nodeAssigned",
                        f'announcing from node "{announcer}" with protocol "layer2"',
                    )
            want = ingress_for(ip)
            if current_ingress(svc) != want:
                await self.client.patch(
                    SERVICES,
                    name,
                    {"status": {"loadBalancer": {"ingress": want or None}}},
                    "merge",
                    ns,
                    subresource="status",
                )
                if ip and self.recorder is not None:
                    self.recorder.event(svc, NORMAL, "IPAllocated", f'Assigned IP ["{ip}"]')
        except NotFound:
            return
        except Conflict as e:
            raise TemporaryError(f"service {ns}/{name}: {e}") from e

    def rebuild(self) -> None:
        """Take back the addresses Services already show, oldest first."""
        services = sorted(
            (s for s in self.services.store.list() if wants_address(s)),
            key=lambda s: (
                str(objects.meta(s).get("creationTimestamp", "")),
                meta_namespace_key(s),
            ),
        )
        for svc in services:
            for ing in current_ingress(svc):
                ip = ing.get("ip") if isinstance(ing, Mapping) else None
                if ip and isinstance(
                    self.allocator.assign(meta_namespace_key(svc), str(ip)), Allocated
                ):
                    break

    async def run(self) -> None:
        await self.services.wait_for_sync()
        await self.config.wait_for_sync()
        # The pools first (nothing is allocated yet, so any valid configuration fits), then
        # the addresses Services already hold within them.
        self.apply_config()
        self.rebuild()
        self._started = True
        await self.controller.run()
