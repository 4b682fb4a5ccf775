"""ReplicaSet planning, pure: which pods to adopt, release, create and delete, and the status.

Upstream ``pkg/controller/replicaset/replica_set.go``: the controller counts the active pods
it controls (after claiming orphans that match its selector and releasing its pods that no
longer match); too few → create the difference (at most ``burstReplicas`` per sync), too many
→ delete the surplus chosen by :func:`svcnet.controllers.podutil.rank_for_deletion`. Nothing is
created or deleted while the expectations of earlier writes are unmet (the caller says so),
because the cache may not show those writes yet and acting on it would double them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api.names import is_dns1123_subdomain
from svcnet.api.objects import ObjView, labels, meta, name, spec, status
from svcnet.api.selectors import LabelSelector, label_selector_from_dict
from svcnet.controllers.podutil import (
    Claims,
    available_in,
    claim,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    owner_reference,
    rank_for_deletion,
)

BURST_REPLICAS = 500
REPLICA_FAILURE = "ReplicaFailure"


def replicas_of(obj: ObjView) -> int:
    r = spec(obj).get("replicas")
    return 1 if r is None else int(r)


def selector_of(obj: ObjView) -> LabelSelector:
    selector = spec(obj).get("selector")
    if obj.get("kind") == "ReplicationController":
        # A ReplicationController's selector is a plain map: equality on every label.
        return label_selector_from_dict({"matchLabels": selector} if selector else None)
    return label_selector_from_dict(selector)


@dataclass(frozen=True)
class ReplicaPlan:
    claims: Claims
    create: int
    delete: tuple[ObjView, ...]

    @property
    def active(self) -> list[ObjView]:
        """The pods the status counts: owned and adopted active pods."""
        return self.claims.claimed


def plan_replica_set(
    rs: ObjView,
    pods: Sequence[ObjView],
    now: float,
    *,
    expectations_satisfied: bool = True,
    related: Sequence[ObjView] | None = None,
    burst: int = BURST_REPLICAS,
) -> ReplicaPlan:
    """What one sync of ``rs`` does, given every pod of its namespace.

    ``related``: the active pods of sibling ReplicaSets (same controller), which count for the
    "doubled up on a node" rank when choosing pods to delete; defaults to ``rs``'s own.
    """
    active = [p for p in pods if is_pod_active(p)]
    claims = claim(rs, selector_of(rs), active)
    claimed = claims.claimed
    if not expectations_satisfied or is_terminating(rs):
        return ReplicaPlan(claims, 0, ())
    diff = len(claimed) - replicas_of(rs)
    if diff < 0:
        return ReplicaPlan(claims, min(-diff, burst), ())
    if diff > 0:
        diff = min(diff, burst)
        ranked = rank_for_deletion(claimed, related if related is not None else claimed, now)
        return ReplicaPlan(claims, 0, tuple(ranked[:diff]))
    return ReplicaPlan(claims, 0, ())


def pod_name_prefix(owner_name: str) -> str:
    """``getPodsPrefix``: ``<owner>-`` unless that is not a valid generateName prefix."""
    prefix = f"{owner_name}-"
    # The 5 random characters the API server appends must still leave a valid name.
    return prefix if not is_dns1123_subdomain(prefix + "xxxxx") else owner_name


def new_pod(rs: ObjView, api_version: str = "apps/v1", kind: str = "ReplicaSet") -> dict[str, Any]:
    """``GetPodFromTemplate``: labels, annotations and finalizers from the template, a
    generateName, and the controller reference."""
    template = spec(rs).get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {
        "generateName": pod_name_prefix(name(rs)),
        "namespace": meta(rs).get("namespace"),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(rs, api_version, kind)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(dict(template.get("spec") or {})),
    }


def _fully_labeled(pod: ObjView, template_labels: Mapping[str, str]) -> bool:
    pod_labels = labels(pod)
    return all(pod_labels.get(k) == v for k, v in template_labels.items())


def replica_set_status(
    rs: ObjView,
    pods: Sequence[ObjView],
    now: float,
    now_text: str,
    *,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """``calculateStatus``: counts over the claimed active pods, observedGeneration, and the
    ReplicaFailure condition — set (``failure`` = (reason, message)) when creating or deleting
    failed, removed after a sync that did not fail."""
    min_ready = int(spec(rs).get("minReadySeconds") or 0)
    template_labels = ((spec(rs).get("template") or {}).get("metadata") or {}).get("labels") or {}
    ready = available = fully = 0
    for pod in pods:
        if _fully_labeled(pod, template_labels):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    new: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": int(meta(rs).get("generation") or 0),
    }
    conditions = [dict(c) for c in status(rs).get("conditions") or ()]
    has_failure = any(c.get("type") == REPLICA_FAILURE for c in conditions)
    if failure is not None and not has_failure:
        conditions.append(
            {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": now_text,
                "reason": failure[0],
                "message": failure[1],
            }
        )
    elif failure is None and has_failure:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        new["conditions"] = conditions
    return new


def status_changed(rs: ObjView, new_status: Mapping[str, Any]) -> bool:
    """Upstream skips the write when replicas, counts, generation and conditions all match."""
    old = status(rs)
    keys = (
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    )
    if any(int(old.get(k) or 0) != int(new_status.get(k) or 0) for k in keys):
        return True
    return list(old.get("conditions") or []) != list(new_status.get("conditions") or [])


def requeue_for_availability(rs: ObjView, pods: Sequence[ObjView], now: float) -> float | None:
    """Seconds until the next pod becomes available, when some Ready pod is still inside
    ``minReadySeconds`` (upstream requeues after minReadySeconds as a guard; the exact wait
    is better)."""
    min_ready = int(spec(rs).get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    waits = [w for p in pods if (w := available_in(p, min_ready, now)) is not None]
    return min(waits) + 0.05 if waits else None
