"""Which pod a ReplicaSet deletes first (upstream ``ActivePodsWithRanks``), one rule per row,
and pod readiness/availability."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.podutil import is_pod_available, is_pod_ready, rank_for_deletion

from .workload_objects import NOW, pod

# (rule, the pod deleted first, the other); everything else about the two is equal.
RANK_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("unassigned before assigned", pod("x", node=None), pod("y")),
    ("pending before running", pod("x", phase="Pending"), pod("y")),
    ("unknown before running", pod("x", phase="Unknown"), pod("y")),
    ("pending before unknown", pod("x", phase="Pending"), pod("y", phase="Unknown")),
    ("not ready before ready", pod("x", ready=False), pod("y")),
    (
        "lower deletion cost first",
        pod("x", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"}),
        pod("y"),
    ),
    (
        "higher deletion cost last",
        pod("x"),
        pod("y", annotations={"controller.kubernetes.io/pod-deletion-cost": "100"}),
    ),
    ("ready more recently first", pod("x", ready_since=NOW - 60), pod("y", ready_since=NOW - 6000)),
    ("more restarts first", pod("x", restarts=3), pod("y", restarts=1)),
    ("newer first", pod("x", created=NOW - 60), pod("y", created=NOW - 6000)),
    ("no creation time first", pod("x", created=None), pod("y")),
    # Logarithmic scale-down: ages within the same power of two tie, then the uid decides
    # (x is the older one here, yet goes first).
    (
        "same age bucket: by uid",
        pod("x", created=NOW - 1001, uid="a"),
        pod("y", created=NOW - 1000, uid="b"),
    ),
]


@pytest.mark.parametrize(
    ("first", "second"), [c[1:] for c in RANK_CASES], ids=[c[0] for c in RANK_CASES]
)
def test_deletion_rank(first: dict[str, Any], second: dict[str, Any]) -> None:
    for order in ([first, second], [second, first]):
        ranked = rank_for_deletion(order, order, NOW)
        assert [p["metadata"]["name"] for p in ranked] == ["x", "y"]


def test_doubled_up_node_goes_first() -> None:
    x, y = pod("x", node="node-2"), pod("y", node="node-1")
    related = [x, y, pod("z", node="node-2")]
    assert [p["metadata"]["name"] for p in rank_for_deletion([y, x], related, NOW)] == ["x", "y"]


READY_CASES: list[tuple[str, dict[str, Any], int, bool, bool]] = [
    ("ready, no minReadySeconds", pod("a"), 0, True, True),
    ("not ready", pod("a", ready=False), 0, False, False),
    ("no Ready condition", pod("a", ready=None), 0, False, False),
    ("ready long enough", pod("a", ready_since=NOW - 31), 30, True, True),
    ("ready too recently", pod("a", ready_since=NOW - 29), 30, True, False),
    (
        "ready exactly minReadySeconds ago is not yet available",
        pod("a", ready_since=NOW - 30),
        30,
        True,
        False,
    ),
]


@pytest.mark.parametrize(
    ("p", "min_ready", "ready", "available"),
    [c[1:] for c in READY_CASES],
    ids=[c[0] for c in READY_CASES],
)
def test_ready_and_available(
    p: dict[str, Any], min_ready: int, ready: bool, available: bool
) -> None:
    assert is_pod_ready(p) is ready
    assert is_pod_available(p, min_ready, NOW) is available
