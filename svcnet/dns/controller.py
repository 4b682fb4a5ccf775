"""Informers → record table: the glue that keeps DNS answers current.

Handlers only enqueue `(kind, key)`; one worker re-reads the object from the informer cache
and sets or deletes its projection in the table (level-triggered: a missing object means
delete, and doing it twice is harmless). The table recomputes just that Service's entries,
so a change is answered as soon as the watch event arrives — well within the 1 s the add-on
promises. The table reports ready (and NXDOMAIN stops being SERVFAIL) once every informer
has listed and the initial keys are applied.

Pods are not watched: in CoreDNS's `pods insecure` mode, kubeadm's default, pod names are
answered from the name alone; only `pods verified` needs the Pod cache.
"""

from __future__ import annotations

import asyncio
import logging

from svcnet.api.registry import ENDPOINTSLICES, NAMESPACES, SERVICES
from svcnet.client.informer import (
    FuncHandler,
    Informer,
    SharedInformerFactory,
    deleted_key,
    meta_namespace_key,
    split_key,
)
from svcnet.client.workqueue import ShutDown, WorkQueue
from svcnet.dns.projection import endpoint_slice_from_api, service_from_api
from svcnet.dns.records import RecordTable

log = logging.getLogger(__name__)

SERVICE = "Service"
ENDPOINT_SLICE = "EndpointSlice"
NAMESPACE = "Namespace"

Item = tuple[str, str]  # (kind, namespace/name)


class DnsController:
    def __init__(self, factory: SharedInformerFactory, table: RecordTable) -> None:
        self.table = table
        self.factory = factory
        self.queue: WorkQueue[Item] = WorkQueue("dns")
        self.informers: dict[str, Informer] = {
            SERVICE: factory.informer_for(SERVICES),
            ENDPOINT_SLICE: factory.informer_for(ENDPOINTSLICES),
            NAMESPACE: factory.informer_for(NAMESPACES),
        }
        for kind, informer in self.informers.items():
            informer.add_event_handler(self._handler(kind))
        self.reconciled = 0
        self.synced = asyncio.Event()

    def _handler(self, kind: str) -> FuncHandler:
        return FuncHandler(
            on_add=lambda o: self.queue.add((kind, meta_namespace_key(o))),
            on_update=lambda _old, new: self.queue.add((kind, meta_namespace_key(new))),
            on_delete=lambda o: self.queue.add((kind, deleted_key(o))),
        )

    def reconcile(self, item: Item) -> None:
        """Make the table hold what the cache holds for one object."""
        kind, key = item
        ns, name = split_key(key)
        obj = self.informers[kind].store.get(key)
        if kind == SERVICE:
            if obj is None:
                self.table.delete_service(ns or "", name)
            else:
                self.table.set_service(service_from_api(obj))
        elif kind == ENDPOINT_SLICE:
            eps = endpoint_slice_from_api(obj) if obj is not None else None
            if eps is None:  # gone, or no longer labelled for a Service
                self.table.delete_endpoint_slice(ns or "", name)
            else:
                self.table.set_endpoint_slice(eps)
        elif kind == NAMESPACE:
            if obj is None:
                self.table.delete_namespace(name)
            else:
                self.table.set_namespace(name)
        self.reconciled += 1

    async def _process_one(self) -> None:
        item = await self.queue.get()
        try:
            self.reconcile(item)
            self.queue.forget(item)
        except Exception:
            log.exception("dns: applying %s %s failed; retrying", *item)
            self.queue.add_rate_limited(item)
        finally:
            self.queue.done(item)

    async def run(self) -> None:
        """Wait for the caches, apply them, declare the table synced, then follow changes.

        The informers themselves are started by the owner (`factory.start(tg)`)."""
        await self.factory.wait_for_cache_sync()
        try:
            while len(self.queue):
                await self._process_one()
            self.table.set_synced()
            self.synced.set()
            log.info("dns: synced %d services", self.table.service_count())
            while True:
                await self._process_one()
        except ShutDown:
            return
