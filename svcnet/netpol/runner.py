"""NetworkPolicy for one node: informers -> change tracker -> sync loop -> nftables.

Run by the node agent with the node's name. It watches every pod of the cluster (a peer can
be anywhere), every namespace and every NetworkPolicy; handlers only record changes and wake
the sync loop. Nothing is synced before the three caches have synced: a half-listed cache
would compile a policy's peers from part of the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from svcnet.api.objects import ObjView
from svcnet.api.registry import NAMESPACES, NETWORKPOLICIES, PODS
from svcnet.client.informer import DeletedFinalStateUnknown, FuncHandler, SharedInformerFactory
from svcnet.netpol.changetracker import ChangeTracker
from svcnet.netpol.rules import NetpolConfig
from svcnet.netpol.syncer import NftApplier, Syncer

log = logging.getLogger(__name__)


class NetpolRunner:
    def __init__(
        self,
        factory: SharedInformerFactory,
        cfg: NetpolConfig,
        nft: NftApplier,
        *,
        on_unreadable: Callable[[ObjView, str], None] | None = None,
        **syncer_options: Any,
    ) -> None:
        self.factory = factory
        self.tracker = ChangeTracker()
        self.syncer = Syncer(cfg, self.tracker, nft, **syncer_options)
        self.on_unreadable = on_unreadable
        t = self.tracker
        self._informers = []
        for rt, upsert, delete in (
            (PODS, t.upsert_pod, t.delete_pod),
            (NAMESPACES, t.upsert_namespace, t.delete_namespace),
            (NETWORKPOLICIES, self._upsert_policy, t.delete_policy),
        ):
            informer = factory.informer_for(rt)
            informer.add_event_handler(
                FuncHandler(
                    on_add=self._recorded(upsert),
                    on_update=self._updated(upsert),
                    on_delete=self._deleted(delete),
                )
            )
            self._informers.append(informer)

    def _upsert_policy(self, obj: ObjView) -> None:
        """A policy the compiler cannot read closes its namespace (see
        :func:`~svcnet.netpol.model.policy_info`); ``on_unreadable`` is told why."""
        info = self.tracker.upsert_policy(obj)
        if info.error and self.on_unreadable is not None:
            self.on_unreadable(obj, info.error)

    def _recorded(self, fn: Callable[[ObjView], None]) -> Callable[[ObjView], None]:
        def handler(obj: ObjView) -> None:
            fn(obj)
            if self.tracker.pending():
                self.syncer.request()

        return handler

    def _updated(self, fn: Callable[[ObjView], None]) -> Callable[[ObjView, ObjView], None]:
        record = self._recorded(fn)
        return lambda _old, new: record(new)

    def _deleted(
        self, fn: Callable[[ObjView], None]
    ) -> Callable[[ObjView | DeletedFinalStateUnknown], None]:
        record = self._recorded(fn)

        def handler(obj: ObjView | DeletedFinalStateUnknown) -> None:
            record(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

        return handler

    async def admit(self, pod: ObjView, pod_ips: Sequence[str]) -> None:
        """A pod of this node wired with ``pod_ips``: returns once its rules are in the kernel."""
        ipv4 = [ip for ip in pod_ips if ":" not in ip]
        if not ipv4:
            return
        self.tracker.admit_pod(pod, ipv4[0])
        await self.syncer.wait_applied()

    async def run(self) -> None:
        """Run until cancelled: informers, then the first full sync, then the sync loop."""
        async with asyncio.TaskGroup() as tg:
            self.factory.start(tg)
            for informer in self._informers:
                await informer.wait_for_sync()
            self.syncer.request_full()
            tg.create_task(self.syncer.run(), name="netpol-sync")
