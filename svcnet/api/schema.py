"""The OpenAPI schemas of the kinds svcnet serves, and the lookups the API machinery needs.

Three data files under ``schemas/``: ``kubernetes-1.32.json`` (vendored from upstream's published
definitions by ``tools/vendor_schemas.py``), ``apiextensions-v1.json`` (CustomResourceDefinition:
upstream's published apiextensions.k8s.io/v1 definitions, written by hand in v2 form with the long
descriptions left out) and ``gateway-api.json`` (Gateway API kinds, which are CRDs upstream).
All hold ``{"definitions": {NAME: schema}}`` in OpenAPI v2 form with
``$ref: "#/definitions/NAME"``; the OpenAPI endpoints rewrite references for v3.

What reads them: strategic merge patch (patch strategy and merge key of a list), server-side
apply (list type and map keys, atomic maps), field validation (does a field exist, does a
subtree preserve unknown fields) and the OpenAPI documents. They load once, lazily: the API
server pays the ~50 ms parse only when the first request needs a schema.

A *node* is a plain schema dict. Lookups always :func:`resolve` a node first, following
``$ref`` and a single-element ``allOf`` the way kube-openapi writes references with siblings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, NamedTuple, Protocol

Node = Mapping[str, Any]


class HasGVK(Protocol):
    """Anything naming a kind: :class:`GroupVersionKind` or a registry ``ResourceType``."""

    @property
    def group(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def kind(self) -> str: ...


class GroupVersionKind(NamedTuple):
    group: str
    version: str
    kind: str

    @classmethod
    def of(cls, api_version: str, kind: str) -> GroupVersionKind:
        group, _, version = api_version.rpartition("/")
        return cls(group, version, kind)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def api_version_of(gvk: HasGVK) -> str:
    return f"{gvk.group}/{gvk.version}" if gvk.group else gvk.version


def root_schema(gvk: HasGVK) -> Node | None:
    """The root schema of a kind given as a :class:`HasGVK`: a custom resource's registry row
    carries its CRD's schema (with ObjectMeta), any other kind is looked up by name."""
    custom = getattr(gvk, "custom", None)
    if custom is not None:
        published: Node = custom.published
        return published
    return schema_for(api_version_of(gvk), gvk.kind)


SCHEMA_FILES: tuple[str, ...] = (
    "kubernetes-1.32.json",
    "apiextensions-v1.json",
    "gateway-api.json",
)
# Kinds whose schemas come from upstream's Go types: only they accept strategic merge patch,
# as kube-apiserver accepts it only for compiled-in types (never for CRDs).
BUILTIN_FILES = frozenset({"kubernetes-1.32.json", "apiextensions-v1.json"})
REF_PREFIX = "#/definitions/"

_EMPTY: Node = {}


@dataclass(frozen=True)
class ListInfo:
    """How a list field merges: SMP metadata and SSA list type, as the schema declares them.

    ``list_type`` is ``atomic``, ``set`` or ``map`` (``x-kubernetes-list-type``); when the
    schema declares none it is derived from the patch strategy as kube-openapi's schemaconv
    does: merge with a key is a map, merge without a key a set, otherwise atomic.
    """

    patch_strategies: frozenset[str]
    merge_key: str | None
    list_type: str
    map_keys: tuple[str, ...]

    @property
    def merges(self) -> bool:
        return "merge" in self.patch_strategies

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in self.patch_strategies


ATOMIC_LIST = ListInfo(frozenset(), None, "atomic", ())


@dataclass(frozen=True)
class _Loaded:
    definitions: dict[str, dict[str, Any]]
    builtin: frozenset[str]
    by_gvk: dict[tuple[str, str], str]


def _read(name: str) -> dict[str, dict[str, Any]]:
    text = resources.files("svcnet.api").joinpath("schemas", name).read_text()
    data: dict[str, dict[str, Any]] = json.loads(text)["definitions"]
    return data


