"""The garbage collector, wired: informers on every kind → graph → two work queues → API.

Upstream's design (``pkg/controller/garbagecollector``): informer events only go into a queue
of graph changes; one task (the graph builder) applies them to the :class:`Graph` in order and
enqueues uids. Workers of ``attempt_to_delete`` re-read the item live, check each owner with a
live GET (never the caches: a dependent may be seen before its owner), ask the pure planner
and apply its actions; workers of ``attempt_to_orphan`` cut dependents loose and remove the
``orphan`` finalizer. Nothing runs before every informer has synced.

Every kind in the registry is watched except Events, as upstream's default ignored resources.
Edits are read-modify-write PUTs carrying the resourceVersion read, so a concurrent writer
causes a 409 and a retry rather than a lost update.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from svcnet.api.errors import Conflict, NotFound
from svcnet.api.registry import REGISTRY, NotInRegistry, ResourceType
from svcnet.client.informer import DeletedFinalStateUnknown, FuncHandler, SharedInformerFactory
from svcnet.client.rest import ApiClient
from svcnet.client.workqueue import WorkQueue, default_controller_rate_limiter
from svcnet.controllers.gc_plan import (
    Action,
    ActionKind,
    Enqueue,
    Graph,
    Identity,
    OwnerRef,
    OwnerState,
    classify_owner,
    owner_identity,
    plan_attempt_to_delete,
    plan_deleting_dependents,
    plan_orphan,
    with_unblocked_owner_refs,
    without_finalizer,
    without_owner_refs,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

# Upstream's garbagecollector.DefaultIgnoredResources: events are never owners worth tracking.
IGNORED_RESOURCES: frozenset[tuple[str, str]] = frozenset({("", "events")})


def collected_resources() -> list[ResourceType]:
    return [
        rt
        for rt in REGISTRY.resources
        if (rt.group, rt.plural) not in IGNORED_RESOURCES
        and {"list", "watch", "delete"} <= set(rt.verbs)
    ]


class GarbageCollector:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        *,
        workers: int = 4,
        clock: Clock = REAL_CLOCK,
        resources: list[ResourceType] | None = None,
    ) -> None:
        self.client = client
        self.factory = factory
        self.clock = clock
        self.graph = Graph()
        self.resources = resources if resources is not None else collected_resources()
        self._namespaced = {(rt.group_version, rt.kind): rt.namespaced for rt in REGISTRY.resources}
        self._changes: deque[tuple[str, dict[str, Any]]] = deque()
        self._changes_ready = asyncio.Event()
        self.informers = []
        for rt in self.resources:
            informer = factory.informer_for(rt)
            informer.add_event_handler(
                FuncHandler(
                    on_add=lambda o: self._change("upsert", o),
                    on_update=lambda _old, new: self._change("upsert", new),
                    on_delete=self._on_delete,
                )
            )
            self.informers.append(informer)
        self.delete_queue: WorkQueue[str] = WorkQueue(
            "garbage-collector-attempt-to-delete", default_controller_rate_limiter(clock), clock
        )
        self.orphan_queue: WorkQueue[str] = WorkQueue(
            "garbage-collector-attempt-to-orphan", default_controller_rate_limiter(clock), clock
        )
        self.delete_controller = Controller(
            "garbage-collector-delete",
            self._attempt_to_delete,
            queue=self.delete_queue,
            workers=workers,
            informers=self.informers,
            clock=clock,
        )
        self.orphan_controller = Controller(
            "garbage-collector-orphan",
            self._attempt_to_orphan,
            queue=self.orphan_queue,
            workers=max(1, workers // 2),
            informers=self.informers,
            clock=clock,
        )
        self.actions_applied: list[str] = []

    # -- graph builder -----------------------------------------------------------------------

    def _change(self, kind: str, obj: dict[str, Any]) -> None:
        self._changes.append((kind, obj))
        self._changes_ready.set()

    def _on_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self._change("delete", obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def _enqueue(self, work: Enqueue) -> None:
        for uid in work.attempt_to_delete:
            self.delete_queue.add(uid)
        for uid in work.attempt_to_orphan:
            self.orphan_queue.add(uid)

    async def _build_graph(self) -> None:
        while True:
            while self._changes:
                kind, obj = self._changes.popleft()
                if kind == "upsert":
                    work = self.graph.observe(obj, self._namespaced)
                else:
                    work = self.graph.observe_deleted(obj)
                self._enqueue(work)
            self._changes_ready.clear()
            await self._changes_ready.wait()

    def has_synced(self) -> bool:
        return all(i.has_synced() for i in self.informers) and not self._changes

    async def run(self) -> None:
        """Run until cancelled (the informers are started by the factory's owner)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._build_graph(), name="gc-graph-builder")
            tg.create_task(self.delete_controller.run(), name="gc-attempt-to-delete")
            tg.create_task(self.orphan_controller.run(), name="gc-attempt-to-orphan")

    # -- live reads --------------------------------------------------------------------------

    def _rt(self, api_version: str, kind: str) -> ResourceType | None:
        """None for a kind svcnet does not serve (an owner reference may name any kind)."""
        try:
            return REGISTRY.by_kind(api_version, kind)
        except NotInRegistry:
            return None

    async def _get_live(self, ident: Identity) -> dict[str, Any] | None:
        """The object at ``ident``'s coordinates if it is still that uid, else None."""
        rt = self._rt(ident.api_version, ident.kind)
        if rt is None:
            raise TemporaryError(f"unknown kind {ident.api_version}/{ident.kind}", delay=30.0)
        try:
            obj = await self.client.get(rt, ident.name, ident.namespace)
        except NotFound:
            return None
        if str((obj.get("metadata") or {}).get("uid", "")) != ident.uid:
            return None
        obj.setdefault("apiVersion", rt.group_version)
        obj.setdefault("kind", rt.kind)
        return obj

    async def _owner_state(self, item: Identity, ref: OwnerRef) -> OwnerState:
        if self.graph.is_absent(ref.uid):
            return OwnerState.DANGLING
        where = owner_identity(
            ref, item.namespace, self._namespaced.get((ref.api_version, ref.kind))
        )
        if where is None:
            log.warning(
                "%s: ownerReference to namespaced %s %s from a cluster-scoped object "
                "is invalid; treated as absent",
                item,
                ref.kind,
                ref.name,
            )
            return OwnerState.DANGLING
        rt = self._rt(ref.api_version, ref.kind)
        if rt is None:
            # A kind we do not serve cannot be verified; never collect on a guess.
            return OwnerState.SOLID
        try:
            live = await self.client.get(rt, where.name, where.namespace)
        except NotFound:
            live = None
        state = classify_owner(ref, live)
        if state is OwnerState.DANGLING:
            self.graph.mark_absent(ref.uid)
        return state

    # -- attempt to delete -------------------------------------------------------------------

    async def _attempt_to_delete(self, uid: str) -> Result:
        node = self.graph.nodes.get(uid)
        if node is None:
            return DONE
        if node.being_deleted and not node.deleting_dependents:
            # A one-way trip: its deletion event will enqueue its dependents.
            return DONE
        latest = await self._get_live(node.identity)
        if latest is None:
            # Gone, or a virtual owner that never existed: as if we saw it deleted.
            self._enqueue(self.graph.remove_node(node))
            self.graph.mark_absent(uid)
            return DONE
        if node.virtual:
            # It exists: its informer will show it. Until then, nothing to decide.
            return Result(requeue_after=5.0)
        if node.deleting_dependents:
            plan = plan_deleting_dependents(self.graph, node)
            for dep in plan.attempt_to_delete:
                self.delete_queue.add(dep)
            await self._apply(plan.actions)
            return DONE
        refs = [
            OwnerRef.from_dict(r)
            for r in (latest.get("metadata") or {}).get("ownerReferences") or []
        ]
        owners = [(ref, await self._owner_state(node.identity, ref)) for ref in refs]
        dependents = self.graph.dependents(uid)
        actions = plan_attempt_to_delete(
            latest, owners, bool(dependents), any(d.deleting_dependents for d in dependents)
        )
        await self._apply(actions)
        return DONE

    # -- attempt to orphan -------------------------------------------------------------------

    async def _attempt_to_orphan(self, uid: str) -> Result:
        node = self.graph.nodes.get(uid)
        if node is None or not node.orphaning:
            return DONE
        await self._apply(plan_orphan(self.graph, node))
        return DONE

    # -- writes ------------------------------------------------------------------------------

    async def _apply(self, actions: tuple[Action, ...] | list[Action]) -> None:
        for action in actions:
            await self._apply_one(action)
            self.actions_applied.append(str(action))

    async def _apply_one(self, action: Action) -> None:
        target = action.target
        rt = self._rt(target.api_version, target.kind)
        if rt is None:
            raise TemporaryError(f"unknown kind {target.api_version}/{target.kind}", delay=30.0)
        try:
            if action.kind is ActionKind.DELETE:
                log.info("garbage collector: deleting %s (%s)", target, action.arg)
                await self.client.delete(
                    rt,
                    target.name,
                    target.namespace,
                    propagation_policy=action.arg,  # type: ignore[arg-type]
                    preconditions={"uid": target.uid},
                )
                return
            latest = await self._get_live(target)
            if latest is None:
                return
            edited: Mapping[str, Any] | None
            if action.kind is ActionKind.REMOVE_OWNER_REFS:
                edited = without_owner_refs(latest, action.uids)
            elif action.kind is ActionKind.UNBLOCK_OWNER_REFS:
                edited = with_unblocked_owner_refs(latest)
            else:
                edited = without_finalizer(latest, action.arg)
            if edited is not None:
                log.info("garbage collector: %s", action)
                await self.client.update(edited)
        except NotFound:
            # Already gone: whatever we meant to do to it is moot.
            return
        except Conflict as e:
            # Modified since we read it (or the uid precondition failed): look again.
            raise TemporaryError(f"{action}: {e}") from e
