"""PodDisruptionBudget arithmetic (upstream's disruption controller) and the Eviction
subresource's decision, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.disruption import (
    TOO_MANY_REQUESTS_MESSAGE,
    ExpectedScaleError,
    Verdict,
    budget,
    decide_eviction,
    scaled_value,
)
from svcnet.controllers.disruption.plan import plan_pdb

NOW = "2026-01-01T10:00:00Z"


def pod(name: str, ready: bool = True, owner: str | None = "rs-1", **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app": "web"}}
    if owner:
        m["ownerReferences"] = [{"kind": "ReplicaSet", "uid": owner, "controller": True}]
    m.update(extra.pop("meta", {}))
    return {
        "metadata": m,
        "status": {
            "phase": extra.pop("phase", "Running"),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pdb(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "generation": generation},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        "status": {"observedGeneration": 1, **(status or {})},
    }


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        (2, 10, True, 2),
        ("50%", 3, True, 2),
        ("50%", 3, False, 1),
        ("100%", 4, True, 4),
        ("0%", 4, True, 0),
    ],
)
def test_scaled_value(value: int | str, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, up) == expected


SCALE = {"rs-1": ("deploy-1", 4)}
FOUR = [pod(f"p{i}") for i in range(3)]  # 3 pods present of a scale of 4


@pytest.mark.parametrize(
    ("spec", "expected", "desired"),
    [
        ({"minAvailable": 2}, 3, 2),  # an integer counts the pods present
        ({"minAvailable": "50%"}, 4, 2),  # a percentage counts the controller's scale
        ({"minAvailable": "60%"}, 4, 3),  # rounded up
        ({"maxUnavailable": 1}, 4, 3),
        ({"maxUnavailable": "30%"}, 4, 2),  # 30 % of 4 rounds up to 2 unavailable
        ({"maxUnavailable": 10}, 4, 0),  # never below zero
    ],
)
def test_budget(spec: dict[str, Any], expected: int, desired: int) -> None:
    b = budget(pdb(**spec), FOUR, SCALE)
    assert (b.expected, b.desired_healthy) == (expected, desired)


def test_two_replica_sets_of_one_deployment_count_its_scale_once() -> None:
    scales = {"rs-1": ("deploy-1", 4), "rs-2": ("deploy-1", 4)}
    pods = [pod("a", owner="rs-1"), pod("b", owner="rs-2")]
    assert budget(pdb(maxUnavailable=1), pods, scales).expected == 4


def test_a_controller_without_a_scale_fails_the_budget() -> None:
    with pytest.raises(ExpectedScaleError, match='found no controllers for pod "p0"'):
        budget(pdb(minAvailable="50%"), [pod("p0", owner="ds-1")], {"ds-1": None})


def test_unmanaged_pods_are_named() -> None:
    b = budget(pdb(maxUnavailable=1), [pod("lone", owner=None)], {})
    assert b.unmanaged == ("lone",)


def test_plan_counts_healthy_pods_and_allows_the_difference() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False), pod("d", meta={"deletionTimestamp": NOW})]
    plan = plan_pdb(pdb(minAvailable=1), pods, SCALE, NOW)
    s = plan.status
    assert (
        s["currentHealthy"],
        s["desiredHealthy"],
        s["expectedPods"],
        s["disruptionsAllowed"],
    ) == (
        2,
        1,
        4,
        1,
    )
    assert [(c["type"], c["status"], c["reason"]) for c in s["conditions"]] == [
        ("DisruptionAllowed", "True", "SufficientPods")
    ]


def test_plan_without_disruptions_says_insufficient_pods() -> None:
    plan = plan_pdb(pdb(minAvailable=3), [pod("a"), pod("b")], SCALE, NOW)
    assert plan.status["disruptionsAllowed"] == 0
    assert plan.status["conditions"][0]["reason"] == "InsufficientPods"


def test_a_recently_evicted_pod_is_not_healthy_until_the_timeout() -> None:
    evicted = pdb({"disruptedPods": {"a": "2026-01-01T09:59:30Z"}}, minAvailable=1)
    plan = plan_pdb(evicted, [pod("a"), pod("b")], SCALE, NOW)
    assert plan.status["currentHealthy"] == 1
    assert plan.requeue_after == pytest.approx(90)
    later = plan_pdb(evicted, [pod("a"), pod("b")], SCALE, "2026-01-01T10:01:31Z")
    assert later.status["currentHealthy"] == 2
    assert "disruptedPods" not in later.status


def test_plan_fails_safe_when_the_scale_is_unknown() -> None:
    plan = plan_pdb(pdb(minAvailable="50%"), [pod("a", owner="ds-1")], {"ds-1": None}, NOW)
    assert plan.status["disruptionsAllowed"] == 0
    assert plan.status["conditions"][0]["reason"] == "SyncFailed"
    assert [e.reason for e in plan.events] == ["NoControllers", "CalculateExpectedPodCountFailed"]


HEALTHY = {"currentHealthy": 2, "desiredHealthy": 2, "disruptionsAllowed": 0, "expectedPods": 2}
ONE_LEFT = {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2}


@pytest.mark.parametrize(
    ("the_pod", "pdbs", "verdict"),
    [
        (pod("a"), [], Verdict.DELETE),
        (pod("a"), [pdb(HEALTHY, minAvailable=2)], Verdict.TOO_MANY_REQUESTS),
        (pod("a"), [pdb(ONE_LEFT, minAvailable=1)], Verdict.DELETE_WITH_BUDGET),
        (pod("a", phase="Pending"), [pdb(HEALTHY, minAvailable=2)], Verdict.DELETE),
        (pod("a", phase="Succeeded"), [pdb(HEALTHY, minAvailable=2)], Verdict.DELETE),
        # An unready pod of a healthy application may go (IfHealthyBudget)…
        (pod("a", ready=False), [pdb(HEALTHY, minAvailable=2)], Verdict.DELETE),
        # …not when the budget is short of healthy pods, unless the policy is AlwaysAllow.
        (
            pod("a", ready=False),
            [pdb({**HEALTHY, "currentHealthy": 1}, minAvailable=2)],
            Verdict.TOO_MANY_REQUESTS,
        ),
        (
            pod("a", ready=False),
            [
                pdb(
                    {**HEALTHY, "currentHealthy": 1},
                    minAvailable=2,
                    unhealthyPodEvictionPolicy="AlwaysAllow",
                )
            ],
            Verdict.DELETE,
        ),
        (pod("a"), [pdb(ONE_LEFT, generation=2, minAvailable=1)], Verdict.TOO_MANY_REQUESTS),
        (
            pod("a"),
            [pdb(ONE_LEFT, minAvailable=1), pdb(ONE_LEFT, minAvailable=1)],
            Verdict.INTERNAL_ERROR,
        ),
        (
            pod("a"),
            [pdb({**ONE_LEFT, "disruptionsAllowed": -1}, minAvailable=1)],
            Verdict.FORBIDDEN,
        ),
    ],
)
def test_eviction_verdicts(
    the_pod: dict[str, Any], pdbs: list[dict[str, Any]], verdict: Verdict
) -> None:
    assert decide_eviction(the_pod, pdbs, NOW).verdict is verdict


def test_a_refused_eviction_says_which_budget_and_why() -> None:
    d = decide_eviction(pod("a"), [pdb(HEALTHY, minAvailable=2)], NOW)
    assert d.message == TOO_MANY_REQUESTS_MESSAGE
    assert d.cause == "The disruption budget web needs 2 healthy pods and has 2 currently"


def test_an_allowed_eviction_takes_one_disruption_and_records_the_pod() -> None:
    d = decide_eviction(pod("a"), [pdb(ONE_LEFT, minAvailable=1)], NOW)
    assert d.pdb_status["disruptionsAllowed"] == 0
    assert d.pdb_status["disruptedPods"] == {"a": NOW}
    assert d.pdb_status["conditions"][0]["reason"] == "InsufficientPods"


def test_a_budget_selects_only_its_namespace_and_nothing_with_a_null_selector() -> None:
    other = pdb(ONE_LEFT, minAvailable=1)
    other["metadata"]["namespace"] = "elsewhere"
    assert decide_eviction(pod("a"), [other], NOW).verdict is Verdict.DELETE
    null = pdb(HEALTHY, minAvailable=2)
    null["spec"]["selector"] = None
    assert decide_eviction(pod("a"), [null], NOW).verdict is Verdict.DELETE
