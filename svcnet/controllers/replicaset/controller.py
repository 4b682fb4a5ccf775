"""The ReplicaSet controller, wired: informers (ReplicaSets, Pods) → queue → reconcile → API.

Handlers only enqueue ReplicaSet keys and record expectations; ``reconcile`` re-reads the
caches, asks :func:`plan_replica_set` and applies the plan: adoption/release patches (which
carry the pod's resourceVersion, so a concurrent change is a 409 and a retry), pod creations
in slow-start batches of 1, 2, 4… (a quota or admission failure stops early instead of
failing 500 times), deletions, events ``SuccessfulCreate``/``SuccessfulDelete`` and the
status. Expectations are set before each burst of writes so a sync that runs before the cache
has seen them creates nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from svcnet.api.errors import ApiError, Conflict, NotFound
from svcnet.api.objects import ObjView, labels, meta, name, uid
from svcnet.api.registry import PODS, REPLICASETS, ResourceType
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.informer import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    FuncHandler,
    Informer,
    SharedInformerFactory,
    deleted_key,
    index_by_namespace,
    meta_namespace_key,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.ownership import owners_selecting, resolve_controller_ref
from svcnet.controllers.podutil import (
    controller_ref,
    is_terminating,
    owner_reference,
    with_controller_ref,
    without_owner,
)
from svcnet.controllers.replicaset.expectations import Expectations
from svcnet.controllers.replicaset.plan import (
    new_pod,
    plan_replica_set,
    replica_set_status,
    requeue_for_availability,
    status_changed,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"


class ManageError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ClaimWriter:
    """Adoption and release of dependents (pods, or a Deployment's ReplicaSets): upstream's
    ``ControllerRefManager``, shared by the workload controllers."""

    def __init__(
        self, client: ApiClient, owner_rt: ResourceType, dependent_rt: ResourceType = PODS
    ) -> None:
        self.client = client
        self.owner_rt = owner_rt
        self.dependent_rt = dependent_rt

    async def can_adopt(self, owner: ObjView) -> bool:
        """``RecheckDeletionTimestamp``: a live read, because the cache may still show an
        owner that was deleted and recreated (new uid) or is being deleted."""
        try:
            fresh = await self.client.get(self.owner_rt, name(owner), meta(owner).get("namespace"))
        except NotFound:
            return False
        return uid(fresh) == uid(owner) and not is_terminating(fresh)

    async def adopt(self, owner: ObjView, pod: ObjView) -> bool:
        ref = owner_reference(owner, self.owner_rt.group_version, self.owner_rt.kind)
        return await self._patch_refs(pod, with_controller_ref(pod, ref))

    async def release(self, owner: ObjView, pod: ObjView) -> bool:
        return await self._patch_refs(pod, without_owner(pod, uid(owner)))

    async def _patch_refs(self, pod: ObjView, refs: list[dict[str, Any]]) -> bool:
        body = {
            "metadata": {
                "ownerReferences": refs or None,
                # A precondition: if the pod changed since we read it, 409 and retry.
                "resourceVersion": meta(pod).get("resourceVersion"),
                "uid": uid(pod),
            }
        }
        try:
            await self.client.patch(
                self.dependent_rt, name(pod), body, "merge", meta(pod).get("namespace")
            )
        except NotFound:
            return False
        return True

    async def apply_claims(
        self, owner: ObjView, adopt: tuple[ObjView, ...], release: tuple[ObjView, ...]
    ) -> bool:
        """Adopt and release; False when the owner may not adopt (it is being deleted or was
        replaced). A conflict is retried by the caller's backoff."""
        for dependent in release:
            await self.release(owner, dependent)
        if not adopt:
            return True
        if not await self.can_adopt(owner):
            return False
        for dependent in adopt:
            await self.adopt(owner, dependent)
        return True


class ReplicaSetController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        *,
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
        owners: ResourceType = REPLICASETS,
    ) -> None:
        """``owners``: ReplicaSets, or ReplicationControllers (the same controller upstream,
        ``NewReplicationManager``, over the older kind with its equality selector)."""
        self.client = client
        self.recorder = recorder
        self.clock = clock
        self.owners = owners
        self.expectations = Expectations()
        self.claims = ClaimWriter(client, owners)
        self.rs_informer: Informer = factory.informer_for(
            owners, indexers={NAMESPACE_INDEX: index_by_namespace}
        )
        self.pod_informer: Informer = factory.informer_for(
            PODS, indexers={NAMESPACE_INDEX: index_by_namespace}
        )
        self.controller = Controller(
            owners.singular,
            self.reconcile,
            workers=workers,
            informers=[self.rs_informer, self.pod_informer],
            recorder=recorder,
            clock=clock,
        )
        self.rs_informer.add_event_handler(
            FuncHandler(
                on_add=lambda o: self.controller.enqueue(meta_namespace_key(o)),
                on_update=lambda _o, n: self.controller.enqueue(meta_namespace_key(n)),
                on_delete=self._rs_deleted,
            )
        )
        self.pod_informer.add_event_handler(
            FuncHandler(
                on_add=self._pod_added,
                on_update=self._pod_updated,
                on_delete=self._pod_deleted,
            )
        )

    async def run(self) -> None:
        await self.controller.run()

    # -- handlers: enqueue and count expectations only -------------------------------------

    def _rs_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        key = deleted_key(obj)
        self.expectations.forget(key)
        self.controller.enqueue(key)

    def _resolve(self, pod: ObjView, ref: Mapping[str, Any] | None) -> str | None:
        return resolve_controller_ref(self.rs_informer.store, self.owners.kind, pod, ref)

    def _matching(self, pod: ObjView) -> list[str]:
        """Every ReplicaSet whose selector matches an orphan (one will adopt it)."""
        return owners_selecting(self.rs_informer.store, pod)

    def _pod_added(self, pod: ObjView) -> None:
        if is_terminating(pod):
            # A pod that shows up already being deleted: count it as gone (upstream).
            self._pod_deleted(pod)
            return
        key = self._resolve(pod, controller_ref(pod))
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
            return
        if controller_ref(pod) is None:
            for k in self._matching(pod):
                self.controller.enqueue(k)

    def _pod_updated(self, old: ObjView, new: ObjView) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return  # a resync: nothing changed
        labels_changed = labels(old) != labels(new)
        if is_terminating(new) and not is_terminating(old):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            key = self._resolve(old, old_ref)
            if key is not None:
                self.controller.enqueue(key)
        key = self._resolve(new, new_ref)
        if key is not None:
            self.controller.enqueue(key)
            return
        if new_ref is None and (labels_changed or old_ref != new_ref):
            for k in self._matching(new):
                self.controller.enqueue(k)

    def _pod_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        key = self._resolve(pod, controller_ref(pod))
        if key is None:
            return
        self.expectations.deletion_observed(key, meta_namespace_key(pod))
        self.controller.enqueue(key)

    # -- reconcile --------------------------------------------------------------------------

    def _related(self, rs: ObjView, ns: str, pods: Sequence[ObjView]) -> list[ObjView]:
        """Pods of every ReplicaSet that shares ``rs``'s controller (its Deployment's other
        ReplicaSets): they count when deciding which node is doubled up."""
        ref = controller_ref(rs)
        if ref is None:
            return [p for p in pods if (r := controller_ref(p)) and r.get("uid") == uid(rs)]
        siblings = {
            uid(o)
            for o in self.rs_informer.store.by_index(NAMESPACE_INDEX, ns)
            if (r := controller_ref(o)) is not None and r.get("uid") == ref.get("uid")
        }
        return [p for p in pods if (r := controller_ref(p)) and r.get("uid") in siblings]

    async def reconcile(self, key: str) -> Result:
        rs = self.rs_informer.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return DONE
        ns = str(meta(rs).get("namespace") or "")
        now = self.clock.time()
        # Read the expectations before the pods: an event landing in between then errs on the
        # side of one more sync, never of acting on a cache that misses our writes.
        satisfied = self.expectations.satisfied(key, now)
        pods = self.pod_informer.store.by_index(NAMESPACE_INDEX, ns)
        try:
            plan = plan_replica_set(
                rs,
                pods,
                now,
                expectations_satisfied=satisfied,
                related=self._related(rs, ns, pods),
            )
        except ValueError as e:  # an invalid selector the API server let through
            log.warning("replicaset %s: %s", key, e)
            return DONE
        try:
            adopted = await self.claims.apply_claims(rs, plan.claims.adopt, plan.claims.release)
        except Conflict as e:
            raise TemporaryError(f"claiming pods: {e}") from e
        if not adopted:
            # The plan counted orphans we may not adopt: look again once the cache shows why.
            raise TemporaryError(f"replicaset {key} may not adopt pods now", delay=1.0)
        failure: ManageError | None = None
        try:
            if plan.create:
                await self._create(rs, key, plan.create)
            elif plan.delete:
                await self._delete(rs, key, plan.delete)
        except ManageError as e:
            failure = e
        new_status = replica_set_status(
            rs,
            plan.active,
            now,
            rfc3339(self.clock.now()),
            failure=(failure.reason, failure.message) if failure else None,
        )
        if status_changed(rs, new_status):
            await self._write_status(rs, new_status)
        if failure is not None:
            raise TemporaryError(failure.message)
        wait = requeue_for_availability(rs, plan.active, self.clock.time())
        return Result(requeue_after=wait) if wait is not None else DONE

    async def _create_one(self, rs: ObjView) -> str:
        created = await self.client.create(
            new_pod(rs, self.owners.group_version, self.owners.kind),
            namespace=meta(rs).get("namespace"),
        )
        return name(created)

    async def _create(self, rs: ObjView, key: str, count: int) -> None:
        self.expectations.expect_creations(key, count, self.clock.time())
        remaining, batch = count, 1
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self._create_one(rs) for _ in range(size)), return_exceptions=True
            )
            remaining -= size
            errors: list[BaseException] = []
            for r in results:
                if isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    errors.append(r)
                    # This pod will never be observed: do not wait for it.
                    self.expectations.creation_observed(key)
                    self.recorder.event(rs, WARNING, "FailedCreate", f"Error creating: {r}")
                else:
                    self.recorder.event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {r}")
            if errors:
                for _ in range(remaining):
                    self.expectations.creation_observed(key)
                raise ManageError("FailedCreate", str(errors[0]))
            batch *= 2

    async def _delete_one(self, rs: ObjView, key: str, pod: ObjView) -> None:
        try:
            await self.client.delete(
                PODS,
                name(pod),
                meta(pod).get("namespace"),
                preconditions={"uid": uid(pod)},
            )
        except NotFound:
            # Already gone: its delete event arrives (or arrived) and settles the expectation.
            return
        except ApiError:
            self.expectations.deletion_observed(key, meta_namespace_key(pod))
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {name(pod)}")

    async def _delete(self, rs: ObjView, key: str, pods: tuple[ObjView, ...]) -> None:
        self.expectations.expect_deletions(
            key, [meta_namespace_key(p) for p in pods], self.clock.time()
        )
        results = await asyncio.gather(
            *(self._delete_one(rs, key, p) for p in pods), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for e in errors:
            if isinstance(e, asyncio.CancelledError):
                raise e
        if errors:
            self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {errors[0]}")
            raise ManageError("FailedDelete", str(errors[0]))

    async def _write_status(self, rs: ObjView, new_status: dict[str, Any]) -> None:
        body = {**rs, "status": new_status}
        try:
            await self.client.update_status(body)
        except Conflict:
            # Upstream retries once on a fresh copy: the status is ours alone to write.
            try:
                fresh = await self.client.get(self.owners, name(rs), meta(rs).get("namespace"))
            except NotFound:
                return
            if uid(fresh) != uid(rs):
                return
            await self.client.update_status({**fresh, "status": new_status})
        except NotFound:
            return
