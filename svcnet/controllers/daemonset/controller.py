"""The DaemonSet controller, wired: informers (DaemonSets, Pods, Nodes) → queue → reconcile.

A node added, removed, relabelled, tainted or changing readiness enqueues every DaemonSet
(upstream filters by what the node change means for each; a sync that finds nothing to do
writes nothing, so this costs only planning). ``reconcile`` claims the pods, asks
:func:`plan_daemon_set` for the writes and the status, and applies them.
"""

from __future__ import annotations

from svcnet.api.objects import ObjView, meta, spec
from svcnet.api.registry import DAEMONSETS, NODES
from svcnet.client.events import EventRecorder
from svcnet.client.informer import FuncHandler, Informer, SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.controllers.daemonset.plan import plan_daemon_set
from svcnet.controllers.podowner import PodOwnerLoop
from svcnet.controllers.runtime import DONE, Result
from svcnet.util.clock import REAL_CLOCK, Clock

COMPONENT = "daemonset-controller"


def _node_relevant(old: ObjView, new: ObjView) -> bool:
    """``shouldIgnoreNodeUpdate`` inverted: labels, taints or conditions changed."""
    conditions = {
        (c.get("type"), c.get("status")) for c in (old.get("status") or {}).get("conditions") or ()
    }
    new_conditions = {
        (c.get("type"), c.get("status")) for c in (new.get("status") or {}).get("conditions") or ()
    }
    return (
        meta(old).get("labels") != meta(new).get("labels")
        or spec(old).get("taints") != spec(new).get("taints")
        or spec(old).get("unschedulable") != spec(new).get("unschedulable")
        or conditions != new_conditions
    )


class DaemonSetController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.clock = clock
        self.recorder = recorder
        self.node_informer: Informer = factory.informer_for(NODES)
        self.loop = PodOwnerLoop(
            client,
            factory,
            recorder,
            DAEMONSETS,
            self.reconcile,
            extra_informers=[self.node_informer],
            workers=workers,
            clock=clock,
        )
        self.node_informer.add_event_handler(
            FuncHandler(
                on_add=lambda _n: self.loop.enqueue_all(),
                on_update=lambda o, n: self.loop.enqueue_all() if _node_relevant(o, n) else None,
                on_delete=lambda _n: self.loop.enqueue_all(),
            )
        )

    async def run(self) -> None:
        await self.loop.controller.run()

    async def reconcile(self, key: str) -> Result:
        loop = self.loop
        ds = loop.owner_informer.store.get(key)
        if ds is None:
            loop.expectations.forget(key)
            return DONE
        now = self.clock.time()
        satisfied = loop.expectations.satisfied(key, now)
        pods = await loop.claimed_pods(ds)
        plan = plan_daemon_set(
            ds, self.node_informer.store.list(), pods, now, expectations_satisfied=satisfied
        )
        await loop.apply(
            ds,
            key,
            create=[c.pod for c in plan.create],
            delete=[(d.name, d.uid) for d in plan.delete],
            events=plan.events,
            status=plan.status,
        )
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE
