"""CRDs: defaulting, validation, and the plan of what the API server serves for them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api import customresource as cr

NOW = "2026-01-01T00:00:00Z"


def crd(
    plural: str = "widgets", kind: str = "Widget", group: str = "example.com", **spec: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
            **spec,
        },
    }
    cr.default_crd(out)
    return out


def _never_builtin(group: str, plural: str) -> bool:
    return False


def test_defaults_singular_list_kind_and_conversion() -> None:
    c = crd()
    assert c["spec"]["names"]["singular"] == "widget"
    assert c["spec"]["names"]["listKind"] == "WidgetList"
    assert c["spec"]["conversion"] == {"strategy": "None"}
    assert cr.validate_crd(c) == []


@pytest.mark.parametrize(
    ("mutate", "want"),
    [
        (lambda c: c["metadata"].update(name="x.example.com"),
         'metadata.name: Invalid value: "x.example.com": must be spec.names.plural+"."+spec.group'),
        (lambda c: c["spec"].update(scope="Everywhere"),
         'spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"'),
        (lambda c: c["spec"]["versions"][0].update(storage=False),
         'spec.versions: Invalid value: "[v1]": must have exactly one version marked as storage version'),
        (lambda c: c["spec"]["versions"][0].pop("schema"),
         "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"),
        (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(properties={"spec": {}}),
         "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
         "must not be empty for specified object fields"),
        (lambda c: c["spec"]["versions"][0].update(subresources={"scale": {"specReplicasPath": ".spec.r"}}),
         "spec.versions[0].subresources.scale.statusReplicasPath: Required value"),
        (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(
            properties={"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}),
         "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify "
         "anything other than name and generateName, but metadata is implicitly specified"),
    ],
)  # fmt: skip
def test_validation_errors(mutate: Any, want: str) -> None:
    c = crd()
    mutate(c)
    assert want in [str(e) for e in cr.validate_crd(c)]


def test_int_or_string_and_preserved_fields_need_no_type() -> None:
    c = crd()
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"] = {
        "port": {"x-kubernetes-int-or-string": True},
        "free": {"x-kubernetes-preserve-unknown-fields": True},
    }
    assert cr.validate_crd(c) == []


def test_a_stored_version_cannot_leave_the_spec() -> None:
    old = crd()
    old["status"] = {"storedVersions": ["v1"]}
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["name"] = "v2"
    assert 'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions' in [
        str(e) for e in cr.validate_crd_update(new, old)
    ]


def test_plan_serves_every_served_version_with_conditions() -> None:
    c = crd()
    c["spec"]["versions"].append(
        {
            "name": "v1beta1",
            "served": True,
            "storage": False,
            "schema": {"openAPIV3Schema": {"type": "object"}},
        }
    )
    c["spec"]["versions"].append(
        {
            "name": "v1alpha1",
            "served": False,
            "storage": False,
            "schema": {"openAPIV3Schema": {"type": "object"}},
        }
    )
    plan = cr.plan_custom_resources([c], _never_builtin, NOW)
    assert [(r.group, r.version, r.plural, r.namespaced) for r in plan.rows] == [
        ("example.com", "v1", "widgets", True),
        ("example.com", "v1beta1", "widgets", True),
    ]
    assert all(r.custom is not None and r.custom.storage_version == "v1" for r in plan.rows)
    status = plan.statuses["widgets.example.com"]
    assert [(x["type"], x["status"], x["reason"]) for x in status["conditions"]] == [
        ("NamesAccepted", "True", "NoConflicts"),
        ("Established", "True", "InitialNamesAccepted"),
    ]
    assert status["storedVersions"] == ["v1"]
    assert status["acceptedNames"]["listKind"] == "WidgetList"


def test_a_later_crd_with_a_taken_plural_is_not_accepted() -> None:
    first = crd()
    second = crd(kind="Other")
    second["metadata"]["name"] = "widgets.example.com-2"  # a name clash is the store's business
    second["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    plan = cr.plan_custom_resources([second, first], _never_builtin, NOW)
    assert [r.kind for r in plan.rows] == ["Widget"]
    cond = plan.statuses["widgets.example.com-2"]["conditions"]
    assert (cond[0]["type"], cond[0]["status"], cond[0]["reason"], cond[0]["message"]) == (
        "NamesAccepted", "False", "PluralConflict", '"widgets" is already in use',
    )  # fmt: skip
    assert (cond[1]["type"], cond[1]["status"], cond[1]["reason"]) == (
        "Established",
        "False",
        "NotAccepted",
    )


def test_a_crd_of_a_built_in_resource_is_established_but_not_served() -> None:
    c = crd(plural="gateways", kind="Gateway", group="gateway.networking.k8s.io")
    plan = cr.plan_custom_resources(
        [c], lambda g, p: (g, p) == ("gateway.networking.k8s.io", "gateways"), NOW
    )
    assert plan.rows == ()
    assert plan.statuses["gateways.gateway.networking.k8s.io"]["conditions"][1]["status"] == "True"


def test_a_deleted_crd_is_terminating_and_no_longer_served() -> None:
    c = crd()
    c["metadata"]["deletionTimestamp"] = NOW
    plan = cr.plan_custom_resources([c], _never_builtin, NOW)
    assert plan.rows == ()
    assert plan.terminating == (c,)
    assert plan.statuses["widgets.example.com"]["conditions"][-1]["type"] == "Terminating"


def test_transition_time_is_kept_while_a_condition_holds() -> None:
    c = crd()
    c["status"] = cr.plan_custom_resources([c], _never_builtin, "2025-01-01T00:00:00Z").statuses[
        "widgets.example.com"
    ]
    again = cr.plan_custom_resources([c], _never_builtin, NOW).statuses["widgets.example.com"]
    assert again == c["status"]


@pytest.mark.parametrize(
    ("versions", "want"),
    [
        (["v1", "v2", "v1beta1", "v1alpha1"], ["v2", "v1", "v1beta1", "v1alpha1"]),
        (["v11alpha2", "foo1", "v10", "v12alpha1", "v3beta1", "v10beta3", "v11beta2", "foo10", "v2", "v1"],
         ["v10", "v2", "v1", "v11beta2", "v10beta3", "v3beta1", "v12alpha1", "v11alpha2", "foo1", "foo10"]),
    ],
)  # fmt: skip
def test_version_priority_is_kube_aware(versions: list[str], want: list[str]) -> None:
    assert sorted(versions, key=cr.version_priority) == want
