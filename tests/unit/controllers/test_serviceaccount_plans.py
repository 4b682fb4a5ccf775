"""The pure halves of the ServiceAccount controller and the root CA publisher: which
ServiceAccounts a namespace lacks, and what its ``kube-root-ca.crt`` needs."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.controllers.rootcacert.plan import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    Action,
    plan_root_ca,
)
from svcnet.controllers.serviceaccount.plan import missing_service_accounts

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def ns(phase: str = "Active", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "team"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("namespace", "existing", "created"),
    [
        (ns(), set(), ["default"]),
        (ns(), {"default"}, []),
        (ns(), {"builder"}, ["default"]),
        (ns("Terminating"), set(), []),
        (ns(deleting=True), set(), []),
        (None, set(), []),
        ({"metadata": {"name": "team"}}, set(), ["default"]),  # no status yet: Active
    ],
)
def test_missing_service_accounts(
    namespace: dict[str, Any] | None, existing: set[str], created: list[str]
) -> None:
    plan = missing_service_accounts(namespace, existing)
    assert [sa["metadata"]["name"] for sa in plan] == created
    for sa in plan:
        assert sa == {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": "team"},
        }


def cm(data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "kube-root-ca.crt", "namespace": "team", "uid": "u1"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


GOOD = cm({"ca.crt": CA}, {DESCRIPTION_ANNOTATION: DESCRIPTION})


@pytest.mark.parametrize(
    ("namespace", "current", "action"),
    [
        (ns(), None, Action.CREATE),
        (ns(), GOOD, Action.NONE),
        (ns(), cm({"ca.crt": "forged"}, {DESCRIPTION_ANNOTATION: DESCRIPTION}), Action.UPDATE),
        (
            ns(),
            cm({"ca.crt": CA, "extra": "x"}, {DESCRIPTION_ANNOTATION: DESCRIPTION}),
            Action.UPDATE,
        ),
        (ns(), cm({"ca.crt": CA}), Action.UPDATE),  # the description went missing
        (ns(), cm({"ca.crt": CA}, {DESCRIPTION_ANNOTATION: "mine"}), Action.NONE),
        (ns("Terminating"), None, Action.NONE),
        (None, None, Action.NONE),
    ],
)
def test_plan_root_ca(
    namespace: dict[str, Any] | None, current: dict[str, Any] | None, action: Action
) -> None:
    plan = plan_root_ca(namespace, current, CA)
    assert plan.action is action
    if action is not Action.NONE:
        assert plan.configmap is not None
        assert plan.configmap["data"] == {"ca.crt": CA}
        assert plan.configmap["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION


def test_update_keeps_the_configmaps_other_metadata() -> None:
    current = cm({"ca.crt": "old"}, {"team.example/owner": "me"})
    plan = plan_root_ca(ns(), current, CA)
    assert plan.configmap is not None
    assert plan.configmap["metadata"] == {
        "name": "kube-root-ca.crt",
        "namespace": "team",
        "uid": "u1",
        "annotations": {"team.example/owner": "me", DESCRIPTION_ANNOTATION: DESCRIPTION},
    }
    assert current["data"] == {"ca.crt": "old"}  # the cache's copy is not touched
