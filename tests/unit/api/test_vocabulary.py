"""The shared vocabulary: registry rows and lookups, object accessors, default ranges."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from svcnet.api import objects, ranges, registry
from svcnet.api.registry import REGISTRY, NotInRegistry


def test_every_registry_row_has_its_constant_and_every_constant_is_a_row() -> None:
    named = {
        value
        for name, value in vars(registry).items()
        if name.isupper() and isinstance(value, registry.ResourceType)
    }
    assert named == set(registry.RESOURCES)


@pytest.mark.parametrize("rt", registry.RESOURCES, ids=lambda rt: rt.kind)
def test_each_lookup_finds_the_row(rt: registry.ResourceType) -> None:
    assert REGISTRY.by_kind(rt.group_version, rt.kind) is rt
    assert REGISTRY.by_plural(rt.group, rt.version, rt.plural) is rt
    qualified = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    assert REGISTRY.by_name(qualified) is rt


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "Widget"), ("apps/v1", "Service"), ("v2", "Pod"), ("", "Pod")],
)
def test_an_unknown_kind_raises_instead_of_returning_none(api_version: str, kind: str) -> None:
    with pytest.raises(NotInRegistry, match=f'kind "{kind}"'):
        REGISTRY.by_kind(api_version, kind)


@pytest.mark.parametrize("name", ["widgets", "services.apps", ""])
def test_an_unknown_name_raises(name: str) -> None:
    with pytest.raises(NotInRegistry):
        REGISTRY.by_name(name)


def test_a_path_the_server_does_not_serve_is_none() -> None:
    assert REGISTRY.by_plural("apps", "v1", "services") is None


# -- accessors: a malformed object reads as empty, never raises -------------------------------

WELL_FORMED: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "u-1",
        "resourceVersion": "42",
        "labels": {"app": "web"},
        "annotations": {"a": "b"},
    },
    "spec": {"x": 1},
    "status": {"phase": "Running"},
}


def test_accessors_read_a_well_formed_object() -> None:
    o = WELL_FORMED
    assert (objects.name(o), objects.namespace(o), objects.uid(o)) == ("web", "shop", "u-1")
    assert objects.resource_version(o) == "42"
    assert objects.labels(o) == {"app": "web"}
    assert objects.annotations_of(o) == {"a": "b"}
    assert objects.spec(o) == {"x": 1}
    assert objects.status(o) == {"phase": "Running"}


@pytest.mark.parametrize(
    "obj",
    [{}, {"metadata": None, "spec": None}, {"metadata": "x", "spec": [1], "status": 3}],
)
def test_accessors_read_a_malformed_object_as_empty(obj: dict[str, Any]) -> None:
    assert objects.meta(obj) == {}
    assert objects.spec(obj) == {}
    assert objects.status(obj) == {}
    test_null_metadata_fields_read_as_empty(obj)


@pytest.mark.parametrize(
    "obj", [{}, {"metadata": {"name": None, "uid": None, "labels": None, "annotations": None}}]
)
def test_null_metadata_fields_read_as_empty(obj: dict[str, Any]) -> None:
    assert objects.labels(obj) == {}
    assert objects.annotations_of(obj) == {}
    assert (objects.name(obj), objects.namespace(obj), objects.uid(obj)) == ("", "", "")


def test_meta_for_write_creates_metadata_in_place() -> None:
    obj: dict[str, Any] = {"metadata": None}
    objects.meta_for_write(obj)["name"] = "a"
    assert obj == {"metadata": {"name": "a"}}
    assert objects.meta_for_write(obj) is obj["metadata"]


# -- default ranges: DESIGN.md's table ---------------------------------------------------------


def test_default_ranges_are_the_documented_ones() -> None:
    assert ranges.DEFAULT_SERVICE_CIDR == "10.96.0.0/16"
    assert ranges.DEFAULT_CLUSTER_CIDR == "10.244.0.0/16"
    assert ranges.DEFAULT_UNDERLAY_CIDR == "172.18.0.0/16"
    assert ranges.DEFAULT_LB_CIDR == "172.18.255.0/24"
    assert ranges.DEFAULT_NODE_PORT_RANGE == "30000-32767"
    assert ranges.KUBERNETES_SERVICE_IP == "10.96.0.1"
    assert ranges.CLUSTER_DNS_IP == "10.96.0.10"
    assert ranges.UNDERLAY_GATEWAY == "172.18.0.1"


def test_the_lb_pool_sits_inside_the_underlay_and_apart_from_the_cluster_ranges() -> None:
    lb = ipaddress.ip_network(ranges.DEFAULT_LB_CIDR)
    assert lb.subnet_of(ipaddress.ip_network(ranges.DEFAULT_UNDERLAY_CIDR))
    for other in (ranges.DEFAULT_SERVICE_CIDR, ranges.DEFAULT_CLUSTER_CIDR):
        assert not lb.overlaps(ipaddress.ip_network(other))
