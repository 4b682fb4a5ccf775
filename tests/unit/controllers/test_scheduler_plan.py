"""Scheduling decisions: filters with upstream's reasons, the FitError message, spreading."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.scheduler.plan import (
    Bind,
    NodeState,
    Unschedulable,
    filter_node,
    needs_scheduling,
    schedule,
    scheduled_message,
    with_unschedulable_condition,
)


def node(
    name: str,
    *,
    ready: str = "True",
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(
    name: str = "web-x",
    *,
    owner: str = "rs-1",
    selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    host_port: int | None = None,
    affinity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ports = [{"containerPort": 80, "hostPort": host_port}] if host_port else []
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "ports": ports}],
        "nodeSelector": selector or {},
        "tolerations": tolerations or [],
    }
    if affinity:
        spec["affinity"] = affinity
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "web"},
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }


EXPECTED_SELECTOR_AND_UNSCHEDULABLE = (
    "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
    "1 node(s) were unschedulable. preemption: 0/2 nodes are available: "
    "2 Preemption is not helpful for scheduling."
)


def test_fit_error_message_matches_upstream() -> None:
    nodes = [NodeState(node("node-1", unschedulable=True)), NodeState(node("node-2"))]
    assert schedule(pod(selector={"disk": "ssd"}), nodes) == Unschedulable(
        EXPECTED_SELECTOR_AND_UNSCHEDULABLE
    )


@pytest.mark.parametrize(
    ("n", "p", "reason"),
    [
        (node("n", unschedulable=True), pod(), "node(s) were unschedulable"),
        (
            node("n", ready="False"),
            pod(),
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
        ),
        (
            node("n", ready="Unknown"),
            pod(),
            "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
        ),
        (
            node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
            pod(),
            "node(s) had untolerated taint {dedicated: db}",
        ),
        (
            node("n"),
            pod(selector={"disk": "ssd"}),
            "node(s) didn't match Pod's node affinity/selector",
        ),
        (
            node("n", labels={"zone": "a"}),
            pod(
                affinity={
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "In", "values": ["b"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            ),
            "node(s) didn't match Pod's node affinity/selector",
        ),
        (
            node("n"),
            pod(host_port=8080),
            "node(s) didn't have free ports for the requested pod ports",
        ),
    ],
    ids=["unschedulable", "not-ready", "unreachable", "taint", "selector", "affinity", "host-port"],
)
def test_filter_reasons(n: dict[str, Any], p: dict[str, Any], reason: str) -> None:
    others = [pod("other", owner="x", host_port=8080)]
    assert filter_node(p, NodeState(n, others)) == reason


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (
            node("n", unschedulable=True),
            pod(
                tolerations=[
                    {
                        "key": "node.kubernetes.io/unschedulable",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ]
            ),
        ),
        (
            node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
            pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]),
        ),
        (node("n", ready="False"), pod(tolerations=[{"operator": "Exists"}])),
        (node("n", taints=[{"key": "soft", "effect": "PreferNoSchedule"}]), pod()),
        (node("n", labels={"disk": "ssd"}), pod(selector={"disk": "ssd"})),
        (node("n"), pod(host_port=9090)),
    ],
    ids=[
        "tolerated-unschedulable",
        "tolerated-taint",
        "tolerate-everything",
        "prefer-no-schedule",
        "selector-matches",
        "other-host-port",
    ],
)
def test_fits(n: dict[str, Any], p: dict[str, Any]) -> None:
    assert filter_node(p, NodeState(n, [pod("other", owner="x", host_port=8080)])) is None


def test_spreads_replicas_of_one_owner() -> None:
    n1, n2 = node("node-1"), node("node-2")
    placed: dict[str, list[dict[str, Any]]] = {"node-1": [], "node-2": []}
    for i in range(4):
        p = pod(f"web-{i}")
        decision = schedule(p, [NodeState(n1, placed["node-1"]), NodeState(n2, placed["node-2"])])
        assert isinstance(decision, Bind)
        placed[decision.node].append(p)
    assert {k: len(v) for k, v in placed.items()} == {"node-1": 2, "node-2": 2}


def test_same_owner_count_beats_total_pod_count() -> None:
    busy = [pod(f"o{i}", owner="other") for i in range(5)]
    mine = [pod("web-0")]
    decision = schedule(
        pod("web-1"), [NodeState(node("node-1"), mine), NodeState(node("node-2"), busy)]
    )
    assert decision == Bind("node-2")


def test_no_nodes() -> None:
    assert schedule(pod(), []) == Unschedulable("no nodes available to schedule pods")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p, True),
        (lambda p: p["spec"].update(nodeName="node-1"), False),
        (lambda p: p["spec"].update(schedulerName="other"), False),
        (lambda p: p["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"), False),
        (lambda p: p["status"].update(phase="Succeeded"), False),
    ],
    ids=["pending", "bound", "other-scheduler", "deleting", "finished"],
)
def test_needs_scheduling(mutate: Any, expected: bool) -> None:
    p = pod()
    mutate(p)
    assert needs_scheduling(p) is expected


def test_scheduled_message() -> None:
    assert (
        scheduled_message(pod("web-x"), "node-1") == "Successfully assigned default/web-x to node-1"
    )


def test_unschedulable_condition_written_once() -> None:
    p = with_unschedulable_condition(pod(), "msg", "2026-01-01T00:00:00Z")
    assert p is not None
    assert p["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "msg",
            "lastProbeTime": None,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    assert with_unschedulable_condition(p, "msg", "2026-01-01T00:00:09Z") is None
