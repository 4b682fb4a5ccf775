"""Pure node lifecycle decisions (upstream ``pkg/controller/nodelifecycle`` and its
``tainteviction`` NoExecute taint manager).

* **Health.** A node is alive while it keeps proving it: its Lease's renewTime or its Ready
  condition's lastHeartbeatTime changes. As upstream, the proof is timed on the controller's
  own clock when it is *observed* (``probeTimestamp``), so clock skew between a node and the
  control plane cannot matter; a node silent for longer than the grace period
  (``--node-monitor-grace-period``) gets its Ready, MemoryPressure, DiskPressure and
  PIDPressure conditions set to Unknown — reason ``NodeStatusUnknown``, "Kubelet stopped
  posting node status." — and its pods are marked not Ready.
* **Taints by condition.** Ready=False → ``node.kubernetes.io/not-ready``, Ready=Unknown →
  ``node.kubernetes.io/unreachable``, each NoSchedule and NoExecute; spec.unschedulable →
  ``node.kubernetes.io/unschedulable:NoSchedule``. They go when the condition does.
* **Eviction.** A pod on a node with NoExecute taints is evicted at the taint's timeAdded plus
  the smallest tolerationSeconds among its tolerations of those taints; never when a
  toleration has no tolerationSeconds; after ``pod_eviction_timeout`` when it tolerates none
  of them (upstream evicts those at once; svcnet keeps the old ``--pod-eviction-timeout``
  grace so that a brief outage does not kill pods created without the default tolerations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE
from svcnet.controllers import podutil
from svcnet.controllers.scheduler.plan import tolerated, tolerates

DEFAULT_NODE_MONITOR_GRACE_PERIOD = 3.0
DEFAULT_POD_EVICTION_TIMEOUT = 20.0
# PodGC's quarantine before deleting the pods of a node that is gone (upstream: 40 s).
DEFAULT_ORPHAN_QUARANTINE = 40.0
LEASE_NAMESPACE = "kube-node-lease"

CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
REASON_UNKNOWN = "NodeStatusUnknown"
MESSAGE_UNKNOWN = "Kubelet stopped posting node status."
REASON_NEVER = "NodeStatusNeverUpdated"
MESSAGE_NEVER = "Kubelet never posted node status."


def _conditions(obj: ObjView) -> list[Mapping[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or ())


def ready_condition(node: ObjView) -> Mapping[str, Any] | None:
    return next((c for c in _conditions(node) if c.get("type") == "Ready"), None)


def ready_status(node: ObjView) -> str:
    c = ready_condition(node)
    return str(c.get("status") or "Unknown") if c is not None else "Unknown"


# -- health --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """What the controller last saw of a node's heartbeats, and when (monotonic seconds)."""

    probe_time: float
    heartbeat: str = ""
    renew_time: str = ""


def observe(previous: Health | None, node: ObjView, lease: ObjView | None, now: float) -> Health:
    """``tryUpdateNodeHealth``'s bookkeeping: a new heartbeat or lease renewal moves the
    probe time to now; the first sight of a node gives it a full grace period."""
    ready = ready_condition(node)
    heartbeat = str((ready or {}).get("lastHeartbeatTime") or "")
    renew = str(objects.spec(lease).get("renewTime") or "") if lease is not None else ""
    if previous is None:
        return Health(now, heartbeat, renew)
    if heartbeat != previous.heartbeat or renew != previous.renew_time:
        return replace(previous, probe_time=now, heartbeat=heartbeat, renew_time=renew)
    return previous


def stale_in(health: Health, now: float, grace: float) -> float:
    """Seconds until the node is overdue (≤ 0: it is)."""
    return health.probe_time + grace - now


def with_unknown_conditions(node: ObjView, now: str) -> dict[str, Any] | None:
    """The node with its conditions set to Unknown, or None when they already are."""
    conds = [dict(c) for c in _conditions(node)]
    changed = False
    for ctype in CONDITION_TYPES:
        cond = next((c for c in conds if c.get("type") == ctype), None)
        if cond is None:
            conds.append(
                {
                    "type": ctype,
                    "status": "Unknown",
                    "reason": REASON_NEVER,
                    "message": MESSAGE_NEVER,
                    "lastHeartbeatTime": None,
                    "lastTransitionTime": now,
                }
            )
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(
                status="Unknown",
                reason=REASON_UNKNOWN,
                message=MESSAGE_UNKNOWN,
                lastTransitionTime=now,
            )
            changed = True
    if not changed:
        return None
    out = dict(node)
    out["status"] = {**(node.get("status") or {}), "conditions": conds}
    return out


# -- taints --------------------------------------------------------------------------------

_MANAGED_KEYS = (TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE)


def desired_taints(node: ObjView, now: str) -> list[dict[str, Any]]:
    """The node's taints with the condition taints set as its conditions say."""
    current = [dict(t) for t in objects.spec(node).get("taints") or ()]
    want: list[tuple[str, str]] = []
    # A node that has not posted a Ready condition yet is not ready (the kubelet registers
    # with the not-ready taint); it becomes unreachable only once the grace period says so.
    status = ready_status(node) if ready_condition(node) is not None else "False"
    if status == "False":
        want += [(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute")]
    elif status == "Unknown":
        want += [(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")]
    if objects.spec(node).get("unschedulable"):
        want.append((TAINT_UNSCHEDULABLE, "NoSchedule"))
    out = [
        t
        for t in current
        if t.get("key") not in _MANAGED_KEYS or (t.get("key"), t.get("effect")) in want
    ]
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key, effect in want:
        if (key, effect) not in have:
            taint: dict[str, Any] = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            out.append(taint)
    return out


def taints_changed(node: ObjView, taints: Sequence[Mapping[str, Any]]) -> bool:
    def norm(ts: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
        return {(str(t.get("key")), str(t.get("effect")), str(t.get("value") or "")) for t in ts}

    return norm(list(objects.spec(node).get("taints") or ())) != norm(taints)


# -- pods ----------------------------------------------------------------------------------


def with_pod_not_ready(pod: ObjView, now: str) -> dict[str, Any] | None:
    """``MarkPodsNotReady``: the pod with Ready=False, or None when it is not Ready."""
    conds = [dict(c) for c in _conditions(pod)]
    cond = next((c for c in conds if c.get("type") == "Ready"), None)
    if cond is None or cond.get("status") != "True":
        return None
    cond.update(status="False", lastTransitionTime=now)
    out = dict(pod)
    out["status"] = {**(pod.get("status") or {}), "conditions": conds}
    return out


def eviction_time(
    pod: ObjView, node: ObjView, now_wall: float, pod_eviction_timeout: float
) -> float | None:
    """When (wall seconds) the pod must go because of the node's NoExecute taints; None: never."""
    taints = [t for t in objects.spec(node).get("taints") or () if t.get("effect") == "NoExecute"]
    if not taints:
        return None
    tolerations = list(objects.spec(pod).get("tolerations") or ())
    deadline: float | None = None
    for taint in taints:
        added = podutil.parse_time(taint.get("timeAdded")) or now_wall
        if not tolerated(tolerations, taint):
            due = added + pod_eviction_timeout
        else:
            seconds = [t.get("tolerationSeconds") for t in tolerations if tolerates(t, taint)]
            if any(s is None for s in seconds):
                continue  # tolerated for ever
            due = added + max(0, min(int(s) for s in seconds if s is not None))
        deadline = due if deadline is None else min(deadline, due)
    return deadline


DISRUPTION_TARGET = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}


ORPHAN_CONDITION = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByPodGC",
    "message": "PodGC: node no longer exists",
}


def with_disruption_condition(
    pod: ObjView, now: str, condition: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The pod marked ``DisruptionTarget`` (why it is about to be deleted), or None when it
    already is."""
    conds = [dict(c) for c in _conditions(pod)]
    if any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in conds):
        return None
    conds = [c for c in conds if c.get("type") != "DisruptionTarget"]
    conds.append({**(condition or DISRUPTION_TARGET), "lastTransitionTime": now})
    out = dict(pod)
    out["status"] = {**(pod.get("status") or {}), "conditions": conds}
    return out


def status_change_message(node_name: str, status: str) -> str:
    """``nodeutil.RecordNodeStatusChange``."""
    return f"Node {node_name} status is now: {status}"
