"""A StatefulSet's volumeClaimTemplates: one claim per template and ordinal, named
``<template>-<set>-<ordinal>``, created with the pod that mounts it."""

from __future__ import annotations

from typing import Any

from svcnet.controllers.statefulset.plan import (
    CreatePod,
    claim_name,
    claims_for,
    new_stateful_pod,
    plan_stateful_set,
)

STS: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "default", "uid": "s1"},
    "spec": {
        "replicas": 2,
        "podManagementPolicy": "Parallel",
        "serviceName": "nginx",
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [
                    {"name": "nginx", "volumeMounts": [{"name": "www", "mountPath": "/data"}]}
                ],
                "volumes": [{"name": "www", "emptyDir": {}}],
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "www", "labels": {"tier": "data"}},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    },
}


def test_claim_name_is_template_set_ordinal() -> None:
    assert claim_name("www", "web", 3) == "www-web-3"


def test_claims_carry_the_template_and_the_sets_match_labels_without_owner() -> None:
    (pvc,) = claims_for(STS, 1)
    assert pvc["metadata"]["name"] == "www-web-1"
    assert pvc["metadata"]["labels"] == {"tier": "data", "app": "nginx"}
    assert "ownerReferences" not in pvc["metadata"]  # Retain/Retain: the claim outlives the set
    assert pvc["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


def test_pod_volume_refers_to_its_ordinals_claim_replacing_a_template_volume() -> None:
    pod = new_stateful_pod(STS, 0, "web-abc")
    assert pod["spec"]["volumes"] == [
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}
    ]


def test_each_pod_create_brings_its_claims() -> None:
    plan = plan_stateful_set(STS, [], 0.0)
    creates = [a for a in plan.actions if isinstance(a, CreatePod)]
    assert [(a.pod["metadata"]["name"], [c["metadata"]["name"] for c in a.claims])
            for a in creates] == [("web-0", ["www-web-0"]), ("web-1", ["www-web-1"])]  # fmt: skip
