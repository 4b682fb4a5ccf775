"""The root CA publisher, wired: Namespaces and the ``kube-root-ca.crt`` ConfigMaps → a queue
of namespace names → :func:`plan_root_ca` → a create or an update.

As upstream's: a namespace added (or updated while Active) is looked at, and so is the
namespace of a ``kube-root-ca.crt`` that was changed or deleted. Only those ConfigMaps are
watched (a field selector on the name), not every ConfigMap of the cluster.
"""

from __future__ import annotations

import logging

from svcnet.api import objects
from svcnet.api.errors import ApiError, Forbidden, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import CONFIGMAPS, NAMESPACES
from svcnet.client.informer import FuncHandler, SharedInformerFactory, unwrap
from svcnet.client.rest import ApiClient
from svcnet.controllers.rootcacert.plan import CONFIGMAP_NAME, Action, plan_root_ca
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.controllers.serviceaccount.plan import namespace_active
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "root-ca-cert-publisher"


class RootCACertPublisher:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        ca_pem: str,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.ca_pem = ca_pem
        self.namespaces = factory.informer_for(NAMESPACES)
        self.configmaps = factory.informer_for(
            CONFIGMAPS, field_selector=f"metadata.name={CONFIGMAP_NAME}"
        )
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=1,
            informers=[self.namespaces, self.configmaps],
            clock=clock,
        )
        enqueue = self.controller.enqueue
        self.namespaces.add_event_handler(
            FuncHandler(on_add=lambda ns: enqueue(objects.name(ns)), on_update=self._ns_updated)
        )
        self.configmaps.add_event_handler(
            FuncHandler(
                on_update=lambda _old, cm: enqueue(objects.namespace(cm)),
                on_delete=lambda cm: enqueue(objects.namespace(unwrap(cm))),
            )
        )

    def _ns_updated(self, _old: Obj, ns: Obj) -> None:
        if namespace_active(ns):
            self.controller.enqueue(objects.name(ns))

    async def reconcile(self, namespace: str) -> Result:
        ns = self.namespaces.store.get(namespace)
        current = self.configmaps.store.get(f"{namespace}/{CONFIGMAP_NAME}")
        plan = plan_root_ca(ns, current, self.ca_pem)
        if plan.action is Action.NONE or plan.configmap is None:
            return DONE
        try:
            if plan.action is Action.CREATE:
                await self.client.create(plan.configmap, namespace=namespace)
            else:
                await self.client.update(plan.configmap)
        except (NotFound, Forbidden):
            # The namespace (or the ConfigMap we meant to update) is gone or terminating.
            return DONE
        except ApiError as e:
            # AlreadyExists or Conflict: our cache is behind; the retry reads the watch's news.
            raise TemporaryError(f"namespace {namespace}: {CONFIGMAP_NAME}: {e}") from e
        log.info("%s %s/%s", plan.action.value, namespace, CONFIGMAP_NAME)
        return DONE

    async def run(self) -> None:
        await self.controller.run()


__all__ = ["RootCACertPublisher"]
