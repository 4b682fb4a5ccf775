"""StatefulSet planning, pure: upstream ``stateful_set_control.go`` (``updateStatefulSet``).

Pods have stable identities ``<set>-<ordinal>`` with ``spec.hostname`` = the pod name and
``spec.subdomain`` = ``serviceName`` (so the headless Service gives each a DNS name). With
``OrderedReady`` (monotonic) one sync does at most one create or delete, and only once every
lower ordinal is Running and Ready (and available for ``minReadySeconds``); scale-down takes
the highest ordinal first, waiting for each to terminate. ``Parallel`` creates and deletes
without waiting. A RollingUpdate deletes, from the highest ordinal down to ``partition``,
the first pod not at the update revision, and waits for each replacement to be healthy.

Revisions: upstream stores each template in a ControllerRevision and labels pods with its
name. ControllerRevisions are not in our API registry, so the revision here is
``<set>-<hash of the template>`` kept only in the pods' ``controller-revision-hash`` label and
in ``status.currentRevision``/``updateRevision``. Without stored history an old revision's
template cannot be rebuilt: a pod below the partition that must be recreated gets the
current template (labelled with the update revision, truthfully).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.objects import ObjView, labels, meta, name, spec, uid
from svcnet.controllers.podutil import (
    available_in,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    owner_reference,
    phase,
    template_hash,
)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")
# Stands for a replica that does not exist yet where upstream has a not-yet-created pod.
_MISSING: ObjView = {}


@dataclass(frozen=True)
class CreatePod:
    pod: dict[str, Any]
    # The pod's claims from volumeClaimTemplates, created first when missing (and never
    # replaced: a claim outlives its pods).
    claims: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str


@dataclass(frozen=True)
class LabelPod:
    """Restore the identity labels of an existing pod (a merge patch of labels)."""

    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


Action = CreatePod | DeletePod | LabelPod | Event


@dataclass
class StatefulSetPlan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    m = _ORDINAL.match(pod_name)
    if m is None:
        return "", -1
    return m.group(1), int(m.group(2))


def is_member_of(sts: ObjView, pod: ObjView) -> bool:
    return parent_and_ordinal(name(pod))[0] == name(sts)


def replicas(sts: ObjView) -> int:
    r = spec(sts).get("replicas")
    return 1 if r is None else int(r)


def start_ordinal(sts: ObjView) -> int:
    return int((spec(sts).get("ordinals") or {}).get("start") or 0)


def revision_name(sts: ObjView) -> str:
    return f"{name(sts)}-{template_hash(spec(sts).get('template') or {})}"


def _running_and_ready(pod: ObjView) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def _running_and_available(pod: ObjView, min_ready: int, now: float) -> bool:
    return phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def _healthy(pod: ObjView) -> bool:
    return _running_and_ready(pod) and not is_terminating(pod)


def _revision(pod: ObjView) -> str:
    return labels(pod).get(REVISION_LABEL, "")


def identity_labels(sts: ObjView, ordinal: int) -> dict[str, str]:
    pod_name = f"{name(sts)}-{ordinal}"
    return {POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal)}


def new_stateful_pod(sts: ObjView, ordinal: int, revision: str) -> dict[str, Any]:
    """``newVersionedStatefulSetPod``: the template, the identity and the revision label."""
    template = spec(sts).get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_name = f"{name(sts)}-{ordinal}"
    pod_labels = {
        **(tmeta.get("labels") or {}),
        **identity_labels(sts, ordinal),
        REVISION_LABEL: revision,
    }
    pod_meta: dict[str, Any] = {
        "name": pod_name,
        "namespace": meta(sts).get("namespace"),
        "labels": pod_labels,
        "ownerReferences": [owner_reference(sts, "apps/v1", "StatefulSet")],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    pod_spec = copy.deepcopy(dict(template.get("spec") or {}))
    pod_spec["hostname"] = pod_name
    _with_claim_volumes(sts, pod_spec, ordinal)
    service = spec(sts).get("serviceName")
    if service:
        pod_spec["subdomain"] = service
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def claim_name(template_name: str, sts_name: str, ordinal: int) -> str:
    """``getPersistentVolumeClaimName``: ``<template>-<set>-<ordinal>``."""
    return f"{template_name}-{sts_name}-{ordinal}"


def claims_for(sts: ObjView, ordinal: int) -> list[dict[str, Any]]:
    """``getPersistentVolumeClaims``: one claim per template, labelled with the set's
    matchLabels. With the default retention policy (Retain, Retain) a claim has no owner, as
    upstream's: it stays when its pod or its set goes."""
    out = []
    selector_labels = (spec(sts).get("selector") or {}).get("matchLabels") or {}
    for template in spec(sts).get("volumeClaimTemplates") or ():
        tmeta = template.get("metadata") or {}
        claim_meta: dict[str, Any] = {
            "name": claim_name(str(tmeta.get("name") or ""), name(sts), ordinal),
            "namespace": meta(sts).get("namespace"),
            "labels": {**(tmeta.get("labels") or {}), **selector_labels},
        }
        if tmeta.get("annotations"):
            claim_meta["annotations"] = dict(tmeta["annotations"])
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_meta,
                "spec": copy.deepcopy(dict(template.get("spec") or {})),
            }
        )
    return out


def _with_claim_volumes(sts: ObjView, pod_spec: dict[str, Any], ordinal: int) -> None:
    """``updateStorage``: each template's volume refers to this ordinal's claim, replacing a
    template volume of the same name."""
    templates = [
        str((t.get("metadata") or {}).get("name") or "")
        for t in spec(sts).get("volumeClaimTemplates") or ()
    ]
    if not templates:
        return
    volumes = [v for v in pod_spec.get("volumes") or () if v.get("name") not in templates]
    for t in templates:
        claim = {"claimName": claim_name(t, name(sts), ordinal)}
        volumes.append({"name": t, "persistentVolumeClaim": claim})
    pod_spec["volumes"] = volumes


class _Sync:
    def __init__(self, sts: ObjView, pods: Sequence[ObjView], now: float) -> None:
        self.sts = sts
        self.now = now
        self.plan = StatefulSetPlan()
        self.monotonic = spec(sts).get("podManagementPolicy") != "Parallel"
        self.min_ready = int(spec(sts).get("minReadySeconds") or 0)
        self.update_revision = revision_name(sts)
        current = str((sts.get("status") or {}).get("currentRevision") or "")
        self.current_revision = current or self.update_revision
        start, count = start_ordinal(sts), replicas(sts)
        self.start = start
        # None: a pod that does not exist yet (upstream's not-yet-created pod object).
        self.replicas: list[ObjView | None] = [None] * count
        self.condemned: list[ObjView] = []
        for pod in pods:
            _, ordinal = parent_and_ordinal(name(pod))
            if start <= ordinal < start + count:
                self.replicas[ordinal - start] = pod
            elif ordinal >= 0:
                self.condemned.append(pod)
        self.condemned.sort(key=lambda p: parent_and_ordinal(name(p))[1], reverse=True)
        # Upstream's firstUnhealthyPod: the lowest unhealthy replica (a missing one counts),
        # else the lowest unhealthy condemned pod. Only that one may be deleted while
        # unhealthy in monotonic mode.
        self.first_unhealthy: ObjView | None = None
        for p in [*self.replicas, *reversed(self.condemned)]:
            if p is None or not _healthy(p):
                self.first_unhealthy = p if p is not None else _MISSING
                break
        self.current_replicas_delta = 0

    def act(self, action: Action) -> None:
        self.plan.actions.append(action)

    def process_replica(self, i: int) -> bool:
        """One live replica; True when a monotonic sync must stop here."""
        sts = self.sts
        pod = self.replicas[i]
        ordinal = self.start + i
        if pod is not None and phase(pod) in ("Failed", "Succeeded"):
            failed = phase(pod) == "Failed"
            self.act(
                Event(
                    "Warning" if failed else "Normal",
                    "RecreatingFailedPod" if failed else "RecreatingTerminatedPod",
                    f"StatefulSet {meta(sts).get('namespace')}/{name(sts)} is recreating "
                    f"{'failed' if failed else 'terminated'} Pod {name(pod)}",
                )
            )
            self.act(DeletePod(name(pod), uid(pod)))
            pod = None
        if pod is None:
            self.act(
                CreatePod(
                    new_stateful_pod(sts, ordinal, self.update_revision),
                    tuple(claims_for(sts, ordinal)),
                )
            )
            return self.monotonic
        if is_terminating(pod) and self.monotonic:
            return True
        if not _running_and_ready(pod) and self.monotonic:
            return True
        if not _running_and_available(pod, self.min_ready, self.now) and self.monotonic:
            return True
        want = identity_labels(sts, ordinal)
        if any(labels(pod).get(k) != v for k, v in want.items()):
            self.act(LabelPod(name(pod), want))
        return False

    def process_condemned(self, pod: ObjView) -> bool:
        if is_terminating(pod):
            return self.monotonic
        if (
            self.monotonic
            and pod is not self.first_unhealthy
            and (
                not _running_and_ready(pod)
                or not _running_and_available(pod, self.min_ready, self.now)
            )
        ):
            return True
        self.act(DeletePod(name(pod), uid(pod)))
        return self.monotonic

    def run(self) -> None:
        if is_terminating(self.sts):
            return
        for i in range(len(self.replicas)):
            if self.process_replica(i):
                return
        for pod in self.condemned:
            if self.process_condemned(pod):
                return
        strategy = spec(self.sts).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "OnDelete":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for target in range(len(self.replicas) - 1, partition - 1, -1):
            replica = self.replicas[target]
            if replica is None:
                return  # created this sync (Parallel): wait for it
            pod = replica
            if _revision(pod) != self.update_revision and not is_terminating(pod):
                self.act(DeletePod(name(pod), uid(pod)))
                self.current_replicas_delta = -1
                return
            if not _healthy(pod):
                return

    def compute_status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "observedGeneration": int(meta(self.sts).get("generation") or 0),
            "replicas": 0,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "currentReplicas": 0,
            "updatedReplicas": 0,
            "currentRevision": self.current_revision,
            "updateRevision": self.update_revision,
            "collisionCount": int((self.sts.get("status") or {}).get("collisionCount") or 0),
        }
        waits: list[float] = []
        for pod in [*self.replicas, *self.condemned]:
            if pod is None:
                continue
            st["replicas"] += 1
            if _running_and_ready(pod):
                st["readyReplicas"] += 1
                if _running_and_available(pod, self.min_ready, self.now):
                    st["availableReplicas"] += 1
                elif (w := available_in(pod, self.min_ready, self.now)) is not None:
                    waits.append(w)
            if not is_terminating(pod):
                if _revision(pod) == self.current_revision:
                    st["currentReplicas"] += 1
                if _revision(pod) == self.update_revision:
                    st["updatedReplicas"] += 1
        st["currentReplicas"] = max(0, st["currentReplicas"] + self.current_replicas_delta)
        strategy = spec(self.sts).get("updateStrategy") or {}
        # completeRollingUpdate: once every pod is updated and ready, the update revision
        # becomes the current one.
        if (
            strategy.get("type", "RollingUpdate") == "RollingUpdate"
            and st["updatedReplicas"] == st["replicas"]
            and st["readyReplicas"] == st["replicas"]
        ):
            st["currentReplicas"] = st["updatedReplicas"]
            st["currentRevision"] = self.update_revision
        if waits:
            self.plan.requeue_after = min(waits) + 0.05
        return st


def plan_stateful_set(sts: ObjView, pods: Sequence[ObjView], now: float) -> StatefulSetPlan:
    """One sync of ``sts``; ``pods`` are the pods it controls (claimed, members by name)."""
    s = _Sync(sts, [p for p in pods if is_member_of(sts, p)], now)
    s.run()
    s.plan.status = s.compute_status()
    # Keep the conditions others may have set; the counts are ours.
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        s.plan.status["conditions"] = conditions
    return s.plan


def status_changed(sts: ObjView, new: dict[str, Any]) -> bool:
    old = sts.get("status") or {}
    return any(old.get(k, 0 if isinstance(v, int) else None) != v for k, v in new.items())
