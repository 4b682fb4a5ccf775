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
(:mod:`svcnet.ingress.gatewayclass`). Gateways of those classes and their HTTPRoutes are
computed by :func:`svcnet.ingress.gateway.build_gateways` into HAProxy frontends of their own,
one per listener port, bound on a pod port. Each Gateway gets its own address: a LoadBalancer
Service in the controller's namespace (a Service selects pods of its own namespace only, so it
cannot live in the Gateway's), labelled with the Gateway it serves, selecting the controller's
pods as ``--publish-service`` does, each listener port mapped to that Gateway's pod port. The
labels, not an ownerReference (which cannot cross namespaces), tie it to its Gateway; the
controller deletes the Services of Gateways that are gone. Gateway ``status.addresses``,
conditions and listeners, and each HTTPRoute's ``status.parents`` entry of this controller
are written after the configuration is applied.

After a successful apply the served Ingresses get ``status.loadBalancer`` from the controller's
own LoadBalancer Service (``--publish-service``, as ingress-nginx), and each new problem of
the model (a missing Service, an unusable TLS Secret, a lost conflict) becomes one Warning
event on its Ingress.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from svcnet.api import objects
from svcnet.api.registry import (
    ENDPOINTSLICES,
    GATEWAYCLASSES,
    GATEWAYS,
    GRPCROUTES,
    HTTPROUTES,
    INGRESSCLASSES,
    INGRESSES,
    NAMESPACES,
    REFERENCEGRANTS,
    SECRETS,
    SERVICES,
    TLSROUTES,
    ResourceType,
)
from svcnet.client.events import WARNING
from svcnet.client.informer import FuncHandler, Informer, SharedInformerFactory
from svcnet.client.workqueue import ShutDown, WorkQueue
from svcnet.dataplane.haproxy import ConfigRejected, HaproxyApplier, HaproxyError
from svcnet.ingress.gateway import (
    GatewayModel,
    allocate_ports,
    build_gateways,
    gateway_service,
    merge_conditions,
    service_owner,
    service_spec_patch,
)
from svcnet.ingress.gatewayclass import (
    GATEWAY_CONTROLLER_NAME,
    gateway_class_conditions,
    is_accepted_gateway_class,
    is_our_gateway_class,
    supported_features,
)
from svcnet.ingress.haproxycfg import Layout, Slots, assign_slots, refused_regexes, render
from svcnet.ingress.model import CONTROLLER_NAME, Problem, RoutingModel, build_model
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

SYNC = "sync"
_ROUTE_TYPES = {rt.kind: rt for rt in (HTTPROUTES, GRPCROUTES, TLSROUTES)}
GATEWAY_CLASS_KEY = "gatewayclass/"  # + name: that class's status


class EventSink(Protocol):
    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None: ...


