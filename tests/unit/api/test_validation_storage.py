"""PersistentVolumeClaim, PersistentVolume and StorageClass validation (upstream's paths and
messages), the default class choice, and their ``kubectl get`` rows."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.api.storageclass import default_class
from svcnet.api.validation.storage import (
    validate_persistent_volume,
    validate_persistent_volume_claim,
    validate_persistent_volume_claim_update,
    validate_persistent_volume_update,
    validate_storage_class,
    validate_storage_class_update,
)
from svcnet.apiserver.table import row_cells

CLAIM: dict[str, Any] = {
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
}
VOLUME: dict[str, Any] = {
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "1Gi"},
        "hostPath": {"path": "/srv/a"},
    }
}


def with_spec(base: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"spec": {**base["spec"], **spec}}


@pytest.mark.parametrize(
    ("obj", "errors"),
    [
        (CLAIM, []),
        (with_spec(CLAIM, accessModes=[]),
         ["spec.accessModes: Required value: at least 1 access mode is required"]),
        (with_spec(CLAIM, resources={}), ["spec.resources[storage]: Required value"]),
        (with_spec(CLAIM, resources={"requests": {"storage": "0"}}),
         ['spec.resources[storage]: Invalid value: "0": must be greater than zero']),
        (with_spec(CLAIM, accessModes=["ReadWriteOncePod", "ReadWriteOnce"]),
         ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]),
        (with_spec(CLAIM, volumeMode="Raw"),
         ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']),
        (with_spec(CLAIM, storageClassName="Fast_SSD"),
         ['spec.storageClassName: Invalid value: "Fast_SSD": a lowercase RFC 1123 subdomain '
          "must consist of lower case alphanumeric characters, '-' or '.', and must start and "
          "end with an alphanumeric character (e.g. 'example.com', regex used for validation "
          "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ],
    ids=["ok", "no-modes", "no-storage", "zero", "rwop-alone", "volume-mode", "class-name"],
)  # fmt: skip
def test_claim(obj: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_persistent_volume_claim(obj)] == errors


def test_claim_spec_is_immutable_except_volume_name_once_and_bound_requests() -> None:
    immutable = (
        "spec: Forbidden: spec is immutable after creation except resources.requests for "
        "bound claims"
    )
    bound = with_spec(CLAIM, volumeName="pv-1")
    grown = with_spec(bound, resources={"requests": {"storage": "2Gi"}})
    assert validate_persistent_volume_claim_update(bound, CLAIM) == []
    assert validate_persistent_volume_claim_update(grown, bound) == []
    assert [str(e) for e in validate_persistent_volume_claim_update(
        with_spec(CLAIM, resources={"requests": {"storage": "2Gi"}}), CLAIM)] == [immutable]  # fmt: skip
    assert [str(e) for e in validate_persistent_volume_claim_update(
        with_spec(bound, volumeName="pv-2"), bound)] == [immutable]  # fmt: skip


@pytest.mark.parametrize(
    ("obj", "errors"),
    [
        (VOLUME, []),
        ({"spec": {**VOLUME["spec"], "capacity": {}}},
         ["spec.capacity: Required value: must specify a capacity"]),
        ({"spec": {k: v for k, v in VOLUME["spec"].items() if k != "hostPath"}},
         ["spec: Required value: must specify a volume type"]),
        (with_spec(VOLUME, nfs={"server": "a", "path": "/b"}),
         ["spec.nfs: Forbidden: may not specify more than 1 volume type"]),
        (with_spec(VOLUME, hostPath={"path": "/a/../etc"}),
         ["spec.hostPath.path: Invalid value: \"/a/../etc\": must not contain '..'"]),
        ({"spec": {**{k: v for k, v in VOLUME["spec"].items() if k != "hostPath"},
                   "local": {"path": "/mnt/disk"}}},
         ["spec.nodeAffinity: Required value: Local volume requires node affinity"]),
        (with_spec(VOLUME, persistentVolumeReclaimPolicy="Keep"),
         ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
          '"Delete", "Recycle", "Retain"']),
    ],
    ids=["ok", "no-capacity", "no-source", "two-sources", "backsteps", "local-affinity",
         "policy"],
)  # fmt: skip
def test_volume(obj: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_persistent_volume(obj)] == errors


def test_volume_source_is_immutable() -> None:
    moved = with_spec(VOLUME, hostPath={"path": "/srv/b"})
    assert [str(e) for e in validate_persistent_volume_update(moved, VOLUME)] == [
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable "
        "after creation"
    ]


SC: dict[str, Any] = {"provisioner": "svcnet.io/local-path", "volumeBindingMode": "Immediate"}


@pytest.mark.parametrize(
    ("obj", "errors"),
    [
        (SC, []),
        ({**SC, "provisioner": ""}, ["provisioner: Required value"]),
        ({**SC, "reclaimPolicy": "Recycle"},
         ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']),
    ],
    ids=["ok", "no-provisioner", "recycle"],
)  # fmt: skip
def test_storage_class(obj: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_storage_class(obj)] == errors


def test_storage_class_update_forbids_provisioner_and_mode() -> None:
    new = {**SC, "provisioner": "x.io/y", "volumeBindingMode": "WaitForFirstConsumer"}
    assert [str(e) for e in validate_storage_class_update(new, SC)] == [
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "volumeBindingMode: Forbidden: field is immutable",
    ]


def sc(name: str, created: str, default: bool = True) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}


@pytest.mark.parametrize(
    ("classes", "want"),
    [
        ([], None),
        ([sc("a", "2026-01-01T00:00:00Z", default=False)], None),
        ([sc("old", "2026-01-01T00:00:00Z"), sc("new", "2026-02-01T00:00:00Z")], "new"),
        ([sc("b", "2026-01-01T00:00:00Z"), sc("a", "2026-01-01T00:00:00Z")], "a"),
    ],
    ids=["none", "not-default", "newest", "same-time-by-name"],
)
def test_default_class(classes: list[dict[str, Any]], want: str | None) -> None:
    assert default_class(classes) == want


NOW = datetime.datetime(2026, 1, 1, 0, 10, tzinfo=datetime.UTC)
T0 = "2026-01-01T00:00:00Z"


def test_rows() -> None:
    pv = {
        "metadata": {"name": "pv-1", "creationTimestamp": T0},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "standard",
            "claimRef": {"namespace": "default", "name": "data"},
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }
    assert row_cells("", "PersistentVolume", pv, NOW) == [
        "pv-1", "5Gi", "RWO,RWX", "Delete", "Bound", "default/data", "standard", "<unset>", "",
        "10m", "Filesystem",
    ]  # fmt: skip
    pending = {
        "metadata": {"name": "data", "creationTimestamp": T0, "deletionTimestamp": T0},
        "spec": {"storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {"phase": "Pending", "capacity": {"storage": "1Gi"}},
    }
    assert row_cells("", "PersistentVolumeClaim", pending, NOW) == [
        "data", "Terminating", "", "", "", "standard", "<unset>", "10m", "Filesystem",
    ]  # fmt: skip
    assert row_cells("storage.k8s.io", "StorageClass", sc("standard", T0), NOW)[:5] == [
        "standard (default)", "", "Delete", "Immediate", "false",
    ]  # fmt: skip
