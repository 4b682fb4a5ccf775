"""Deployment planning: fenceposts, hashing, rollout steps, Recreate, scaling, history,
conditions. Each case is one sync: given the Deployment and its ReplicaSets, the writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.controllers.deployment.plan import (
    CreateReplicaSet,
    DeleteReplicaSet,
    DeploymentPlan,
    Event,
    InvalidDeployment,
    PatchDeploymentAnnotations,
    UpdateDeploymentStatus,
    UpdateReplicaSet,
    equal_ignore_hash,
    max_surge,
    max_unavailable,
    plan_deployment,
    resolve_fenceposts,
    revision_history,
    scaled_value,
)
from svcnet.controllers.podutil import fnv32a, safe_encode_string, template_hash

from .workload_objects import NOW, NOW_TEXT, pod, template, ts

REV = "deployment.kubernetes.io/revision"


def deployment(
    replicas: int = 3,
    image: str = "nginx:1.25",
    *,
    surge: Any = "25%",
    unavailable: Any = "25%",
    strategy: str = "RollingUpdate",
    generation: int = 1,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    strat: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "d-uid",
            "generation": generation,
            "resourceVersion": "5",
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(image),
            "strategy": strat,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            **spec,
        },
        "status": status or {},
    }


def rs_for(
    d: dict[str, Any],
    image: str,
    replicas: int,
    *,
    available: int | None = None,
    actual: int | None = None,
    revision: int = 1,
    age: float = 1000.0,
    generation: int = 1,
    desired: int | None = None,
) -> dict[str, Any]:
    """A ReplicaSet of ``d`` running ``image`` (as the controller would have created it)."""
    tmpl = template(image)
    h = template_hash(tmpl)
    tmpl["metadata"]["labels"]["pod-template-hash"] = h
    want = d["spec"]["replicas"] if desired is None else desired
    count = replicas if actual is None else actual
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"web-{h}",
            "namespace": "default",
            "uid": f"uid-{h}",
            "generation": generation,
            "resourceVersion": "3",
            "creationTimestamp": ts(NOW - age),
            "labels": dict(tmpl["metadata"]["labels"]),
            "annotations": {
                REV: str(revision),
                "deployment.kubernetes.io/desired-replicas": str(want),
                "deployment.kubernetes.io/max-replicas": str(want + max_surge(d)),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "web",
                    "uid": "d-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(tmpl["metadata"]["labels"])},
            "template": tmpl,
            "minReadySeconds": 0,
        },
        "status": {
            "replicas": count,
            "readyReplicas": count if available is None else available,
            "availableReplicas": count if available is None else available,
            "observedGeneration": generation,
        },
    }


def plan(
    d: dict[str, Any],
    *rss: dict[str, Any],
    pods: dict[str, list[dict[str, Any]]] | None = None,
    now: float = NOW,
) -> DeploymentPlan:
    return plan_deployment(d, list(rss), pods or {}, now, NOW_TEXT)


def scales(p: DeploymentPlan) -> list[tuple[str, int]]:
    return [
        (a.rs["metadata"]["name"], a.rs["spec"]["replicas"])
        for a in p.actions
        if isinstance(a, UpdateReplicaSet)
    ]


def created(p: DeploymentPlan) -> list[dict[str, Any]]:
    return [a.rs for a in p.actions if isinstance(a, CreateReplicaSet)]


def events(p: DeploymentPlan) -> list[tuple[str, str, str]]:
    return [(a.type, a.reason, a.message) for a in p.actions if isinstance(a, Event)]


def final_status(p: DeploymentPlan) -> dict[str, Any]:
    writes = [a.status for a in p.actions if isinstance(a, UpdateDeploymentStatus)]
    assert writes, "no status write"
    return writes[-1]


def conditions(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st.get("conditions") or ()}


# -- int-or-percent and fenceposts -----------------------------------------------------------

SCALED_CASES = [
    (5, 10, True, 5),
    ("25%", 10, True, 3),
    ("25%", 10, False, 2),
    ("0%", 10, True, 0),
    ("100%", 3, False, 3),
    ("33%", 3, True, 1),
    ("33%", 3, False, 0),
    (None, 10, True, 0),
]


@pytest.mark.parametrize(("value", "total", "up", "want"), SCALED_CASES)
def test_scaled_value_rounds_surge_up_and_unavailable_down(
    value: Any, total: int, up: bool, want: int
) -> None:
    assert scaled_value(value, total, up) == want


@pytest.mark.parametrize("value", ["abc", "10", "x%"])
def test_scaled_value_rejects_strings_that_are_not_percentages(value: str) -> None:
    with pytest.raises(InvalidDeployment):
        scaled_value(value, 10, True)


FENCEPOST_CASES = [
    ("defaults 25%/25% of 4", deployment(4), (1, 1)),
    ("defaults of 10: surge up, unavailable down", deployment(10), (3, 2)),
    ("both zero: unavailable becomes 1", deployment(3, surge=0, unavailable=0), (0, 1)),
    ("both 0%: unavailable becomes 1", deployment(3, surge="0%", unavailable="0%"), (0, 1)),
    ("ints", deployment(5, surge=2, unavailable=1), (2, 1)),
]


@pytest.mark.parametrize(
    ("d", "want"), [c[1:] for c in FENCEPOST_CASES], ids=[c[0] for c in FENCEPOST_CASES]
)
def test_resolve_fenceposts(d: dict[str, Any], want: tuple[int, int]) -> None:
    assert resolve_fenceposts(d) == want


def test_max_unavailable_is_capped_at_replicas_and_zero_for_recreate() -> None:
    assert max_unavailable(deployment(2, unavailable=5)) == 2
    assert max_unavailable(deployment(0)) == 0
    assert max_unavailable(deployment(3, strategy="Recreate")) == 0
    assert max_surge(deployment(3, strategy="Recreate")) == 0


# -- hashing ------------------------------------------------------------------------------------


def test_fnv32a_matches_the_reference_vectors() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_string_uses_the_vowel_free_alphabet() -> None:
    # Each character maps through "bcdfghjklmnpqrstvwxz2456789" by its code modulo 27:
    # "0" is 48, 48 % 27 = 21 → "4".
    assert safe_encode_string("0123456789") == "456789bcdf"
    assert set(template_hash(template())) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_template_hash_is_stable_and_changes_with_template_and_collision_count() -> None:
    assert template_hash(template()) == template_hash(copy.deepcopy(template()))
    assert template_hash(template()) != template_hash(template("nginx:1.26"))
    assert template_hash(template(), 1) != template_hash(template())
    assert template_hash(template(), 1) != template_hash(template(), 2)


def test_equal_ignore_hash_ignores_only_the_hash_label() -> None:
    with_hash = template()
    with_hash["metadata"]["labels"]["pod-template-hash"] = "xyz"
    assert equal_ignore_hash(with_hash, template())
    assert not equal_ignore_hash(with_hash, template("other"))
    bare = {"spec": template()["spec"]}
    hashed_only = {"metadata": {"labels": {"pod-template-hash": "x"}}, "spec": bare["spec"]}
    assert equal_ignore_hash(bare, hashed_only)


# -- a new Deployment ------------------------------------------------------------------------


def test_new_deployment_creates_its_replica_set_at_full_size() -> None:
    d = deployment(3)
    p = plan(d)
    [rs] = created(p)
    h = template_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == h
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["annotations"] == {
        REV: "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert events(p) == [("Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} to 3")]
    assert PatchDeploymentAnnotations({REV: "1"}) in p.actions
    st = final_status(p)
    assert conditions(st) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "NewReplicaSetCreated"),
    }
    assert st["observedGeneration"] == 1


def test_deployment_annotations_are_copied_to_the_new_replica_set_except_skipped_ones() -> None:
    d = deployment(1)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "kubectl set image",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        REV: "9",
    }
    [rs] = created(plan(d))
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "kubectl set image"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in rs["metadata"]["annotations"]
    assert rs["metadata"]["annotations"][REV] == "1"


def test_collision_count_changes_the_replica_set_name() -> None:
    d = deployment(1, status={"collisionCount": 1})
    [rs] = created(plan(d))
    assert rs["metadata"]["name"] == f"web-{template_hash(d['spec']['template'], 1)}"


# -- rolling update, one sync at a time ---------------------------------------------------------

# (case, deployment, [(image, spec replicas, available, revision)] oldest first,
#  expected new RS size if one is created, expected scale writes by image)
ROLLING_CASES: list[
    tuple[str, dict[str, Any], list[tuple[str, int, int, int]], int | None, list[tuple[str, int]]]
] = [
    (
        "surge 1: the new RS gets one pod",
        deployment(3, "v2", surge=1, unavailable=0),
        [("v1", 3, 3, 1)],
        1,
        [],
    ),
    (
        "new pod not available: old RS waits",
        deployment(3, "v2", surge=1, unavailable=0),
        [("v1", 3, 3, 1), ("v2", 1, 0, 2)],
        None,
        [],
    ),
    (
        "new pod available: old RS loses one",
        deployment(3, "v2", surge=1, unavailable=0),
        [("v1", 3, 3, 1), ("v2", 1, 1, 2)],
        None,
        [("v1", 2)],
    ),
    (
        "old RS shrank: the new one grows",
        deployment(3, "v2", surge=1, unavailable=0),
        [("v1", 2, 2, 1), ("v2", 1, 1, 2)],
        None,
        [("v2", 2)],
    ),
    (
        "no surge, 50% unavailable: old RS scales down first",
        deployment(4, "v2", surge=0, unavailable="50%"),
        [("v1", 4, 4, 1)],
        0,
        [("v1", 2)],
    ),
    (
        "no surge: the new RS takes the room made",
        deployment(4, "v2", surge=0, unavailable="50%"),
        [("v1", 2, 2, 1), ("v2", 0, 0, 2)],
        None,
        [("v2", 2)],
    ),
    (
        "unhealthy old replicas go first",
        deployment(3, "v2", surge=1, unavailable=1),
        [("v1", 3, 1, 1), ("v2", 1, 1, 2)],
        None,
        [("v1", 1)],
    ),
    (
        "25%/25% of 4 starts with one surge pod and one old pod down",
        deployment(4, "v2"),
        [("v1", 4, 4, 1)],
        1,
        [("v1", 3)],
    ),
    (
        "new RS above desired is scaled down to it",
        deployment(2, "v2", surge=1, unavailable=0),
        [("v2", 3, 3, 1)],
        None,
        [("v2", 2)],
    ),
]


@pytest.mark.parametrize(
    ("d", "rss", "new_size", "want"),
    [c[1:] for c in ROLLING_CASES],
    ids=[c[0] for c in ROLLING_CASES],
)
def test_rolling_update_step(
    d: dict[str, Any],
    rss: list[tuple[str, int, int, int]],
    new_size: int | None,
    want: list[tuple[str, int]],
) -> None:
    objs = [
        rs_for(d, image, n, available=avail, revision=rev, age=1000.0 - 10 * i)
        for i, (image, n, avail, rev) in enumerate(rss)
    ]
    p = plan(d, *objs)
    made = created(p)
    assert [rs["spec"]["replicas"] for rs in made] == ([] if new_size is None else [new_size])
    names = {template_hash(template(img)): img for img, *_ in rss}
    names[template_hash(d["spec"]["template"])] = d["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    got = [(names[n.removeprefix("web-")], size) for n, size in scales(p)]
    assert got == want


def test_scaling_events_use_upstream_text() -> None:
    d = deployment(3, "v2", surge=1, unavailable=0)
    old = rs_for(d, "v1", 3, revision=1, age=2000)
    new = rs_for(d, "v2", 1, revision=2, age=100)
    p = plan(d, old, new)
    assert events(p) == [
        (
            "Normal",
            "ScalingReplicaSet",
            f"Scaled down replica set {old['metadata']['name']} to 2 from 3",
        )
    ]


def test_new_revision_is_one_more_than_the_highest_old_one() -> None:
    d = deployment(2, "v3")
    [rs] = created(plan(d, rs_for(d, "v1", 0, revision=4), rs_for(d, "v2", 2, revision=7)))
    assert rs["metadata"]["annotations"][REV] == "8"


def test_rollback_to_an_old_template_reuses_its_replica_set_with_a_new_revision() -> None:
    d = deployment(2, "v1")
    old = rs_for(d, "v1", 0, available=0, revision=1, age=2000)
    current = rs_for(d, "v2", 2, revision=2, age=1000)
    p = plan(d, old, current)
    assert created(p) == []
    # First its annotations (new revision), then it is scaled up like any new ReplicaSet.
    update = next(a for a in p.actions if isinstance(a, UpdateReplicaSet))
    ann = update.rs["metadata"]["annotations"]
    assert update.rs["metadata"]["name"] == old["metadata"]["name"]
    assert ann[REV] == "3"
    assert ann["deployment.kubernetes.io/revision-history"] == "1"


# -- completion, conditions, history -----------------------------------------------------------


def test_complete_rollout_reports_new_replica_set_available() -> None:
    d = deployment(
        2,
        "v1",
        status={
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "lastUpdateTime": ts(NOW - 5),
                    "lastTransitionTime": ts(NOW - 50),
                    "message": "x",
                }
            ]
        },
    )
    d["metadata"]["annotations"] = {REV: "1"}
    rs = rs_for(d, "v1", 2, revision=1)
    st = final_status(plan(d, rs))
    assert st["replicas"] == st["updatedReplicas"] == st["readyReplicas"] == 2
    assert st["availableReplicas"] == 2 and st["unavailableReplicas"] == 0
    assert conditions(st) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    [prog] = [c for c in st["conditions"] if c["type"] == "Progressing"]
    assert prog["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    # Same status, so the transition time of Progressing is kept.
    assert prog["lastTransitionTime"] == ts(NOW - 50)


def test_no_progress_past_the_deadline_times_out() -> None:
    d = deployment(
        2,
        "v1",
        status={
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": 2,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "lastUpdateTime": ts(NOW - 700),
                    "lastTransitionTime": ts(NOW - 700),
                    "message": "x",
                }
            ],
        },
    )
    d["metadata"]["annotations"] = {REV: "1"}
    st = final_status(plan(d, rs_for(d, "v1", 2, available=0)))
    assert conditions(st)["Progressing"] == ("False", "ProgressDeadlineExceeded")


def test_stuck_rollout_is_requeued_for_its_deadline() -> None:
    st = {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "unavailableReplicas": 2,
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "lastUpdateTime": ts(NOW - 100),
                "lastTransitionTime": ts(NOW - 100),
                "message": "x",
            },
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "lastUpdateTime": ts(NOW - 100),
                "lastTransitionTime": ts(NOW - 100),
                "message": "Deployment does not have minimum availability.",
            },
        ],
    }
    d = deployment(2, "v1", unavailable=0, surge=1, status=st)
    d["metadata"]["annotations"] = {REV: "1"}
    p = plan(d, rs_for(d, "v1", 2, available=0))
    assert not [a for a in p.actions if isinstance(a, UpdateDeploymentStatus)]
    assert p.requeue_after == pytest.approx(501.0)


COMPLETE_1 = {
    "observedGeneration": 1,
    "replicas": 1,
    "updatedReplicas": 1,
    "readyReplicas": 1,
    "availableReplicas": 1,
}


def test_revision_history_limit_deletes_the_oldest_scaled_down_replica_sets() -> None:
    d = deployment(1, "v4", revisionHistoryLimit=1, status=dict(COMPLETE_1))
    d["metadata"]["annotations"] = {REV: "4"}
    rss = [
        rs_for(d, "v1", 0, revision=1, age=4000),
        rs_for(d, "v2", 0, revision=2, age=3000),
        rs_for(d, "v3", 0, revision=3, age=2000),
        rs_for(d, "v4", 1, revision=4, age=1000),
    ]
    p = plan(d, *rss)
    deleted = [a.name for a in p.actions if isinstance(a, DeleteReplicaSet)]
    assert deleted == [rss[0]["metadata"]["name"], rss[1]["metadata"]["name"]]


def test_history_is_not_cleaned_while_a_rollout_is_in_progress() -> None:
    d = deployment(1, "v2", revisionHistoryLimit=0)
    d["metadata"]["annotations"] = {REV: "2"}
    p = plan(d, rs_for(d, "v1", 0, revision=1, age=2000), rs_for(d, "v2", 1, revision=2))
    assert not [a for a in p.actions if isinstance(a, DeleteReplicaSet)]


def test_history_cleanup_keeps_replica_sets_that_still_have_pods() -> None:
    d = deployment(1, "v3", revisionHistoryLimit=0, status=dict(COMPLETE_1))
    d["metadata"]["annotations"] = {REV: "3"}
    busy = rs_for(d, "v1", 0, actual=1, revision=1, age=3000)
    idle = rs_for(d, "v2", 0, revision=2, age=2000)
    p = plan(d, busy, idle, rs_for(d, "v3", 1, revision=3, age=1000))
    assert [a.name for a in p.actions if isinstance(a, DeleteReplicaSet)] == [
        idle["metadata"]["name"]
    ]


def test_revision_history_lists_revisions_and_change_causes() -> None:
    d = deployment(1)
    a, b = rs_for(d, "v1", 0, revision=2), rs_for(d, "v2", 1, revision=1)
    a["metadata"]["annotations"]["kubernetes.io/change-cause"] = "second"
    assert revision_history([a, b]) == [
        (1, b["metadata"]["name"], ""),
        (2, a["metadata"]["name"], "second"),
    ]


# -- Recreate, paused, scaling ---------------------------------------------------------------


def test_recreate_scales_old_down_and_creates_nothing_yet() -> None:
    d = deployment(2, "v2", strategy="Recreate")
    old = rs_for(d, "v1", 2)
    p = plan(d, old)
    assert created(p) == []
    assert scales(p) == [(old["metadata"]["name"], 0)]


def test_recreate_waits_while_old_pods_still_run() -> None:
    d = deployment(2, "v2", strategy="Recreate")
    old = rs_for(d, "v1", 0, actual=0)
    p = plan(
        d, old, pods={old["metadata"]["uid"]: [pod("old-1", owner_uid=old["metadata"]["uid"])]}
    )
    assert created(p) == []


def test_recreate_creates_the_new_replica_set_at_full_size_once_old_pods_are_gone() -> None:
    d = deployment(2, "v2", strategy="Recreate")
    old = rs_for(d, "v1", 0, actual=0)
    [rs] = created(plan(d, old))
    assert rs["spec"]["replicas"] == 2


def test_paused_deployment_creates_no_replica_set_and_says_paused() -> None:
    d = deployment(2, "v2", paused=True)
    p = plan(d, rs_for(d, "v1", 2))
    assert created(p) == []
    assert conditions(final_status(p))["Progressing"] == ("Unknown", "DeploymentPaused")


def test_resumed_deployment_says_resumed() -> None:
    d = deployment(
        2,
        "v1",
        status={
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": 2,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "Unknown",
                    "reason": "DeploymentPaused",
                    "lastUpdateTime": ts(NOW - 5),
                    "lastTransitionTime": ts(NOW - 5),
                    "message": "Deployment is paused",
                }
            ],
        },
    )
    d["metadata"]["annotations"] = {REV: "1"}
    st = final_status(plan(d, rs_for(d, "v1", 2, available=0)))
    assert conditions(st)["Progressing"] == ("Unknown", "DeploymentResumed")


def test_scaling_event_scales_the_only_active_replica_set() -> None:
    d = deployment(5, "v1")
    d["metadata"]["annotations"] = {REV: "1"}
    rs = rs_for(d, "v1", 3, desired=3)
    p = plan(d, rs)
    assert scales(p) == [(rs["metadata"]["name"], 5)]
    assert events(p) == [
        (
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {rs['metadata']['name']} to 5 from 3",
        )
    ]


def test_scaling_during_a_rollout_is_proportional() -> None:
    d = deployment(20, "v2", surge=3, unavailable=2)
    d["metadata"]["annotations"] = {REV: "2"}
    old = rs_for(d, "v1", 8, revision=1, age=2000, desired=10)
    new = rs_for(d, "v2", 5, available=0, revision=2, age=1000, desired=10)
    for rs in (old, new):
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] = "13"
    p = plan(d, old, new)
    # 20 + 3 surge allowed, 13 running: 10 more, split by size (8:5 of 13 → 23).
    assert dict(scales(p)) == {old["metadata"]["name"]: 14, new["metadata"]["name"]: 9}


def test_selecting_everything_is_refused_with_a_warning() -> None:
    d = deployment(1)
    d["spec"]["selector"] = {}
    p = plan(d)
    assert created(p) == []
    assert events(p) == [
        (
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        )
    ]