class StatusWriter(Protocol):
    """The API writes of the controller: statuses, and the Services that give Gateways their
    addresses."""

    async def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    async def create(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    async def delete(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


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
            for rt in (
                INGRESSCLASSES, INGRESSES, SERVICES, ENDPOINTSLICES, SECRETS,
                GATEWAYCLASSES, GATEWAYS, HTTPROUTES, GRPCROUTES, TLSROUTES, REFERENCEGRANTS,
                NAMESPACES,
            )
        }  # fmt: skip
        handler = FuncHandler(
            on_add=lambda _o: self.queue.add(SYNC),
            on_update=lambda _old, _new: self.queue.add(SYNC),
            on_delete=lambda _o: self.queue.add(SYNC),
        )
        for informer in self.informers.values():
            informer.add_event_handler(handler)
        self.gateway_classes = self.informers["GatewayClass"]
        self.gateway_classes.add_event_handler(
            FuncHandler(
                on_add=lambda o: self.queue.add(GATEWAY_CLASS_KEY + objects.name(o)),
                on_update=lambda _old, new: self.queue.add(GATEWAY_CLASS_KEY + objects.name(new)),
            )
        )
        self.slots: Slots = {}
        self.model: RoutingModel | None = None
        self.gateways: GatewayModel | None = None
        self.syncs = 0
        # Regular expressions HAProxy's check refused (as rendered) → its message: the routes
        # using one are refused, the rest served. Kept: a refused expression stays refused.
        self.refused_regexes: dict[str, str] = {}
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

    def _gateway_services(self) -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for svc in self._list("Service"):
            owner = service_owner(svc)
            if owner is not None:
                out[owner] = svc
        return out

    def compute_gateways(self, held: Mapping[tuple[str, str], Mapping[str, Any]]) -> GatewayModel:
        gateways = self._list("Gateway")
        taken: dict[tuple[str, str, int], int] = {}
        addresses: dict[tuple[str, str], list[str]] = {}
        for (ns, name), svc in held.items():
            for p in objects.spec(svc).get("ports") or []:
                if isinstance(p.get("targetPort"), int):
                    taken[(ns, name, int(p["port"]))] = p["targetPort"]
            addresses[(ns, name)] = [e["ip"] for e in load_balancer_status(svc) if "ip" in e]
        ports = allocate_ports(
            (
                (objects.namespace(g), objects.name(g),
                 [int(li.get("port") or 0) for li in objects.spec(g).get("listeners") or []])
                for g in gateways
            ),
            taken,
        )  # fmt: skip
        return build_gateways(
            gateway_classes=self._list("GatewayClass"),
            gateways=gateways,
            routes=self._list("HTTPRoute"),
            grants=self._list("ReferenceGrant"),
            namespaces=self._list("Namespace"),
            services=self._list("Service"),
            endpoint_slices=self._list("EndpointSlice"),
            secrets=self._list("Secret"),
            addresses=addresses,
            target_ports=ports,
            controller=self.gateway_controller,
            grpc_routes=self._list("GRPCRoute"),
            tls_routes=self._list("TLSRoute"),
            refused_regexes=self.refused_regexes,
        )

    async def sync(self) -> None:
        held = self._gateway_services()
        gw = self.compute_gateways(held)
        ingress_model = self.compute()
        merged = {b.name: b for b in (*gw.backends, *ingress_model.backends)}
        model = replace(
            ingress_model, backends=tuple(sorted(merged.values(), key=lambda b: b.name))
        )
        slots = assign_slots(self.slots, model)
        config = render(model, self.layout, slots, gw.frontends)
        try:
            result = await self.applier.apply(config)
        except ConfigRejected as e:
            found = refused_regexes(config, str(e))
            if not found.keys() - self.refused_regexes.keys():
                raise
            # A regular expression PCRE2 refused (Python's re took it): refuse its routes
            # with HAProxy's words and serve the rest at once.
            log.warning("ingress: HAProxy refused regular expressions: %s", sorted(found))
            self.refused_regexes.update(found)
            await self.sync()
            return
        self.slots, self.model, self.gateways = slots, model, gw
        await self._write_gateways(gw, held)
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

    async def _write_gateways(
        self, gw: GatewayModel, held: Mapping[tuple[str, str], Mapping[str, Any]]
    ) -> None:
        if self.status_client is None:
            return
        publish = (
            self.informers["Service"].store.get("/".join(self.publish_service))
            if self.publish_service
            else None
        )
        # Services: one per served Gateway with its frontends' ports; the rest go.
        for key in gw.gateway_status:
            fronts = [f for f in gw.frontends if f.gateway == key]
            if publish is None or not fronts:
                continue
            want = gateway_service(key, fronts, objects.namespace(publish),
                                   objects.spec(publish).get("selector") or {})  # fmt: skip
            have = held.get(key)
            if have is None:
                await self.status_client.create(want)
            elif (patch := service_spec_patch(have, want)) is not None:
                await self.status_client.patch(
                    SERVICES, objects.name(want), patch, "merge", objects.namespace(want)
                )
        for key, svc in held.items():
            if key not in gw.gateway_status or not any(f.gateway == key for f in gw.frontends):
                await self.status_client.delete(SERVICES, objects.name(svc), objects.namespace(svc))
        now = now_rfc3339()
        for (ns, name), want in gw.gateway_status.items():
            obj = self.informers["Gateway"].store.get(f"{ns}/{name}")
            if obj is None:
                continue
            have = objects.status(obj)
            before = {li.get("name"): li for li in have.get("listeners") or []}
            status = {
                "addresses": want["addresses"] or None,
                "conditions": merge_conditions(have.get("conditions") or [], want["conditions"], now),
                "listeners": [
                    {**li, "conditions": merge_conditions(
                        (before.get(li["name"]) or {}).get("conditions") or [], li["conditions"], now)}
                    for li in want["listeners"]
                ],
            }  # fmt: skip
            if {k: have.get(k) for k in status} != status:
                await self.status_client.patch(
                    GATEWAYS, name, {"status": status}, "merge", ns, subresource="status"
                )
        for kind, statuses in gw.routes_status.items():
            for (ns, name), parents in statuses.items():
                await self._write_route_status(_ROUTE_TYPES[kind], ns, name, parents, now)

    async def _write_route_status(
        self, rt: ResourceType, ns: str, name: str, parents: list[dict[str, Any]], now: str
    ) -> None:
        assert self.status_client is not None
        obj = self.informers[rt.kind].store.get(f"{ns}/{name}")
        if obj is None:
            return
        mine = self.gateway_controller
        have_parents = objects.status(obj).get("parents") or []
        others = [p for p in have_parents if p.get("controllerName") != mine]
        before = {
            repr(sorted(p.get("parentRef", {}).items())): p
            for p in have_parents
            if p.get("controllerName") == mine
        }
        ours = [
            {**p, "conditions": merge_conditions(
                before.get(repr(sorted(p["parentRef"].items())), {}).get("conditions") or [],
                p["conditions"], now)}
            for p in parents
        ]  # fmt: skip
        if others + ours != have_parents:
            await self.status_client.patch(
                rt, name, {"status": {"parents": others + ours}}, "merge", ns,
                subresource="status",
            )  # fmt: skip

    async def sync_gateway_class(self, name: str) -> None:
        gc = self.gateway_classes.store.get(name)
        if gc is None or self.status_client is None:
            return
        if not is_our_gateway_class(gc, self.gateway_controller):
            return
        conditions = gateway_class_conditions(gc, now_rfc3339())
        accepted = is_accepted_gateway_class(gc, self.gateway_controller)
        want = {
            "conditions": conditions,
            "supportedFeatures": supported_features() if accepted else None,
        }
        if all(objects.status(gc).get(k) == v for k, v in want.items()):
            return
        await self.status_client.patch(
            GATEWAYCLASSES, name, {"status": want}, "merge", subresource="status"
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
