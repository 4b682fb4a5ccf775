"""Defaulting of PersistentVolumeClaim, PersistentVolume (core/v1) and StorageClass
(storage.k8s.io/v1), as upstream's ``SetDefaults_*``."""

from __future__ import annotations

from typing import Any

from svcnet.api.objects import Obj


def _obj(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def default_claim_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_PersistentVolumeClaimSpec`` (also for a StatefulSet's templates)."""
    spec.setdefault("volumeMode", "Filesystem")


def default_persistent_volume_claim(pvc: Obj) -> None:
    default_claim_spec(_obj(pvc, "spec"))


def default_persistent_volume(pv: Obj) -> None:
    spec = _obj(pv, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")


def default_storage_class(sc: Obj) -> None:
    sc.setdefault("reclaimPolicy", "Delete")
    sc.setdefault("volumeBindingMode", "Immediate")
