"""The local-path provisioner's decisions, pure (k3s's rancher/local-path-provisioner and the
external-provisioner library it runs on, reduced to one node's share of the work).

Each node provisions the claims the scheduler placed on it: a claim whose class is ours, that
the PV controller handed to us (``volume.kubernetes.io/storage-provisioner``) and whose
``volume.kubernetes.io/selected-node`` is this node gets a folder
``<node data dir>/storage/pvc-<uid>_<namespace>_<name>`` (k3s's naming) and a PersistentVolume
``pvc-<uid>``: a ``hostPath`` of that folder with ``nodeAffinity`` to the node, the class's
reclaim policy, and a ``claimRef`` to the claim (pre-bound, as the external provisioner
writes it; the PV controller completes the binding). Reclaim Delete: a Released volume of
ours on this node has its folder removed, then its object deleted.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import (
    HOSTNAME_LABEL,
    LOCAL_PATH_PROVISIONER,
    PROVISIONED_BY_ANNOTATION,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
)
from svcnet.controllers.volume.plan import claim_ref, deletable_by, phase


def volume_name(pvc: ObjView) -> str:
    """The external provisioner's PV name: ``pvc-<claim uid>``."""
    return f"pvc-{objects.meta(pvc).get('uid')}"


def claim_folder(storage_root: str, pvc: ObjView) -> str:
    meta = objects.meta(pvc)
    return posixpath.join(
        storage_root, f"pvc-{meta.get('uid')}_{meta.get('namespace')}_{meta.get('name')}"
    )


def wants_volume(pvc: ObjView, node: str, volumes: Mapping[str, ObjView]) -> bool:
    """Whether this node provisions ``pvc`` now."""
    meta = objects.meta(pvc)
    annotations = meta.get("annotations") or {}
    return (
        annotations.get(STORAGE_PROVISIONER_ANNOTATION) == LOCAL_PATH_PROVISIONER
        and annotations.get(SELECTED_NODE_ANNOTATION) == node
        and not objects.spec(pvc).get("volumeName")
        and not meta.get("deletionTimestamp")
        and volume_name(pvc) not in volumes
    )


def provisioned_volume(
    pvc: ObjView, storage_class: ObjView, node: str, folder: str
) -> dict[str, Any]:
    spec = objects.spec(pvc)
    requests = (spec.get("resources") or {}).get("requests") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(pvc),
            "annotations": {PROVISIONED_BY_ANNOTATION: LOCAL_PATH_PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": requests.get("storage", "0")},
            "accessModes": list(spec.get("accessModes") or ()),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": objects.name(storage_class),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": folder, "type": "DirectoryOrCreate"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            },
            "claimRef": claim_ref(pvc),
        },
    }


def volume_node(pv: ObjView) -> str | None:
    """The node a volume of ours lives on (its nodeAffinity's one hostname)."""
    terms = (
        ((objects.spec(pv).get("nodeAffinity") or {}).get("required") or {}).get(
            "nodeSelectorTerms"
        )
    ) or ()
    for term in terms:
        for expr in term.get("matchExpressions") or ():
            if expr.get("key") == HOSTNAME_LABEL and len(expr.get("values") or ()) == 1:
                return str(expr["values"][0])
    return None


def to_delete(pv: ObjView, node: str) -> str | None:
    """The folder to remove when this node must delete ``pv`` (reclaim Delete, Released),
    else None."""
    spec = objects.spec(pv)
    if (
        deletable_by(pv) != LOCAL_PATH_PROVISIONER
        or phase(pv) != "Released"
        or spec.get("persistentVolumeReclaimPolicy") != "Delete"
        or volume_node(pv) != node
    ):
        return None
    return str((spec.get("hostPath") or {}).get("path") or "") or None
