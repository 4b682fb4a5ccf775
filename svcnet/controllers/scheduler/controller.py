"""The scheduler, wired: Pods and Nodes → a queue of pending pod keys → :func:`schedule` →
``POST pods/<name>/binding`` (or the Unschedulable condition and a FailedScheduling event).

One worker schedules one pod at a time, as upstream's scheduling cycle does, so that every
decision sees the previous ones: a pod is *assumed* on its node the moment it is chosen and
counts there until the informer shows it bound. Pods that fit nowhere wait in a set and are
all queued again when a node changes in a way that can matter (added, labels, taints,
unschedulable, Ready), which is upstream's ``MoveAllToActiveOrBackoffQueue`` on node events;
there is no polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import (
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from svcnet.api.wellknown import SELECTED_NODE_ANNOTATION
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.informer import (
    NODE_NAME_INDEX,
    DeletedFinalStateUnknown,
    FuncHandler,
    SharedInformerFactory,
    index_by_node_name,
    meta_namespace_key,
    unwrap,
)
from svcnet.client.rest import ApiClient
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.controllers.scheduler.plan import (
    DEFAULT_SCHEDULER,
    Bind,
    NodeState,
    PodClaims,
    claim_names,
    needs_scheduling,
    pod_claims,
    ready_status,
    schedule,
    scheduled_message,
    with_unschedulable_condition,
)
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

log = logging.getLogger(__name__)


UNSCHEDULABLE_FLUSH_SECONDS = 300.0


def node_view(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What about a node can change a scheduling decision (heartbeats cannot)."""
    spec = node.get("spec") or {}
    return (
        tuple(sorted((objects.meta(node).get("labels") or {}).items())),
        repr(spec.get("taints")),
        bool(spec.get("unschedulable")),
        ready_status(node),
    )


