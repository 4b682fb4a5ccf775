"""Schema lookups used by patch, apply and field validation."""

from __future__ import annotations

import pytest

from svcnet.api import schema
from svcnet.api.registry import REGISTRY


@pytest.mark.parametrize("r", REGISTRY.resources, ids=lambda r: f"{r.group_version}/{r.kind}")
def test_every_registry_kind_and_its_list_has_a_schema(r: schema.HasGVK) -> None:
    gv = schema.api_version_of(r)
    assert schema.schema_for(gv, r.kind) is not None
    assert schema.schema_for(gv, r.kind + "List") is not None


@pytest.mark.parametrize(
    ("gv", "kind", "builtin"),
    [
        ("v1", "Service", True),
        ("apps/v1", "Deployment", True),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", False),
        ("x.io/v1", "Nope", False),
    ],
)
def test_is_builtin(gv: str, kind: str, builtin: bool) -> None:
    assert schema.is_builtin(gv, kind) is builtin


@pytest.mark.parametrize(
    ("gv", "kind", "path", "strategies", "merge_key", "list_type", "keys"),
    [
        ("v1", "Service", ["spec", "ports"], {"merge"}, "port", "map", ("port", "protocol")),
        (
            "apps/v1",
            "Deployment",
            ["spec", "template", "spec", "containers"],
            {"merge"},
            "name",
            "map",
            ("name",),
        ),
        ("v1", "Pod", ["spec", "containers", "[]", "env"], {"merge"}, "name", "map", ("name",)),
        ("v1", "Pod", ["metadata", "finalizers"], {"merge"}, None, "set", ()),
        ("v1", "Pod", ["spec", "volumes"], {"merge", "retainKeys"}, "name", "map", ("name",)),
        ("v1", "Pod", ["spec", "containers", "[]", "args"], set(), None, "atomic", ()),
        (
            "gateway.networking.k8s.io/v1",
            "Gateway",
            ["spec", "listeners"],
            set(),
            None,
            "map",
            ("name",),
        ),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", ["spec", "rules"], set(), None, "atomic", ()),
    ],
)
def test_list_info_at(
    gv: str,
    kind: str,
    path: list[str],
    strategies: set[str],
    merge_key: str | None,
    list_type: str,
    keys: tuple[str, ...],
) -> None:
    info = schema.list_info_at(gv, kind, path)
    assert (set(info.patch_strategies), info.merge_key, info.list_type, info.map_keys) == (
        strategies,
        merge_key,
        list_type,
        keys,
    )


@pytest.mark.parametrize(
    ("path", "exists"),
    [
        (["spec", "ports", "[]", "targetPort"], True),
        (["spec", "foo"], False),
        (["metadata", "labels", "anything"], True),
        (["metadata", "nmae"], False),
    ],
)
def test_field_exists(path: list[str], exists: bool) -> None:
    assert schema.field_exists("v1", "Service", path) is exists


def test_raw_extension_accepts_any_field() -> None:
    node = schema.resolve({"$ref": "#/definitions/io.k8s.apimachinery.pkg.runtime.RawExtension"})
    assert schema.accepts_any(node)


def test_group_version_kind_of_api_version() -> None:
    gvk = schema.GroupVersionKind.of("apps/v1", "Deployment")
    assert gvk == ("apps", "v1", "Deployment") and gvk.api_version == "apps/v1"
    assert schema.GroupVersionKind.of("v1", "Pod").api_version == "v1"
