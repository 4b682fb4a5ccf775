"""DaemonSet planning: which nodes get a pod (selector, affinity, taints and the tolerations
upstream adds), failed and extra pods, node removal, rolling update under maxUnavailable, and
the status counters."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.daemonset.plan import (
    REVISION_LABEL,
    add_daemon_tolerations,
    new_daemon_pod,
    node_should_run,
    plan_daemon_set,
    revision,
    target_node,
)

from .workload_objects import NOW, pod, template


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    ready: str = "True",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def ds(
    *,
    image: str = "nginx:1.25",
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    max_unavailable: int | str = 1,
    strategy: str = "RollingUpdate",
    generation: int = 3,
    min_ready: int = 0,
) -> dict[str, Any]:
    tmpl = template(image)
    if node_selector:
        tmpl["spec"]["nodeSelector"] = node_selector
    if tolerations:
        tmpl["spec"]["tolerations"] = tolerations
    upd: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        upd["rollingUpdate"] = {"maxUnavailable": max_unavailable, "maxSurge": 0}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "agent",
            "namespace": "default",
            "uid": "ds-uid",
            "generation": generation,
            "resourceVersion": "4",
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": tmpl,
            "updateStrategy": upd,
            "minReadySeconds": min_ready,
        },
        "status": {},
    }


def dpod(
    name: str, on: str, d: dict[str, Any], *, current: bool = True, **kw: Any
) -> dict[str, Any]:
    p = pod(name, owner_uid="ds-uid", owner_kind="DaemonSet", node=on, **kw)
    p["metadata"]["labels"][REVISION_LABEL] = revision(d) if current else "old-revision"
    return p


NO_EXECUTE_UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NO_SCHEDULE_UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
DEDICATED = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
DEDICATED_EVICT = {"key": "dedicated", "value": "db", "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("case", "daemon", "n", "want"),
    [
        ("plain node", ds(), node("n1"), (True, True)),
        ("selector matches", ds(node_selector={"disk": "ssd"}), node("n1", labels={"disk": "ssd"}), (True, True)),
        ("selector misses", ds(node_selector={"disk": "ssd"}), node("n1"), (False, False)),
        # The tolerations every daemon pod gets: a node going away keeps its pod, and gets
        # no new one while it is tainted NoSchedule.
        ("unreachable NoExecute tolerated", ds(), node("n1", taints=[NO_EXECUTE_UNREACHABLE]), (True, True)),
        (
            "unreachable NoSchedule: keep, no new",
            ds(),
            node("n1", taints=[NO_SCHEDULE_UNREACHABLE, NO_EXECUTE_UNREACHABLE]),
            (False, True),
        ),
        ("unschedulable tolerated", ds(), node("n1", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), (True, True)),
        ("other NoSchedule taint", ds(), node("n1", taints=[DEDICATED]), (False, True)),
        ("other NoExecute taint", ds(), node("n1", taints=[DEDICATED_EVICT]), (False, False)),
        (
            "the user's toleration",
            ds(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]),
            node("n1", taints=[DEDICATED, DEDICATED_EVICT]),
            (True, True),
        ),
    ],
)  # fmt: skip
def test_node_should_run(
    case: str, daemon: dict[str, Any], n: dict[str, Any], want: tuple[bool, bool]
) -> None:
    from svcnet.controllers.daemonset.plan import daemon_pod_spec

    assert node_should_run(daemon_pod_spec(daemon), n) == want, case


def test_daemon_tolerations_are_upstreams_in_order_and_replace_same_key_and_effect() -> None:
    spec: dict[str, Any] = {
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "tolerationSeconds": 5},
            {"key": "mine", "operator": "Exists"},
        ]
    }
    add_daemon_tolerations(spec)
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "mine", "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
    host = {"hostNetwork": True}
    add_daemon_tolerations(host)
    assert host["tolerations"][-1] == {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    }


def test_new_pod_is_pinned_by_affinity_labelled_and_owned() -> None:
    d = ds()
    p = new_daemon_pod(d, "n2", revision(d))
    assert p["metadata"]["generateName"] == "agent-"
    assert p["metadata"]["labels"] == {"app": "web", REVISION_LABEL: revision(d)}
    assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert "nodeName" not in p["spec"]
    required = p["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert required == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
        ]
    }
    assert target_node(p) == "n2"


def _creates(plan: Any) -> list[str]:
    return [c.node for c in plan.create]


def _deletes(plan: Any) -> list[str]:
    return sorted(d.name for d in plan.delete)


def test_one_pod_per_eligible_node_only() -> None:
    d = ds(node_selector={"role": "edge"})
    nodes = [node("n1", labels={"role": "edge"}), node("n2"), node("n3", labels={"role": "edge"})]
    plan = plan_daemon_set(d, nodes, [dpod("a", "n1", d)], NOW)
    assert _creates(plan) == ["n3"]
    assert plan.delete == []
    assert plan.status["desiredNumberScheduled"] == 2
    assert plan.status["currentNumberScheduled"] == 1


@pytest.mark.parametrize(
    ("case", "pods", "nodes", "creates", "deletes"),
    [
        ("a node added", ["a@n1"], ["n1", "n2"], ["n2"], []),
        ("a node no longer selected", ["a@n1", "b@n2"], ["n1", "n2:other"], [], ["b"]),
        # A pod bound to a node that is gone is pod GC's; one never scheduled is ours.
        ("node removed, pod bound", ["a@n1", "b@n2"], ["n1"], [], []),
        ("node removed, pod pending", ["a@n1", "b@n2:pending"], ["n1"], [], ["b"]),
        ("two pods on one node: the newer goes", ["a@n1", "b@n1:newer"], ["n1"], [], ["b"]),
        ("failed pod deleted", ["a@n1:failed"], ["n1"], [], ["a"]),
        ("succeeded pod deleted", ["a@n1:succeeded"], ["n1"], [], ["a"]),
        ("terminating pod waited for", ["a@n1:deleting"], ["n1"], [], []),
    ],
)
def test_manage(
    case: str, pods: list[str], nodes: list[str], creates: list[str], deletes: list[str]
) -> None:
    d = ds(node_selector={"role": "edge"})
    node_objs = [
        node(n.split(":")[0], labels={} if n.endswith(":other") else {"role": "edge"})
        for n in nodes
    ]
    pod_objs = []
    for spec_ in pods:
        pod_name, rest = spec_.split("@")
        on, _, flag = rest.partition(":")
        kw: dict[str, Any] = {}
        if flag in ("failed", "succeeded"):
            kw["phase"] = flag.title()
        if flag == "deleting":
            kw["deleting"] = True
        if flag == "newer":
            kw["created"] = NOW - 10
        p = dpod(pod_name, on, d, **kw)
        if flag == "pending":
            p = dpod(pod_name, "", d, ready=False, phase="Pending")
            p["spec"]["affinity"] = new_daemon_pod(d, on, "x")["spec"]["affinity"]
        pod_objs.append(p)
    plan = plan_daemon_set(d, node_objs, pod_objs, NOW)
    assert (_creates(plan), _deletes(plan)) == (creates, deletes), case


def test_failed_pod_gets_upstreams_warning() -> None:
    d = ds()
    plan = plan_daemon_set(d, [node("n1")], [dpod("a", "n1", d, phase="Failed")], NOW)
    assert [(e.type, e.reason, e.message) for e in plan.events] == [
        (
            "Warning",
            "FailedDaemonPod",
            "Found failed daemon pod default/a on node n1, will try to kill it",
        )
    ]


def test_nothing_written_while_expectations_pending() -> None:
    d = ds()
    plan = plan_daemon_set(d, [node("n1"), node("n2")], [], NOW, expectations_satisfied=False)
    assert plan.create == [] and plan.delete == []
    assert "observedGeneration" not in plan.status
    assert plan.status["desiredNumberScheduled"] == 2


@pytest.mark.parametrize(
    ("case", "max_unavailable", "pods", "deletes"),
    [
        ("one at a time", 1, ["a@n1:old", "b@n2:old", "c@n3:old", "d@n4:old"], ["a"]),
        ("two at a time", 2, ["a@n1:old", "b@n2:old", "c@n3:old", "d@n4:old"], ["a", "b"]),
        ("25% of 4 rounds up to 1", "25%", ["a@n1:old", "b@n2:old", "c@n3:old", "d@n4:old"], ["a"]),
        ("50% of 4 is 2", "50%", ["a@n1:old", "b@n2:old", "c@n3:old", "d@n4:old"], ["a", "b"]),
        # A new pod not yet available uses the budget.
        ("budget used by a new unready pod", 1, ["a@n1:new-unready", "b@n2:old", "c@n3:old", "d@n4:old"], []),
        ("next once the new one is ready", 1, ["a@n1", "b@n2:old", "c@n3:old", "d@n4:old"], ["b"]),
        # An old pod that is unavailable anyway is replaced at once, beyond the budget.
        ("unavailable old pod replaced at once", 1, ["a@n1:new-unready", "b@n2:old-unready", "c@n3:old", "d@n4:old"], ["b"]),
        ("all updated", 1, ["a@n1", "b@n2", "c@n3", "d@n4"], []),
    ],
)  # fmt: skip
def test_rolling_update(
    case: str, max_unavailable: int | str, pods: list[str], deletes: list[str]
) -> None:
    d = ds(max_unavailable=max_unavailable)
    nodes = [node(f"n{i}") for i in range(1, 5)]
    objs = []
    for spec_ in pods:
        pod_name, rest = spec_.split("@")
        on, _, flag = rest.partition(":")
        objs.append(
            dpod(
                pod_name,
                on,
                d,
                current=not flag.startswith("old"),
                ready=not flag.endswith("unready"),
            )
        )
    plan = plan_daemon_set(d, nodes, objs, NOW)
    assert plan.create == []
    assert _deletes(plan) == deletes, case


def test_on_delete_strategy_never_deletes_old_pods() -> None:
    d = ds(strategy="OnDelete")
    plan = plan_daemon_set(d, [node("n1")], [dpod("a", "n1", d, current=False)], NOW)
    assert plan.delete == []
    assert "updatedNumberScheduled" not in plan.status


def test_status_counts() -> None:
    d = ds(min_ready=60)
    nodes = [node("n1"), node("n2"), node("n3"), node("n4", taints=[DEDICATED])]
    pods = [
        dpod("a", "n1", d),  # ready for an hour: available
        dpod("b", "n2", d, current=False, ready_since=NOW - 10),  # ready, not yet available
        dpod("c", "n4", d),  # on a node it may stay on but that is not desired: misscheduled
    ]
    plan = plan_daemon_set(d, nodes, pods, NOW, expectations_satisfied=False)
    assert plan.status == {
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "desiredNumberScheduled": 3,
        "numberReady": 2,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
    }
    assert plan.requeue_after == pytest.approx(50)
    satisfied = plan_daemon_set(d, nodes, pods, NOW)
    assert satisfied.status["observedGeneration"] == 3


def test_stopped_node_keeps_its_pod_and_leaves_the_desired_count() -> None:
    d = ds()
    stopped = node("n2", ready="Unknown", taints=[NO_SCHEDULE_UNREACHABLE, NO_EXECUTE_UNREACHABLE])
    pods = [dpod("a", "n1", d), dpod("b", "n2", d, ready=False)]
    plan = plan_daemon_set(d, [node("n1"), stopped], pods, NOW)
    assert plan.create == [] and plan.delete == []
    assert plan.status["desiredNumberScheduled"] == 1
    assert plan.status["numberMisscheduled"] == 1
    assert plan.status["numberReady"] == 1
