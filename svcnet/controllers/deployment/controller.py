"""The Deployment controller, wired: informers (Deployments, ReplicaSets, Pods) → queue →
reconcile → the writes :func:`plan_deployment` recorded, applied in order.

Each write carries the resourceVersion it was planned from (the cache's, or the one our own
previous write in this sync returned), so a stale cache shows up as a 409 and a retry, never
as a lost update. A ``CreateReplicaSet`` answered ``AlreadyExists`` is either ours (the cache
is behind: fine) or a hash collision: then ``status.collisionCount`` goes up and the next sync
computes another name, as upstream.

The revision annotation of the Deployment is written with a merge patch of the main resource:
upstream writes it through the status subresource, but our status writes reset annotations
(``ResetObjectMetaForStatus``), and an annotation change bumps the Deployment's generation;
the status written right after therefore observes that generation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from svcnet.api.objects import ObjView, labels, meta, name, spec, status, uid
from svcnet.api.registry import DEPLOYMENTS, PODS, REPLICASETS
from svcnet.client.events import EventRecorder
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    FuncHandler,
    Informer,
    SharedInformerFactory,
    enqueue_handler,
    index_by_namespace,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.deployment.plan import (
    FAILED_RS_CREATE,
    PROGRESSING,
    CreateReplicaSet,
    DeleteReplicaSet,
    Event,
    InvalidDeployment,
    PatchDeploymentAnnotations,
    UpdateDeploymentStatus,
    UpdateReplicaSet,
    equal_ignore_hash,
    has_progress_deadline,
    new_condition,
    plan_deployment,
    set_condition,
)
from svcnet.controllers.ownership import owners_selecting, resolve_controller_ref
from svcnet.controllers.podutil import claim, controller_ref
from svcnet.controllers.replicaset.controller import ClaimWriter
from svcnet.controllers.replicaset.plan import selector_of
from svcnet.controllers.runtime import DONE, Controller, PermanentError, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)

COMPONENT = "deployment-controller"


class DeploymentController:
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
        self.claims = ClaimWriter(client, DEPLOYMENTS, REPLICASETS)
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.d_informer: Informer = factory.informer_for(DEPLOYMENTS, indexers=indexers)
        self.rs_informer: Informer = factory.informer_for(REPLICASETS, indexers=indexers)
        self.pod_informer: Informer = factory.informer_for(PODS, indexers=indexers)
        self.controller = Controller(
            "deployment",
            self.reconcile,
            workers=workers,
            informers=[self.d_informer, self.rs_informer, self.pod_informer],
            recorder=recorder,
            clock=clock,
        )
        self.d_informer.add_event_handler(enqueue_handler(self.controller.enqueue))
        self.rs_informer.add_event_handler(
            FuncHandler(
                on_add=self._rs_added,
                on_update=self._rs_updated,
                on_delete=self._rs_deleted,
            )
        )
        self.pod_informer.add_event_handler(FuncHandler(on_delete=self._pod_deleted))

    async def run(self) -> None:
        await self.controller.run()

    # -- handlers ---------------------------------------------------------------------------

    def _resolve(self, obj: ObjView, ref: Mapping[str, Any] | None) -> str | None:
        return resolve_controller_ref(self.d_informer.store, "Deployment", obj, ref)

    def _matching(self, rs: ObjView) -> list[str]:
        return owners_selecting(self.d_informer.store, rs)

    def _rs_added(self, rs: ObjView) -> None:
        key = self._resolve(rs, controller_ref(rs))
        if key is not None:
            self.controller.enqueue(key)
        elif controller_ref(rs) is None:
            for k in self._matching(rs):
                self.controller.enqueue(k)

    def _rs_updated(self, old: ObjView, new: ObjView) -> None:
        if objects.resource_version(old) == objects.resource_version(new):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            key = self._resolve(old, old_ref)
            if key is not None:
                self.controller.enqueue(key)
        key = self._resolve(new, new_ref)
        if key is not None:
            self.controller.enqueue(key)
        elif new_ref is None and (labels(old) != labels(new) or old_ref != new_ref):
            for k in self._matching(new):
                self.controller.enqueue(k)

    def _rs_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        rs = unwrap(obj)
        key = self._resolve(rs, controller_ref(rs))
        if key is not None:
            self.controller.enqueue(key)

    def _pod_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        # Recreate waits for the old pods to be gone: their deletion is its signal.
        pod = unwrap(obj)
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.store.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is None:
            return
        key = self._resolve(rs, controller_ref(rs))
        if key is None:
            return
        d = self.d_informer.store.get(key)
        if d is not None and (spec(d).get("strategy") or {}).get("type") == "Recreate":
            self.controller.enqueue(key)

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result:
        d = self.d_informer.store.get(key)
        if d is None:
            return DONE
        ns = str(meta(d).get("namespace") or "")
        try:
            selector = selector_of(d)
        except ValueError as e:
            raise PermanentError(str(e), reason="InvalidSelector", involved=d) from e
        candidates = self.rs_informer.store.by_index(NAMESPACE_INDEX, ns)
        claims = claim(d, selector, candidates) if not selector.empty else claim(d, selector, [])
        try:
            adopted = await self.claims.apply_claims(d, claims.adopt, claims.release)
        except Conflict as e:
            raise TemporaryError(f"claiming replica sets: {e}") from e
        owned = claims.claimed if adopted else list(claims.owned)
        owned_uids = {uid(rs) for rs in owned}
        pods_by_rs: dict[str, list[ObjView]] = {}
        if (spec(d).get("strategy") or {}).get("type") == "Recreate":
            for pod in self.pod_informer.store.by_index(NAMESPACE_INDEX, ns):
                ref = controller_ref(pod)
                if ref is not None and ref.get("uid") in owned_uids:
                    pods_by_rs.setdefault(str(ref["uid"]), []).append(pod)
        try:
            plan = plan_deployment(
                d, owned, pods_by_rs, self.clock.time(), rfc3339(self.clock.now())
            )
        except InvalidDeployment as e:
            raise PermanentError(str(e), reason="InvalidDeployment", involved=d) from e
        await self._apply(d, plan.actions)
        if plan.requeue_after is not None:
            return Result(requeue_after=plan.requeue_after)
        return DONE

    async def _apply(self, d: ObjView, actions: list[Any]) -> None:
        ns = str(meta(d).get("namespace") or "")
        d_rv = objects.resource_version(d)
        generation = int(meta(d).get("generation") or 0)
        observed_bump = 0
        rs_rv: dict[str, str] = {}
        for action in actions:
            if isinstance(action, Event):
                self.recorder.event(d, action.type, action.reason, action.message)
            elif isinstance(action, CreateReplicaSet):
                created = await self._create_rs(d, action.rs)
                rs_rv[name(created)] = objects.resource_version(created)
            elif isinstance(action, UpdateReplicaSet):
                body = dict(action.rs)
                body["metadata"] = {**action.rs["metadata"]}
                if name(body) in rs_rv:
                    body["metadata"]["resourceVersion"] = rs_rv[name(body)]
                body.pop("status", None)
                try:
                    updated = await self.client.update(body)
                except (Conflict, NotFound) as e:
                    raise TemporaryError(f"updating replica set {name(body)}: {e}") from e
                rs_rv[name(updated)] = objects.resource_version(updated)
            elif isinstance(action, DeleteReplicaSet):
                try:
                    await self.client.delete(
                        REPLICASETS, action.name, ns, preconditions={"uid": action.uid}
                    )
                except NotFound:
                    pass
                except Conflict as e:
                    raise TemporaryError(f"deleting replica set {action.name}: {e}") from e
            elif isinstance(action, PatchDeploymentAnnotations):
                patched = await self.client.patch(
                    DEPLOYMENTS,
                    name(d),
                    {"metadata": {"annotations": action.annotations}},
                    "merge",
                    ns,
                )
                d_rv = objects.resource_version(patched)
                # Our own annotation write bumped the generation (see the module docstring):
                # the status we write next has observed it.
                new_gen = int(meta(patched).get("generation") or 0)
                if new_gen == generation + 1 + observed_bump:
                    observed_bump += 1
            elif isinstance(action, UpdateDeploymentStatus):
                st = dict(action.status)
                if observed_bump and int(st.get("observedGeneration") or 0) == generation:
                    st["observedGeneration"] = generation + observed_bump
                body = {**d, "metadata": {**meta(d), "resourceVersion": d_rv}, "status": st}
                try:
                    written = await self.client.update_status(body)
                except (Conflict, NotFound) as e:
                    raise TemporaryError(f"updating deployment status: {e}") from e
                d_rv = objects.resource_version(written)

    async def _create_rs(self, d: ObjView, rs: dict[str, Any]) -> dict[str, Any]:
        ns = str(meta(d).get("namespace") or "")
        try:
            return await self.client.create(rs, namespace=ns)
        except AlreadyExists as e:
            try:
                existing = await self.client.get(REPLICASETS, name(rs), ns)
            except NotFound:
                raise TemporaryError(f"replica set {name(rs)} vanished") from e
            ref = controller_ref(existing)
            if (
                ref is not None
                and ref.get("uid") == uid(d)
                and equal_ignore_hash(spec(existing).get("template"), spec(d).get("template"))
            ):
                # Ours: the cache had not seen it yet.
                raise TemporaryError(f"replica set {name(rs)} already exists") from e
            count = int(status(d).get("collisionCount") or 0) + 1
            body = {**d, "status": {**status(d), "collisionCount": count}}
            with contextlib.suppress(Conflict, NotFound):
                await self.client.update_status(body)
            log.info(
                "deployment %s/%s: hash collision on %s, collisionCount=%d",
                ns,
                name(d),
                name(rs),
                count,
            )
            raise TemporaryError(f"hash collision for replica set {name(rs)}") from e
        except ApiError as e:
            msg = f'Failed to create new replica set "{name(rs)}": {e}'
            if has_progress_deadline(d):
                st = {
                    **status(d),
                    "conditions": [dict(c) for c in status(d).get("conditions") or ()],
                }
                set_condition(
                    st,
                    new_condition(
                        PROGRESSING, "False", FAILED_RS_CREATE, msg, rfc3339(self.clock.now())
                    ),
                )
                with contextlib.suppress(ApiError):
                    await self.client.update_status({**d, "status": st})
            self.recorder.event(d, "Warning", FAILED_RS_CREATE, msg)
            raise TemporaryError(msg) from e
