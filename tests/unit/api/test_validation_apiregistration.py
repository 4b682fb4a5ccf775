"""apiregistration.k8s.io/v1 validation: upstream's messages, as tables (the name's
path-segment half is the strategy's, checked in the integration test with kubectl)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.defaults.apiregistration import default_api_service
from svcnet.api.validation import apiregistration

BASE = {"group": "wardle.k8s.io", "version": "v1alpha1", "groupPriorityMinimum": 1000,
        "versionPriority": 15}  # fmt: skip
SERVICE = {"namespace": "w", "name": "api", "port": 443}


def _obj(name: str = "v1alpha1.wardle.k8s.io", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {**BASE, **spec}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_obj(), []),
        (_obj(service=SERVICE, insecureSkipTLSVerify=True), []),
        (_obj(service=SERVICE, caBundle="cGVt"), []),
        (_obj("v1.", group="", version="v1"), []),
        (_obj("x"), ['metadata.name: Invalid value: "x": must be `spec.version+"."+spec.group`: '
                     '"v1alpha1.wardle.k8s.io"']),
        # A name that is no path segment is the strategy's error alone.
        (_obj("a/b"), []),
        (_obj("v1alpha1.", group=""),
         ["spec.group: Required value: only v1 may have an empty group and it better be legacy "
          "kube"]),
        (_obj("v1alpha1.Bad_Group", group="Bad_Group"),
         ['spec.group: Invalid value: "Bad_Group": a lowercase RFC 1123 subdomain must consist of'
          " lower case alphanumeric characters, '-' or '.', and must start and end with an "
          "alphanumeric character (e.g. 'example.com', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
        (_obj(groupPriorityMinimum=20001, versionPriority=0),
         ["spec.groupPriorityMinimum: Invalid value: 20001: must be positive and less than 20000",
          "spec.versionPriority: Invalid value: 0: must be positive and less than 1000"]),
        (_obj(caBundle="cGVt", insecureSkipTLSVerify=True),
         ['spec.caBundle: Invalid value: "3 bytes": local APIServices may not have a caBundle',
          "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have "
          "insecureSkipTLSVerify"]),
        (_obj(service={"port": 0}),
         ["spec.service.namespace: Required value", "spec.service.name: Required value",
          "spec.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, "
          "inclusive"]),
        (_obj(service=SERVICE, caBundle="cGVt", insecureSkipTLSVerify=True),
         ["spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is "
          "present"]),
    ],
    ids=["local", "service-skip-verify", "service-ca", "core", "name", "path-segment",
         "empty-group", "bad-group", "priorities", "local-tls", "service-fields", "ca-and-skip"],
)  # fmt: skip
def test_validate_api_service(obj: dict[str, Any], expected: list[str]) -> None:
    assert [str(e) for e in apiregistration.validate_api_service(obj)] == expected


def test_status_conditions_are_true_false_or_unknown() -> None:
    obj = {"status": {"conditions": [{"type": "Available", "status": "Maybe"}]}}
    assert [str(e) for e in apiregistration.validate_api_service_status(obj)] == [
        'status.conditions[0].status: Unsupported value: "Maybe": supported values: "True", '
        '"False", "Unknown"'
    ]


def test_a_service_reference_defaults_to_port_443() -> None:
    obj = _obj(service={"namespace": "w", "name": "api"})
    default_api_service(obj)
    assert obj["spec"]["service"]["port"] == 443
    local = _obj()
    default_api_service(local)
    assert "service" not in local["spec"]
