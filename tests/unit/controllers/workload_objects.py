"""Builders of wire-form objects for the workload controller plans' unit tables.

Times are epoch seconds relative to ``NOW``; every object gets a deterministic uid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = 1_800_000_000.0
NOW_TEXT = "2027-01-15T08:00:00Z"
LABELS = {"app": "web"}


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template(image: str = "nginx:1.25", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels or LABELS)},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def owner(kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod(
    name: str,
    *,
    owner_uid: str | None = "rs-uid",
    owner_kind: str = "ReplicaSet",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool | None = True,
    ready_since: float = NOW - 3600,
    created: float | None = NOW - 7200,
    node: str | None = "node-1",
    restarts: int = 0,
    deleting: bool = False,
    annotations: dict[str, str] | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "labels": dict(LABELS if labels is None else labels),
        "resourceVersion": "1",
    }
    if created is not None:
        meta["creationTimestamp"] = ts(created)
    if owner_uid is not None:
        meta["ownerReferences"] = [owner(owner_kind, "owner", owner_uid)]
    if deleting:
        meta["deletionTimestamp"] = ts(NOW + 30)
    if annotations:
        meta["annotations"] = annotations
    status: dict[str, Any] = {"phase": phase}
    if ready is not None:
        status["conditions"] = [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": ts(ready_since),
            }
        ]
    status["containerStatuses"] = [{"name": "web", "restartCount": restarts}]
    spec: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def replica_set(
    name: str = "web-abc",
    *,
    replicas: int = 3,
    uid: str = "rs-uid",
    labels: dict[str, str] | None = None,
    min_ready: int = 0,
    generation: int = 1,
    deleting: bool = False,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": uid,
        "generation": generation,
        "resourceVersion": "7",
        "creationTimestamp": ts(NOW - 9000),
    }
    if deleting:
        meta["deletionTimestamp"] = ts(NOW)
    lbl = dict(labels or LABELS)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": lbl},
            "template": template(labels=lbl),
        },
        "status": status or {"replicas": 0},
    }
