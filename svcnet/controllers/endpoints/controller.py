"""The Endpoints controller, wired: Services, Pods and Endpoints → a queue of Service keys →
:func:`plan_endpoints` → one create, update or delete of ``<namespace>/<service>``.

It mirrors what the EndpointSlice controller publishes into the legacy ``v1/Endpoints``
object that ``kubectl get endpoints`` and older clients read; like upstream it builds it from
the pods directly rather than from the slices. Services without a selector are left alone:
their Endpoints belong to whoever wrote them.
"""

from __future__ import annotations

import contextlib
import logging

from svcnet.api import objects
from svcnet.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import ENDPOINTS, PODS, SERVICES
from svcnet.client.events import WARNING, EventRecorder
from svcnet.client.informer import (
    FuncHandler,
    SharedInformerFactory,
    enqueue_handler,
    meta_namespace_key,
    split_key,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpoints.plan import plan_endpoints
from svcnet.controllers.endpointslice.controller import pod_view
from svcnet.controllers.endpointslice.membership import Membership
from svcnet.controllers.endpointslice.plan import should_pod_be_in_endpoints, trigger_time
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "endpoints-controller"
# Upstream's endpoints controller records events as "endpoint-controller".
EVENT_SOURCE = "endpoint-controller"


class EndpointsController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder | None = None,
        *,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.services = factory.informer_for(SERVICES)
        self.pods = factory.informer_for(PODS)
        self.endpoints = factory.informer_for(ENDPOINTS)
        self.membership = Membership(self.services, self.pods)
        self._written: dict[str, str] = {}
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=workers,
            informers=[self.services, self.pods, self.endpoints],
            clock=clock,
        )
        self.services.add_event_handler(enqueue_handler(self.controller.enqueue))
        self.pods.add_event_handler(
            FuncHandler(
                on_add=self._pod_added,
                on_update=self._pod_updated,
                on_delete=lambda o: self._pod_added(unwrap(o)),
            )
        )
        self.endpoints.add_event_handler(
            FuncHandler(
                on_update=lambda _o, n: self._endpoints_changed(n),
                on_delete=lambda o: self._endpoints_changed(unwrap(o)),
            )
        )

    def _pod_added(self, pod: Obj) -> None:
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

    def _endpoints_changed(self, ep: Obj) -> None:
        key = meta_namespace_key(ep)
        if self._written.get(key) == str(objects.meta(ep).get("resourceVersion", "")):
            return  # the echo of our own write
        if key in self.services.store:
            self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result:
        ns, name = split_key(key)
        svc = self.services.store.get(key)
        current = self.endpoints.store.get(key)
        if svc is None:
            self.membership.forget(key)
            # As upstream: the Service is gone, so is its Endpoints object.
            self._written.pop(key, None)
            if current is not None:
                with contextlib.suppress(NotFound):
                    await self.client.delete(ENDPOINTS, name, ns)
            return DONE
        sel = self.membership.selector(svc)
        if sel is None or (svc.get("spec") or {}).get("type") == "ExternalName":
            return DONE
        mine = self._written.get(key)
        if mine is not None and current is not None:
            have, want = str(objects.meta(current).get("resourceVersion", "")), mine
            if have.isdigit() and want.isdigit() and int(have) < int(want):
                return Result(requeue=True)  # the cache has not seen our last write yet
        pods = self.membership.pods_for_service(svc)
        included = [p for p in pods if should_pod_be_in_endpoints(p, include_terminating=True)]
        obj = plan_endpoints(svc, pods, current, trigger_time(svc, included))
        if obj is None:
            return DONE
        try:
            if current is None:
                written = await self.client.create(obj, namespace=ns)
            else:
                written = await self.client.update(obj)
        except (Conflict, AlreadyExists, NotFound) as e:
            raise TemporaryError(f"endpoints {key}: {e}") from e
        except ApiError as e:
            if self.recorder is not None:
                # Upstream's events, on the Endpoints object.
                if current is None:
                    reason, text = "FailedToCreateEndpoint", "Failed to create endpoint for service"
                else:
                    reason, text = "FailedToUpdateEndpoint", "Failed to update endpoint"
                self.recorder.event(obj, WARNING, reason, f"{text} {key}: {e}")
            raise TemporaryError(f"endpoints {key}: {e}") from e
        self._written[key] = str(objects.meta(written).get("resourceVersion", ""))
        return DONE

    async def run(self) -> None:
        await self.controller.run()
