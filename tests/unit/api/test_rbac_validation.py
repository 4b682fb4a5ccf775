"""rbac.authorization.k8s.io/v1 validation: upstream's messages, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.validation import rbac

GROUP = "rbac.authorization.k8s.io"


def msgs(errors: list[Any]) -> list[str]:
    return [str(e) for e in errors]


@pytest.mark.parametrize(
    ("rule", "namespaced", "expected"),
    [
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, True, []),
        ({"apiGroups": [""], "resources": ["pods"]}, True,
         ["rules[0].verbs: Required value: verbs must contain at least one value"]),
        ({"verbs": ["get"], "resources": ["pods"]}, True,
         ["rules[0].apiGroups: Required value: resource rules must supply at least one api group"]),
        ({"verbs": ["get"], "apiGroups": [""]}, True,
         ["rules[0].resources: Required value: resource rules must supply at least one resource"]),
        ({"verbs": ["get"], "nonResourceURLs": ["/x"]}, True,
         ['rules[0].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply'
          " to non-resource URLs"]),
        ({"verbs": ["get"], "nonResourceURLs": ["/x"]}, False, []),
        ({"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}, False,
         ['rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both'
          " regular resources and non-resource URLs"]),
    ],
)  # fmt: skip
def test_rules(rule: dict[str, Any], namespaced: bool, expected: list[str]) -> None:
    validate = rbac.validate_role if namespaced else rbac.validate_cluster_role
    assert msgs(validate({"rules": [rule]})) == expected


def rb(ref: dict[str, Any], *subjects: dict[str, Any]) -> dict[str, Any]:
    return {"roleRef": ref, "subjects": list(subjects)}


REF = {"apiGroup": GROUP, "kind": "Role", "name": "r"}


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        (rb(REF, {"kind": "User", "apiGroup": GROUP, "name": "u"}), []),
        (rb({**REF, "kind": "Pod"}),
         ['roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"']),
        (rb({**REF, "name": ""}), ["roleRef.name: Required value"]),
        (rb(REF, {"kind": "Robot", "name": "r2"}),
         ['subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount",'
          ' "User", "Group"']),
        (rb(REF, {"kind": "ServiceAccount", "name": "a", "apiGroup": GROUP}),
         [f'subjects[0].apiGroup: Unsupported value: "{GROUP}": supported values: ""']),
    ],
)  # fmt: skip
def test_role_binding(binding: dict[str, Any], expected: list[str]) -> None:
    assert msgs(rbac.validate_role_binding(binding)) == expected


def test_cluster_role_binding_needs_service_account_namespace() -> None:
    b = rb({**REF, "kind": "ClusterRole"}, {"kind": "ServiceAccount", "name": "a"})
    assert msgs(rbac.validate_cluster_role_binding(b)) == ["subjects[0].namespace: Required value"]


def test_role_ref_is_immutable() -> None:
    old = rb(REF)
    new = rb({**REF, "name": "other"})
    assert msgs(rbac.validate_role_binding_update(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role",'
        ' Name:"other"}: cannot change roleRef'
    ]
