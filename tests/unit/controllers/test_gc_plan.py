"""Garbage collector planning: the graph's reactions to events and the decisions, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.gc_plan import (
    FOREGROUND,
    ORPHAN,
    ActionKind,
    Graph,
    OwnerRef,
    OwnerState,
    classify_owner,
    identity_of,
    owner_identity,
    plan_attempt_to_delete,
    plan_deleting_dependents,
    plan_orphan,
    with_unblocked_owner_refs,
    without_finalizer,
    without_owner_refs,
)

NAMESPACED = {
    ("apps/v1", "Deployment"): True,
    ("apps/v1", "ReplicaSet"): True,
    ("v1", "Pod"): True,
    ("v1", "Node"): False,
}


def ref(kind: str, name: str, uid: str, block: bool = False) -> dict[str, Any]:
    api = "v1" if kind in ("Pod", "Node") else "apps/v1"
    r: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
    }
    if block:
        r["blockOwnerDeletion"] = True
    return r


def obj(
    kind: str,
    name: str,
    uid: str,
    owners: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    finalizers: list[str] | None = None,
    ns: str | None = "default",
) -> dict[str, Any]:
    api = "v1" if kind in ("Pod", "Node") else "apps/v1"
    meta: dict[str, Any] = {"name": name, "uid": uid}
    if ns:
        meta["namespace"] = ns
    if owners:
        meta["ownerReferences"] = owners
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": api, "kind": kind, "metadata": meta}


DEPLOY = obj("Deployment", "web", "d1")
RS = obj("ReplicaSet", "web-1", "r1", [ref("Deployment", "web", "d1", block=True)])
POD = obj("Pod", "web-1-a", "p1", [ref("ReplicaSet", "web-1", "r1", block=True)])


# -- the graph ----------------------------------------------------------------------------


def test_a_dependent_seen_before_its_owner_creates_a_virtual_owner_to_verify() -> None:
    g = Graph()
    work = g.observe(RS, NAMESPACED)
    assert work.attempt_to_delete == ["d1"]
    assert g.nodes["d1"].virtual
    assert g.nodes["d1"].identity.namespace == "default"
    assert g.nodes["d1"].dependents == {"r1"}


def test_an_owner_seen_later_turns_its_virtual_node_real() -> None:
    g = Graph()
    g.observe(RS, NAMESPACED)
    work = g.observe(DEPLOY, NAMESPACED)
    assert not g.nodes["d1"].virtual
    assert g.nodes["d1"].dependents == {"r1"}
    assert work.attempt_to_delete == []


def test_an_owner_seen_first_gets_its_dependent_without_work() -> None:
    g = Graph()
    g.observe(DEPLOY, NAMESPACED)
    work = g.observe(RS, NAMESPACED)
    assert work.attempt_to_delete == [] and g.dependents("d1")[0].uid == "r1"


def test_a_deleted_owner_sends_its_dependents_to_attempt_to_delete() -> None:
    g = Graph()
    for o in (DEPLOY, RS, POD):
        g.observe(o, NAMESPACED)
    work = g.observe_deleted(DEPLOY)
    assert work.attempt_to_delete == ["r1"]
    assert g.is_absent("d1") and "d1" not in g.nodes


@pytest.mark.parametrize(
    ("finalizer", "to_delete", "to_orphan"),
    [
        (FOREGROUND, ["r1", "d1"], []),
        (ORPHAN, [], ["d1"]),
    ],
)
def test_an_owner_being_deleted_with_a_gc_finalizer_starts_work(
    finalizer: str, to_delete: list[str], to_orphan: list[str]
) -> None:
    g = Graph()
    g.observe(DEPLOY, NAMESPACED)
    g.observe(RS, NAMESPACED)
    work = g.observe(
        obj("Deployment", "web", "d1", deleting=True, finalizers=[finalizer]), NAMESPACED
    )
    assert (work.attempt_to_delete, work.attempt_to_orphan) == (to_delete, to_orphan)


def test_a_dependent_dropping_its_blocking_ref_wakes_a_foreground_owner() -> None:
    g = Graph()
    g.observe(obj("Deployment", "web", "d1", deleting=True, finalizers=[FOREGROUND]), NAMESPACED)
    g.observe(RS, NAMESPACED)
    work = g.observe(obj("ReplicaSet", "web-1", "r1", []), NAMESPACED)
    assert "d1" in work.attempt_to_delete
    assert g.nodes["d1"].dependents == set()


def test_a_deleted_dependent_wakes_its_foreground_owner() -> None:
    g = Graph()
    g.observe(obj("Deployment", "web", "d1", deleting=True, finalizers=[FOREGROUND]), NAMESPACED)
    g.observe(RS, NAMESPACED)
    assert g.observe_deleted(RS).attempt_to_delete == ["d1"]


def test_a_virtual_owner_without_dependents_leaves_the_graph() -> None:
    g = Graph()
    g.observe(RS, NAMESPACED)
    g.observe_deleted(RS)
    assert g.nodes == {}


@pytest.mark.parametrize(
    ("owner_kind", "dependent_ns", "where_ns"),
    [
        ("ReplicaSet", "default", "default"),  # namespaced owner: the dependent's namespace
        ("Node", "default", None),  # cluster-scoped owner
        ("ReplicaSet", None, "invalid"),  # namespaced owner of a cluster-scoped dependent
    ],
)
def test_owner_coordinates(owner_kind: str, dependent_ns: str | None, where_ns: str) -> None:
    r = OwnerRef.from_dict(ref(owner_kind, "o", "u"))
    where = owner_identity(r, dependent_ns, NAMESPACED[(r.api_version, r.kind)])
    if where_ns == "invalid":
        assert where is None
    else:
        assert where is not None and where.namespace == where_ns


# -- owner classification -----------------------------------------------------------------

R = OwnerRef.from_dict(ref("Deployment", "web", "d1"))


@pytest.mark.parametrize(
    ("live", "state"),
    [
        (None, OwnerState.DANGLING),
        (obj("Deployment", "web", "other-uid"), OwnerState.DANGLING),  # recreated: not ours
        (DEPLOY, OwnerState.SOLID),
        (
            obj("Deployment", "web", "d1", deleting=True, finalizers=[FOREGROUND]),
            OwnerState.WAITING,
        ),
        (obj("Deployment", "web", "d1", deleting=True, finalizers=[ORPHAN]), OwnerState.SOLID),
        (obj("Deployment", "web", "d1", deleting=True), OwnerState.SOLID),
    ],
)
def test_classify_owner(live: dict[str, Any] | None, state: OwnerState) -> None:
    assert classify_owner(R, live) is state


# -- attempt to delete --------------------------------------------------------------------

S, D, W = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING
A = OwnerRef("apps/v1", "ReplicaSet", "a", "ua")
B = OwnerRef("apps/v1", "ReplicaSet", "b", "ub")


@pytest.mark.parametrize(
    ("states", "finalizers", "has_deps", "dep_deleting", "expected"),
    [
        ([], [], False, False, []),
        ([S], [], False, False, []),
        ([S, S], [], True, False, []),
        ([S, D], [], False, False, [("remove-owner-refs", ("ub",))]),
        ([S, W], [], False, False, [("remove-owner-refs", ("ub",))]),
        ([D], [], False, False, [("delete", "Background")]),
        ([D, D], [], True, False, [("delete", "Background")]),
        ([D], [ORPHAN], True, False, [("delete", "Orphan")]),
        ([D], [FOREGROUND], True, False, [("delete", "Foreground")]),
        ([W], [], True, False, [("delete", "Foreground")]),
        ([W], [], True, True, [("unblock-owner-refs", ""), ("delete", "Foreground")]),
        ([W], [], False, False, [("delete", "Background")]),
        ([W, D], [], False, False, [("delete", "Background")]),
    ],
)
def test_attempt_to_delete_decides(
    states: list[OwnerState],
    finalizers: list[str],
    has_deps: bool,
    dep_deleting: bool,
    expected: list[tuple[str, Any]],
) -> None:
    refs = [A, B][: len(states)]
    latest = obj("Pod", "p", "p1", finalizers=finalizers)
    actions = plan_attempt_to_delete(
        latest, list(zip(refs, states, strict=True)), has_deps, dep_deleting
    )
    got = [
        (a.kind.value, a.uids if a.kind is ActionKind.REMOVE_OWNER_REFS else a.arg) for a in actions
    ]
    assert got == expected
    assert all(a.target == identity_of(latest) for a in actions)


# -- foreground and orphan owners ---------------------------------------------------------


def foreground_graph(*deps: dict[str, Any]) -> Graph:
    g = Graph()
    g.observe(obj("Deployment", "web", "d1", deleting=True, finalizers=[FOREGROUND]), NAMESPACED)
    for d in deps:
        g.observe(d, NAMESPACED)
    return g


def test_a_foreground_owner_without_blocking_dependents_drops_its_finalizer() -> None:
    g = foreground_graph(obj("ReplicaSet", "x", "r2", [ref("Deployment", "web", "d1")]))
    plan = plan_deleting_dependents(g, g.nodes["d1"])
    assert [(a.kind, a.arg) for a in plan.actions] == [(ActionKind.REMOVE_FINALIZER, FOREGROUND)]


def test_a_foreground_owner_waits_and_sends_blocking_dependents_to_delete() -> None:
    busy = obj(
        "ReplicaSet",
        "busy",
        "r3",
        [ref("Deployment", "web", "d1", block=True)],
        deleting=True,
        finalizers=[FOREGROUND],
    )
    g = foreground_graph(RS, busy)
    plan = plan_deleting_dependents(g, g.nodes["d1"])
    assert plan.actions == ()
    assert plan.attempt_to_delete == ("r1",)  # r3 is already deleting its own dependents


def test_orphaning_cuts_every_dependent_loose_before_dropping_the_finalizer() -> None:
    g = Graph()
    g.observe(obj("Deployment", "web", "d1", deleting=True, finalizers=[ORPHAN]), NAMESPACED)
    g.observe(RS, NAMESPACED)
    g.observe(obj("ReplicaSet", "web-2", "r2", [ref("Deployment", "web", "d1")]), NAMESPACED)
    actions = plan_orphan(g, g.nodes["d1"])
    assert [(a.kind, a.target.uid, a.uids or a.arg) for a in actions] == [
        (ActionKind.REMOVE_OWNER_REFS, "r1", ("d1",)),
        (ActionKind.REMOVE_OWNER_REFS, "r2", ("d1",)),
        (ActionKind.REMOVE_FINALIZER, "d1", ORPHAN),
    ]


# -- object edits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owners", "drop", "left"),
    [
        ([ref("ReplicaSet", "a", "ua"), ref("ReplicaSet", "b", "ub")], ["ua"], ["ub"]),
        ([ref("ReplicaSet", "a", "ua")], ["ua"], None),  # the key goes when empty
        ([ref("ReplicaSet", "a", "ua")], ["zz"], "unchanged"),
    ],
)
def test_without_owner_refs(owners: list[dict[str, Any]], drop: list[str], left: Any) -> None:
    edited = without_owner_refs(obj("Pod", "p", "p1", owners), drop)
    if left == "unchanged":
        assert edited is None
        return
    assert edited is not None
    got = edited["metadata"].get("ownerReferences")
    assert (None if got is None else [r["uid"] for r in got]) == left


def test_without_finalizer_keeps_the_others() -> None:
    edited = without_finalizer(obj("Pod", "p", "p1", finalizers=["a", ORPHAN]), ORPHAN)
    assert edited is not None and edited["metadata"]["finalizers"] == ["a"]
    assert without_finalizer(obj("Pod", "p", "p1"), ORPHAN) is None


def test_unblocking_clears_block_owner_deletion() -> None:
    edited = with_unblocked_owner_refs(POD)
    assert edited is not None
    assert edited["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is False
    assert with_unblocked_owner_refs(edited) is None
