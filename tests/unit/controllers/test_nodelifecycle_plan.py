"""Node lifecycle decisions: health from observed heartbeats, Unknown conditions, condition
taints, pod readiness and eviction times."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.nodelifecycle.plan import (
    MESSAGE_UNKNOWN,
    ORPHAN_CONDITION,
    REASON_NEVER,
    REASON_UNKNOWN,
    Health,
    desired_taints,
    eviction_time,
    observe,
    stale_in,
    with_disruption_condition,
    with_pod_not_ready,
    with_unknown_conditions,
)

NOW = "2026-01-01T00:00:00Z"
T_ADDED = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def node(
    ready: str | None = "True",
    heartbeat: str = "hb1",
    *,
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    conds = (
        []
        if ready is None
        else [{"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat}]
    )
    return {
        "metadata": {"name": "node-1"},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {"conditions": conds},
    }


def lease(renew: str) -> dict[str, Any]:
    return {"metadata": {"name": "node-1"}, "spec": {"renewTime": renew}}


def test_first_sight_gives_a_full_grace_period() -> None:
    h = observe(None, node(), lease("r1"), 100.0)
    assert stale_in(h, 100.0, 3.0) == 3.0


@pytest.mark.parametrize(
    ("n", "lz", "probe"),
    [
        (node(heartbeat="hb1"), lease("r1"), 0.0),
        (node(heartbeat="hb2"), lease("r1"), 10.0),
        (node(heartbeat="hb1"), lease("r2"), 10.0),
    ],
    ids=["nothing-new", "new-heartbeat", "lease-renewed"],
)
def test_probe_time_moves_only_on_new_proof(
    n: dict[str, Any], lz: dict[str, Any], probe: float
) -> None:
    before = Health(0.0, "hb1", "r1")
    assert observe(before, n, lz, 10.0).probe_time == probe


def test_stale_node_gets_unknown_conditions() -> None:
    updated = with_unknown_conditions(node(), NOW)
    assert updated is not None
    conds = {c["type"]: c for c in updated["status"]["conditions"]}
    assert conds["Ready"]["status"] == "Unknown"
    assert conds["Ready"]["reason"] == REASON_UNKNOWN
    assert conds["Ready"]["message"] == MESSAGE_UNKNOWN == "Kubelet stopped posting node status."
    assert conds["Ready"]["lastHeartbeatTime"] == "hb1"
    assert conds["MemoryPressure"]["reason"] == REASON_NEVER
    assert with_unknown_conditions(updated, NOW) is None


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (node("True"), set()),
        (
            node("False"),
            {
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
            },
        ),
        (
            node("Unknown"),
            {
                ("node.kubernetes.io/unreachable", "NoSchedule"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
            },
        ),
        (
            node(None),
            {
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
            },
        ),
        (node("True", unschedulable=True), {("node.kubernetes.io/unschedulable", "NoSchedule")}),
        (
            node(
                "True",
                taints=[
                    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                    {"key": "mine", "effect": "NoSchedule"},
                ],
            ),
            {("mine", "NoSchedule")},
        ),
    ],
    ids=["ready", "not-ready", "unknown", "never-posted", "cordoned", "recovered-keeps-foreign"],
)
def test_condition_taints(n: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert {(t["key"], t["effect"]) for t in desired_taints(n, NOW)} == expected


def test_no_execute_taints_carry_time_added() -> None:
    taints = desired_taints(node("Unknown"), NOW)
    assert [t.get("timeAdded") for t in taints if t["effect"] == "NoExecute"] == [NOW]


def pod(tolerations: list[dict[str, Any]] | None = None, ready: str = "True") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"tolerations": tolerations or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


UNREACHABLE = node(
    "Unknown",
    taints=[
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": NOW},
    ],
)


@pytest.mark.parametrize(
    ("tolerations", "due"),
    [
        ([], T_ADDED + 20.0),
        (
            [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 5,
                }
            ],
            T_ADDED + 5.0,
        ),
        (
            [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                }
            ],
            None,
        ),
        (
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 1,
                }
            ],
            T_ADDED + 20.0,
        ),
    ],
    ids=[
        "no-toleration-uses-eviction-timeout",
        "toleration-seconds",
        "tolerated-for-ever",
        "other-key-does-not-count",
    ],
)
def test_eviction_time(tolerations: list[dict[str, Any]], due: float | None) -> None:
    assert eviction_time(pod(tolerations), UNREACHABLE, T_ADDED + 1, 20.0) == due


def test_no_eviction_without_no_execute_taints() -> None:
    assert eviction_time(pod(), node("True"), T_ADDED, 20.0) is None


def test_pods_marked_not_ready_once() -> None:
    updated = with_pod_not_ready(pod(), NOW)
    assert updated is not None
    assert updated["status"]["conditions"][0]["status"] == "False"
    assert with_pod_not_ready(updated, NOW) is None


def test_disruption_condition() -> None:
    marked = with_disruption_condition(pod(), NOW)
    assert marked is not None
    cond = marked["status"]["conditions"][-1]
    assert (cond["type"], cond["reason"]) == ("DisruptionTarget", "DeletionByTaintManager")
    assert with_disruption_condition(marked, NOW) is None


def test_orphan_condition_names_pod_gc() -> None:
    marked = with_disruption_condition(pod(), NOW, ORPHAN_CONDITION)
    assert marked is not None
    cond = marked["status"]["conditions"][-1]
    assert (cond["reason"], cond["message"]) == ("DeletionByPodGC", "PodGC: node no longer exists")