def pod_view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What about a pending pod can change where it fits (its status cannot)."""
    return (
        repr(pod.get("spec")),
        repr(objects.meta(pod).get("labels")),
        bool(objects.meta(pod).get("deletionTimestamp")),
    )


class Scheduler:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        recorder: EventRecorder | None = None,
        *,
        scheduler_name: str = DEFAULT_SCHEDULER,
        binding_concurrency: int = 16,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.scheduler_name = scheduler_name
        self.clock = clock
        self.pods = factory.informer_for(PODS, indexers={NODE_NAME_INDEX: index_by_node_name})
        self.nodes = factory.informer_for(NODES)
        self.claims = factory.informer_for(PERSISTENTVOLUMECLAIMS)
        self.volumes = factory.informer_for(PERSISTENTVOLUMES)
        self.classes = factory.informer_for(STORAGECLASSES)
        # pod key → (uid, node) chosen but not yet seen bound in the cache.
        self.assumed: dict[str, tuple[str, str]] = {}
        self.unschedulable: set[str] = set()
        self.controller = Controller(
            scheduler_name,
            self.reconcile,
            workers=1,
            informers=[self.pods, self.nodes, self.claims, self.volumes, self.classes],
            recorder=recorder,
            clock=clock,
        )
        self.pods.add_event_handler(
            FuncHandler(
                on_add=self._pod_added,
                on_update=self._pod_updated,
                on_delete=self._pod_deleted,
            )
        )
        self.nodes.add_event_handler(
            FuncHandler(
                on_add=lambda _n: self._retry_unschedulable(),
                on_update=self._node_updated,
            )
        )
        # A claim created, given a node or bound: the pending pods that use it try again.
        self.claims.add_event_handler(
            FuncHandler(on_add=self._claim_changed, on_update=lambda _o, n: self._claim_changed(n))
        )
        self.scheduled = 0
        self.failed = 0
        self._tg: asyncio.TaskGroup | None = None
        # Bindings in flight at once: enough to hide the API's write latency.
        self._binding_slots = asyncio.Semaphore(binding_concurrency)

    # -- handlers ----------------------------------------------------------------------------

    def _pod_added(self, pod: Obj) -> None:
        if needs_scheduling(pod, self.scheduler_name):
            self.controller.enqueue(meta_namespace_key(pod))
        else:
            self._forget_if_bound(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not needs_scheduling(new, self.scheduler_name):
            self._forget_if_bound(new)
            return
        if pod_view(old) != pod_view(new) or not needs_scheduling(old, self.scheduler_name):
            self.controller.enqueue(meta_namespace_key(new))

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        key = meta_namespace_key(pod)
        self.assumed.pop(key, None)
        self.unschedulable.discard(key)
        # A freed host port (or a freed spot) may let a waiting pod fit.
        if (pod.get("spec") or {}).get("nodeName"):
            self._retry_unschedulable()

    def _forget_if_bound(self, pod: Obj) -> None:
        key = meta_namespace_key(pod)
        self.unschedulable.discard(key)
        if (pod.get("spec") or {}).get("nodeName"):
            self.assumed.pop(key, None)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_view(old) != node_view(new):
            self._retry_unschedulable()

    def _claim_changed(self, pvc: Obj) -> None:
        namespace, name = objects.namespace(pvc), objects.name(pvc)
        for pod in self.pods.store.list():
            if (
                objects.namespace(pod) == namespace
                and name in claim_names(pod)
                and needs_scheduling(pod, self.scheduler_name)
            ):
                self.controller.enqueue(meta_namespace_key(pod))

    def pod_claims(self, pod: Obj) -> PodClaims | None:
        names = claim_names(pod)
        if not names:
            return None
        ns = objects.namespace(pod)
        claims = {n: c for n in names if (c := self.claims.store.get(f"{ns}/{n}")) is not None}
        volumes = {objects.name(v): v for v in self.volumes.store.list()}
        classes = {objects.name(c): c for c in self.classes.store.list()}
        return pod_claims(pod, claims, volumes, classes)

    async def _select_node(self, pod: Obj, claims: PodClaims, node: str) -> None:
        """PreBind's first half: each unbound WaitForFirstConsumer claim learns its node; the
        pod is bound once they are Bound (the claim events requeue it)."""
        ns = objects.namespace(pod)
        for name in claims.to_select:
            patch = {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}}
            try:
                await self.client.patch(PERSISTENTVOLUMECLAIMS, name, patch, namespace=ns)
            except NotFound:
                continue
            except Conflict as e:
                raise TemporaryError(f"claim {ns}/{name}: {e}") from e

    def _retry_unschedulable(self) -> None:
        for key in sorted(self.unschedulable):
            self.controller.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------------

    def node_states(self) -> list[NodeState]:
        extra: dict[str, list[Obj]] = {}
        for key, (_uid, node_name) in self.assumed.items():
            pod = self.pods.store.get(key)
            if pod is not None and not (pod.get("spec") or {}).get("nodeName"):
                extra.setdefault(node_name, []).append(pod)
        states = []
        for node in sorted(self.nodes.store.list(), key=lambda n: str(objects.meta(n).get("name"))):
            name = str(objects.meta(node).get("name", ""))
            pods = self.pods.store.by_index(NODE_NAME_INDEX, name) + extra.get(name, [])
            states.append(NodeState(node, pods))
        return states

    async def reconcile(self, key: str) -> Result:
        pod = self.pods.store.get(key)
        if pod is None or not needs_scheduling(pod, self.scheduler_name):
            self.unschedulable.discard(key)
            return DONE
        uid = str(objects.meta(pod).get("uid", ""))
        if self.assumed.get(key, ("", ""))[0] == uid:
            return DONE  # bound already; the cache will catch up
        claims = self.pod_claims(pod)
        decision = schedule(pod, self.node_states(), claims)
        if isinstance(decision, Bind) and claims is not None and not claims.ready:
            await self._select_node(pod, claims, decision.node)
            return Result(requeue_after=UNSCHEDULABLE_FLUSH_SECONDS)
        if isinstance(decision, Bind):
            # Assume at once, bind in the background (upstream's binding cycle): the next pod
            # is scheduled while this binding is in flight and already counts it.
            self.assumed[key] = (uid, decision.node)
            self.unschedulable.discard(key)
            self._spawn_bind(key, pod, decision.node)
            return DONE
        self.failed += 1
        self.unschedulable.add(key)
        log.info("scheduler: %s: %s", key, decision.message)
        if self.recorder is not None:
            self.recorder.event(pod, WARNING, "FailedScheduling", decision.message)
        updated = with_unschedulable_condition(pod, decision.message, rfc3339(self.clock.now()))
        if updated is not None:
            try:
                await self.client.update_status(updated)
            except NotFound:
                return DONE
            except Conflict as e:
                raise TemporaryError(f"pod {key}: {e}") from e
        # Node and pod events retry it at once; this is the safety net for anything missed
        # (upstream flushes its unschedulable queue after 5 minutes).
        return Result(requeue_after=UNSCHEDULABLE_FLUSH_SECONDS)

    def _spawn_bind(self, key: str, pod: Obj, node: str) -> None:
        if self._tg is None:
            raise RuntimeError("scheduler: bind before run()")
        self._tg.create_task(self._bind(key, pod, node), name=f"bind-{key}")

    async def _bind(self, key: str, pod: Obj, node: str) -> None:
        """One binding; never raises (it runs in the scheduler's TaskGroup)."""
        ns, name = (
            str(objects.meta(pod).get("namespace", "")),
            str(objects.meta(pod).get("name", "")),
        )
        uid = str(objects.meta(pod).get("uid", ""))
        async with self._binding_slots:
            try:
                await self.client.bind(name, ns, node, uid)
            except (NotFound, Conflict) as e:
                # Deleted, bound by someone else, or being deleted: nothing left to do.
                self._unassume(key, uid)
                log.info("scheduler: binding %s: %s", key, e)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._unassume(key, uid)
                log.warning("scheduler: binding %s to %s failed: %s (will retry)", key, node, e)
                self.controller.queue.add_rate_limited(key)
                return
        self.scheduled += 1
        if self.recorder is not None:
            self.recorder.event(pod, NORMAL, "Scheduled", scheduled_message(pod, node))

    def _unassume(self, key: str, uid: str) -> None:
        if self.assumed.get(key, ("", ""))[0] == uid:
            del self.assumed[key]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                await self.controller.run()
            finally:
                self._tg = None
