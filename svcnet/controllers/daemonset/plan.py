"""DaemonSet planning, pure: upstream ``pkg/controller/daemon`` (``manage``,
``podsShouldBeOnNode``, ``NodeShouldRunDaemonPod``, ``rollingUpdate``, ``updateDaemonSetStatus``).

One pod per eligible node. A node is eligible when the pod template's ``nodeSelector`` and
required node affinity match it and the pod tolerates its NoSchedule and NoExecute taints; a
node whose only untolerated taints are NoSchedule keeps the pod it has (``shouldContinueRunning``)
but gets no new one. Every daemon pod tolerates, as upstream adds them, ``not-ready`` and
``unreachable`` NoExecute (a node problem never evicts it) and the pressure and
``unschedulable`` NoSchedule taints. The pod is pinned to its node by a required node affinity
on ``metadata.name`` and placed by the scheduler, as upstream does since 1.12.

Rolling update (``maxUnavailable``; maxSurge is validated but not acted on): only in a sync
that had nothing to create or delete, old pods are deleted while fewer than ``maxUnavailable``
pods are unavailable, an unavailable old pod first; ``manage`` then creates the replacement.

Revisions: upstream names them after ControllerRevisions; here the revision is the hash of the
template, kept in the pods' ``controller-revision-hash`` label (as the StatefulSet plan does).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.objects import ObjView, labels, meta, name, spec, status, uid
from svcnet.api.wellknown import (
    TAINT_DISK_PRESSURE,
    TAINT_MEMORY_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
    TAINT_NOT_READY,
    TAINT_PID_PRESSURE,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
)
from svcnet.controllers.podutil import (
    available_in,
    creation_time,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    phase,
    template_hash,
)
from svcnet.controllers.replicaset.plan import new_pod
from svcnet.controllers.scheduler.plan import matches_node_affinity, tolerated

REVISION_LABEL = "controller-revision-hash"
NAME_FIELD = "metadata.name"

# AddOrUpdateDaemonPodTolerations, in upstream's order.
_DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    (TAINT_NOT_READY, "NoExecute"),
    (TAINT_UNREACHABLE, "NoExecute"),
    (TAINT_DISK_PRESSURE, "NoSchedule"),
    (TAINT_MEMORY_PRESSURE, "NoSchedule"),
    (TAINT_PID_PRESSURE, "NoSchedule"),
    (TAINT_UNSCHEDULABLE, "NoSchedule"),
)


@dataclass(frozen=True)
class CreatePod:
    node: str
    pod: dict[str, Any]


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class DaemonSetPlan:
    create: list[CreatePod] = field(default_factory=list)
    delete: list[DeletePod] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def add_daemon_tolerations(pod_spec: dict[str, Any]) -> None:
    """``AddOrUpdateDaemonPodTolerations``: each toleration replaces one with the same key
    and effect, else is appended."""
    wanted = list(_DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append((TAINT_NETWORK_UNAVAILABLE, "NoSchedule"))
    tolerations = [dict(t) for t in pod_spec.get("tolerations") or ()]
    for key, effect in wanted:
        toleration = {"key": key, "operator": "Exists", "effect": effect}
        for i, t in enumerate(tolerations):
            if t.get("key") == key and t.get("effect") == effect:
                tolerations[i] = toleration
                break
        else:
            tolerations.append(toleration)
    pod_spec["tolerations"] = tolerations


def pin_to_node(pod_spec: dict[str, Any], node: str) -> None:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node affinity becomes one
    term, ``metadata.name In [node]``; preferred terms stay."""
    term = {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node]}]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}


def revision(ds: ObjView) -> str:
    return template_hash(spec(ds).get("template") or {})


def daemon_pod_spec(ds: ObjView) -> dict[str, Any]:
    """The pod spec every daemon pod of ``ds`` gets, before it is pinned to a node."""
    pod_spec = copy.deepcopy(dict((spec(ds).get("template") or {}).get("spec") or {}))
    add_daemon_tolerations(pod_spec)
    return pod_spec


