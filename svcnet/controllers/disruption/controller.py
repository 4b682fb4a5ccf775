"""The disruption controller, wired: informers (PodDisruptionBudgets, Pods, and the workloads
whose scale a budget may need) → queue → reconcile → the budget's status.

A pod event enqueues the budgets of its namespace that select it; a workload event enqueues
every budget of its namespace (a scale change moves ``expectedPods``). ``reconcile`` builds the
scale of each selected pod's controller (upstream's finders: ReplicationController,
Deployment through its ReplicaSet, ReplicaSet, StatefulSet) and writes what
:func:`plan_pdb` computes.
"""

from __future__ import annotations

from svcnet.api.objects import ObjView, meta, spec, uid
from svcnet.api.registry import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    ResourceType,
)
from svcnet.client.events import EventRecorder
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Informer,
    SharedInformerFactory,
    index_by_namespace,
    meta_namespace_key,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.disruption.plan import plan_pdb
from svcnet.controllers.podutil import controller_ref
from svcnet.controllers.runtime import (
    DONE,
    Controller,
    Result,
    enqueue_own_key,
    on_any_change,
    write_status_if_changed,
)
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

COMPONENT = "controllermanager"  # upstream's disruption controller reports as this
_SCALED = (REPLICASETS, DEPLOYMENTS, STATEFULSETS, REPLICATIONCONTROLLERS)


class DisruptionController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = 1,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.pdbs: Informer = factory.informer_for(PODDISRUPTIONBUDGETS, indexers=indexers)
        self.pods: Informer = factory.informer_for(PODS, indexers=indexers)
        self.scaled: dict[str, Informer] = {
            rt.kind: factory.informer_for(rt, indexers=indexers) for rt in _SCALED
        }
        self.controller = Controller(
            "disruption",
            self.reconcile,
            workers=workers,
            informers=[self.pdbs, self.pods, *self.scaled.values()],
            recorder=recorder,
            clock=clock,
        )
        self.pdbs.add_event_handler(enqueue_own_key(self.controller))
        self.pods.add_event_handler(on_any_change(self._namespace_changed))
        for informer in self.scaled.values():
            informer.add_event_handler(on_any_change(self._namespace_changed))

    def _namespace_changed(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        ns = str(meta(unwrap(obj)).get("namespace") or "")
        for pdb in self.pdbs.store.by_index(NAMESPACE_INDEX, ns):
            self.controller.enqueue(meta_namespace_key(pdb))

    async def run(self) -> None:
        await self.controller.run()

    def _find(self, rt: ResourceType, ns: str, ref: dict[str, object]) -> ObjView | None:
        obj = self.scaled[rt.kind].store.get(f"{ns}/{ref.get('name')}")
        return obj if obj is not None and uid(obj) == ref.get("uid") else None

    def _scale_of(self, ns: str, pod: ObjView) -> tuple[str, int] | None:
        """The uid and replicas of what scales ``pod`` (the finders of upstream's controller)."""
        ref = controller_ref(pod)
        if ref is None:
            return None
        kind = ref.get("kind")
        for rt in (REPLICATIONCONTROLLERS, STATEFULSETS, REPLICASETS):
            if kind != rt.kind:
                continue
            owner = self._find(rt, ns, dict(ref))
            if owner is None:
                return None
            if rt is REPLICASETS:
                parent = controller_ref(owner)
                if parent is not None and parent.get("kind") == DEPLOYMENTS.kind:
                    deployment = self._find(DEPLOYMENTS, ns, dict(parent))
                    if deployment is None:
                        return None
                    owner = deployment
            return uid(owner), int(spec(owner).get("replicas", 1))
        return None

    async def reconcile(self, key: str) -> Result:
        pdb = self.pdbs.store.get(key)
        if pdb is None:
            return DONE
        ns = str(meta(pdb).get("namespace") or "")
        pods = self.pods.store.by_index(NAMESPACE_INDEX, ns)
        scales = {}
        for pod in pods:
            ref = controller_ref(pod)
            if ref is not None:
                scales[str(ref.get("uid"))] = self._scale_of(ns, pod)
        plan = plan_pdb(pdb, pods, scales, rfc3339(self.clock.now()))
        for event in plan.events:
            self.recorder.event(pdb, event.type, event.reason, event.message)
        await write_status_if_changed(self.client, pdb, plan.status)
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE
