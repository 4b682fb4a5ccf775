"""The PersistentVolume controller's decisions, pure (upstream
``pkg/controller/volume/persistentvolume/pv_controller.go``, reduced to one node-local
provisioner and no in-tree volume plugins).

A claim (:func:`plan_claim`):

* bound (``spec.volumeName`` set): its status says Bound with the volume's capacity and
  access modes; a volume gone makes it Lost, as upstream;
* unbound: the best matching Available volume (:func:`find_volume`: same class and volume
  mode, the claim's access modes, enough capacity, its selector; the smallest that fits, a
  volume pre-bound to the claim first) is bound — the volume's ``claimRef`` first, then the
  claim, so that a crash in between leaves a volume that only this claim can take;
* none: a class with a provisioner is asked to provision (the ``storage-provisioner``
  annotations), with WaitForFirstConsumer only once the scheduler has picked a node
  (``volume.kubernetes.io/selected-node``); otherwise the claim stays Pending with upstream's
  event.

A volume (:func:`plan_volume`): Available without a claim, Bound with its claim, Released
once the claim it was bound to is gone; then its reclaim policy decides: Retain keeps it
Released, Delete is the provisioner's to carry out (:func:`deletable_by`), and a volume
nobody provisioned cannot be deleted (Failed, upstream's reason and message).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.selectors import label_selector_from_dict
from svcnet.api.validation.quantity import QuantityError, parse_quantity
from svcnet.api.wellknown import (
    BETA_STORAGE_PROVISIONER_ANNOTATION,
    BIND_COMPLETED_ANNOTATION,
    BOUND_BY_CONTROLLER_ANNOTATION,
    PROVISIONED_BY_ANNOTATION,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
)

# Upstream's event texts (pv_controller.go).
WAIT_FOR_CONSUMER = "waiting for first consumer to be created before binding"
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
LOST = "Bound claim has lost its PersistentVolume. Data on it is lost."


def external_provisioning(provisioner: str) -> str:
    return (
        "Waiting for a volume to be created either by the external provisioner "
        f"'{provisioner}' or manually by the system administrator. If volume creation is "
        "delayed, please verify that the provisioner is running and correctly registered."
    )


def claim_key(pvc: ObjView) -> str:
    return f"{objects.namespace(pvc)}/{objects.name(pvc)}"


def claim_class(pvc: ObjView) -> str:
    return str(objects.spec(pvc).get("storageClassName") or "")


def _storage(resources: Mapping[str, Any] | None) -> Fraction:
    try:
        return parse_quantity((resources or {}).get("storage") or 0)
    except QuantityError:
        return Fraction(0)


def requested(pvc: ObjView) -> Fraction:
    return _storage((objects.spec(pvc).get("resources") or {}).get("requests"))


def capacity(pv: ObjView) -> Fraction:
    return _storage(objects.spec(pv).get("capacity"))


def phase(obj: ObjView) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def _claim_ref_matches(ref: Mapping[str, Any], pvc: ObjView) -> bool:
    meta = objects.meta(pvc)
    return (
        ref.get("name") == meta.get("name")
        and ref.get("namespace") == meta.get("namespace")
        and (not ref.get("uid") or ref.get("uid") == meta.get("uid"))
    )


def volume_fits(pv: ObjView, pvc: ObjView) -> bool:
    """Whether ``pv`` can serve ``pvc`` (upstream ``FindMatchingVolume``'s checks)."""
    spec, claim = objects.spec(pv), objects.spec(pvc)
    ref = spec.get("claimRef")
    if ref and not _claim_ref_matches(ref, pvc):
        return False
    if not ref and phase(pv) not in ("", "Pending", "Available"):
        return False
    if objects.meta(pv).get("deletionTimestamp"):
        return False
    if (spec.get("storageClassName") or "") != claim_class(pvc):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (claim.get("volumeMode") or "Filesystem"):
        return False
    if not set(claim.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return False
    if capacity(pv) < requested(pvc):
        return False
    selector = claim.get("selector")
    return selector is None or label_selector_from_dict(selector).matches(
        objects.meta(pv).get("labels") or {}
    )


def find_volume(pvc: ObjView, volumes: Iterable[ObjView]) -> ObjView | None:
    """The volume to bind: one pre-bound to this claim, else the smallest that fits (then by
    name, for a stable choice)."""
    fits = [pv for pv in volumes if volume_fits(pv, pvc)]
    prebound = [pv for pv in fits if objects.spec(pv).get("claimRef")]
    if prebound:
        return prebound[0]
    if not fits:
        return None
    return min(fits, key=lambda pv: (capacity(pv), objects.name(pv)))


# -- claims ---------------------------------------------------------------------------------------
class ClaimStep(Enum):
    IN_SYNC = "in-sync"  # nothing to write
    STATUS = "status"  # the claim's status to write
    BIND = "bind"  # the volume's claimRef, then the claim's volumeName, then its status
    ANNOTATE = "annotate"  # ask the provisioner (annotations on the claim)
    WAIT = "wait"  # Pending, with an event


@dataclass(frozen=True)
class ClaimPlan:
    step: ClaimStep
    volume: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    status: Mapping[str, Any] | None = None
    event: tuple[str, str, str] | None = None  # (type, reason, message)


def bound_status(pv: ObjView) -> dict[str, Any]:
    spec = objects.spec(pv)
    return {
        "phase": "Bound",
        "accessModes": list(spec.get("accessModes") or ()),
        "capacity": dict(spec.get("capacity") or {}),
    }


def _status_plan(pvc: ObjView, status: dict[str, Any], event: Any = None) -> ClaimPlan:
    have = pvc.get("status") or {}
    if all(have.get(k) == v for k, v in status.items()):
        return ClaimPlan(ClaimStep.IN_SYNC, event=event)
    return ClaimPlan(ClaimStep.STATUS, status={**have, **status}, event=event)


def plan_claim(
    pvc: ObjView,
    volumes: Mapping[str, ObjView],
    classes: Mapping[str, ObjView],
) -> ClaimPlan:
    """What the controller does for one claim, given every volume and class by name."""
    if objects.meta(pvc).get("deletionTimestamp"):
        return ClaimPlan(ClaimStep.IN_SYNC)
    volume_name = str(objects.spec(pvc).get("volumeName") or "")
    if volume_name:
        pv = volumes.get(volume_name)
        if pv is None:
            if phase(pvc) == "Lost":
                return ClaimPlan(ClaimStep.IN_SYNC)
            return _status_plan(pvc, {"phase": "Lost"}, ("Warning", "ClaimLost", LOST))
        ref = objects.spec(pv).get("claimRef")
        if ref and _claim_ref_matches(ref, pvc):
            return _status_plan(pvc, bound_status(pv))
        if not ref:
            # Bound by the user to a volume that does not know it yet: finish the binding.
            return ClaimPlan(ClaimStep.BIND, volume=volume_name)
        return _status_plan(pvc, {"phase": "Pending"})  # the volume serves another claim
    pv = find_volume(pvc, volumes.values())
    if pv is not None:
        return ClaimPlan(ClaimStep.BIND, volume=objects.name(pv))
    class_name = claim_class(pvc)
    if not class_name:
        return ClaimPlan(ClaimStep.WAIT, event=("Normal", "FailedBinding", NO_CLASS))
    sc = classes.get(class_name)
    if sc is None:
        message = f'storageclass.storage.k8s.io "{class_name}" not found'
        return ClaimPlan(ClaimStep.WAIT, event=("Warning", "ProvisioningFailed", message))
    annotations = objects.meta(pvc).get("annotations") or {}
    if (
        sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        and SELECTED_NODE_ANNOTATION not in annotations
    ):
        return ClaimPlan(
            ClaimStep.WAIT, event=("Normal", "WaitForFirstConsumer", WAIT_FOR_CONSUMER)
        )
    provisioner = str(sc.get("provisioner") or "")
    event = ("Normal", "ExternalProvisioning", external_provisioning(provisioner))
    if annotations.get(STORAGE_PROVISIONER_ANNOTATION) == provisioner:
        return ClaimPlan(ClaimStep.WAIT, event=event)
    return ClaimPlan(
        ClaimStep.ANNOTATE,
        annotations={
            STORAGE_PROVISIONER_ANNOTATION: provisioner,
            BETA_STORAGE_PROVISIONER_ANNOTATION: provisioner,
        },
        event=event,
    )


def claim_ref(pvc: ObjView) -> dict[str, Any]:
    meta = objects.meta(pvc)
    return {
        "kind": "PersistentVolumeClaim",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion"),
    }


def bound_volume(pv: ObjView, pvc: ObjView) -> dict[str, Any]:
    """``pv`` with its claimRef set to ``pvc`` (``bindVolumeToClaim``)."""
    out = _copy(pv)
    spec = out.setdefault("spec", {})
    if not spec.get("claimRef"):
        out["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
    spec["claimRef"] = claim_ref(pvc)
    return out


def bound_claim(pvc: ObjView, pv: ObjView) -> dict[str, Any]:
    """``pvc`` with its volumeName and the bind annotations (``bindClaimToVolume``)."""
    out = _copy(pvc)
    annotations = out["metadata"].setdefault("annotations", {})
    if not objects.spec(pvc).get("volumeName"):
        annotations[BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
    annotations[BIND_COMPLETED_ANNOTATION] = "yes"
    out.setdefault("spec", {})["volumeName"] = objects.name(pv)
    return out


def _copy(obj: ObjView) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    out.setdefault("metadata", {})
    return out


# -- volumes ---------------------------------------------------------------------------------------
class VolumeStep(Enum):
    IN_SYNC = "in-sync"
    STATUS = "status"
    RECLAIM = "reclaim"  # Released with reclaim Delete: the provisioner deletes it


@dataclass(frozen=True)
class VolumePlan:
    step: VolumeStep
    status: Mapping[str, Any] | None = None
    event: tuple[str, str, str] | None = None


def deletable_by(pv: ObjView) -> str:
    """The provisioner that deletes ``pv`` on reclaim Delete ("" for none)."""
    return str((objects.meta(pv).get("annotations") or {}).get(PROVISIONED_BY_ANNOTATION) or "")


def _volume_status(pv: ObjView, status: dict[str, Any], event: Any = None) -> VolumePlan:
    have = pv.get("status") or {}
    if all(have.get(k) == v for k, v in status.items()) and set(have) <= set(status) | {
        "lastPhaseTransitionTime"
    }:
        return VolumePlan(VolumeStep.IN_SYNC)
    return VolumePlan(VolumeStep.STATUS, status=status, event=event)


def plan_volume(pv: ObjView, claims: Mapping[str, ObjView]) -> VolumePlan:
    """What the controller does for one volume, given every claim by ``namespace/name``."""
    spec = objects.spec(pv)
    ref = spec.get("claimRef")
    if not ref:
        return _volume_status(pv, {"phase": "Available"})
    pvc = claims.get(f"{ref.get('namespace')}/{ref.get('name')}")
    if pvc is not None and _claim_ref_matches(ref, pvc):
        if not ref.get("uid"):
            return VolumePlan(VolumeStep.IN_SYNC)  # pre-bound: the claim's turn binds it
        return _volume_status(pv, {"phase": "Bound"})
    if not ref.get("uid"):
        # Pre-bound to a claim that does not exist yet: it waits for it.
        return _volume_status(pv, {"phase": "Available"})
    policy = spec.get("persistentVolumeReclaimPolicy") or "Retain"
    if phase(pv) != "Released" and phase(pv) != "Failed":
        return _volume_status(pv, {"phase": "Released"})
    if policy == "Retain" or phase(pv) == "Failed":
        return VolumePlan(VolumeStep.IN_SYNC)
    if policy == "Delete" and deletable_by(pv):
        return VolumePlan(VolumeStep.RECLAIM)
    message = (
        f'error getting deleter volume plugin for volume "{objects.name(pv)}": '
        "no deletable volume plugin matched"
    )
    return _volume_status(
        pv,
        {"phase": "Failed", "message": message, "reason": "VolumeFailedDelete"},
        ("Warning", "VolumeFailedDelete", message),
    )
