"""Pod disruption budgets, pure: the arithmetic of upstream's disruption controller
(``pkg/controller/disruption``: expected pods, desired healthy, disruptions allowed, the
``DisruptionAllowed`` condition) and the decision of the Eviction subresource
(``pkg/registry/core/pod/storage/eviction.go``) over a pod and the budgets that select it.

The controller computes a budget's status from the pods and their controllers' scale; the API
server decides an eviction from that status alone, and takes one disruption from it (recording
the pod in ``disruptedPods``) before deleting the pod, as upstream does.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.jsonvalue import copy_json
from svcnet.api.objects import ObjView, meta, spec, status
from svcnet.api.selectors import label_selector_from_dict

TOO_MANY_REQUESTS_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MORE_THAN_ONE_PDB = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)
# MaxDisruptedPodSize: evictions the controller has not yet seen, per budget.
MAX_DISRUPTED_PODS = 2000
DISRUPTION_ALLOWED = "DisruptionAllowed"


def is_pod_ready(pod: ObjView) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status(pod).get("conditions") or ()
    )


def selects(pdb: ObjView, pod: ObjView) -> bool:
    """policy/v1: a null selector selects nothing, an empty one every pod of the namespace."""
    selector = spec(pdb).get("selector")
    if selector is None or meta(pdb).get("namespace") != meta(pod).get("namespace"):
        return False
    return label_selector_from_dict(selector).matches(meta(pod).get("labels") or {})


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    percent = int(value.removesuffix("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


class ExpectedScaleError(Exception):
    """A selected pod's controller has no scale (a DaemonSet) or there is no controller."""


@dataclass(frozen=True)
class Budget:
    """What the controller derives: upstream's ``expectedCount`` and ``desiredHealthy``, and
    the selected pods no controller owns (they count for nothing in a scale)."""

    expected: int
    desired_healthy: int
    unmanaged: tuple[str, ...] = ()


Scales = Mapping[str, tuple[str, int] | None]


def budget(pdb: ObjView, pods: Sequence[ObjView], scale_of: Scales) -> Budget:
    """getExpectedPodCount. ``scale_of`` maps the uid of each selected pod's controller to the
    uid and ``spec.replicas`` of what scales it (the Deployment of a ReplicaSet it controls,
    else the controller itself), None for a controller without a scale; it is only consulted
    for a percentage or ``maxUnavailable``."""
    s = spec(pdb)
    max_unavailable, min_available = s.get("maxUnavailable"), s.get("minAvailable")
    if max_unavailable is not None:
        expected, unmanaged = _expected_scale(pods, scale_of)
        unavailable = scaled_value(max_unavailable, expected, True)
        return Budget(expected, max(expected - unavailable, 0), unmanaged)
    if isinstance(min_available, int):
        return Budget(len(pods), min_available)
    if min_available is not None:
        expected, unmanaged = _expected_scale(pods, scale_of)
        return Budget(expected, scaled_value(min_available, expected, True), unmanaged)
    return Budget(0, 0)


def controller_key(pod: ObjView) -> str | None:
    for ref in meta(pod).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _expected_scale(pods: Sequence[ObjView], scale_of: Scales) -> tuple[int, tuple[str, ...]]:
    """getExpectedScale: each controller's replicas once; pods without a controller are
    unmanaged; a controller without a scale (a DaemonSet) is an error, as upstream's finders
    find none for it."""
    counted: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        key = controller_key(pod)
        if key is None:
            unmanaged.append(str(meta(pod).get("name")))
            continue
        found = scale_of.get(key)
        if found is None:
            raise ExpectedScaleError(f'found no controllers for pod "{meta(pod).get("name")}"')
        counted[found[0]] = found[1]
    return sum(counted.values()), tuple(unmanaged)


def count_healthy(pods: Sequence[ObjView], disrupted: Mapping[str, Any]) -> int:
    """countHealthyPods: ready, not being deleted, not evicted a moment ago."""
    return sum(
        1
        for p in pods
        if not meta(p).get("deletionTimestamp")
        and meta(p).get("name") not in disrupted
        and is_pod_ready(p)
    )


def set_disruption_allowed(new_status: dict[str, Any], now: str) -> None:
    """UpdateDisruptionAllowedCondition: True/SufficientPods while a disruption is allowed,
    else False/InsufficientPods; the transition time moves only with the status."""
    allowed = int(new_status.get("disruptionsAllowed") or 0) > 0
    wanted = {
        "type": DISRUPTION_ALLOWED,
        "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
        "observedGeneration": new_status.get("observedGeneration", 0),
    }
    conditions = [c for c in new_status.get("conditions") or () if c.get("type") != wanted["type"]]
    old = next(
        (c for c in new_status.get("conditions") or () if c.get("type") == wanted["type"]), None
    )
    if old is not None and old.get("status") == wanted["status"]:
        wanted["lastTransitionTime"] = old.get("lastTransitionTime", now)
    else:
        wanted["lastTransitionTime"] = now
    conditions.append(wanted)
    new_status["conditions"] = conditions


