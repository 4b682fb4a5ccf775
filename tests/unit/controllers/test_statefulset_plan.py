"""StatefulSet planning: ordered and parallel creation, scale-down from the top, recreation,
rolling update with partition, pod identity, status."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.statefulset.plan import (
    CreatePod,
    DeletePod,
    Event,
    LabelPod,
    StatefulSetPlan,
    new_stateful_pod,
    parent_and_ordinal,
    plan_stateful_set,
    revision_name,
    status_changed,
)

from .workload_objects import NOW, pod, template, ts

SEL = {"app": "web"}


def sts(
    replicas: int = 3,
    *,
    policy: str = "OrderedReady",
    image: str = "nginx:1.25",
    partition: int = 0,
    strategy: str = "RollingUpdate",
    min_ready: int = 0,
    status: dict[str, Any] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    upd: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        upd["rollingUpdate"] = {"partition": partition}
    meta: dict[str, Any] = {
        "name": "web",
        "namespace": "default",
        "uid": "sts-uid",
        "generation": 2,
        "resourceVersion": "4",
    }
    if deleting:
        meta["deletionTimestamp"] = ts(NOW)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": SEL},
            "template": template(image),
            "podManagementPolicy": policy,
            "updateStrategy": upd,
            "minReadySeconds": min_ready,
        },
        "status": status or {},
    }


REV_V1 = revision_name(sts())
REV_V2 = revision_name(sts(image="v2"))


def member(ordinal: int, *, rev: str = REV_V1, **kw: Any) -> dict[str, Any]:
    p = pod(
        f"web-{ordinal}",
        owner_uid="sts-uid",
        owner_kind="StatefulSet",
        labels={
            **SEL,
            "statefulset.kubernetes.io/pod-name": f"web-{ordinal}",
            "apps.kubernetes.io/pod-index": str(ordinal),
            "controller-revision-hash": rev,
        },
        **kw,
    )
    return p


def creates(p: StatefulSetPlan) -> list[str]:
    return [a.pod["metadata"]["name"] for a in p.actions if isinstance(a, CreatePod)]


def deletes(p: StatefulSetPlan) -> list[str]:
    return [a.name for a in p.actions if isinstance(a, DeletePod)]


# (case, set, pods, created, deleted)
SYNC_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[str], list[str]]] = [
    ("ordered: only web-0 first", sts(3), [], ["web-0"], []),
    ("ordered: web-1 waits for web-0 to be ready", sts(3), [member(0, ready=False)], [], []),
    (
        "ordered: web-1 waits for web-0 to run",
        sts(3),
        [member(0, phase="Pending", ready=None)],
        [],
        [],
    ),
    ("ordered: web-0 ready, web-1 next", sts(3), [member(0)], ["web-1"], []),
    ("ordered: a missing middle pod is recreated", sts(3), [member(0), member(2)], ["web-1"], []),
    (
        "ordered: minReadySeconds holds the next pod",
        sts(3, min_ready=60),
        [member(0, ready_since=NOW - 10)],
        [],
        [],
    ),
    ("ordered: terminating pod blocks", sts(3), [member(0, deleting=True)], [], []),
    ("parallel: all at once", sts(3, policy="Parallel"), [], ["web-0", "web-1", "web-2"], []),
    (
        "parallel: does not wait for readiness",
        sts(2, policy="Parallel"),
        [member(0, ready=False)],
        ["web-1"],
        [],
    ),
    (
        "ordered scale down: highest ordinal only",
        sts(1),
        [member(0), member(1), member(2)],
        [],
        ["web-2"],
    ),
    (
        "ordered scale down waits for termination",
        sts(1),
        [member(0), member(1), member(2, deleting=True)],
        [],
        [],
    ),
    (
        "ordered scale down: a healthy top pod goes even if a lower one is unhealthy",
        sts(1),
        [member(0), member(1, ready=False), member(2)],
        [],
        ["web-2"],
    ),
    (
        "ordered scale down: an unhealthy top pod waits for the first unhealthy one",
        sts(1),
        [member(0), member(1, ready=False), member(2, ready=False)],
        [],
        [],
    ),
    (
        "ordered scale down: the first unhealthy pod may go",
        sts(1),
        [member(0), member(1), member(2, ready=False)],
        [],
        ["web-2"],
    ),
    (
        "parallel scale down: all surplus at once",
        sts(1, policy="Parallel"),
        [member(0), member(1), member(2)],
        [],
        ["web-2", "web-1"],
    ),
    ("all healthy: nothing", sts(2), [member(0), member(1)], [], []),
    ("a set being deleted does nothing", sts(2, deleting=True), [], [], []),
    (
        "pods not named like members are ignored",
        sts(1),
        [member(0), pod("other-7", owner_uid="sts-uid", owner_kind="StatefulSet")],
        [],
        [],
    ),
]


@pytest.mark.parametrize(
    ("s", "pods", "want_created", "want_deleted"),
    [c[1:] for c in SYNC_CASES],
    ids=[c[0] for c in SYNC_CASES],
)
def test_sync(
    s: dict[str, Any], pods: list[dict[str, Any]], want_created: list[str], want_deleted: list[str]
) -> None:
    p = plan_stateful_set(s, pods, NOW)
    assert creates(p) == want_created
    assert deletes(p) == want_deleted


def test_failed_pod_is_deleted_and_recreated_with_an_event() -> None:
    p = plan_stateful_set(sts(2), [member(0, phase="Failed", ready=False)], NOW)
    assert p.actions == [
        Event(
            "Warning",
            "RecreatingFailedPod",
            "StatefulSet default/web is recreating failed Pod web-0",
        ),
        DeletePod("web-0", "uid-web-0"),
        CreatePod(new_stateful_pod(sts(2), 0, REV_V1)),
    ]


def test_new_pod_identity() -> None:
    body = new_stateful_pod(sts(), 4, REV_V1)
    assert body["metadata"]["name"] == "web-4"
    assert body["spec"]["hostname"] == "web-4"
    assert body["spec"]["subdomain"] == "web"
    assert body["metadata"]["labels"] == {
        "app": "web",
        "statefulset.kubernetes.io/pod-name": "web-4",
        "apps.kubernetes.io/pod-index": "4",
        "controller-revision-hash": REV_V1,
    }
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "web",
            "uid": "sts-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_missing_identity_labels_are_restored() -> None:
    p0 = member(0)
    del p0["metadata"]["labels"]["apps.kubernetes.io/pod-index"]
    p = plan_stateful_set(sts(1), [p0], NOW)
    assert p.actions == [
        LabelPod(
            "web-0",
            {"statefulset.kubernetes.io/pod-name": "web-0", "apps.kubernetes.io/pod-index": "0"},
        )
    ]


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("web-0", ("web", 0)),
        ("my-db-12", ("my-db", 12)),
        ("web", ("", -1)),
        ("web-x", ("", -1)),
    ],
)
def test_parent_and_ordinal(name: str, want: tuple[str, int]) -> None:
    assert parent_and_ordinal(name) == want


def test_revision_name_is_the_set_name_and_a_template_hash() -> None:
    assert REV_V1.startswith("web-")
    assert REV_V1 != REV_V2
    assert revision_name(sts()) == REV_V1


# -- rolling update ------------------------------------------------------------------------

# (case, set, pods at v1/v2, deleted)
UPDATE_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[str]]] = [
    (
        "the highest ordinal goes first",
        sts(3, image="v2"),
        [member(0), member(1), member(2)],
        ["web-2"],
    ),
    (
        "then the next once the updated one is healthy",
        sts(3, image="v2"),
        [member(0), member(1), member(2, rev=REV_V2)],
        ["web-1"],
    ),
    (
        "an updated pod that is not ready holds the update",
        sts(3, image="v2"),
        [member(0), member(1), member(2, rev=REV_V2, ready=False)],
        [],
    ),
    (
        "partition 2 updates only web-2",
        sts(3, image="v2", partition=2),
        [member(0), member(1), member(2, rev=REV_V2)],
        [],
    ),
    (
        "partition 3 updates nothing",
        sts(3, image="v2", partition=3),
        [member(0), member(1), member(2)],
        [],
    ),
    (
        "OnDelete never deletes for an update",
        sts(3, image="v2", strategy="OnDelete"),
        [member(0), member(1), member(2)],
        [],
    ),
    (
        "all updated: nothing",
        sts(2, image="v2"),
        [member(0, rev=REV_V2), member(1, rev=REV_V2)],
        [],
    ),
]


@pytest.mark.parametrize(
    ("s", "pods", "want"), [c[1:] for c in UPDATE_CASES], ids=[c[0] for c in UPDATE_CASES]
)
def test_rolling_update(s: dict[str, Any], pods: list[dict[str, Any]], want: list[str]) -> None:
    p = plan_stateful_set(s, pods, NOW)
    assert creates(p) == []
    assert deletes(p) == want


def test_recreated_pod_gets_the_update_revision() -> None:
    p = plan_stateful_set(
        sts(3, image="v2", status={"currentRevision": REV_V1}), [member(0), member(1)], NOW
    )
    [create] = [a for a in p.actions if isinstance(a, CreatePod)]
    assert create.pod["metadata"]["labels"]["controller-revision-hash"] == REV_V2


# -- status ------------------------------------------------------------------------------------


def test_status_during_an_update() -> None:
    s = sts(3, image="v2", status={"currentRevision": REV_V1})
    p = plan_stateful_set(s, [member(0), member(1, ready=False), member(2, rev=REV_V2)], NOW)
    assert p.status == {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "currentReplicas": 2,
        "updatedReplicas": 1,
        "currentRevision": REV_V1,
        "updateRevision": REV_V2,
        "collisionCount": 0,
    }


def test_status_completes_the_rolling_update_when_all_are_updated_and_ready() -> None:
    s = sts(2, image="v2", status={"currentRevision": REV_V1})
    p = plan_stateful_set(s, [member(0, rev=REV_V2), member(1, rev=REV_V2)], NOW)
    assert p.status["currentRevision"] == REV_V2
    assert p.status["currentReplicas"] == 2


def test_status_counts_available_after_min_ready_seconds_and_requeues() -> None:
    s = sts(2, min_ready=30, policy="Parallel")
    p = plan_stateful_set(
        s, [member(0, ready_since=NOW - 100), member(1, ready_since=NOW - 10)], NOW
    )
    assert (p.status["readyReplicas"], p.status["availableReplicas"]) == (2, 1)
    assert p.requeue_after == pytest.approx(20.05)


def test_status_change_detection() -> None:
    s = sts(1)
    p = plan_stateful_set(s, [member(0)], NOW)
    assert status_changed(s, p.status)
    s["status"] = p.status
    assert not status_changed(s, plan_stateful_set(s, [member(0)], NOW).status)
