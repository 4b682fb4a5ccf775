"""Validation of PersistentVolumeClaim and PersistentVolume (``pkg/apis/core/validation``) and
StorageClass (``pkg/apis/storage/validation``), Kubernetes 1.32: upstream's paths and messages
for the fields users write; the volume sources beyond hostPath and local are only counted."""

from __future__ import annotations

from typing import Any

from svcnet.api.errors import FieldError, forbidden, invalid, not_supported, required
from svcnet.api.names import is_qualified_name
from svcnet.api.objects import Obj
from svcnet.api.selectors import validate_label_selector
from svcnet.api.validation.fields import dns_subdomain, each, mapping
from svcnet.api.validation.quantity import QuantityError, parse_quantity

# sets.List order, as upstream prints the supported values.
ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]
PV_RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
CLASS_RECLAIM_POLICIES = ["Delete", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
# PersistentVolumeSource's fields: a PV names exactly one.
PV_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc",
    "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local",
    "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume",
)  # fmt: skip
NOT_POSITIVE = "must be greater than zero"


def _positive_quantity(path: str, value: Any) -> list[FieldError]:
    """``ValidatePositiveQuantityValue``."""
    try:
        amount = parse_quantity(value)
    except QuantityError as e:
        return [invalid(path, str(value), str(e))]
    return [] if amount > 0 else [invalid(path, str(value), NOT_POSITIVE)]


def _access_modes(spec: Obj, path: str, missing: str) -> list[FieldError]:
    modes = spec.get("accessModes") or []
    if not modes:
        return [required(f"{path}.accessModes", missing)]
    errors = [
        not_supported(f"{path}.accessModes", m, ACCESS_MODES)
        for m in modes
        if m not in ACCESS_MODES
    ]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errors.append(
            forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes")
        )
    return errors


def _common(spec: Obj, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.get("storageClassName"):
        errors.extend(dns_subdomain(f"{path}.storageClassName", spec["storageClassName"]))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errors.append(not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    return errors


# -- PersistentVolumeClaim -----------------------------------------------------------------------
def validate_claim_spec(spec: Obj, path: str = "spec") -> list[FieldError]:
    """``ValidatePersistentVolumeClaimSpec`` (also a StatefulSet's claim templates)."""
    errors = _access_modes(spec, path, "at least 1 access mode is required")
    if spec.get("selector") is not None:
        errors.extend(validate_label_selector(mapping(spec["selector"]), f"{path}.selector"))
    requests = mapping(mapping(spec.get("resources")).get("requests"))
    storage_path = f"{path}.resources[storage]"
    if "storage" not in requests:
        errors.append(required(storage_path))
    else:
        errors.extend(_positive_quantity(storage_path, requests["storage"]))
    errors.extend(_common(spec, path))
    return errors


def validate_persistent_volume_claim(pvc: Obj) -> list[FieldError]:
    return validate_claim_spec(mapping(pvc.get("spec")))


def validate_persistent_volume_claim_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_persistent_volume_claim(new)
    new_spec, old_spec = dict(mapping(new.get("spec"))), dict(mapping(old.get("spec")))
    # The PV controller sets volumeName once; a bound claim's requests may change (expansion).
    if old_spec.get("volumeName"):
        for spec in (new_spec, old_spec):
            spec.pop("resources", None)
    else:
        for spec in (new_spec, old_spec):
            spec.pop("volumeName", None)
    if new_spec != old_spec:
        errors.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests for bound claims",
            )
        )
    return errors


# -- PersistentVolume ----------------------------------------------------------------------------
def _no_backsteps(path: str, value: str) -> list[FieldError]:
    """``ValidatePathNoBacksteps``."""
    if ".." in value.split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def validate_persistent_volume(pv: Obj) -> list[FieldError]:
    spec = mapping(pv.get("spec"))
    errors = _access_modes(spec, "spec", "must specify at least 1 access mode")
    capacity = mapping(spec.get("capacity"))
    if not capacity:
        errors.append(required("spec.capacity", "must specify a capacity"))
    elif "storage" not in capacity or len(capacity) > 1:
        errors.append(not_supported("spec.capacity", sorted(capacity), ["storage"]))
    else:
        errors.extend(_positive_quantity("spec.capacity[storage]", capacity["storage"]))
    sources = [s for s in PV_SOURCES if spec.get(s) is not None]
    if not sources:
        errors.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errors.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    if "hostPath" in sources:
        hp = mapping(spec.get("hostPath"))
        if not hp.get("path"):
            errors.append(required("spec.hostPath.path"))
        else:
            errors.extend(_no_backsteps("spec.hostPath.path", str(hp["path"])))
    if "local" in sources:
        local = mapping(spec.get("local"))
        if not local.get("path"):
            errors.append(required("spec.local.path"))
        else:
            errors.extend(_no_backsteps("spec.local.path", str(local["path"])))
        if not mapping(spec.get("nodeAffinity")).get("required"):
            errors.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in PV_RECLAIM_POLICIES:
        errors.append(
            not_supported("spec.persistentVolumeReclaimPolicy", policy, PV_RECLAIM_POLICIES)
        )
    errors.extend(_common(spec, "spec"))
    return errors


def validate_persistent_volume_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_persistent_volume(new)
    new_spec, old_spec = mapping(new.get("spec")), mapping(old.get("spec"))
    if {s: new_spec.get(s) for s in PV_SOURCES} != {s: old_spec.get(s) for s in PV_SOURCES}:
        errors.append(
            forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            )
        )
    if old_spec.get("nodeAffinity") and new_spec.get("nodeAffinity") != old_spec["nodeAffinity"]:
        errors.append(forbidden("spec.nodeAffinity", "field is immutable"))
    return errors


# -- StorageClass --------------------------------------------------------------------------------
def validate_storage_class(sc: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    provisioner = str(sc.get("provisioner") or "")
    if not provisioner:
        errors.append(required("provisioner", provisioner))
    else:
        errors.extend(each("provisioner", provisioner.lower(), is_qualified_name))
    policy = sc.get("reclaimPolicy")
    if policy is not None and policy not in CLASS_RECLAIM_POLICIES:
        errors.append(not_supported("reclaimPolicy", policy, CLASS_RECLAIM_POLICIES))
    mode = sc.get("volumeBindingMode")
    if mode is None:
        errors.append(required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        errors.append(not_supported("volumeBindingMode", mode, BINDING_MODES))
    return errors


def validate_storage_class_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_storage_class(new)
    for field in ("parameters", "provisioner", "reclaimPolicy"):
        if new.get(field) != old.get(field):
            errors.append(forbidden(field, f"updates to {field} are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errors.append(forbidden("volumeBindingMode", "field is immutable"))
    return errors
