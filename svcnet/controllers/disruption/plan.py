"""The disruption controller's sync of one PodDisruptionBudget, pure: upstream's
``DisruptionController.trySync`` over the budget, the pods of its namespace, the scale of their
controllers and the time now (as text and seconds).

``disruptedPods`` holds the pods the Eviction subresource took a disruption for: they count as
unhealthy until their delete shows, for at most two minutes (``DeletionTimeout``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.disruption import (
    ExpectedScaleError,
    Scales,
    budget,
    count_healthy,
    selects,
    set_disruption_allowed,
    set_sync_failed,
)
from svcnet.api.jsonvalue import copy_json
from svcnet.api.objects import ObjView, meta, spec, status
from svcnet.controllers.job.plan import Event

# DeletionTimeout: how long an evicted pod may take to go before it counts again.
DELETION_TIMEOUT = 120.0
_UNMANAGED = (
    "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a "
    "result, the status of the PDB cannot be calculated correctly, which may result in undefined "
    'behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an '
    "integer value."
)


@dataclass
class PdbPlan:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def _go_selector(selector: Any) -> str:
    """A ``*metav1.LabelSelector`` as Go's ``%v`` prints it (its generated ``String()``)."""
    if not isinstance(selector, dict):
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((selector.get("matchLabels") or {}).items()))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(e.get('values') or [])}],}},"
        for e in selector.get("matchExpressions") or []
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )


def _seconds(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _disrupted(
    pdb: ObjView, pods: Sequence[ObjView], now: float
) -> tuple[dict[str, str], float | None]:
    """buildDisruptedPodMap: entries whose pod is still there and not yet being deleted, and
    younger than the timeout; with the time until the oldest expires."""
    present = {str(meta(p).get("name")): p for p in pods}
    kept: dict[str, str] = {}
    recheck: float | None = None
    for pod_name, when in (status(pdb).get("disruptedPods") or {}).items():
        pod = present.get(pod_name)
        if pod is None or meta(pod).get("deletionTimestamp"):
            continue
        left = _seconds(str(when)) + DELETION_TIMEOUT - now
        if left <= 0:
            continue
        kept[pod_name] = str(when)
        recheck = left if recheck is None else min(recheck, left)
    return kept, recheck


def plan_pdb(
    pdb: ObjView, namespace_pods: Sequence[ObjView], scales: Scales, now_text: str
) -> PdbPlan:
    now = _seconds(now_text)
    pods = [p for p in namespace_pods if selects(pdb, p)]
    new_status = copy_json(dict(status(pdb)))
    new_status["observedGeneration"] = int(meta(pdb).get("generation") or 0)
    plan = PdbPlan(new_status)
    if not pods:
        plan.events.append(Event("Normal", "NoPods", "No matching pods found"))
    try:
        b = budget(pdb, pods, scales)
    except ExpectedScaleError as e:
        plan.events.append(Event("Warning", "NoControllers", str(e)))
        plan.events.append(
            Event(
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {e}",
            )
        )
        set_sync_failed(new_status, str(e), now_text)
        return plan
    if b.unmanaged:
        selector = _go_selector(spec(pdb).get("selector"))
        plan.events.append(Event("Warning", "UnmanagedPods", _UNMANAGED.format(selector)))
    disrupted, plan.requeue_after = _disrupted(pdb, pods, now)
    healthy = count_healthy(pods, disrupted)
    new_status.update(
        {
            "currentHealthy": healthy,
            "desiredHealthy": b.desired_healthy,
            "expectedPods": b.expected,
            "disruptionsAllowed": max(healthy - b.desired_healthy, 0),
        }
    )
    if disrupted:
        new_status["disruptedPods"] = disrupted
    else:
        new_status.pop("disruptedPods", None)
    set_disruption_allowed(new_status, now_text)
    return plan