def set_sync_failed(new_status: dict[str, Any], message: str, now: str) -> None:
    """The failSafe status when the budget cannot be computed: no disruption allowed."""
    new_status["disruptionsAllowed"] = 0
    old = next(
        (c for c in new_status.get("conditions") or () if c.get("type") == DISRUPTION_ALLOWED),
        None,
    )
    condition = {
        "type": DISRUPTION_ALLOWED,
        "status": "False",
        "reason": "SyncFailed",
        "message": message,
        "observedGeneration": new_status.get("observedGeneration", 0),
        "lastTransitionTime": (
            old.get("lastTransitionTime", now) if old and old.get("status") == "False" else now
        ),
    }
    new_status["conditions"] = [
        *(c for c in new_status.get("conditions") or () if c.get("type") != DISRUPTION_ALLOWED),
        condition,
    ]


# -- eviction --------------------------------------------------------------------------------


class Verdict(enum.Enum):
    DELETE = "delete"  # delete the pod, no budget is touched
    DELETE_WITH_BUDGET = "delete-with-budget"  # write the budget's new status, then delete
    TOO_MANY_REQUESTS = "429"
    FORBIDDEN = "403"
    INTERNAL_ERROR = "500"


@dataclass
class EvictionDecision:
    verdict: Verdict
    message: str = ""
    # The DisruptionBudget cause of a 429, as upstream adds it to the Status.
    cause: str = ""
    pdb_status: dict[str, Any] = field(default_factory=dict)


def _can_ignore_budget(pod: ObjView) -> bool:
    """canIgnorePDB: a pod that is done, not yet running or already being deleted."""
    phase = status(pod).get("phase")
    return bool(meta(pod).get("deletionTimestamp")) or phase in ("Succeeded", "Failed", "Pending")


def decide_eviction(pod: ObjView, pdbs: Sequence[ObjView], now: str) -> EvictionDecision:
    """The Eviction subresource's decision for ``pod`` given the budgets of its namespace."""
    if _can_ignore_budget(pod):
        return EvictionDecision(Verdict.DELETE)
    matching = [p for p in pdbs if selects(p, pod)]
    if not matching:
        return EvictionDecision(Verdict.DELETE)
    if len(matching) > 1:
        return EvictionDecision(Verdict.INTERNAL_ERROR, MORE_THAN_ONE_PDB)
    pdb = matching[0]
    pdb_name = str(meta(pdb).get("name"))
    st = status(pdb)
    if int(st.get("observedGeneration") or 0) < int(meta(pdb).get("generation") or 0):
        return EvictionDecision(
            Verdict.TOO_MANY_REQUESTS,
            TOO_MANY_REQUESTS_MESSAGE,
            f"The disruption budget {pdb_name} is still being processed by the server.",
        )
    if not is_pod_ready(pod):
        policy = spec(pdb).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        healthy, desired = int(st.get("currentHealthy") or 0), int(st.get("desiredHealthy") or 0)
        if policy == "AlwaysAllow" or (healthy >= desired and desired > 0):
            return EvictionDecision(Verdict.DELETE)
    allowed = int(st.get("disruptionsAllowed") or 0)
    if allowed < 0:
        return EvictionDecision(Verdict.FORBIDDEN, "pdb disruptions allowed is negative")
    disrupted = dict(st.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        return EvictionDecision(
            Verdict.FORBIDDEN,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        return EvictionDecision(
            Verdict.TOO_MANY_REQUESTS,
            TOO_MANY_REQUESTS_MESSAGE,
            f"The disruption budget {pdb_name} needs {st.get('desiredHealthy', 0)} healthy pods "
            f"and has {st.get('currentHealthy', 0)} currently",
        )
    new_status = copy_json(dict(st))
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_disruption_allowed(new_status, now)
    disrupted[str(meta(pod).get("name"))] = now
    new_status["disruptedPods"] = disrupted
    return EvictionDecision(Verdict.DELETE_WITH_BUDGET, pdb_status=new_status)


def disruption_target_condition(now: str) -> dict[str, Any]:
    """The condition an evicted pod gets before its delete (PodDisruptionConditions, GA in
    1.31)."""
    return {
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": now,
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }
