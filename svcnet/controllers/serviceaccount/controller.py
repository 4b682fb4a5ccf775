"""The ServiceAccount controller, wired: Namespaces and ServiceAccounts → a queue of namespace
names → :func:`missing_service_accounts` → creates.

As upstream's: a namespace added or updated is looked at, and so is the namespace of a deleted
ServiceAccount, so ``default`` comes back when someone deletes it. A create that finds the
account already there, or the namespace gone or terminating, is done.
"""

from __future__ import annotations

import logging

from svcnet.api import objects
from svcnet.api.errors import AlreadyExists, ApiError, Forbidden, NotFound
from svcnet.api.registry import NAMESPACES, SERVICEACCOUNTS
from svcnet.client.informer import FuncHandler, SharedInformerFactory, unwrap
from svcnet.client.rest import ApiClient
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.controllers.serviceaccount.plan import (
    SERVICE_ACCOUNTS_TO_ENSURE,
    missing_service_accounts,
)
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "serviceaccount-controller"


class ServiceAccountsController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        *,
        wanted: tuple[str, ...] = SERVICE_ACCOUNTS_TO_ENSURE,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.wanted = wanted
        self.namespaces = factory.informer_for(NAMESPACES)
        self.accounts = factory.informer_for(SERVICEACCOUNTS)
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=1,
            informers=[self.namespaces, self.accounts],
            clock=clock,
        )
        enqueue = self.controller.enqueue
        self.namespaces.add_event_handler(
            FuncHandler(
                on_add=lambda ns: enqueue(objects.name(ns)),
                on_update=lambda _old, ns: enqueue(objects.name(ns)),
            )
        )
        self.accounts.add_event_handler(
            FuncHandler(on_delete=lambda sa: enqueue(objects.namespace(unwrap(sa))))
        )

    async def reconcile(self, namespace: str) -> Result:
        ns = self.namespaces.store.get(namespace)
        have = {n for n in self.wanted if f"{namespace}/{n}" in self.accounts.store}
        for sa in missing_service_accounts(ns, have, self.wanted):
            try:
                await self.client.create(sa, namespace=namespace)
            except (AlreadyExists, NotFound):
                continue
            except Forbidden:
                # The namespace is terminating: nothing may be created in it any more.
                return DONE
            except ApiError as e:
                raise TemporaryError(f"namespace {namespace}: creating {sa}: {e}") from e
            log.info("created serviceaccount %s/%s", namespace, objects.name(sa))
        return DONE

    async def run(self) -> None:
        await self.controller.run()


__all__ = ["ServiceAccountsController"]
