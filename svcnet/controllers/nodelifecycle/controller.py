"""Node lifecycle, wired: Nodes, node Leases and Pods → a queue of node names → health,
taints, pod readiness and evictions.

A node's reconcile re-reads its Node and Lease, updates the health record (heartbeat seen →
probe time now), and when the node is overdue writes its Unknown conditions (a status
update), its condition taints (a spec update, both compare-and-swap on resourceVersion), the
Ready=False of its pods and, as their tolerations fall due, marks them ``DisruptionTarget``
and deletes them with grace 0 (nobody is left on the node to terminate them gracefully).
It asks to be called again exactly when the next thing falls due — the node's grace running
out or the next pod's eviction — so detection is a timer, not a polling loop: a stopped node
is Unknown ``grace`` seconds after its last heartbeat.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from svcnet.api import objects
from svcnet.api.errors import Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import LEASES, NODES, PODS
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.informer import (
    NODE_NAME_INDEX,
    DeletedFinalStateUnknown,
    FuncHandler,
    SharedInformerFactory,
    index_by_node_name,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.nodelifecycle.plan import (
    DEFAULT_NODE_MONITOR_GRACE_PERIOD,
    DEFAULT_ORPHAN_QUARANTINE,
    DEFAULT_POD_EVICTION_TIMEOUT,
    LEASE_NAMESPACE,
    ORPHAN_CONDITION,
    Health,
    desired_taints,
    eviction_time,
    observe,
    ready_status,
    stale_in,
    status_change_message,
    taints_changed,
    with_disruption_condition,
    with_pod_not_ready,
    with_unknown_conditions,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)


def name_of(obj: Obj | DeletedFinalStateUnknown) -> str:
    return objects.name(unwrap(obj))


# Upstream's node lifecycle controller records events as "node-controller".
EVENT_SOURCE = "node-controller"


class NodeLifecycle:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder | None = None,
        *,
        node_monitor_grace_period: float = DEFAULT_NODE_MONITOR_GRACE_PERIOD,
        pod_eviction_timeout: float = DEFAULT_POD_EVICTION_TIMEOUT,
        orphan_quarantine: float = DEFAULT_ORPHAN_QUARANTINE,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.grace = node_monitor_grace_period
        self.pod_eviction_timeout = pod_eviction_timeout
        self.clock = clock
        self.nodes = factory.informer_for(NODES)
        self.leases = factory.informer_for(LEASES, LEASE_NAMESPACE)
        self.pods = factory.informer_for(PODS, indexers={NODE_NAME_INDEX: index_by_node_name})
        self.orphan_quarantine = orphan_quarantine
        self.health: dict[str, Health] = {}
        self.missing_since: dict[str, float] = {}
        self.evicted = 0
        self.controller = Controller(
            "node-lifecycle-controller",
            self.reconcile,
            workers=workers,
            informers=[self.nodes, self.leases, self.pods],
            recorder=recorder,
            clock=clock,
        )
        enqueue = self.controller.enqueue
        self.nodes.add_event_handler(
            FuncHandler(
                on_add=lambda o: enqueue(name_of(o)),
                on_update=lambda _o, n: enqueue(name_of(n)),
                on_delete=lambda o: enqueue(name_of(o)),
            )
        )
        # A node's Lease has the node's name.
        self.leases.add_event_handler(
            FuncHandler(
                on_add=lambda o: enqueue(name_of(o)),
                on_update=lambda _o, n: enqueue(name_of(n)),
            )
        )
        self.pods.add_event_handler(
            FuncHandler(
                on_add=self._pod_changed,
                on_update=lambda _o, n: self._pod_changed(n),
            )
        )

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        cached = self.nodes.store.get(str(node))
        # Only pods on a node in trouble (or on no node at all) need a look: a new pod there
        # must get its timer.
        if cached is None or ready_status(cached) != "True":
            self.controller.enqueue(str(node))

    async def reconcile(self, name: str) -> Result:
        node = self.nodes.store.get(name)
        if node is None:
            self.health.pop(name, None)
            return await self._collect_orphans(name)
        lease = self.leases.store.get(f"{LEASE_NAMESPACE}/{name}")
        now = self.clock.monotonic()
        health = observe(self.health.get(name), node, lease, now)
        self.health[name] = health
        now_str = rfc3339(self.clock.now())
        left = stale_in(health, now, self.grace)
        try:
            if left <= 0:
                node = await self._mark_unknown(node, now_str)
            node = await self._sync_taints(node, now_str)
            if ready_status(node) == "Unknown" and left <= 0:
                await self._mark_pods_not_ready(name, now_str)
            next_eviction = await self._evict(node, now_str)
        except Conflict as e:
            raise TemporaryError(f"node {name}: {e}", delay=0.05) from e
        delays = [d for d in (left if left > 0 else None, next_eviction) if d is not None]
        # A hair past the deadline, so the check that runs then finds it passed.
        return Result(requeue_after=min(delays) + 0.01) if delays else DONE

    async def _mark_unknown(self, node: Obj, now: str) -> Obj:
        updated = with_unknown_conditions(node, now)
        if updated is None:
            return node
        name = str(objects.meta(node).get("name"))
        log.warning("node %s: no heartbeat for %.1fs: Ready=Unknown", name, self.grace)
        written = await self.client.update_status(updated)
        if self.recorder is not None:
            self.recorder.event(
                node, NORMAL, "NodeNotReady", status_change_message(name, "NodeNotReady")
            )
        return written

    async def _sync_taints(self, node: Obj, now: str) -> Obj:
        taints = desired_taints(node, now)
        if not taints_changed(node, taints):
            return node
        updated = dict(node)
        updated["spec"] = {**(node.get("spec") or {}), "taints": taints or None}
        log.info(
            "node %s: taints now %s",
            objects.meta(node).get("name"),
            [f"{t['key']}:{t['effect']}" for t in taints],
        )
        return await self.client.update(updated)

    async def _mark_pods_not_ready(self, name: str, now: str) -> None:
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, name):
            updated = with_pod_not_ready(pod, now)
            if updated is None:
                continue
            with contextlib.suppress(NotFound):
                await self.client.update_status(updated)
            if self.recorder is not None:
                self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready")

    async def _evict(self, node: Obj, now: str) -> float | None:
        """Evict what is due; the seconds until the next eviction, if any."""
        name = str(objects.meta(node).get("name"))
        wall = self.clock.time()
        soonest: float | None = None
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, name):
            due = eviction_time(pod, node, wall, self.pod_eviction_timeout)
            if due is None:
                continue
            if due > wall:
                soonest = due - wall if soonest is None else min(soonest, due - wall)
                continue
            await self._delete_pod(pod, now)
        return soonest

    async def _collect_orphans(self, name: str) -> Result:
        """PodGC's ``gcOrphaned``: pods bound to a node that no longer exists are deleted
        (grace 0) once the node has been gone for the quarantine period, which covers a node
        deleted and registered again."""
        pods = self.pods.store.by_index(NODE_NAME_INDEX, name)
        if not pods:
            self.missing_since.pop(name, None)
            return DONE
        now = self.clock.monotonic()
        since = self.missing_since.setdefault(name, now)
        left = since + self.orphan_quarantine - now
        if left > 0:
            return Result(requeue_after=left + 0.01)
        stamp = rfc3339(self.clock.now())
        for pod in pods:
            await self._delete_pod(pod, stamp, ORPHAN_CONDITION)
        self.missing_since.pop(name, None)
        return DONE

    async def _delete_pod(
        self, pod: Obj, now: str, reason: Mapping[str, str] | None = None
    ) -> None:
        m = objects.meta(pod)
        ns, pod_name = str(m.get("namespace")), str(m.get("name"))
        if self.recorder is not None and not m.get("deletionTimestamp") and reason is None:
            self.recorder.event(
                pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {ns}/{pod_name}"
            )
        marked = with_disruption_condition(pod, now, reason)
        try:
            if marked is not None and not m.get("deletionTimestamp"):
                with contextlib.suppress(Conflict):
                    await self.client.update_status(marked)
            # Grace 0: the node is unreachable, nobody there would finish a graceful delete.
            await self.client.delete(
                PODS,
                pod_name,
                ns,
                grace_period_seconds=0,
                preconditions={"uid": str(m.get("uid", ""))},
            )
        except NotFound:
            return
        except Conflict:
            return  # another pod of that name now: not ours to delete
        self.evicted += 1
        log.info(
            "node lifecycle: evicted pod %s/%s from node %s",
            ns,
            pod_name,
            (pod.get("spec") or {}).get("nodeName"),
        )

    async def run(self) -> None:
        await self.controller.run()
