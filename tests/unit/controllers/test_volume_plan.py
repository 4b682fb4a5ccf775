"""The PV controller's pure decisions: which volume a claim binds, what a claim waits for,
and a volume's phase through its claim's life (Available → Bound → Released → reclaim)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.wellknown import (
    BIND_COMPLETED_ANNOTATION,
    PROVISIONED_BY_ANNOTATION,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
)
from svcnet.controllers.volume.plan import (
    LOST,
    NO_CLASS,
    WAIT_FOR_CONSUMER,
    ClaimStep,
    VolumeStep,
    bound_claim,
    bound_volume,
    external_provisioning,
    find_volume,
    plan_claim,
    plan_volume,
)


def pvc(
    name: str = "data",
    size: str = "1Gi",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    sc: str | None = "manual",
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": list(modes),
        "resources": {"requests": {"storage": size}},
    }
    if sc is not None:
        spec["storageClassName"] = sc
    spec.update(extra.pop("spec", {}))
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", **extra},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def pv(
    name: str,
    size: str = "1Gi",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    sc: str = "manual",
    claim: dict[str, Any] | None = None,
    phase: str = "Available",
    policy: str = "Retain",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "storageClassName": sc,
        "persistentVolumeReclaimPolicy": policy,
        "hostPath": {"path": f"/srv/{name}"},
    }
    if claim is not None:
        spec["claimRef"] = claim
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


REF = {"namespace": "default", "name": "data", "uid": "uid-data"}


@pytest.mark.parametrize(
    ("volumes", "claim", "want"),
    [
        ([pv("small", "500Mi"), pv("big", "10Gi"), pv("fit", "2Gi")], pvc(), "fit"),
        ([pv("a", "1Gi", sc="other")], pvc(), None),
        ([pv("a", "1Gi", modes=("ReadOnlyMany",))], pvc(), None),
        ([pv("a", "5Gi", modes=("ReadWriteOnce", "ReadOnlyMany"))], pvc(), "a"),
        ([pv("taken", claim={**REF, "name": "other", "uid": "x"})], pvc(), None),
        ([pv("big", "9Gi"), pv("mine", "9Gi", claim={**REF, "uid": ""})], pvc(), "mine"),
        ([pv("released", phase="Released")], pvc(), None),
        (
            [pv("ssd", labels={"disk": "ssd"}), pv("hdd")],
            pvc(spec={"selector": {"matchLabels": {"disk": "ssd"}}}),
            "ssd",
        ),
    ],
    ids=[
        "smallest-that-fits",
        "class-differs",
        "access-mode-missing",
        "access-modes-superset",
        "bound-to-another-claim",
        "pre-bound-first",
        "released-is-not-reused",
        "selector",
    ],
)
def test_find_volume(
    volumes: list[dict[str, Any]], claim: dict[str, Any], want: str | None
) -> None:
    found = find_volume(claim, volumes)
    assert (found["metadata"]["name"] if found else None) == want


def classes(mode: str = "WaitForFirstConsumer") -> dict[str, Any]:
    return {
        "local": {"metadata": {"name": "local"}, "provisioner": "p.io/x", "volumeBindingMode": mode}
    }


def test_unbound_claim_with_a_fitting_volume_binds_it() -> None:
    plan = plan_claim(pvc(), {"a": pv("a")}, {})
    assert (plan.step, plan.volume) == (ClaimStep.BIND, "a")


def test_claim_without_class_and_volume_waits_with_upstreams_event() -> None:
    plan = plan_claim(pvc(sc=""), {}, {})
    assert plan.step is ClaimStep.WAIT
    assert plan.event == ("Normal", "FailedBinding", NO_CLASS)


def test_wait_for_first_consumer_waits_until_a_node_is_selected() -> None:
    plan = plan_claim(pvc(sc="local"), {}, classes())
    assert plan.event == ("Normal", "WaitForFirstConsumer", WAIT_FOR_CONSUMER)
    selected = pvc(sc="local", annotations={SELECTED_NODE_ANNOTATION: "node-2"})
    plan = plan_claim(selected, {}, classes())
    assert plan.step is ClaimStep.ANNOTATE
    assert plan.annotations[STORAGE_PROVISIONER_ANNOTATION] == "p.io/x"
    assert plan.event == ("Normal", "ExternalProvisioning", external_provisioning("p.io/x"))


def test_immediate_class_is_provisioned_at_once() -> None:
    assert plan_claim(pvc(sc="local"), {}, classes("Immediate")).step is ClaimStep.ANNOTATE


def test_annotated_claim_waits_for_its_provisioner_without_writing() -> None:
    claim = pvc(
        sc="local",
        annotations={SELECTED_NODE_ANNOTATION: "n", STORAGE_PROVISIONER_ANNOTATION: "p.io/x"},
    )
    assert plan_claim(claim, {}, classes()).step is ClaimStep.WAIT


def test_missing_class_is_a_provisioning_failure() -> None:
    plan = plan_claim(pvc(sc="gold"), {}, {})
    assert plan.event == (
        "Warning",
        "ProvisioningFailed",
        'storageclass.storage.k8s.io "gold" not found',
    )


def test_bound_claim_gets_the_volumes_capacity_and_modes() -> None:
    claim = pvc(spec={"volumeName": "a"})
    plan = plan_claim(claim, {"a": pv("a", "5Gi", claim=REF)}, {})
    assert plan.step is ClaimStep.STATUS
    assert plan.status == {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "5Gi"},
    }
    in_sync = {**claim, "status": plan.status}
    assert plan_claim(in_sync, {"a": pv("a", "5Gi", claim=REF)}, {}).step is ClaimStep.IN_SYNC


def test_bound_claim_whose_volume_is_gone_is_lost() -> None:
    plan = plan_claim(pvc(spec={"volumeName": "gone"}), {}, {})
    assert plan.status is not None and plan.status["phase"] == "Lost"
    assert plan.event == ("Warning", "ClaimLost", LOST)


def test_binding_writes_claim_ref_and_annotations() -> None:
    claim = pvc()
    volume = bound_volume(pv("a"), claim)
    assert volume["spec"]["claimRef"]["uid"] == "uid-data"
    bound = bound_claim(claim, volume)
    assert bound["spec"]["volumeName"] == "a"
    assert bound["metadata"]["annotations"][BIND_COMPLETED_ANNOTATION] == "yes"


@pytest.mark.parametrize(
    ("volume", "claims", "step", "phase"),
    [
        (pv("a", phase="Pending"), {}, VolumeStep.STATUS, "Available"),
        (pv("a", claim=REF, phase="Available"), {"default/data": pvc()}, VolumeStep.STATUS, "Bound"),
        (pv("a", claim=REF, phase="Bound"), {"default/data": pvc()}, VolumeStep.IN_SYNC, None),
        (pv("a", claim=REF, phase="Bound"), {}, VolumeStep.STATUS, "Released"),
        (pv("a", claim=REF, phase="Released", policy="Retain"), {}, VolumeStep.IN_SYNC, None),
        (
            pv("a", claim=REF, phase="Released", policy="Delete",
               annotations={PROVISIONED_BY_ANNOTATION: "p.io/x"}),
            {}, VolumeStep.RECLAIM, None,
        ),
        (pv("a", claim=REF, phase="Released", policy="Delete"), {}, VolumeStep.STATUS, "Failed"),
        # A claim of the same name made again is another claim: the volume stays Released.
        (
            pv("a", claim=REF, phase="Bound"),
            {"default/data": {**pvc(), "metadata": {"name": "data", "namespace": "default",
                                                    "uid": "new"}}},
            VolumeStep.STATUS, "Released",
        ),
    ],
    ids=[
        "unclaimed-is-available",
        "claimed-is-bound",
        "bound-in-sync",
        "claim-gone-is-released",
        "retain-stays-released",
        "delete-is-the-provisioners",
        "delete-without-provisioner-fails",
        "claim-recreated-is-another",
    ],
)  # fmt: skip
def test_plan_volume(
    volume: dict[str, Any], claims: dict[str, Any], step: VolumeStep, phase: str | None
) -> None:
    plan = plan_volume(volume, claims)
    assert plan.step is step
    if phase is not None:
        assert plan.status is not None and plan.status["phase"] == phase