def new_daemon_pod(ds: ObjView, node: str, hash_: str) -> dict[str, Any]:
    pod = new_pod(ds, "apps/v1", "DaemonSet")
    pod["metadata"]["labels"][REVISION_LABEL] = hash_
    pod_spec = daemon_pod_spec(ds)
    pin_to_node(pod_spec, node)
    pod["spec"] = pod_spec
    return pod


def node_should_run(pod_spec: Mapping[str, Any], node: ObjView) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should run, should continue running)."""
    node_name = name(node)
    pinned = pod_spec.get("nodeName")
    if pinned and pinned != node_name:
        return False, False
    if not matches_node_affinity({"spec": pod_spec}, node):
        return False, False
    tolerations = list(pod_spec.get("tolerations") or ())
    untolerated = [
        t
        for t in spec(node).get("taints") or ()
        if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(tolerations, t)
    ]
    if untolerated:
        return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
    return True, True


def target_node(pod: ObjView) -> str:
    """``GetTargetNodeName``: the node the pod is bound to, or the one its affinity pins."""
    bound = spec(pod).get("nodeName")
    if bound:
        return str(bound)
    required = ((spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            values: list[Any] = list(f.get("values") or ())
            if f.get("key") == NAME_FIELD and f.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


def _oldest_first(pods: Sequence[ObjView]) -> list[ObjView]:
    """``podByCreationTimestampAndPhase``: scheduled pods first, then oldest, then by name."""
    return sorted(
        pods,
        key=lambda p: (not spec(p).get("nodeName"), creation_time(p) or 0.0, name(p)),
    )


def _max_unavailable(ds: ObjView, desired: int) -> int:
    """``UnavailableCount``: an int, or a percentage of the desired count rounded up; with
    neither unavailability nor surge allowed, 1."""
    rolling = (spec(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str):
        try:
            count = math.ceil(int(value.removesuffix("%")) * desired / 100)
        except ValueError:
            count = 1
    else:
        count = int(value)
    return 1 if desired > 0 and count == 0 else count


def _by_node(pods: Sequence[ObjView]) -> dict[str, list[ObjView]]:
    """``getNodesToDaemonPods``: the pods of each target node, without the ones that ended
    and are being deleted."""
    out: dict[str, list[ObjView]] = {}
    for pod in pods:
        if is_terminating(pod) and phase(pod) in ("Succeeded", "Failed"):
            continue
        out.setdefault(target_node(pod), []).append(pod)
    return out


def _manage(
    ds: ObjView,
    pod_spec: Mapping[str, Any],
    nodes: Sequence[ObjView],
    by_node: Mapping[str, list[ObjView]],
    hash_: str,
    plan: DaemonSetPlan,
) -> None:
    known = {name(n) for n in nodes}
    for node in nodes:
        node_name = name(node)
        should_run, should_continue = node_should_run(pod_spec, node)
        daemon_pods = by_node.get(node_name)
        if should_run and not daemon_pods:
            plan.create.append(CreatePod(node_name, new_daemon_pod(ds, node_name, hash_)))
        elif should_continue and daemon_pods:
            running = []
            for pod in daemon_pods:
                if is_terminating(pod):
                    continue
                if phase(pod) == "Failed":
                    plan.events.append(
                        Event(
                            "Warning",
                            "FailedDaemonPod",
                            f"Found failed daemon pod {meta(pod).get('namespace')}/{name(pod)} "
                            f"on node {node_name}, will try to kill it",
                        )
                    )
                    plan.delete.append(DeletePod(name(pod), uid(pod)))
                elif phase(pod) == "Succeeded":
                    plan.delete.append(DeletePod(name(pod), uid(pod)))
                else:
                    running.append(pod)
            # More than one pod on a node: keep the oldest.
            for extra in _oldest_first(running)[1:]:
                plan.delete.append(DeletePod(name(extra), uid(extra)))
        elif not should_continue and daemon_pods:
            for pod in daemon_pods:
                if not is_terminating(pod):
                    plan.delete.append(DeletePod(name(pod), uid(pod)))
    # Pods pinned to a node that no longer exists and never scheduled: nothing else will
    # remove them (upstream's getUnscheduledPodsWithoutNode).
    for node_name, pods in sorted(by_node.items()):
        if node_name in known:
            continue
        for pod in pods:
            if not spec(pod).get("nodeName") and not is_terminating(pod):
                plan.delete.append(DeletePod(name(pod), uid(pod)))


def _rolling_update(
    ds: ObjView,
    pod_spec: Mapping[str, Any],
    nodes: Sequence[ObjView],
    by_node: Mapping[str, list[ObjView]],
    hash_: str,
    now: float,
    plan: DaemonSetPlan,
) -> None:
    min_ready = int(spec(ds).get("minReadySeconds") or 0)
    wanted = {name(n) for n in nodes if node_should_run(pod_spec, n)[0]}
    max_unavailable = _max_unavailable(ds, len(wanted))
    unavailable = 0
    replace_now: list[ObjView] = []
    candidates: list[ObjView] = []
    for node_name in sorted(wanted | set(by_node)):
        live = [p for p in by_node.get(node_name, ()) if not is_terminating(p)]
        new = [p for p in live if labels(p).get(REVISION_LABEL) == hash_]
        old = [p for p in live if labels(p).get(REVISION_LABEL) != hash_]
        if len(new) > 1 or len(old) > 1 or (bool(new) == bool(old)):
            # Nothing yet, or both: manage handles it; it counts as unavailable meanwhile.
            unavailable += 1
        elif new:
            if not is_pod_available(new[0], min_ready, now):
                unavailable += 1
        elif not is_pod_available(old[0], min_ready, now):
            replace_now.append(old[0])
        elif unavailable < max_unavailable:
            candidates.append(old[0])
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    for pod in [*replace_now, *candidates[:room]]:
        plan.delete.append(DeletePod(name(pod), uid(pod)))


def daemon_set_status(
    ds: ObjView,
    pod_spec: Mapping[str, Any],
    nodes: Sequence[ObjView],
    by_node: Mapping[str, list[ObjView]],
    hash_: str,
    now: float,
    *,
    observe_generation: bool,
) -> tuple[dict[str, Any], float | None]:
    """``updateDaemonSetStatus``; also when a ready pod becomes available (a requeue)."""
    min_ready = int(spec(ds).get("minReadySeconds") or 0)
    desired = current = misscheduled = ready = updated = available = 0
    wake: float | None = None
    for node in nodes:
        should_run, _ = node_should_run(pod_spec, node)
        pods = by_node.get(name(node)) or []
        if not should_run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = _oldest_first(pods)[0]
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
            else:
                left = available_in(pod, min_ready, now)
                if left is not None:
                    wake = left if wake is None else min(wake, left)
        if labels(pod).get(REVISION_LABEL) == hash_:
            updated += 1
    new: dict[str, Any] = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
    }
    old = status(ds)
    generation = meta(ds).get("generation") if observe_generation else old.get("observedGeneration")
    # The omitempty fields appear only when set.
    for key, value in (
        ("observedGeneration", generation),
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available),
        ("numberUnavailable", desired - available),
        ("collisionCount", old.get("collisionCount")),
        ("conditions", old.get("conditions")),
    ):
        if value:
            new[key] = value
    return new, wake


def plan_daemon_set(
    ds: ObjView,
    nodes: Sequence[ObjView],
    pods: Sequence[ObjView],
    now: float,
    *,
    expectations_satisfied: bool = True,
) -> DaemonSetPlan:
    """One sync of ``ds``: ``pods`` are the pods it owns (claimed), ``nodes`` every node."""
    plan = DaemonSetPlan()
    hash_ = revision(ds)
    pod_spec = daemon_pod_spec(ds)
    by_node = _by_node(pods)
    ordered = sorted(nodes, key=name)
    if expectations_satisfied and not is_terminating(ds):
        _manage(ds, pod_spec, ordered, by_node, hash_, plan)
        strategy = (spec(ds).get("updateStrategy") or {}).get("type") or "RollingUpdate"
        if not plan.create and not plan.delete and strategy == "RollingUpdate":
            _rolling_update(ds, pod_spec, ordered, by_node, hash_, now, plan)
    plan.status, plan.requeue_after = daemon_set_status(
        ds, pod_spec, ordered, by_node, hash_, now, observe_generation=expectations_satisfied
    )
    return plan
