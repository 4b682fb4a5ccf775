"""The registry a server holds: built-in rows plus the rows of the CRDs it serves."""

from __future__ import annotations

from svcnet.api.registry import REGISTRY, CustomVersion, ResourceType

CUSTOM = CustomVersion(crd="widgets.example.com", schema={}, published={}, storage_version="v1")
WIDGETS = ResourceType("example.com", "v1", "Widget", "widgets", True, ("wd",), custom=CUSTOM)
SHADOW = ResourceType("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, custom=CUSTOM)


def test_custom_rows_are_served_beside_the_built_in_ones() -> None:
    registry = REGISTRY.copy()
    registry.set_custom([WIDGETS])
    assert registry.by_plural("example.com", "v1", "widgets") is WIDGETS
    assert registry.by_name("wd") is WIDGETS
    assert registry.by_kind("example.com/v1", "Widget") is WIDGETS
    assert ("example.com", "v1") in registry.group_versions()
    assert registry.custom == (WIDGETS,)


def test_set_custom_replaces_the_custom_rows_and_bumps_the_generation() -> None:
    registry = REGISTRY.copy()
    registry.set_custom([WIDGETS])
    generation = registry.generation
    registry.set_custom([])
    assert registry.generation == generation + 1
    assert registry.by_plural("example.com", "v1", "widgets") is None
    assert registry.resources == REGISTRY.resources


def test_a_custom_row_never_shadows_a_built_in_one() -> None:
    registry = REGISTRY.copy()
    registry.set_custom([SHADOW])
    served = registry.by_plural("gateway.networking.k8s.io", "v1", "gateways")
    assert served is not None and served.custom is None
    assert registry.custom == ()


def test_the_module_registry_never_changes() -> None:
    before = REGISTRY.resources
    REGISTRY.copy().set_custom([WIDGETS])
    assert REGISTRY.resources == before
    assert REGISTRY.by_plural("example.com", "v1", "widgets") is None