@cache
def _loaded() -> _Loaded:
    definitions: dict[str, dict[str, Any]] = {}
    builtin: set[str] = set()
    for file_name in SCHEMA_FILES:
        part = _read(file_name)
        definitions.update(part)
        if file_name in BUILTIN_FILES:
            builtin.update(part)
    by_gvk: dict[tuple[str, str], str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            group, version = gvk["group"], gvk["version"]
            api_version = f"{group}/{version}" if group else version
            # Several definitions can claim one GVK (meta/v1 DeleteOptions is listed under
            # every group); the first in sorted order is the canonical one.
            by_gvk.setdefault((api_version, gvk["kind"]), name)
    return _Loaded(definitions, frozenset(builtin), by_gvk)


def definitions() -> Mapping[str, dict[str, Any]]:
    """Every definition, by its OpenAPI name (``io.k8s.api.core.v1.Service``)."""
    return _loaded().definitions


def definition_name(group_version: str, kind: str) -> str | None:
    """The OpenAPI definition name of ``apiVersion``/``kind``, or None when unknown."""
    return _loaded().by_gvk.get((group_version, kind))


def schema_for(group_version: str, kind: str) -> Node | None:
    """The root schema of a kind (``"v1"``, ``"Service"``), or None when svcnet has none."""
    name = definition_name(group_version, kind)
    return None if name is None else _loaded().definitions[name]


def is_builtin(group_version: str, kind: str) -> bool:
    """Whether the kind is one of upstream's compiled-in types (strategic merge patch works)."""
    name = definition_name(group_version, kind)
    return name is not None and name in _loaded().builtin


def resolve(node: Node | None) -> Node:
    """Follow ``$ref`` (and a one-element ``allOf`` wrapper) to the schema that has the type."""
    seen = 0
    while node is not None:
        if "$ref" in node:
            ref: str = node["$ref"]
            node = _loaded().definitions.get(ref.removeprefix(REF_PREFIX), _EMPTY)
        elif "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:
            node = node["allOf"][0]
        else:
            return node
        seen += 1
        if seen > 64:
            break
    return _EMPTY


def field(node: Node | None, name: str) -> Node | None:
    """The schema of field ``name`` of an object node: a property, or the map's value schema.

    None when the object has no such field (an unknown field) — unless the node allows any
    field, in which case an empty schema (anything goes) comes back.
    """
    n = resolve(node)
    props = n.get("properties")
    if props is not None and name in props:
        return resolve(props[name])
    extra = n.get("additionalProperties")
    if isinstance(extra, Mapping):
        return resolve(extra)
    if extra is True or accepts_any(n):
        return _EMPTY
    return None


def items(node: Node | None) -> Node:
    """The schema of a list node's elements (empty when unknown)."""
    n = resolve(node)
    item = n.get("items")
    return resolve(item) if isinstance(item, Mapping) else _EMPTY


def accepts_any(node: Node | None) -> bool:
    """Whether any field may appear under this node (no unknown-field detection inside).

    True for ``x-kubernetes-preserve-unknown-fields``, for free-form objects such as
    ``RawExtension`` (``type: object`` with neither properties nor additionalProperties), and for
    the empty schema (a node svcnet knows nothing about).
    """
    n = resolve(node)
    if n.get("x-kubernetes-preserve-unknown-fields"):
        return True
    if "properties" in n or "additionalProperties" in n or "items" in n:
        return False
    return n.get("type") in (None, "object")


def preserves_unknown_fields(node: Node | None) -> bool:
    return bool(resolve(node).get("x-kubernetes-preserve-unknown-fields"))


def is_map(node: Node | None) -> bool:
    """A ``map[string]T``: keys are data, not field names."""
    n = resolve(node)
    return "additionalProperties" in n and "properties" not in n


def is_atomic_struct(node: Node | None) -> bool:
    """``x-kubernetes-map-type: atomic``: SSA owns the whole object as one value."""
    return resolve(node).get("x-kubernetes-map-type") == "atomic"


def list_info(list_node: Node | None) -> ListInfo:
    """The merge metadata of a list field (the property node, before resolving the items)."""
    if list_node is None:
        return ATOMIC_LIST
    # The x-kubernetes-* extensions sit on the property, next to a possible $ref/allOf.
    node: Node = list_node
    if "x-kubernetes-list-type" not in node and "x-kubernetes-patch-strategy" not in node:
        node = resolve(list_node)
    strategies = frozenset(
        s for s in str(node.get("x-kubernetes-patch-strategy", "")).split(",") if s
    )
    merge_key = node.get("x-kubernetes-patch-merge-key")
    map_keys = tuple(node.get("x-kubernetes-list-map-keys", ()))
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        if "merge" in strategies and merge_key:
            list_type, map_keys = "map", map_keys or (merge_key,)
        elif "merge" in strategies:
            list_type = "set"
        else:
            list_type = "atomic"
    if list_type == "map" and not map_keys and merge_key:
        map_keys = (merge_key,)
    return ListInfo(strategies, merge_key, list_type, map_keys)


def map_info(node: Node | None) -> ListInfo:
    """The ``x-kubernetes-patch-strategy`` of an object field (``retainKeys`` on volumes)."""
    return list_info(node)


def property_node(parent: Node | None, name: str) -> Node | None:
    """The unresolved property node of ``name`` (where the list/patch extensions live)."""
    n = resolve(parent)
    props = n.get("properties")
    if props is not None and name in props:
        prop: Node = props[name]
        return prop
    extra = n.get("additionalProperties")
    if isinstance(extra, Mapping):
        return extra
    return None


def lookup(group_version: str, kind: str, path: list[str]) -> Node | None:
    """The schema at a field path such as ``["spec", "ports", "[]", "port"]`` (``[]`` = items)."""
    node: Node | None = schema_for(group_version, kind)
    for step in path:
        if node is None:
            return None
        node = items(node) if step == "[]" else field(node, step)
    return node if node is None else resolve(node)


def list_info_at(group_version: str, kind: str, path: list[str]) -> ListInfo:
    """The list metadata of the list at ``path`` (its last step names the list field)."""
    if not path:
        return ATOMIC_LIST
    parent = lookup(group_version, kind, path[:-1])
    return list_info(property_node(parent, path[-1]))


def field_exists(group_version: str, kind: str, path: list[str]) -> bool:
    return lookup(group_version, kind, path) is not None
