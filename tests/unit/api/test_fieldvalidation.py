"""Unknown and duplicate fields under fieldValidation Strict / Warn / Ignore."""

from __future__ import annotations

import re
from typing import Any

import pytest

from svcnet.api.errors import BadRequest, Invalid
from svcnet.api.fieldvalidation import (
    check_unknown_fields,
    find_duplicate_fields,
    find_unknown_fields,
    parse_directive,
    prune_unknown,
)
from svcnet.api.schema import GroupVersionKind

SERVICE = GroupVersionKind("", "v1", "Service")
DEPLOYMENT = GroupVersionKind("apps", "v1", "Deployment")
HTTPROUTE = GroupVersionKind("gateway.networking.k8s.io", "v1", "HTTPRoute")


def svc(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"any.key/x": "y"}},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}], **spec},
    }


UNKNOWN_CASES: list[tuple[str, Any, dict[str, Any], list[str]]] = [
    ("clean object", SERVICE, svc(), []),
    ("unknown spec field", SERVICE, svc(foo=1), ["spec.foo"]),
    (
        "unknown field in a list item",
        SERVICE,
        svc(ports=[{"port": 80}, {"port": 81, "bogus": True}]),
        ["spec.ports[1].bogus"],
    ),
    ("unknown top-level field", SERVICE, {**svc(), "extra": {}}, ["extra"]),
    (
        "unknown metadata field",
        SERVICE,
        {**svc(), "metadata": {"name": "a", "nmae": "b"}},
        ["metadata.nmae"],
    ),
    ("label keys are data", SERVICE, {**svc(), "metadata": {"labels": {"whatever": "x"}}}, []),
    ("unknown null field is still unknown", SERVICE, svc(foo=None), ["spec.foo"]),
    (
        "deep in a pod template",
        DEPLOYMENT,
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}},
        ["spec.template.spec.containers[0].imagee"],
    ),
    (
        "resource quantities are a map",
        DEPLOYMENT,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}}}]}
                }
            }
        },
        [],
    ),
    (
        "gateway api kind",
        HTTPROUTE,
        {"spec": {"rules": [{"backendRefs": [{"name": "s", "port": 80, "wieght": 1}]}]}},
        ["spec.rules[0].backendRefs[0].wieght"],
    ),
    (
        "kind without schema is not checked",
        GroupVersionKind("x.io", "v1", "Thing"),
        {"spec": {"a": 1}},
        [],
    ),
]


@pytest.mark.parametrize(
    ("name", "gvk", "obj", "want"), UNKNOWN_CASES, ids=[c[0] for c in UNKNOWN_CASES]
)
def test_find_unknown_fields(name: str, gvk: Any, obj: dict[str, Any], want: list[str]) -> None:
    assert find_unknown_fields(obj, gvk) == want


def test_strict_create_is_bad_request_in_upstream_wording() -> None:
    with pytest.raises(BadRequest) as e:
        check_unknown_fields(svc(foo=1, bar=2), SERVICE, "Strict")
    assert e.value.message == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.foo", unknown field "spec.bar"'
    )


def test_strict_lists_duplicates_after_unknown_fields() -> None:
    with pytest.raises(
        BadRequest, match=re.escape('unknown field "spec.foo", duplicate field "spec.type"')
    ):
        check_unknown_fields(svc(foo=1), SERVICE, "Strict", duplicates=["spec.type"])


def test_strict_patch_is_422_on_the_patch_field() -> None:
    with pytest.raises(Invalid) as e:
        check_unknown_fields(svc(foo=1), SERVICE, "Strict", patch='{"spec":{"foo":1}}')
    assert e.value.message == (
        ' "" is invalid: patch: Invalid value: "{\\"spec\\":{\\"foo\\":1}}": '
        'strict decoding error: unknown field "spec.foo"'
    )
    assert e.value.code == 422


def test_warn_returns_one_warning_per_finding() -> None:
    assert check_unknown_fields(svc(foo=1), SERVICE, "Warn", duplicates=["spec.type"]) == [
        'unknown field "spec.foo"',
        'duplicate field "spec.type"',
    ]


def test_ignore_says_nothing() -> None:
    assert check_unknown_fields(svc(foo=1), SERVICE, "Ignore", duplicates=["a"]) == []


def test_prune_unknown_drops_only_unknown_fields() -> None:
    obj = svc(foo=1, ports=[{"port": 80, "bogus": 1}])
    assert prune_unknown(obj, SERVICE) == svc(ports=[{"port": 80}])
    assert obj["spec"]["foo"] == 1


@pytest.mark.parametrize(
    ("raw", "is_yaml", "want"),
    [
        (b'{"spec": {"type": "A", "type": "B"}}', False, ["spec.type"]),
        (b'{"spec": {"ports": [{"port": 1, "port": 2}]}}', False, ["spec.ports[0].port"]),
        (b'{"a": 1}', False, []),
        (b"spec:\n  type: A\n  type: B\n", True, ["spec.type"]),
        (b"not json", False, []),
    ],
    ids=["json", "json in list", "none", "yaml", "unparseable"],
)
def test_find_duplicate_fields(raw: bytes, is_yaml: bool, want: list[str]) -> None:
    assert find_duplicate_fields(raw, is_yaml=is_yaml) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [(None, "Warn"), ("", "Warn"), ("Strict", "Strict"), ("Ignore", "Ignore"), ("Warn", "Warn")],
)
def test_parse_directive(raw: str | None, want: str) -> None:
    assert parse_directive(raw) == want


def test_parse_directive_rejects_other_values_with_upstream_message() -> None:
    with pytest.raises(Invalid) as e:
        parse_directive("strict", "PatchOptions")
    assert e.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )
