"""Informers → routing model → HAProxy: the ingress controller's loop.

Handlers only enqueue; the work queue holds one key, because the model is computed whole (the
routes of one host can come from several Ingresses, and a Service or Secret can be used by
any of them). While a sync runs, further events mark the key dirty and produce exactly one
more sync: a burst of endpoint changes costs two syncs, not one per event.

A sync re-reads the caches, builds the model (:func:`svcnet.ingress.model.build_model`), keeps
the endpoints in their server slots (:func:`assign_slots`), renders the configuration and
hands it to the :class:`HaproxyApplier`, which changes endpoints through the Runtime API and
reloads only when the structure changed. Nothing is applied before every informer has synced:
a partial cache would drop routes that merely have not been listed yet. A configuration
HAProxy refuses, or a failure to reach it, is retried with backoff while the last good
configuration keeps serving.

GatewayClasses of ``controllerName`` ``svcnet.io/gateway-controller`` are accepted
(:mod:`svcnet.ingress.gatewayclass`); Gateways and routes are not served yet.

After a successful apply the served Ingresses get ``status.loadBalancer`` from the controller's
own LoadBalancer Service (``--publish-service``, as ingress-nginx), and each new problem of
the model (a missing Service, an unusable TLS Secret, a lost conflict) becomes one Warning
event on its Ingress.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from svcnet.api import objects
from svcnet.api.registry import (
    ENDPOINTSLICES,
    GATEWAYCLASSES,
    INGRESSCLASSES,
    INGRESSES,
    SECRETS,
    SERVICES,
)
from svcnet.client.events import WARNING
from svcnet.client.informer import FuncHandler, Informer, SharedInformerFactory
from svcnet.client.workqueue import ShutDown, WorkQueue
from svcnet.dataplane.haproxy import HaproxyApplier, HaproxyError
from svcnet.ingress.gatewayclass import (
    GATEWAY_CONTROLLER_NAME,
    gateway_class_conditions,
    is_our_gateway_class,
)
from svcnet.ingress.haproxycfg import Layout, Slots, assign_slots, render
from svcnet.ingress.model import CONTROLLER_NAME, Problem, RoutingModel, build_model
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

SYNC = "sync"
GATEWAY_CLASS_KEY = "gatewayclass/"  # + name: that class's status


class EventSink(Protocol):
    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None: ...


class StatusWriter(Protocol):
    async def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


def load_balancer_status(service: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The ``status.loadBalancer.ingress`` entries an Ingress shows: its controller's
    Service's addresses (IP or hostname only; ports and ipMode are the Service's business)."""
    out = []
    for entry in (objects.status(service or {}).get("loadBalancer") or {}).get("ingress") or []:
        if isinstance(entry, Mapping):
            kept = {k: entry[k] for k in ("ip", "hostname") if entry.get(k)}
            if kept:
                out.append(kept)
    return out


class IngressController:
    def __init__(
        self,
        factory: SharedInformerFactory,
        applier: HaproxyApplier,
        layout: Layout,
        *,
        controller: str = CONTROLLER_NAME,
        gateway_controller: str = GATEWAY_CONTROLLER_NAME,
        publish_service: tuple[str, str] | None = None,
        status_client: StatusWriter | None = None,
        recorder: EventSink | None = None,
    ) -> None:
        self.applier = applier
        self.layout = layout
        self.controller = controller
        self.gateway_controller = gateway_controller
        self.publish_service = publish_service
        self.status_client = status_client
        self.recorder = recorder
        self.factory = factory
        self.queue: WorkQueue[str] = WorkQueue("ingress")
        self.informers: dict[str, Informer] = {
            rt.kind: factory.informer_for(rt)
            for rt in (INGRESSCLASSES, INGRESSES, SERVICES, ENDPOINTSLICES, SECRETS)
        }
        handler = FuncHandler(
            on_add=lambda _o: self.queue.add(SYNC),
            on_update=lambda _old, _new: self.queue.add(SYNC),
            on_delete=lambda _o: self.queue.add(SYNC),
        )
        for informer in self.informers.values():
            informer.add_event_handler(handler)
        self.gateway_classes = factory.informer_for(GATEWAYCLASSES)
        self.gateway_classes.add_event_handler(
            FuncHandler(
                on_add=lambda o: self.queue.add(GATEWAY_CLASS_KEY + objects.name(o)),
                on_update=lambda _old, new: self.queue.add(GATEWAY_CLASS_KEY + objects.name(new)),
            )
        )
        self.slots: Slots = {}
        self.model: RoutingModel | None = None
        self.syncs = 0
        self._reported: set[Problem] = set()

    def _list(self, kind: str) -> list[dict[str, Any]]:
        return self.informers[kind].store.list()

    def compute(self) -> RoutingModel:
        return build_model(
            ingress_classes=self._list("IngressClass"),
            ingresses=self._list("Ingress"),
            services=self._list("Service"),
            endpoint_slices=self._list("EndpointSlice"),
            secrets=self._list("Secret"),
            controller=self.controller,
        )

    async def sync(self) -> None:
        model = self.compute()
        slots = assign_slots(self.slots, model)
        result = await self.applier.apply(render(model, self.layout, slots))
        self.slots, self.model = slots, model
        self.syncs += 1
        if result.reloaded:
            log.info(
                "ingress: configuration applied (%d hosts, %d backends)",
                len(model.vhosts),
                len(model.backends),
            )
        self._report(model)
        await self._write_status(model)

    def _report(self, model: RoutingModel) -> None:
        current = set(model.problems)
        if self.recorder is not None:
            for p in sorted(current - self._reported, key=lambda p: (p.namespace, p.name)):
                ing = self.informers["Ingress"].store.get(f"{p.namespace}/{p.name}")
                if ing is not None:
                    self.recorder.event(ing, WARNING, p.reason, p.message)
        for p in current - self._reported:
            log.warning("ingress %s/%s: %s: %s", p.namespace, p.name, p.reason, p.message)
        self._reported = current

    async def _write_status(self, model: RoutingModel) -> None:
        if self.status_client is None or self.publish_service is None:
            return
        ns, name = self.publish_service
        want = load_balancer_status(self.informers["Service"].store.get(f"{ns}/{name}"))
        for ing_ns, ing_name in model.ingresses:
            ing = self.informers["Ingress"].store.get(f"{ing_ns}/{ing_name}")
            if ing is None:
                continue
            have = (objects.status(ing).get("loadBalancer") or {}).get("ingress") or []
            if have == want:
                continue
            await self.status_client.patch(
                INGRESSES,
                ing_name,
                {"status": {"loadBalancer": {"ingress": want or None}}},
                "merge",
                ing_ns,
                subresource="status",
            )

    async def sync_gateway_class(self, name: str) -> None:
        gc = self.gateway_classes.store.get(name)
        if gc is None or self.status_client is None:
            return
        if not is_our_gateway_class(gc, self.gateway_controller):
            return
        want = gateway_class_conditions(gc, now_rfc3339())
        if want == objects.status(gc).get("conditions"):
            return
        await self.status_client.patch(
            GATEWAYCLASSES, name, {"status": {"conditions": want}}, "merge", subresource="status"
        )

    async def _process_one(self) -> None:
        key = await self.queue.get()
        try:
            if key.startswith(GATEWAY_CLASS_KEY):
                await self.sync_gateway_class(key[len(GATEWAY_CLASS_KEY) :])
            else:
                await self.sync()
            self.queue.forget(key)
        except HaproxyError as e:
            log.error("ingress: %s; the last good configuration keeps serving", e)
            self.queue.add_rate_limited(key)
        except Exception:
            log.exception("ingress: %s failed; retrying", key)
            self.queue.add_rate_limited(key)
        finally:
            self.queue.done(key)

    async def run(self) -> None:
        """Wait for the caches, then follow changes. The owner starts the informers."""
        await self.factory.wait_for_cache_sync()
        self.queue.add(SYNC)
        try:
            while True:
                await self._process_one()
        except ShutDown:
            return
