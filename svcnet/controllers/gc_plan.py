"""Garbage collection, pure half: the owner → dependents graph and what to do about one item.

Follows upstream's ``pkg/controller/garbagecollector`` (graph_builder.go, garbagecollector.go):

* The :class:`Graph` has one node per object uid, holding the object's identity, its
  ``ownerReferences`` and the uids of its dependents. An owner that a dependent names but that
  no informer has shown yet is a *virtual* node; the collector checks whether it exists.
* :meth:`Graph.observe` / :meth:`Graph.observe_deleted` apply one informer event and return
  which uids must be looked at again (``attempt_to_delete``) or orphaned (``attempt_to_orphan``).
* :func:`plan_attempt_to_delete` decides, from the live state of one object and of its owners
  (each classified :class:`OwnerState`), whether it is collected and how.
* :func:`plan_deleting_dependents` and :func:`plan_orphan` handle owners being deleted with the
  ``foregroundDeletion`` and ``orphan`` finalizers.

The async wiring (informers, queues, live GETs, API writes) is in ``svcnet.controllers.gc``.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True)
class Identity:
    """Where an object lives, and which incarnation of it (uid)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass(frozen=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False

    @staticmethod
    def from_dict(ref: Mapping[str, Any]) -> OwnerRef:
        return OwnerRef(
            str(ref.get("apiVersion", "")),
            str(ref.get("kind", "")),
            str(ref.get("name", "")),
            str(ref.get("uid", "")),
            bool(ref.get("controller", False)),
            bool(ref.get("blockOwnerDeletion", False)),
        )


def owner_refs(obj: Mapping[str, Any]) -> tuple[OwnerRef, ...]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return tuple(OwnerRef.from_dict(r) for r in refs if isinstance(r, Mapping))


def identity_of(obj: Mapping[str, Any]) -> Identity:
    meta = obj.get("metadata") or {}
    return Identity(
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        meta.get("namespace") or None,
        str(meta.get("name", "")),
        str(meta.get("uid", "")),
    )


def finalizers_of(obj: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple((obj.get("metadata") or {}).get("finalizers") or ())


def being_deleted(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


@dataclass
class Node:
    identity: Identity
    owners: tuple[OwnerRef, ...] = ()
    dependents: set[str] = field(default_factory=set)
    observed: bool = True
    being_deleted: bool = False
    deleting_dependents: bool = False
    orphaning: bool = False

    @property
    def uid(self) -> str:
        return self.identity.uid

    @property
    def virtual(self) -> bool:
        return not self.observed


@dataclass
class Enqueue:
    """Work a graph change creates."""

    attempt_to_delete: list[str] = field(default_factory=list)
    attempt_to_orphan: list[str] = field(default_factory=list)

    def extend(self, other: Enqueue) -> None:
        self.attempt_to_delete.extend(other.attempt_to_delete)
        self.attempt_to_orphan.extend(other.attempt_to_orphan)


def owner_identity(
    ref: OwnerRef, dependent_namespace: str | None, owner_namespaced: bool | None
) -> Identity | None:
    """Where ``ref`` points. ``owner_namespaced`` None: an unknown kind. None is returned for
    a reference that cannot be valid: a cluster-scoped dependent naming a namespaced owner
    (upstream treats it as absent and reports ``OwnerRefInvalidNamespace``)."""
    if owner_namespaced is None:
        return Identity(ref.api_version, ref.kind, dependent_namespace, ref.name, ref.uid)
    if owner_namespaced:
        if dependent_namespace is None:
            return None
        return Identity(ref.api_version, ref.kind, dependent_namespace, ref.name, ref.uid)
    return Identity(ref.api_version, ref.kind, None, ref.name, ref.uid)


class Graph:
    """The uid graph. :meth:`observe` takes ``namespaced``, a map from (apiVersion, kind) to
    whether that kind is namespaced (missing: an unknown kind), to place virtual owners."""

    def __init__(self, absent_cache_size: int = 500) -> None:
        self.nodes: dict[str, Node] = {}
        # Owners verified not to exist, by uid (upstream's absentOwnerCache, an LRU).
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._absent_size = absent_cache_size

    # -- absent owners -----------------------------------------------------------------------

    def mark_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > self._absent_size:
            self._absent.popitem(last=False)

    def is_absent(self, uid: str) -> bool:
        return uid in self._absent

    # -- events ------------------------------------------------------------------------------

    def observe(
        self,
        obj: Mapping[str, Any],
        namespaced: Mapping[tuple[str, str], bool] | None = None,
    ) -> Enqueue:
        """An object was added or changed (an informer add or update)."""
        namespaced = namespaced or {}
        ident = identity_of(obj)
        owners = owner_refs(obj)
        finalizers = finalizers_of(obj)
        deleting = being_deleted(obj)
        out = Enqueue()
        node = self.nodes.get(ident.uid)
        if node is None:
            node = Node(ident, owners)
            self.nodes[ident.uid] = node
            out.extend(self._add_to_owners(node, owners, namespaced))
        else:
            if not node.observed:
                # A virtual owner has now been seen for real: its coordinates are the truth.
                node.observed = True
            node.identity = ident
            old = {r.uid: r for r in node.owners}
            new = {r.uid: r for r in owners}
            added = [r for u, r in new.items() if u not in old]
            removed = [r for u, r in old.items() if u not in new]
            changed = [r for u, r in new.items() if u in old and old[u] != r]
            # A dependent that stops blocking an owner in foreground deletion may be the last
            # one that owner waits for (upstream addUnblockedOwnersToDeleteQueue).
            for ref in removed + [old[r.uid] for r in changed]:
                if ref.block_owner_deletion:
                    owner = self.nodes.get(ref.uid)
                    if owner is not None and owner.deleting_dependents:
                        out.attempt_to_delete.append(owner.uid)
            node.owners = owners
            out.extend(self._add_to_owners(node, added, namespaced))
            self._remove_from_owners(node, removed)
        node.being_deleted = deleting
        node.deleting_dependents = deleting and FOREGROUND in finalizers
        node.orphaning = deleting and ORPHAN in finalizers
        # Level-triggered: the queues deduplicate, so repeating these on every event is cheap.
        if node.orphaning:
            out.attempt_to_orphan.append(node.uid)
        if node.deleting_dependents:
            out.attempt_to_delete.extend(sorted(node.dependents))
            out.attempt_to_delete.append(node.uid)
        return out

    def observe_deleted(self, obj: Mapping[str, Any]) -> Enqueue:
        """An object is gone (an informer delete, or a live GET that found nothing)."""
        uid = identity_of(obj).uid
        node = self.nodes.get(uid)
        if node is None:
            return Enqueue()
        return self.remove_node(node)

    def remove_node(self, node: Node) -> Enqueue:
        out = Enqueue()
        self.nodes.pop(node.uid, None)
        self._remove_from_owners(node, node.owners)
        if node.dependents:
            self.mark_absent(node.uid)
        out.attempt_to_delete.extend(sorted(node.dependents))
        for ref in node.owners:
            owner = self.nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                out.attempt_to_delete.append(owner.uid)
        return out

    def _add_to_owners(
        self, node: Node, refs: Iterable[OwnerRef], namespaced: Mapping[tuple[str, str], bool]
    ) -> Enqueue:
        out = Enqueue()
        for ref in refs:
            owner = self.nodes.get(ref.uid)
            if owner is None:
                where = owner_identity(
                    ref, node.identity.namespace, namespaced.get((ref.api_version, ref.kind))
                )
                if where is None:
                    where = Identity(ref.api_version, ref.kind, None, ref.name, ref.uid)
                owner = Node(where, observed=False)
                self.nodes[ref.uid] = owner
                # A virtual owner must be checked: it may never have existed.
                out.attempt_to_delete.append(ref.uid)
            owner.dependents.add(node.uid)
        return out

    def _remove_from_owners(self, node: Node, refs: Iterable[OwnerRef]) -> None:
        for ref in refs:
            owner = self.nodes.get(ref.uid)
            if owner is None:
                continue
            owner.dependents.discard(node.uid)
            if owner.virtual and not owner.dependents:
                del self.nodes[owner.uid]

    # -- queries -----------------------------------------------------------------------------

    def dependents(self, uid: str) -> list[Node]:
        node = self.nodes.get(uid)
        if node is None:
            return []
        return [self.nodes[d] for d in sorted(node.dependents) if d in self.nodes]

    def blocking_dependents(self, uid: str) -> list[Node]:
        """Dependents whose reference to ``uid`` has ``blockOwnerDeletion: true``."""
        return [
            dep
            for dep in self.dependents(uid)
            if any(r.uid == uid and r.block_owner_deletion for r in dep.owners)
        ]


# -- decisions --------------------------------------------------------------------------------


class OwnerState(enum.Enum):
    SOLID = "solid"  # exists and is not waiting for its dependents to go
    DANGLING = "dangling"  # does not exist (or exists with another uid)
    WAITING = "waiting"  # being deleted in the foreground: waits for its dependents


def classify_owner(ref: OwnerRef, live_owner: Mapping[str, Any] | None) -> OwnerState:
    """An owner reference against what a live GET of the owner returned (None: not found)."""
    if live_owner is None:
        return OwnerState.DANGLING
    meta = live_owner.get("metadata") or {}
    if str(meta.get("uid", "")) != ref.uid:
        return OwnerState.DANGLING
    if being_deleted(live_owner) and FOREGROUND in finalizers_of(live_owner):
        return OwnerState.WAITING
    return OwnerState.SOLID


class ActionKind(enum.Enum):
    DELETE = "delete"
    REMOVE_OWNER_REFS = "remove-owner-refs"
    UNBLOCK_OWNER_REFS = "unblock-owner-refs"
    REMOVE_FINALIZER = "remove-finalizer"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: Identity
    # DELETE: the propagation policy; REMOVE_FINALIZER: the finalizer.
    arg: str = ""
    # REMOVE_OWNER_REFS: the owner uids to take out.
    uids: tuple[str, ...] = ()

    def __str__(self) -> str:
        extra = self.arg or ",".join(self.uids)
        return f"{self.kind.value} {self.target} {extra}".rstrip()


def delete(target: Identity, policy: str) -> Action:
    return Action(ActionKind.DELETE, target, policy)


def plan_attempt_to_delete(
    latest: Mapping[str, Any],
    owners: list[tuple[OwnerRef, OwnerState]],
    has_dependents: bool,
    dependent_deleting_dependents: bool,
) -> list[Action]:
    """Is ``latest`` garbage, and how to collect it (upstream attemptToDeleteItem).

    ``owners``: each ownerReference of ``latest`` with its classified state.
    ``dependent_deleting_dependents``: one of this item's own dependents is itself deleting
    its dependents (a possible cycle: unblock our references first, as upstream does).
    """
    target = identity_of(latest)
    if not owners:
        return []
    solid = [r for r, s in owners if s is OwnerState.SOLID]
    dangling = [r for r, s in owners if s is OwnerState.DANGLING]
    waiting = [r for r, s in owners if s is OwnerState.WAITING]
    if solid:
        if not dangling and not waiting:
            return []
        # Still owned: only drop the references to owners that are gone or going.
        return [
            Action(
                ActionKind.REMOVE_OWNER_REFS, target, uids=tuple(r.uid for r in dangling + waiting)
            )
        ]
    if waiting and has_dependents:
        actions: list[Action] = []
        if dependent_deleting_dependents:
            actions.append(Action(ActionKind.UNBLOCK_OWNER_REFS, target))
        # Delete in the foreground too, so our owner waits for our own dependents.
        actions.append(delete(target, "Foreground"))
        return actions
    finalizers = finalizers_of(latest)
    if ORPHAN in finalizers:
        policy = "Orphan"
    elif FOREGROUND in finalizers:
        policy = "Foreground"
    else:
        policy = "Background"
    return [delete(target, policy)]


@dataclass(frozen=True)
class DeletingDependentsPlan:
    """For an owner in foreground deletion: remove its finalizer, or look at these deps."""

    actions: tuple[Action, ...]
    attempt_to_delete: tuple[str, ...]


def plan_deleting_dependents(graph: Graph, owner: Node) -> DeletingDependentsPlan:
    """Upstream processDeletingDependentsItem."""
    blocking = graph.blocking_dependents(owner.uid)
    if not blocking:
        return DeletingDependentsPlan(
            (Action(ActionKind.REMOVE_FINALIZER, owner.identity, FOREGROUND),), ()
        )
    return DeletingDependentsPlan((), tuple(d.uid for d in blocking if not d.deleting_dependents))


def plan_orphan(graph: Graph, owner: Node) -> list[Action]:
    """Upstream attemptToOrphanWorker: cut every dependent loose, then drop the finalizer.
    The actions must run in order and stop at the first failure."""
    actions = [
        Action(ActionKind.REMOVE_OWNER_REFS, dep.identity, uids=(owner.uid,))
        for dep in graph.dependents(owner.uid)
    ]
    actions.append(Action(ActionKind.REMOVE_FINALIZER, owner.identity, ORPHAN))
    return actions


# -- object edits the actions make (pure, applied to a freshly read object) -------------------


def without_owner_refs(obj: Mapping[str, Any], uids: Iterable[str]) -> dict[str, Any] | None:
    """``obj`` minus the ownerReferences to ``uids``; None when there is nothing to remove."""
    drop = set(uids)
    meta = dict(obj.get("metadata") or {})
    refs = list(meta.get("ownerReferences") or [])
    kept = [r for r in refs if str(r.get("uid", "")) not in drop]
    if len(kept) == len(refs):
        return None
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)
    return {**obj, "metadata": meta}


def with_unblocked_owner_refs(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    meta = dict(obj.get("metadata") or {})
    refs = list(meta.get("ownerReferences") or [])
    if not any(r.get("blockOwnerDeletion") for r in refs):
        return None
    meta["ownerReferences"] = [
        {**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in refs
    ]
    return {**obj, "metadata": meta}


def without_finalizer(obj: Mapping[str, Any], finalizer: str) -> dict[str, Any] | None:
    meta = dict(obj.get("metadata") or {})
    finalizers = list(meta.get("finalizers") or [])
    if finalizer not in finalizers:
        return None
    kept = [f for f in finalizers if f != finalizer]
    if kept:
        meta["finalizers"] = kept
    else:
        meta.pop("finalizers", None)
    return {**obj, "metadata": meta}
