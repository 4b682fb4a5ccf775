"""The StatefulSet controller, wired: informers (StatefulSets, Pods) → queue → reconcile → API.

``reconcile`` claims the pods (adopting orphans that match the selector and are named like
members), asks :func:`plan_stateful_set` for this sync's writes and applies them in order —
creations and deletions with upstream's ``SuccessfulCreate``/``SuccessfulDelete`` events
("create Pod web-0 in StatefulSet web successful") — then writes the status. Pod names are
deterministic, so a sync on a stale cache gets ``AlreadyExists`` and retries rather than
making a second ``web-0``: no expectations are needed (upstream has none either).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from svcnet.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from svcnet.api.objects import ObjView, meta, name, uid
from svcnet.api.registry import PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    FuncHandler,
    Informer,
    SharedInformerFactory,
    enqueue_handler,
    index_by_namespace,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.ownership import owners_selecting, resolve_controller_ref
from svcnet.controllers.podutil import claim, controller_ref
from svcnet.controllers.replicaset.controller import ClaimWriter
from svcnet.controllers.replicaset.plan import selector_of
from svcnet.controllers.runtime import DONE, Controller, PermanentError, Result, TemporaryError
from svcnet.controllers.statefulset.plan import (
    CreatePod,
    DeletePod,
    Event,
    LabelPod,
    is_member_of,
    plan_stateful_set,
    status_changed,
)
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

COMPONENT = "statefulset-controller"


class StatefulSetController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock
        self.claims = ClaimWriter(client, STATEFULSETS, PODS)
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.sts_informer: Informer = factory.informer_for(STATEFULSETS, indexers=indexers)
        self.pod_informer: Informer = factory.informer_for(PODS, indexers=indexers)
        self.controller = Controller(
            "statefulset",
            self.reconcile,
            workers=workers,
            informers=[self.sts_informer, self.pod_informer],
            recorder=recorder,
            clock=clock,
        )
        self.sts_informer.add_event_handler(enqueue_handler(self.controller.enqueue))
        self.pod_informer.add_event_handler(
            FuncHandler(
                on_add=self._pod_changed,
                on_update=self._pod_updated,
                on_delete=lambda o: self._pod_changed(unwrap(o)),
            )
        )

    async def run(self) -> None:
        await self.controller.run()

    def _resolve(self, pod: ObjView, ref: Mapping[str, Any] | None) -> str | None:
        return resolve_controller_ref(self.sts_informer.store, "StatefulSet", pod, ref)

    def _orphan_owners(self, pod: ObjView) -> list[str]:
        return owners_selecting(self.sts_informer.store, pod, also=is_member_of)

    def _pod_changed(self, pod: ObjView) -> None:
        ref = controller_ref(pod)
        key = self._resolve(pod, ref)
        if key is not None:
            self.controller.enqueue(key)
        elif ref is None:
            for k in self._orphan_owners(pod):
                self.controller.enqueue(k)

    def _pod_updated(self, old: ObjView, new: ObjView) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if controller_ref(old) != controller_ref(new):
            key = self._resolve(old, controller_ref(old))
            if key is not None:
                self.controller.enqueue(key)
        self._pod_changed(new)

    async def reconcile(self, key: str) -> Result:
        sts = self.sts_informer.store.get(key)
        if sts is None:
            return DONE
        ns = str(meta(sts).get("namespace") or "")
        try:
            selector = selector_of(sts)
        except ValueError as e:
            raise PermanentError(str(e), reason="InvalidSelector", involved=sts) from e
        pods = self.pod_informer.store.by_index(NAMESPACE_INDEX, ns)
        claims = claim(sts, selector, pods) if not selector.empty else claim(sts, selector, [])
        adopt = tuple(p for p in claims.adopt if is_member_of(sts, p))
        try:
            adopted = await self.claims.apply_claims(sts, adopt, claims.release)
        except Conflict as e:
            raise TemporaryError(f"claiming pods: {e}") from e
        if not adopted:
            adopt = ()
        plan = plan_stateful_set(sts, [*claims.owned, *adopt], self.clock.time())
        try:
            for action in plan.actions:
                await self._apply(sts, action)
        finally:
            if status_changed(sts, plan.status):
                await self._write_status(sts, plan.status)
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE

    def _pod_event(self, sts: ObjView, verb: str, pod_name: str, error: Exception | None) -> None:
        # recordPodEvent: "create Pod web-0 in StatefulSet web successful".
        if error is None:
            self.recorder.event(
                sts,
                NORMAL,
                f"Successful{verb.title()}",
                f"{verb} Pod {pod_name} in StatefulSet {name(sts)} successful",
            )
        else:
            self.recorder.event(
                sts,
                WARNING,
                f"Failed{verb.title()}",
                f"{verb} Pod {pod_name} in StatefulSet {name(sts)} failed error: {error}",
            )

    async def _apply(self, sts: ObjView, action: Any) -> None:
        ns = str(meta(sts).get("namespace") or "")
        if isinstance(action, Event):
            self.recorder.event(sts, action.type, action.reason, action.message)
        elif isinstance(action, CreatePod):
            pod_name = name(action.pod)
            for pvc in action.claims:
                await self._create_claim(sts, pvc, pod_name)
            try:
                await self.client.create(action.pod, namespace=ns)
            except AlreadyExists as e:
                # Our cache is behind (or the old pod is still terminating): look again.
                raise TemporaryError(f"pod {pod_name} already exists", delay=0.2) from e
            except ApiError as e:
                self._pod_event(sts, "create", pod_name, e)
                raise TemporaryError(f"creating pod {pod_name}: {e}") from e
            self._pod_event(sts, "create", pod_name, None)
        elif isinstance(action, DeletePod):
            try:
                await self.client.delete(PODS, action.name, ns, preconditions={"uid": action.uid})
            except NotFound:
                return
            except ApiError as e:
                self._pod_event(sts, "delete", action.name, e)
                raise TemporaryError(f"deleting pod {action.name}: {e}") from e
            self._pod_event(sts, "delete", action.name, None)
        elif isinstance(action, LabelPod):
            try:
                await self.client.patch(
                    PODS, action.name, {"metadata": {"labels": action.labels}}, "merge", ns
                )
            except NotFound:
                return
            except ApiError as e:
                self._pod_event(sts, "update", action.name, e)
                raise TemporaryError(f"updating pod {action.name}: {e}") from e
            self._pod_event(sts, "update", action.name, None)

    async def _create_claim(self, sts: ObjView, pvc: dict[str, Any], pod_name: str) -> None:
        """``createPersistentVolumeClaims``: a missing claim is created; one being deleted
        holds the pod back until it is gone (then it is made again, empty)."""
        ns, claim_name = str(meta(sts).get("namespace") or ""), name(pvc)
        try:
            existing = await self.client.get(PERSISTENTVOLUMECLAIMS, claim_name, ns)
        except NotFound:
            existing = None
        if existing is not None:
            if meta(existing).get("deletionTimestamp"):
                raise TemporaryError(f"pvc {claim_name} is being deleted", delay=1.0)
            return
        try:
            await self.client.create(pvc, namespace=ns)
        except AlreadyExists:
            return
        except ApiError as e:
            self.recorder.event(
                sts,
                WARNING,
                "FailedCreate",
                f"create Claim {claim_name} for Pod {pod_name} in StatefulSet {name(sts)} "
                f"failed error: {e}",
            )
            raise TemporaryError(f"creating claim {claim_name}: {e}") from e
        self.recorder.event(
            sts,
            NORMAL,
            "SuccessfulCreate",
            f"create Claim {claim_name} Pod {pod_name} in StatefulSet {name(sts)} success",
        )

    async def _write_status(self, sts: ObjView, new_status: dict[str, Any]) -> None:
        try:
            await self.client.update_status({**sts, "status": new_status})
        except Conflict:
            try:
                fresh = await self.client.get(STATEFULSETS, name(sts), meta(sts).get("namespace"))
            except NotFound:
                return
            if uid(fresh) == uid(sts):
                await self.client.update_status({**fresh, "status": new_status})
        except NotFound:
            return
