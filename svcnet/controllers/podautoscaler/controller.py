"""The horizontal pod autoscaler controller, wired: informers (HPAs and the kinds with a scale)
→ queue → reconcile → status. It reads the target's ``spec.replicas`` from the cache and
writes what :func:`plan_hpa` says; with no metrics API it never scales (see the plan)."""

from __future__ import annotations

from svcnet.api.objects import ObjView, meta, spec
from svcnet.api.registry import (
    DEPLOYMENTS,
    HORIZONTALPODAUTOSCALERS,
    REGISTRY,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    NotInRegistry,
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
from svcnet.controllers.podautoscaler.plan import plan_hpa
from svcnet.controllers.runtime import (
    DONE,
    Controller,
    Result,
    enqueue_own_key,
    on_any_change,
    write_status_if_changed,
)
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

COMPONENT = "horizontal-pod-autoscaler"
_SCALED = (DEPLOYMENTS, REPLICASETS, STATEFULSETS, REPLICATIONCONTROLLERS)


class HorizontalPodAutoscalerController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.hpas: Informer = factory.informer_for(HORIZONTALPODAUTOSCALERS, indexers=indexers)
        self.scaled = {rt: factory.informer_for(rt, indexers=indexers) for rt in _SCALED}
        self.controller = Controller(
            "horizontalpodautoscaler",
            self.reconcile,
            workers=1,
            informers=[self.hpas, *self.scaled.values()],
            recorder=recorder,
            clock=clock,
        )
        self.hpas.add_event_handler(enqueue_own_key(self.controller))
        for informer in self.scaled.values():
            informer.add_event_handler(on_any_change(self._target_changed))

    def _target_changed(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        target = unwrap(obj)
        ns = str(meta(target).get("namespace") or "")
        for hpa in self.hpas.store.by_index(NAMESPACE_INDEX, ns):
            if (spec(hpa).get("scaleTargetRef") or {}).get("name") == meta(target).get("name"):
                self.controller.enqueue(meta_namespace_key(hpa))

    async def run(self) -> None:
        await self.controller.run()

    def _target(self, hpa: ObjView) -> tuple[int | None, str]:
        ref = spec(hpa).get("scaleTargetRef") or {}
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        group = api_version.rpartition("/")[0]
        try:
            rt = REGISTRY.by_kind(api_version, kind)
        except NotInRegistry:
            return None, (
                "unable to determine resource for scale target reference: no matches for kind "
                f'"{kind}" in group "{group}"'
            )
        informer = self.scaled.get(rt)
        name = str(ref.get("name") or "")
        target = informer.store.get(f"{meta(hpa).get('namespace')}/{name}") if informer else None
        if target is None:
            return None, f'{rt.plural}/scale{"." + rt.group if rt.group else ""} "{name}" not found'
        return int(spec(target).get("replicas", 1)), ""

    async def reconcile(self, key: str) -> Result:
        hpa = self.hpas.store.get(key)
        if hpa is None:
            return DONE
        replicas, error = self._target(hpa)
        plan = plan_hpa(hpa, replicas, error, rfc3339(self.clock.now()))
        for event in plan.events:
            self.recorder.event(hpa, event.type, event.reason, event.message)
        await write_status_if_changed(self.client, hpa, plan.status)
        return DONE
