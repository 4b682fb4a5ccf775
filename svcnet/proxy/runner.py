"""The proxy of one node: informers -> change tracker -> sync loop -> nftables, plus health checks.

Run by the node agent with the node's name. Informer handlers only record changes in the
tracker and wake the sync loop (client-go style); nothing is synced before the Service and
EndpointSlice caches have synced, so the first transaction is complete (a half-listed cache
would briefly reject traffic to Services not listed yet). The node's own object supplies its
addresses (NodePort session affinity and conntrack cleanup need them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from svcnet.api.objects import ObjView
from svcnet.api.registry import ENDPOINTSLICES, NODES, SERVICES
from svcnet.client.informer import DeletedFinalStateUnknown, FuncHandler, SharedInformerFactory
from svcnet.dataplane.conntrack import Conntrack
from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.healthcheck import HealthCheckServer, local_endpoint_counts
from svcnet.proxy.rules import ProxyConfig
from svcnet.proxy.syncer import NftApplier, Syncer, SyncResult

log = logging.getLogger(__name__)


def node_addresses(node: ObjView) -> tuple[str, ...]:
    """The node's IPv4 InternalIP/ExternalIP addresses, as NodePorts are served on them."""
    addrs = ((node.get("status") or {}).get("addresses")) or []
    return tuple(
        sorted(
            {
                a["address"]
                for a in addrs
                if a.get("type") in ("InternalIP", "ExternalIP") and ":" not in a.get("address", "")
            }
        )
    )


class ProxyRunner:
    def __init__(
        self,
        factory: SharedInformerFactory,
        cfg: ProxyConfig,
        nft: NftApplier,
        conntrack: Conntrack,
        *,
        health_check_host: str | None = "0.0.0.0",
        **syncer_options: Any,
    ) -> None:
        self.factory = factory
        self.tracker = ChangeTracker()
        self.syncer = Syncer(
            cfg, self.tracker, nft, conntrack, on_sync=self._synced, **syncer_options
        )
        self.health = HealthCheckServer(health_check_host) if health_check_host else None
        self._health_dirty = asyncio.Event()
        self._services = factory.informer_for(SERVICES)
        self._slices = factory.informer_for(ENDPOINTSLICES)
        self._node = factory.informer_for(
            NODES,
            field_selector=f"metadata.name={cfg.node_name}",
        )
        self._services.add_event_handler(
            FuncHandler(
                on_add=self._record(self.tracker.upsert_service),
                on_update=lambda _o, n: self._record(self.tracker.upsert_service)(n),
                on_delete=self._deleted(self.tracker.delete_service),
            )
        )
        self._slices.add_event_handler(
            FuncHandler(
                on_add=self._record(self.tracker.upsert_slice),
                on_update=lambda _o, n: self._record(self.tracker.upsert_slice)(n),
                on_delete=self._deleted(self.tracker.delete_slice),
            )
        )
        self._node.add_event_handler(
            FuncHandler(on_add=self._node_changed, on_update=lambda _o, n: self._node_changed(n))
        )

    @property
    def cfg(self) -> ProxyConfig:
        return self.syncer.cfg

    def _record(self, fn: Any) -> Any:
        def handler(obj: ObjView) -> None:
            fn(obj)
            self.syncer.request()

        return handler

    def _deleted(self, fn: Any) -> Any:
        def handler(obj: ObjView | DeletedFinalStateUnknown) -> None:
            fn(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)
            self.syncer.request()

        return handler

    def _node_changed(self, node: ObjView) -> None:
        if (node.get("metadata") or {}).get("name") != self.cfg.node_name:
            return  # the field selector already filters; this guards a server that does not
        ips = node_addresses(node)
        if ips and ips != self.syncer.cfg.node_ips:
            self.syncer.cfg = dataclasses.replace(self.syncer.cfg, node_ips=ips)
            self.syncer.request_full()

    def _synced(self, result: SyncResult) -> None:
        if result.ok:
            self._health_dirty.set()

    async def _health_loop(self) -> None:
        assert self.health is not None
        try:
            while True:
                await self._health_dirty.wait()
                self._health_dirty.clear()
                counts = local_endpoint_counts(self.tracker.snapshots(), self.cfg.node_name)
                await self.health.update(counts)
        finally:
            await self.health.close()

    async def run(self) -> None:
        """Run until cancelled: informers, then the first full sync, then the sync loop."""
        async with asyncio.TaskGroup() as tg:
            self.factory.start(tg)
            await self._services.wait_for_sync()
            await self._slices.wait_for_sync()
            self.syncer.request_full()
            tg.create_task(self.syncer.run(), name="proxy-sync")
            if self.health is not None:
                tg.create_task(self._health_loop(), name="proxy-healthcheck")
