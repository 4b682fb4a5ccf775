"""ReplicaSet planning: claims, create/delete counts, pod bodies, status; plus expectations."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.podutil import claim, owner_reference, with_controller_ref, without_owner
from svcnet.controllers.replicaset.expectations import Expectations
from svcnet.controllers.replicaset.plan import (
    new_pod,
    plan_replica_set,
    replica_set_status,
    requeue_for_availability,
    selector_of,
    status_changed,
)

from .workload_objects import NOW, NOW_TEXT, pod, replica_set

# -- what one sync creates or deletes --------------------------------------------------------

SYNC_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], bool, int, list[str]]] = [
    ("no pods: create all", replica_set(replicas=3), [], True, 3, []),
    ("enough pods: nothing", replica_set(replicas=2), [pod("a"), pod("b")], True, 0, []),
    ("one short: create one", replica_set(replicas=3), [pod("a"), pod("b")], True, 1, []),
    (
        "one too many: delete one",
        replica_set(replicas=1),
        [pod("a", created=NOW - 10000), pod("b", created=NOW - 100)],
        True,
        0,
        ["b"],
    ),
    ("expectations unmet: no writes", replica_set(replicas=3), [], False, 0, []),
    (
        "terminating pods do not count",
        replica_set(replicas=2),
        [pod("a"), pod("b", deleting=True)],
        True,
        1,
        [],
    ),
    (
        "finished pods do not count",
        replica_set(replicas=2),
        [pod("a"), pod("b", phase="Failed"), pod("c", phase="Succeeded")],
        True,
        1,
        [],
    ),
    (
        "another controller's pods do not count",
        replica_set(replicas=2),
        [pod("a"), pod("b", owner_uid="other")],
        True,
        1,
        [],
    ),
    (
        "a matching orphan counts (adopted)",
        replica_set(replicas=2),
        [pod("a"), pod("b", owner_uid=None)],
        True,
        0,
        [],
    ),
    (
        "a non-matching orphan does not count",
        replica_set(replicas=2),
        [pod("a"), pod("b", owner_uid=None, labels={"app": "db"})],
        True,
        1,
        [],
    ),
    (
        "an owned pod that stopped matching does not count",
        replica_set(replicas=2),
        [pod("a"), pod("b", labels={"app": "db"})],
        True,
        1,
        [],
    ),
    (
        "a ReplicaSet being deleted creates nothing",
        replica_set(replicas=2, deleting=True),
        [],
        True,
        0,
        [],
    ),
    (
        "scale to zero deletes all",
        replica_set(replicas=0),
        [pod("a"), pod("b")],
        True,
        0,
        ["a", "b"],
    ),
]


@pytest.mark.parametrize(
    ("rs", "pods", "satisfied", "create", "delete"),
    [c[1:] for c in SYNC_CASES],
    ids=[c[0] for c in SYNC_CASES],
)
def test_plan_create_and_delete(
    rs: dict[str, Any], pods: list[dict[str, Any]], satisfied: bool, create: int, delete: list[str]
) -> None:
    plan = plan_replica_set(rs, pods, NOW, expectations_satisfied=satisfied)
    assert plan.create == create
    assert sorted(p["metadata"]["name"] for p in plan.delete) == delete


def test_plan_caps_creations_at_burst() -> None:
    plan = plan_replica_set(replica_set(replicas=1000), [], NOW, burst=500)
    assert plan.create == 500


def test_plan_claims_adopt_orphans_and_release_non_matching() -> None:
    pods = [
        pod("mine"),
        pod("orphan", owner_uid=None),
        pod("moved", labels={"app": "db"}),
        pod("theirs", owner_uid="other"),
        pod("gone-orphan", owner_uid=None, deleting=True),
    ]
    plan = plan_replica_set(replica_set(replicas=2), pods, NOW)
    assert [p["metadata"]["name"] for p in plan.claims.owned] == ["mine"]
    assert [p["metadata"]["name"] for p in plan.claims.adopt] == ["orphan"]
    # "moved" is active and owned but no longer matches: released.
    assert [p["metadata"]["name"] for p in plan.claims.release] == ["moved"]


def test_plan_deletion_uses_related_pods_for_doubled_up_nodes() -> None:
    # Both pods look the same; "b" shares node-2 with a sibling ReplicaSet's pod.
    a = pod("a", node="node-1", uid="1")
    b = pod("b", node="node-2", uid="2")
    sibling = pod("s", node="node-2", owner_uid="rs-2")
    plan = plan_replica_set(replica_set(replicas=1), [a, b], NOW, related=[a, b, sibling])
    assert [p["metadata"]["name"] for p in plan.delete] == ["b"]


# -- the pod a ReplicaSet creates -------------------------------------------------------------


def test_new_pod_has_generate_name_template_labels_and_controller_ref() -> None:
    rs = replica_set("web-abc", labels={"app": "web", "pod-template-hash": "abc"})
    rs["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    body = new_pod(rs)
    assert body["metadata"]["generateName"] == "web-abc-"
    assert "name" not in body["metadata"]
    assert body["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
    assert body["metadata"]["annotations"] == {"a": "b"}
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-abc",
            "uid": "rs-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert body["spec"] == rs["spec"]["template"]["spec"]
    assert body["spec"] is not rs["spec"]["template"]["spec"]


def test_new_pod_prefix_falls_back_to_the_name_when_too_long() -> None:
    long_name = "a" * 250
    assert new_pod(replica_set(long_name))["metadata"]["generateName"] == long_name


# -- status ------------------------------------------------------------------------------------

STATUS_CASES: list[tuple[str, int, list[dict[str, Any]], dict[str, int]]] = [
    (
        "all ready and available",
        0,
        [pod("a"), pod("b")],
        {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "fullyLabeledReplicas": 2},
    ),
    (
        "not ready counts as a replica only",
        0,
        [pod("a"), pod("b", ready=False)],
        {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "fullyLabeledReplicas": 2},
    ),
    (
        "ready within minReadySeconds is not available",
        60,
        [pod("a", ready_since=NOW - 10), pod("b", ready_since=NOW - 100)],
        {"replicas": 2, "readyReplicas": 2, "availableReplicas": 1, "fullyLabeledReplicas": 2},
    ),
    (
        "pods missing template labels are not fully labeled",
        0,
        [pod("a", labels={"app": "web"}), pod("b", labels={"app": "web", "x": "y"})],
        {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "fullyLabeledReplicas": 2},
    ),
]


@pytest.mark.parametrize(
    ("min_ready", "pods", "want"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES]
)
def test_status_counts(min_ready: int, pods: list[dict[str, Any]], want: dict[str, int]) -> None:
    st = replica_set_status(replica_set(min_ready=min_ready, generation=4), pods, NOW, NOW_TEXT)
    assert {k: st[k] for k in want} == want
    assert st["observedGeneration"] == 4


def test_status_fully_labeled_needs_every_template_label() -> None:
    rs = replica_set(labels={"app": "web"})
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "front"}
    st = replica_set_status(
        rs, [pod("a"), pod("b", labels={"app": "web", "tier": "front"})], NOW, NOW_TEXT
    )
    assert st["fullyLabeledReplicas"] == 1


def test_status_sets_replica_failure_on_error_and_clears_it_after() -> None:
    rs = replica_set()
    failed = replica_set_status(rs, [], NOW, NOW_TEXT, failure=("FailedCreate", "quota"))
    assert failed["conditions"] == [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": NOW_TEXT,
            "reason": "FailedCreate",
            "message": "quota",
        }
    ]
    rs["status"] = failed
    assert "conditions" not in replica_set_status(rs, [], NOW, NOW_TEXT)


def test_status_unchanged_is_not_written() -> None:
    rs = replica_set()
    st = replica_set_status(rs, [pod("a")], NOW, NOW_TEXT)
    assert status_changed(rs, st)
    rs["status"] = st
    assert not status_changed(rs, replica_set_status(rs, [pod("a")], NOW, NOW_TEXT))


def test_requeue_when_a_ready_pod_becomes_available_later() -> None:
    rs = replica_set(min_ready=30)
    assert requeue_for_availability(rs, [pod("a", ready_since=NOW - 10)], NOW) == pytest.approx(
        20.05
    )
    assert requeue_for_availability(rs, [pod("a", ready_since=NOW - 100)], NOW) is None
    assert requeue_for_availability(replica_set(), [pod("a", ready_since=NOW)], NOW) is None


# -- expectations -----------------------------------------------------------------------------


def test_expectations_unknown_key_is_satisfied() -> None:
    assert Expectations().satisfied("ns/rs", NOW)


def test_expectations_creations_wait_for_every_observation() -> None:
    e = Expectations()
    e.expect_creations("ns/rs", 2, NOW)
    assert not e.satisfied("ns/rs", NOW)
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs", NOW)
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs", NOW)


def test_expectations_deletions_are_tracked_by_pod_key() -> None:
    e = Expectations()
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"], NOW)
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # a repeat does not count twice
    assert not e.satisfied("ns/rs", NOW)
    e.deletion_observed("ns/rs", "ns/b")
    assert e.satisfied("ns/rs", NOW)


def test_expectations_expire_after_the_timeout() -> None:
    e = Expectations(timeout=300)
    e.expect_creations("ns/rs", 1, NOW)
    assert not e.satisfied("ns/rs", NOW + 299)
    assert e.satisfied("ns/rs", NOW + 301)


def test_expectations_forget_drops_the_record() -> None:
    e = Expectations()
    e.expect_creations("ns/rs", 1, NOW)
    e.forget("ns/rs")
    assert e.satisfied("ns/rs", NOW)
    assert e.pending("ns/rs") == (0, 0)


# -- claims (shared by the three controllers) ---------------------------------------------------

CLAIM_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("owned and matching: kept", replica_set(), pod("p"), "owned"),
    (
        "owned, no longer matching: released",
        replica_set(),
        pod("p", labels={"app": "x"}),
        "release",
    ),
    (
        "owned, not matching, being deleted: left alone",
        replica_set(),
        pod("p", labels={"app": "x"}, deleting=True),
        "none",
    ),
    ("orphan matching: adopted", replica_set(), pod("p", owner_uid=None), "adopt"),
    (
        "orphan being deleted: not adopted",
        replica_set(),
        pod("p", owner_uid=None, deleting=True),
        "none",
    ),
    (
        "orphan while the owner is being deleted: not adopted",
        replica_set(deleting=True),
        pod("p", owner_uid=None),
        "none",
    ),
    ("another controller's pod: never touched", replica_set(), pod("p", owner_uid="other"), "none"),
]


@pytest.mark.parametrize(
    ("rs", "p", "want"), [c[1:] for c in CLAIM_CASES], ids=[c[0] for c in CLAIM_CASES]
)
def test_claim(rs: dict[str, Any], p: dict[str, Any], want: str) -> None:
    c = claim(rs, selector_of(rs), [p])
    got = {"owned": c.owned, "adopt": c.adopt, "release": c.release}
    for kind, items in got.items():
        assert len(items) == (1 if kind == want else 0), kind


def test_orphan_in_another_namespace_is_not_adopted() -> None:
    other = pod("p", owner_uid=None)
    other["metadata"]["namespace"] = "elsewhere"
    rs = replica_set()
    assert claim(rs, selector_of(rs), [other]).adopt == ()


def test_adoption_and_release_edit_only_our_reference() -> None:
    p = pod("p", owner_uid=None)
    p["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "cm-uid"}
    ]
    ref = owner_reference(replica_set(), "apps/v1", "ReplicaSet")
    refs = with_controller_ref(p, ref)
    assert [r["uid"] for r in refs] == ["cm-uid", "rs-uid"]
    p["metadata"]["ownerReferences"] = refs
    assert [r["uid"] for r in without_owner(p, "rs-uid")] == ["cm-uid"]
