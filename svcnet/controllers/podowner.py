"""The wiring a controller of pods shares (DaemonSet, Job): owner and pod informers, a queue,
expectations, claiming, and the writes upstream's ``RealPodControl`` makes.

Pod handlers only enqueue the owner's key and count expectations (as the ReplicaSet
controller does); ``write_pods`` records what the cache must show before
the next sync may write again, and emit upstream's events (``SuccessfulCreate`` "Created pod:
NAME", ``SuccessfulDelete`` "Deleted pod: NAME", and their ``Failed…`` counterparts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from svcnet.api.errors import ApiError, Conflict, NotFound
from svcnet.api.objects import ObjView, labels, meta, name, uid
from svcnet.api.registry import PODS, ResourceType
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
from svcnet.controllers.podutil import claim, controller_ref, is_terminating
from svcnet.controllers.replicaset.controller import ClaimWriter
from svcnet.controllers.replicaset.expectations import Expectations
from svcnet.controllers.replicaset.plan import selector_of
from svcnet.controllers.runtime import Controller, PermanentError, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock


class PlannedEvent(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


class PodOwnerLoop:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder,
        owners: ResourceType,
        reconcile: Callable[[str], Awaitable[Result]],
        *,
        extra_informers: Sequence[Informer] = (),
        workers: int = 2,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock
        self.owners = owners
        self.expectations = Expectations()
        self.claims = ClaimWriter(client, owners, PODS)
        indexers = {NAMESPACE_INDEX: index_by_namespace}
        self.owner_informer: Informer = factory.informer_for(owners, indexers=indexers)
        self.pod_informer: Informer = factory.informer_for(PODS, indexers=indexers)
        self.controller = Controller(
            owners.singular,
            reconcile,
            workers=workers,
            informers=[self.owner_informer, self.pod_informer, *extra_informers],
            recorder=recorder,
            clock=clock,
        )
        self.owner_informer.add_event_handler(
            FuncHandler(
                on_add=lambda o: self.controller.enqueue(meta_namespace_key(o)),
                on_update=lambda _o, n: self.controller.enqueue(meta_namespace_key(n)),
                on_delete=self._owner_deleted,
            )
        )
        self.pod_informer.add_event_handler(
            FuncHandler(
                on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
            )
        )

    def enqueue_all(self) -> None:
        for key in list(self.owner_informer.store.keys()):
            self.controller.enqueue(key)

    # -- handlers: enqueue and count expectations only -------------------------------------

    def _owner_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        key = deleted_key(obj)
        self.expectations.forget(key)
        self.controller.enqueue(key)

    def _resolve(self, pod: ObjView, ref: Mapping[str, Any] | None) -> str | None:
        return resolve_controller_ref(self.owner_informer.store, self.owners.kind, pod, ref)

    def _pod_added(self, pod: ObjView) -> None:
        if is_terminating(pod):
            self._pod_deleted(pod)
            return
        key = self._resolve(pod, controller_ref(pod))
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
        elif controller_ref(pod) is None:
            for k in owners_selecting(self.owner_informer.store, pod):
                self.controller.enqueue(k)

    def _pod_updated(self, old: ObjView, new: ObjView) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_terminating(new) and not is_terminating(old):
            self._pod_deleted(new)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            key = self._resolve(old, old_ref)
            if key is not None:
                self.controller.enqueue(key)
        key = self._resolve(new, new_ref)
        if key is not None:
            self.controller.enqueue(key)
        elif new_ref is None and labels(old) != labels(new):
            for k in owners_selecting(self.owner_informer.store, new):
                self.controller.enqueue(k)

    def _pod_deleted(self, obj: ObjView | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        key = self._resolve(pod, controller_ref(pod))
        if key is None:
            return
        self.expectations.deletion_observed(key, meta_namespace_key(pod))
        self.controller.enqueue(key)

    # -- what reconcile calls ---------------------------------------------------------------

    async def claimed_pods(self, owner: ObjView) -> list[ObjView]:
        """The pods ``owner`` controls once orphans that match are adopted and pods that no
        longer match are released (``ClaimPods``)."""
        try:
            selector = selector_of(owner)
        except ValueError as e:
            raise PermanentError(str(e), reason="InvalidSelector", involved=owner) from e
        ns = str(meta(owner).get("namespace") or "")
        pods = self.pod_informer.store.by_index(NAMESPACE_INDEX, ns)
        claims = claim(owner, selector, pods if not selector.empty else [])
        try:
            adopted = await self.claims.apply_claims(owner, claims.adopt, claims.release)
        except Conflict as e:
            raise TemporaryError(f"claiming pods: {e}") from e
        return claims.claimed if adopted else list(claims.owned)

    async def apply(
        self,
        owner: ObjView,
        key: str,
        *,
        create: Sequence[dict[str, Any]],
        delete: Sequence[tuple[str, str]],
        events: Sequence[PlannedEvent],
        status: dict[str, Any],
    ) -> None:
        """One sync's plan: its events, pod writes, then the status (also when a write
        failed: the status tells what the cache showed)."""
        for event in events:
            self.recorder.event(owner, event.type, event.reason, event.message)
        try:
            if create or delete:
                await self.write_pods(owner, key, create, delete)
        finally:
            if dict(owner.get("status") or {}) != status:
                await self.write_status(owner, status)

    async def write_pods(
        self,
        owner: ObjView,
        key: str,
        create: Sequence[dict[str, Any]],
        delete: Sequence[tuple[str, str]],
    ) -> None:
        """Create pods and delete (name, uid) pairs, expecting to see all of it."""
        ns = str(meta(owner).get("namespace") or "")
        self.expectations.expect(
            key, len(create), [f"{ns}/{pod_name}" for pod_name, _ in delete], self.clock.time()
        )
        results = await asyncio.gather(
            self._create_pods(owner, key, create),
            self._delete_pods(owner, key, delete),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _create_pods(self, owner: ObjView, key: str, pods: Sequence[dict[str, Any]]) -> None:
        if not pods:
            return
        ns = meta(owner).get("namespace")
        results = await asyncio.gather(
            *(self.client.create(p, namespace=ns) for p in pods), return_exceptions=True
        )
        failed: BaseException | None = None
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                raise r
            if isinstance(r, BaseException):
                self.expectations.creation_observed(key)
                self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {r}")
                failed = r
            else:
                self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {name(r)}")
        if failed is not None:
            raise TemporaryError(f"creating pods: {failed}") from failed

    async def _delete_pods(self, owner: ObjView, key: str, pods: Sequence[tuple[str, str]]) -> None:
        ns = str(meta(owner).get("namespace") or "")

        async def one(pod_name: str, pod_uid: str) -> None:
            try:
                await self.client.delete(PODS, pod_name, ns, preconditions={"uid": pod_uid})
            except NotFound:
                return  # its delete event settles the expectation
            except ApiError as e:
                self.expectations.deletion_observed(key, f"{ns}/{pod_name}")
                self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {e}")
                raise
            self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_name}")

        results = await asyncio.gather(*(one(n, u) for n, u in pods), return_exceptions=True)
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                raise r
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise TemporaryError(f"deleting pods: {errors[0]}") from errors[0]

    async def write_status(self, owner: ObjView, new_status: dict[str, Any]) -> None:
        """The status is the controller's alone: on a conflict, once more on a fresh copy."""
        try:
            await self.client.update_status({**owner, "status": new_status})
        except Conflict:
            try:
                fresh = await self.client.get(
                    self.owners, name(owner), meta(owner).get("namespace")
                )
            except NotFound:
                return
            if uid(fresh) == uid(owner):
                await self.client.update_status({**fresh, "status": new_status})
        except NotFound:
            return
