"""What a DELETE does: remove now, or mark and keep (finalizers, graceful pods, namespaces)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.api.registry import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS
from svcnet.apiserver import deletion
from svcnet.apiserver.deletion import DeleteOptions, Outcome, Propagation

NOW = datetime.datetime(2026, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)
CM = CONFIGMAPS
POD = PODS
NS = NAMESPACES
DEPLOY = DEPLOYMENTS
assert CM and POD and NS and DEPLOY


def _obj(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "uid": "u1", "resourceVersion": "5", **meta}}


def _pod(
    node: str | None = "node-1", phase: str = "Running", grace: int | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": "p"}, "spec": spec, "status": {"phase": phase}}


def test_plain_object_is_removed_at_once() -> None:
    assert deletion.plan_delete(CM, _obj(), DeleteOptions(), NOW, False).outcome is Outcome.REMOVE


def test_background_propagation_removes_at_once() -> None:
    plan = deletion.plan_delete(
        DEPLOY, _obj(), DeleteOptions(propagation=Propagation.BACKGROUND), NOW, False
    )
    assert plan.outcome is Outcome.REMOVE


@pytest.mark.parametrize(
    ("prop", "finalizer"),
    [(Propagation.ORPHAN, "orphan"), (Propagation.FOREGROUND, "foregroundDeletion")],
)
def test_orphan_and_foreground_add_their_finalizer(prop: Propagation, finalizer: str) -> None:
    plan = deletion.plan_delete(DEPLOY, _obj(), DeleteOptions(propagation=prop), NOW, False)
    assert plan.outcome is Outcome.KEEP and plan.updated is not None
    meta = plan.updated["metadata"]
    assert meta["finalizers"] == [finalizer]
    assert meta["deletionTimestamp"] == "2026-01-10T12:00:00Z"
    assert meta["deletionGracePeriodSeconds"] == 0


def test_object_with_finalizers_is_marked_not_removed() -> None:
    plan = deletion.plan_delete(CM, _obj(finalizers=["example.com/x"]), DeleteOptions(), NOW, False)
    assert plan.outcome is Outcome.KEEP
    assert plan.updated is not None and plan.updated["metadata"]["finalizers"] == ["example.com/x"]


def test_second_delete_of_marked_object_changes_nothing() -> None:
    obj = _obj(finalizers=["example.com/x"], deletionTimestamp="2026-01-10T11:00:00Z")
    assert deletion.plan_delete(CM, obj, DeleteOptions(), NOW, False).outcome is Outcome.UNCHANGED


def test_bound_pod_on_existing_node_is_deleted_gracefully() -> None:
    plan = deletion.plan_delete(POD, _pod(grace=10), DeleteOptions(), NOW, True)
    assert plan.outcome is Outcome.KEEP and plan.updated is not None
    assert plan.updated["metadata"]["deletionTimestamp"] == "2026-01-10T12:00:10Z"
    assert plan.updated["metadata"]["deletionGracePeriodSeconds"] == 10


def test_pod_default_grace_is_thirty_seconds() -> None:
    plan = deletion.plan_delete(POD, _pod(), DeleteOptions(), NOW, True)
    assert plan.updated is not None and plan.updated["metadata"]["deletionGracePeriodSeconds"] == 30


@pytest.mark.parametrize(
    ("pod", "node_exists", "opts"),
    [
        (_pod(node=None), False, DeleteOptions()),
        (_pod(), False, DeleteOptions()),
        (_pod(phase="Succeeded"), True, DeleteOptions()),
        (_pod(), True, DeleteOptions(grace_period_seconds=0)),
    ],
    ids=["unbound", "node-missing", "terminated", "grace-zero"],
)
def test_pod_removed_at_once(pod: dict[str, Any], node_exists: bool, opts: DeleteOptions) -> None:
    assert deletion.plan_delete(POD, pod, opts, NOW, node_exists).outcome is Outcome.REMOVE


def test_namespace_with_spec_finalizer_becomes_terminating() -> None:
    ns = {
        "metadata": {"name": "n"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    plan = deletion.plan_delete(NS, ns, DeleteOptions(), NOW, False)
    assert plan.outcome is Outcome.KEEP and plan.updated is not None
    assert plan.updated["status"]["phase"] == "Terminating"
    assert plan.updated["metadata"]["deletionTimestamp"] == "2026-01-10T12:00:00Z"


@pytest.mark.parametrize(
    ("meta", "done"),
    [
        ({"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0}, True),
        ({"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0, "finalizers": ["a"]}, False),
        ({"deletionTimestamp": "t", "deletionGracePeriodSeconds": 30}, False),
        ({}, False),
    ],
)
def test_finalizers_done(meta: dict[str, Any], done: bool) -> None:
    assert deletion.finalizers_done({"metadata": meta}) is done


def test_delete_options_from_body_and_query() -> None:
    opts = deletion.delete_options({"propagationPolicy": "Foreground"}, {"gracePeriodSeconds": "5"})
    assert opts == DeleteOptions(grace_period_seconds=5, propagation=Propagation.FOREGROUND)


def test_orphan_dependents_true_means_orphan() -> None:
    assert deletion.delete_options({"orphanDependents": True}, {}).propagation is Propagation.ORPHAN
