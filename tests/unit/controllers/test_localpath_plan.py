"""The local-path provisioner's pure decisions: which node provisions a claim, the PV it
writes (folder, node affinity, reclaim policy, pre-bound claimRef), and what it deletes."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.wellknown import (
    LOCAL_PATH_PROVISIONER,
    PROVISIONED_BY_ANNOTATION,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
)
from svcnet.controllers.scheduler.plan import NodeState, pod_claims, schedule
from svcnet.controllers.volume.localpath_plan import (
    claim_folder,
    provisioned_volume,
    to_delete,
    volume_name,
    wants_volume,
)

HANDED = {
    STORAGE_PROVISIONER_ANNOTATION: LOCAL_PATH_PROVISIONER,
    SELECTED_NODE_ANNOTATION: "node-2",
}
SC = {"metadata": {"name": "standard"}, "provisioner": LOCAL_PATH_PROVISIONER,
      "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}  # fmt: skip


def claim(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "www-web-0", "namespace": "default", "uid": "u1",
                     "annotations": annotations},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                 "resources": {"requests": {"storage": "1Gi"}}, **spec},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("annotations", "node", "volumes", "spec", "want"),
    [
        (HANDED, "node-2", {}, {}, True),
        (HANDED, "node-1", {}, {}, False),
        ({SELECTED_NODE_ANNOTATION: "node-2"}, "node-2", {}, {}, False),
        ({**HANDED, STORAGE_PROVISIONER_ANNOTATION: "other.io/x"}, "node-2", {}, {}, False),
        (HANDED, "node-2", {"pvc-u1": {}}, {}, False),
        (HANDED, "node-2", {}, {"volumeName": "pv-x"}, False),
    ],
    ids=["ours", "other-node", "not-handed-yet", "other-provisioner", "already-made", "bound"],
)
def test_wants_volume(
    annotations: dict[str, str],
    node: str,
    volumes: dict[str, Any],
    spec: dict[str, Any],
    want: bool,
) -> None:
    assert wants_volume(claim(annotations, **spec), node, volumes) is want


def test_provisioned_volume_is_a_folder_on_the_node_prebound_to_its_claim() -> None:
    pvc = claim(HANDED)
    folder = claim_folder("/var/lib/svcnet/nodes/node-2/storage", pvc)
    assert folder == "/var/lib/svcnet/nodes/node-2/storage/pvc-u1_default_www-web-0"
    pv = provisioned_volume(pvc, SC, "node-2", folder)
    assert pv["metadata"]["name"] == volume_name(pvc) == "pvc-u1"
    assert pv["metadata"]["annotations"] == {PROVISIONED_BY_ANNOTATION: LOCAL_PATH_PROVISIONER}
    spec = pv["spec"]
    assert spec["hostPath"] == {"path": folder, "type": "DirectoryOrCreate"}
    assert spec["capacity"] == {"storage": "1Gi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["claimRef"]["uid"] == "u1"
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["node-2"]}]}
    ]  # fmt: skip


def released(policy: str, node: str = "node-2", by: str = LOCAL_PATH_PROVISIONER) -> dict[str, Any]:
    pv = provisioned_volume(claim(HANDED), {**SC, "reclaimPolicy": policy}, node, "/s/pvc-u1")
    pv["metadata"]["annotations"][PROVISIONED_BY_ANNOTATION] = by
    return {**pv, "status": {"phase": "Released"}}


@pytest.mark.parametrize(
    ("pv", "node", "want"),
    [
        (released("Delete"), "node-2", "/s/pvc-u1"),
        (released("Delete"), "node-1", None),
        (released("Retain"), "node-2", None),
        (released("Delete", by="other.io/x"), "node-2", None),
        ({**released("Delete"), "status": {"phase": "Bound"}}, "node-2", None),
    ],
    ids=["delete-on-its-node", "other-node", "retain", "not-ours", "still-bound"],
)
def test_to_delete(pv: dict[str, Any], node: str, want: str | None) -> None:
    assert to_delete(pv, node) == want


# -- the scheduler's side: a pod follows its claim's volume --------------------------------
def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


NODES = [NodeState(node("node-1")), NodeState(node("node-2")), NodeState(node("node-3"))]
POD = {
    "metadata": {"name": "web-0", "namespace": "default"},
    "spec": {"volumes": [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}]},
}


def test_pod_of_a_bound_local_claim_goes_to_its_volumes_node_only() -> None:
    pvc = {**claim(HANDED, volumeName="pvc-u1"), "status": {"phase": "Bound"}}
    pv = provisioned_volume(pvc, SC, "node-3", "/s")
    claims = pod_claims(POD, {"www-web-0": pvc}, {"pvc-u1": pv}, {"standard": SC})
    assert claims.ready
    decision = schedule(POD, NODES, claims)
    assert getattr(decision, "node", None) == "node-3"


def test_unbound_wait_for_first_consumer_claim_is_selected_before_the_pod_binds() -> None:
    claims = pod_claims(POD, {"www-web-0": claim({})}, {}, {"standard": SC})
    assert claims.to_select == ("www-web-0",) and not claims.ready
    waiting = pod_claims(
        POD, {"www-web-0": claim({SELECTED_NODE_ANNOTATION: "node-1"})}, {}, {"standard": SC}
    )
    assert waiting.waiting == ("www-web-0",)
    assert getattr(schedule(POD, NODES, waiting), "node", None) == "node-1"


@pytest.mark.parametrize(
    ("claims", "classes", "reason"),
    [
        ({}, {"standard": SC}, 'persistentvolumeclaim "www-web-0" not found'),
        (
            {"www-web-0": claim({})},
            {"standard": {**SC, "volumeBindingMode": "Immediate"}},
            "pod has unbound immediate PersistentVolumeClaims",
        ),
    ],
    ids=["missing", "unbound-immediate"],
)
def test_claims_that_fail_every_node(
    claims: dict[str, Any], classes: dict[str, Any], reason: str
) -> None:
    decision = schedule(POD, NODES, pod_claims(POD, claims, {}, classes))
    assert getattr(decision, "message", "") == (
        f"0/3 nodes are available: {reason}. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )


def test_node_outside_the_volumes_affinity_is_a_conflict() -> None:
    pvc = {**claim(HANDED, volumeName="pvc-u1"), "status": {"phase": "Bound"}}
    pv = provisioned_volume(pvc, SC, "node-9", "/s")
    claims = pod_claims(POD, {"www-web-0": pvc}, {"pvc-u1": pv}, {"standard": SC})
    assert getattr(schedule(POD, NODES, claims), "message", "").startswith(
        "0/3 nodes are available: 3 node(s) had volume node affinity conflict."
    )
