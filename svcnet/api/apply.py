"""Server-side apply and managed fields, after structured-merge-diff (SMD) v4.

Objects carry ``metadata.managedFields``: one entry per (manager, operation, subresource) with
the set of fields it owns in upstream's ``FieldsV1`` encoding — a trie whose keys are
``f:<field>``, ``k:<json of the list-map key fields>``, ``v:<json value>`` (set items) and
``.`` (the node itself is owned, next to owned children)::

    {"f:spec": {"f:ports": {"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:port": {}}}}}

* :func:`server_side_apply` (``PATCH`` with ``application/apply-patch+yaml``): merges the applied
  configuration into the live object — list-maps by their keys (a missing ``protocol`` key
  defaults to TCP, as the OpenAPI default does upstream), sets as unions, atomic lists and maps
  replaced — then removes what the manager applied last time but no longer applies, unless
  another manager owns it. Another manager owning a field whose value would change is a
  conflict: 409 with upstream's message and ``FieldManagerConflict`` causes, unless ``force``,
  in which case the field changes hands.
* :func:`track_update` (create, update, non-apply patch): the writer owns what it set or
  changed; other managers lose the fields whose values changed and every manager loses the
  fields that disappeared.

Like upstream's ``stripMetaManager``, ``apiVersion``, ``kind`` and the server-owned metadata
(name, namespace, uid, resourceVersion, generation, creationTimestamp, managedFields, …) are never
owned; writes to the main resource do not own ``status``, writes to ``/status`` do not own
``spec`` (the strategies' reset fields). An object that exists but has no managed fields is
treated as owned entirely by ``before-first-apply``, so the first apply onto an object created
without tracking conflicts only where values differ.

For manager ``kubectl`` (``kubectl apply --server-side``) two upstream wrappers apply: conflicts
on fields whose live value still equals the ``last-applied-configuration`` annotation are
forced (``lastAppliedManager``: the migration from client-side apply), and an existing
annotation is rewritten to the new applied configuration (``lastAppliedUpdater``). kubectl then
moves the client-side managers' ownership itself with a JSON patch of ``managedFields``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import schema as sch
from svcnet.api.errors import BadRequest, Conflict
from svcnet.api.fieldvalidation import find_unknown_fields
from svcnet.api.wellknown import LAST_APPLIED_ANNOTATION

APPLY, UPDATE = "Apply", "Update"
# Upstream's lastAppliedManager/lastAppliedUpdater act for this manager only: kubectl's
# default --field-manager for server-side apply.
KUBECTL_APPLY_MANAGER = "kubectl"
BEFORE_FIRST_APPLY = "before-first-apply"

Path = tuple[str, ...]  # FieldsV1 keys, e.g. ("f:spec", "f:ports", 'k:{"port":80,...}', "f:name")
FieldSet = frozenset[Path]

_STRIPPED: frozenset[Path] = frozenset(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", "f:" + n)
        for n in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    ]
)
_STRIPPED_META = frozenset(p[1][2:] for p in _STRIPPED if len(p) == 2 and p[0] == "f:metadata")
# The OpenAPI defaults of list-map key fields upstream's SMD fills in when the applied
# configuration omits them (ServicePort, ContainerPort, EndpointPort: protocol TCP).
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
_MISSING = object()


# --- the typed walk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """How SMD sees one schema node, computed once per node.

    ``shape`` is ``atomic`` (scalars, atomic lists and maps), ``struct`` (objects and granular
    maps), ``map`` (an associative list with ``keys``) or ``set``.
    """

    shape: str
    keys: tuple[str, ...] = ()
    props: Mapping[str, Any] | None = None
    extra: sch.Node | None = None
    item: sch.Node | None = None
    # The plans of the declared properties (a finite set), of map values and of list items,
    # filled on first use: the create fast path walks plans without resolving the schema.
    kids: dict[str, _Plan] = field(default_factory=dict, compare=False, repr=False)
    more: list[_Plan] = field(default_factory=list, compare=False, repr=False)
    # "f:<name>" of the declared properties met so far (a finite set), and the "k:{...}" texts
    # of the list-map keys met so far (bounded): the create fast path builds no string twice.
    names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    key_texts: dict[tuple[Any, ...], str] = field(default_factory=dict, compare=False, repr=False)

    def child(self, name: str) -> sch.Node | None:
        if self.props is not None and name in self.props:
            node: sch.Node = self.props[name]
            return node
        return self.extra

    def kid(self, name: str) -> _Plan:
        plan = self.kids.get(name)
        if plan is not None:
            return plan
        if self.props is not None and name in self.props:
            plan = self.kids[name] = _plan(self.props[name])
            return plan
        if not self.more:
            self.more.extend((_plan(self.extra), _plan(self.item)))
        return self.more[0]

    def item_plan(self) -> _Plan:
        if not self.more:
            self.more.extend((_plan(self.extra), _plan(self.item)))
        return self.more[1]


_PLANS: dict[int, _Plan] = {}
_ATOMIC = _Plan("atomic")


def _plan(prop: sch.Node | None) -> _Plan:
    # Schema nodes live as long as the process (they are the loaded definitions), so their
    # identity is a safe cache key.
    if prop is None:
        return _ATOMIC
    plan = _PLANS.get(id(prop))
    if plan is None:
        plan = _PLANS[id(prop)] = _make_plan(prop)
    return plan


def _make_plan(prop: sch.Node) -> _Plan:
    node = sch.resolve(prop)
    typ = node.get("type")
    if typ == "array" or "items" in node:
        info = sch.list_info(prop)
        item = node.get("items")
        if info.list_type == "map" and info.map_keys:
            return _Plan("map", info.map_keys, item=item)
        if info.list_type == "set":
            return _Plan("set", item=item)
        return _ATOMIC
    if node.get("x-kubernetes-map-type") == "atomic":
        return _ATOMIC
    extra = node.get("additionalProperties")
    if "properties" in node or isinstance(extra, Mapping):
        return _Plan(
            "struct",
            props=node.get("properties"),
            extra=extra if isinstance(extra, Mapping) else None,
        )
    if node.get("x-kubernetes-preserve-unknown-fields") or (
        typ in (None, "object") and not ("format" in node or "oneOf" in node)
    ):
        # Free-form objects: granular, every child unknown (atomic below it).
        return _Plan("struct", props={})
    return _ATOMIC


def _key_of(item: Any, keys: tuple[str, ...], where: Path, index: int) -> str:
    if not isinstance(item, dict):
        raise BadRequest(
            f"{path_string(where)}: element {index}: associative list with keys has "
            "an element that is not a map"
        )
    values: dict[str, Any] = {}
    for k in keys:
        if k in item and item[k] is not None:
            values[k] = item[k]
        elif k in _KEY_DEFAULTS:
            values[k] = _KEY_DEFAULTS[k]
        else:
            raise BadRequest(
                f"{path_string(where)}: element {index}: associative list with keys has an element "
                f'that omits key field "{k}" (and doesn\'t have default value)'
            )
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def _value_key(value: Any) -> str:
    return "v:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _collect(value: Any, prop: sch.Node | None, prefix: Path, out: dict[Path, Any]) -> None:
    """Every owned path of ``value`` with the value to compare (_MISSING for item members)."""
    plan = _plan(prop)
    if plan.shape == "struct" and isinstance(value, dict):
        if not value:
            out[prefix] = {}
            return
        for k, v in value.items():
            _collect(v, plan.child(k), (*prefix, "f:" + k), out)
    elif plan.shape == "map" and isinstance(value, list):
        for i, item in enumerate(value):
            path = (*prefix, _key_of(item, plan.keys, prefix, i))
            out[path] = _MISSING
            _collect(item, plan.item, path, out)
    elif plan.shape == "set" and isinstance(value, list):
        for item in value:
            out[(*prefix, _value_key(item))] = _MISSING
    else:
        out[prefix] = value


def _field_values(
    obj: Mapping[str, Any], root: sch.Node | None, ignored: Iterable[str]
) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    plan = _plan(root)
    for k, v in obj.items():
        if k in ignored or k in ("apiVersion", "kind"):
            continue
        _collect(v, plan.child(k), ("f:" + k,), out)
    for p in _STRIPPED:
        out.pop(p, None)
    return out


def _trie(value: Any, prop: sch.Node | None, where: Path) -> dict[str, Any]:
    """The FieldsV1 trie of everything in ``value`` (what a create owns), children sorted."""
    plan = _plan(prop)
    if plan.shape == "struct" and isinstance(value, dict):
        return {"f:" + k: _trie(value[k], plan.child(k), (*where, "f:" + k)) for k in sorted(value)}
    if plan.shape == "map" and isinstance(value, list):
        items: dict[str, Any] = {}
        for i, item in enumerate(value):
            key = _key_of(item, plan.keys, where, i)
            items[key] = {".": {}, **_trie(item, plan.item, (*where, key))}
        return {k: items[k] for k in sorted(items)}
    if plan.shape == "set" and isinstance(value, list):
        return {k: {} for k in sorted({_value_key(v) for v in value})}
    return {}


class _Untypable(Exception):
    """The fast walk met what only the general walk reports properly (a bad list-map item)."""


def _plain(text: str) -> bool:
    """Whether ``json.dumps`` writes ``text`` as is between quotes."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


_KEY_TEXTS_MAX = 4096


def _fast_key(item: Any, plan: _Plan) -> str:
    """``_key_of`` without the error paths and, for ints and plain strings, without json; the
    text of a key met before (the same port/protocol on many Services) is looked up."""
    if not isinstance(item, dict):
        raise _Untypable
    keys = plan.keys
    # The types are part of the lookup key: True == 1 but they are written differently.
    memo: tuple[Any, ...]
    if len(keys) == 2:  # (port, protocol): every list-map of the core kinds but one
        a, b = item.get(keys[0]), item.get(keys[1])
        memo = (type(a), a, type(b), b)
    else:
        memo = tuple((type(v), v) for v in map(item.get, keys))
    texts = plan.key_texts
    try:
        text = texts.get(memo)
    except TypeError:  # an unhashable key value: no memo (and certainly no fast text)
        return _key_text(item, keys)
    if text is None:
        text = _key_text(item, keys)
        if len(texts) >= _KEY_TEXTS_MAX:
            texts.clear()
        texts[memo] = text
    return text


def _key_text(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    values: dict[str, Any] = {}
    for k in keys:
        v = item.get(k)
        if v is None:
            if k not in _KEY_DEFAULTS:
                raise _Untypable
            v = _KEY_DEFAULTS[k]
        values[k] = v
    parts = []
    for k in sorted(values):
        v = values[k]
        if type(v) is int and _plain(k):
            parts.append(f'"{k}":{v}')
        elif type(v) is str and _plain(k) and _plain(v):
            parts.append(f'"{k}":"{v}"')
        else:
            return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))
    return "k:{" + ",".join(parts) + "}"


def _fast_trie(value: Any, plan: _Plan) -> dict[str, Any]:
    """``_trie`` over precomputed plans, for the create path; raises ``_Untypable``."""
    shape = plan.shape
    if shape == "struct":
        if not isinstance(value, dict):
            return {}
        return _fast_struct(value, plan, {})
    if shape == "map":
        if not isinstance(value, list):
            return {}
        items: dict[str, Any] = {}
        item_plan = plan.item_plan()
        for item in value:
            key = _fast_key(item, plan)
            if item_plan.shape == "struct":
                items[key] = _fast_struct(item, item_plan, {".": {}})
            else:
                items[key] = {".": {}, **_fast_trie(item, item_plan)}
        if len(items) < 2:
            return items
        return {k: items[k] for k in sorted(items)}
    if shape == "set" and isinstance(value, list):
        return {k: {} for k in sorted({_value_key(v) for v in value})}
    return {}


def _fast_struct(value: dict[str, Any], plan: _Plan, out: dict[str, Any]) -> dict[str, Any]:
    """The children of a struct (or granular map) node, in sorted order, added to ``out``."""
    names = plan.names
    props = plan.props
    for k in sorted(value):
        name = names.get(k)
        if name is None:
            name = "f:" + k
            if props is not None and k in props:
                names[k] = name
        v = value[k]
        # A scalar is a leaf whatever its schema says. (A tuple of types, not ``dict | list``,
        # which would build a union object on every call.)
        out[name] = _fast_trie(v, plan.kid(k)) if isinstance(v, (dict, list)) else {}
    return out


def fields_trie(
    obj: Mapping[str, Any], gvk: sch.HasGVK, *, subresource: str = ""
) -> dict[str, Any]:
    """The FieldsV1 of every owned field of ``obj``: what its creator owns."""
    try:
        return _fields_trie(obj, gvk, subresource, fast=True)
    except _Untypable:
        # The general walk raises the BadRequest that names the offending item.
        return _fields_trie(obj, gvk, subresource, fast=False)


def _fields_trie(
    obj: Mapping[str, Any], gvk: sch.HasGVK, subresource: str, *, fast: bool
) -> dict[str, Any]:
    plan = _plan(sch.root_schema(gvk))
    ignored = _ignored_roots(subresource)
    out: dict[str, Any] = {}
    for k in sorted(obj):
        if k in ignored or k in ("apiVersion", "kind"):
            continue
        value = obj[k]
        if k == "metadata" and isinstance(value, dict):
            value = {m: v for m, v in value.items() if m not in _STRIPPED_META}
            if not value:
                continue
        if fast:
            out["f:" + k] = _fast_trie(value, plan.kid(k))
        else:
            out["f:" + k] = _trie(value, plan.child(k), ("f:" + k,))
    return out


def _ignored_roots(subresource: str) -> tuple[str, ...]:
    return ("spec",) if subresource == "status" else ("status",)


# --- FieldsV1 encoding ------------------------------------------------------------------------


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """A set of paths as the FieldsV1 trie, children in sorted order as upstream writes them."""
    members = sorted(paths)
    member_set = set(members)
    root: dict[str, Any] = {}
    for p in members:
        node = root
        last = len(p) - 1
        for i, step in enumerate(p):
            child = node.get(step)
            if child is None:
                child = node[step] = {}
                # "." sorts before every "f:", "k:" and "v:" key, so it goes in first.
                if i < last and p[: i + 1] in member_set:
                    child["."] = {}
            elif i < last and not child and p[: i + 1] in member_set:
                child["."] = {}
            node = child
    return root


def decode_fields(trie: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The set of paths of a FieldsV1 trie."""
    out: set[Path] = set()
    for key, child in trie.items():
        if key == ".":
            continue
        path = (*prefix, key)
        if not child or "." in child:
            out.add(path)
        if child:
            out |= decode_fields(child, path)
    return out


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): ``.spec.ports[port=80,protocol="TCP"].name``."""
    out = []
    for step in path:
        kind, _, rest = step.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            values = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(values[k])}" for k in sorted(values)) + "]")
        elif kind == "v":
            out.append("[=" + rest + "]")
        elif kind == "i":
            out.append("[" + rest + "]")
    return "".join(out)


# --- managed fields entries -------------------------------------------------------------------


@dataclass
class _Manager:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str
    fields: set[Path]

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def printed(self) -> str:
        """printManager: ``"kubectl"`` for appliers, ``"kubectl-create" using v1`` for updaters."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


def _managers(obj: Mapping[str, Any] | None) -> list[_Manager]:
    if obj is None:
        return []
    out = []
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict) or e.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        out.append(
            _Manager(
                str(e.get("manager", "")),
                str(e.get("operation", UPDATE)),
                str(e.get("apiVersion", "")),
                e.get("time"),
                str(e.get("subresource", "")),
                decode_fields(e.get("fieldsV1") or {}),
            )
        )
    return out


def _store(obj: dict[str, Any], managers: list[_Manager]) -> None:
    kept = [m for m in managers if m.fields]

    def order(m: _Manager) -> tuple[str, str, str, str, str]:
        # sortEncodedManagedFields: operation, time, manager, apiVersion, subresource.
        return (m.operation, m.time or "", m.manager, m.api_version, m.subresource)

    kept.sort(key=order)
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = [m.entry() for m in kept]
    else:
        meta.pop("managedFields", None)


# --- comparison and merge ---------------------------------------------------------------------


def _changed(old: Mapping[Path, Any], new: Mapping[Path, Any]) -> tuple[set[Path], set[Path]]:
    """(modified or added, removed) between two flattened objects."""
    changed = {p for p, v in new.items() if p not in old or (v is not _MISSING and old[p] != v)}
    removed = {p for p in old if p not in new}
    return changed, removed


def _merge(live: Any, applied: Any, prop: sch.Node | None) -> Any:
    kind = _plan(prop)
    if applied is None:
        return None
    if kind.shape == "struct" and isinstance(applied, dict) and isinstance(live, dict):
        out = dict(live)
        for k, v in applied.items():
            merged = _merge(live.get(k), v, kind.child(k))
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        return out
    if kind.shape == "map" and isinstance(applied, list) and isinstance(live, list):
        item_node = kind.item
        live_keys = {
            _key_of(item, kind.keys, (), i): item
            for i, item in enumerate(live)
            if isinstance(item, dict)
        }
        applied_items = []
        for i, item in enumerate(applied):
            key = _key_of(item, kind.keys, (), i)
            applied_items.append(
                (
                    key,
                    _merge(live_keys.get(key, {}), item, item_node)
                    if key in live_keys
                    else copy.deepcopy(item),
                )
            )
        return _ordered(live, applied_items, lambda v, i: _key_of(v, kind.keys, (), i))
    if kind.shape == "set" and isinstance(applied, list) and isinstance(live, list):
        items = [(_value_key(v), copy.deepcopy(v)) for v in applied]
        return _ordered(live, items, lambda v, _: _value_key(v))
    return copy.deepcopy(applied)


def _ordered(live: list[Any], applied: list[tuple[str, Any]], key: Any) -> list[Any]:
    """Applied items in applied order, live-only items kept at their old relative positions."""
    live_keys = [key(v, i) for i, v in enumerate(live)]
    applied_keys = {k for k, _ in applied}
    server_only = [(k, v) for k, v in zip(live_keys, live, strict=True) if k not in applied_keys]
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(applied):
        if i >= len(server_only):
            out.append(applied[j][1])
            j += 1
        elif j >= len(applied):
            out.append(server_only[i][1])
            i += 1
        else:
            li = live_keys.index(server_only[i][0])
            rk = applied[j][0]
            ri = live_keys.index(rk) if rk in live_keys else -1
            # SMD's merge takes a live-only item first unless the applied item is a live
            # item that comes earlier.
            if ri < 0 or li < ri:
                out.append(server_only[i][1])
                i += 1
            else:
                out.append(applied[j][1])
                j += 1
    return out


def _remove(obj: Any, path: Path) -> None:
    """Remove the field at ``path`` from ``obj`` (in place); missing paths are ignored."""
    node = obj
    for step in path[:-1]:
        node = _step(node, step)
        if node is None:
            return
    last = path[-1]
    if isinstance(node, dict) and last.startswith("f:"):
        node.pop(last[2:], None)
    elif isinstance(node, list):
        node[:] = [v for i, v in enumerate(node) if not _matches(v, i, last)]


def _step_path(obj: Any, path: Path) -> Any:
    node = obj
    for step in path:
        node = _step(node, step)
        if node is None:
            return None
    return node


def _step(node: Any, step: str) -> Any:
    if isinstance(node, dict) and step.startswith("f:"):
        return node.get(step[2:])
    if isinstance(node, list):
        for i, v in enumerate(node):
            if _matches(v, i, step):
                return v
    return None


def _matches(value: Any, index: int, step: str) -> bool:
    kind, _, rest = step.partition(":")
    if kind == "k" and isinstance(value, dict):
        want = json.loads(rest)
        return all(value.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in want.items())
    if kind == "v":
        return _value_key(value) == step
    if kind == "i":
        return str(index) == rest
    return False


# --- the two operations -----------------------------------------------------------------------


def _conflict_error(conflicts: list[tuple[_Manager, Path]]) -> Conflict:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {m.printed()}",
            "field": path_string(p),
        }
        for m, p in conflicts
    ]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m.printed()}: {path_string(p)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for m, p in conflicts:
            by_manager.setdefault(m.printed(), []).append(path_string(p))
        lines = []
        for printed in sorted(by_manager):
            lines.append(f"conflicts with {printed}:")
            lines.extend(f"- {p}" for p in by_manager[printed])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return Conflict(message, {"causes": causes})


def _object_id(obj: Mapping[str, Any], gvk: sch.HasGVK) -> str:
    meta = obj.get("metadata") or {}
    return (
        f"{meta.get('namespace', '')}/{meta.get('name', '')}; "
        f"{gvk.group}/{gvk.version}, Kind={gvk.kind}"
    )


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    gvk: sch.HasGVK,
    *,
    subresource: str = "",
    now: str,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` onto ``live`` (None: a create).

    Raises :class:`Conflict` (409) listing every conflicting field unless ``force``, and
    BadRequest for fields the kind's schema does not declare or list items without their keys.
    The result carries the updated ``metadata.managedFields``; server-owned metadata of ``live``
    is kept.
    """
    api_version = sch.api_version_of(gvk)
    root = sch.root_schema(gvk)
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    unknown = find_unknown_fields(applied, gvk)
    if unknown:
        raise BadRequest(
            f"failed to create typed patch object ({_object_id(applied, gvk)}): "
            f".{unknown[0]}: field not declared in schema"
        )
    ignored = _ignored_roots(subresource)
    applied_clean = copy.deepcopy(applied)
    for k in ignored:
        applied_clean.pop(k, None)
    applied_fields = _field_values(applied_clean, root, ignored)

    base = copy.deepcopy(live) if live is not None else {}
    managers = _managers(live)
    if live is not None and not managers:
        managers = [
            _Manager(
                BEFORE_FIRST_APPLY,
                UPDATE,
                api_version,
                None,
                "",
                set(_field_values(live, root, ignored)),
            )
        ]
    live_fields = _field_values(base, root, ignored)

    merged = _merge(base, applied_clean, root) if base else copy.deepcopy(applied_clean)
    merged_fields = _field_values(merged, root, ignored)
    changed, _ = _changed(live_fields, merged_fields)

    me = next((m for m in managers if m.ident == (manager, APPLY, subresource)), None)
    conflicts: list[tuple[_Manager, Path]] = []
    for m in managers:
        if m is me:
            continue
        for p in sorted(m.fields & changed):
            conflicts.append((m, p))
    if conflicts and not force and manager == KUBECTL_APPLY_MANAGER:
        # lastAppliedManager: kubectl's first server-side apply over a client-side-applied
        # object may take the fields whose live values are still the last-applied ones.
        allowed = _unchanged_since_last_applied(live, root, ignored)
        if all(p in allowed for _, p in conflicts):
            force = True
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for m, p in conflicts:
        m.fields.discard(p)

    last_applied = set(me.fields) if me is not None else set()
    new_set = set(applied_fields)
    if me is None:
        me = _Manager(manager, APPLY, api_version, now, subresource, new_set)
        managers.append(me)
    else:
        me.fields, me.api_version, me.time = new_set, api_version, now

    # Prune what this manager applied before and no longer applies, unless someone owns it
    # (or owns something below it).
    owned = set().union(*(m.fields for m in managers))
    owned_prefixes = {p[:i] for p in owned for i in range(1, len(p) + 1)}
    doomed = {p for p in last_applied - new_set if p not in owned_prefixes}
    # Remove only the topmost doomed paths: a list item goes with its fields.
    for p in sorted(doomed, key=len, reverse=True):
        if not any(p[:i] in doomed for i in range(1, len(p))):
            _remove(merged, p)
            # A map or struct the removal emptied goes too, unless it is owned itself.
            parent = p[:-1]
            while (
                parent and parent not in owned_prefixes and _step_path(merged, parent) in ({}, [])
            ):
                _remove(merged, parent)
                parent = parent[:-1]

    final_fields = _field_values(merged, root, ignored)
    for m in managers:
        m.fields &= set(final_fields)
    if live is not None:
        merged.setdefault("metadata", {})
        for k, v in (live.get("metadata") or {}).items():
            if ("f:metadata", "f:" + k) in _STRIPPED and k != "managedFields":
                merged["metadata"][k] = copy.deepcopy(v)
        for k in ignored:
            if k in live:
                merged[k] = copy.deepcopy(live[k])
            else:
                merged.pop(k, None)
    merged["apiVersion"], merged["kind"] = api_version, gvk.kind
    _store(merged, [m for m in managers if m.manager != BEFORE_FIRST_APPLY or m.fields])
    annotations = merged["metadata"].get("annotations") or {}
    if manager == KUBECTL_APPLY_MANAGER and LAST_APPLIED_ANNOTATION in annotations:
        # lastAppliedUpdater: keep the client-side annotation in step with what kubectl applies.
        annotations[LAST_APPLIED_ANNOTATION] = _last_applied_of(applied)
    return merged


def _last_applied_of(applied: Mapping[str, Any]) -> str:
    """buildLastApplied: the applied configuration without the annotation, as Go marshals it."""
    config = copy.deepcopy(dict(applied))
    meta = config.get("metadata") or {}
    notes = meta.get("annotations")
    if isinstance(notes, dict):
        notes.pop(LAST_APPLIED_ANNOTATION, None)
        if not notes:
            meta.pop("annotations", None)
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _unchanged_since_last_applied(
    live: Mapping[str, Any] | None, root: sch.Node | None, ignored: Iterable[str]
) -> set[Path]:
    """The fields of the last-applied annotation whose live values are still the same."""
    if live is None:
        return set()
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not text:
        return set()
    try:
        last = json.loads(text)
        last_fields = _field_values(last, root, ignored) if isinstance(last, dict) else {}
    except (ValueError, BadRequest):
        return set()
    live_fields = _field_values(live, root, ignored)
    return {
        p
        for p, v in last_fields.items()
        if p not in live_fields or v is _MISSING or live_fields[p] == v
    }


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    operation: str,
    gvk: sch.HasGVK,
    *,
    subresource: str = "",
    now: str,
) -> None:
    """Record in ``new``'s managedFields that ``manager`` wrote ``new`` over ``old``.

    Call it on the object as it will be stored, after defaulting and before server-side
    allocation (upstream's field manager runs in the handler, before the registry allocates
    ClusterIPs). ``operation`` is ``Update`` for create/update/patch. Never raises: like
    upstream's ``UpdateNoErrors``, an object the field manager cannot type (a list item without
    its key, which validation rejects anyway) gets its managedFields removed instead.
    """
    try:
        _track_update(old, new, manager, operation, gvk, subresource=subresource, now=now)
    except BadRequest:
        (new.get("metadata") or {}).pop("managedFields", None)


def _track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    operation: str,
    gvk: sch.HasGVK,
    *,
    subresource: str = "",
    now: str,
) -> None:
    api_version = sch.api_version_of(gvk)
    old_managed = (old or {}).get("metadata", {}).get("managedFields")
    new_managed = (new.get("metadata") or {}).get("managedFields")
    if old is None and new_managed is None:
        # A create: the writer owns everything; build the trie directly (the hot path of
        # every POST).
        trie = fields_trie(new, gvk, subresource=subresource)
        if trie:
            entry: dict[str, Any] = {
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": trie,
            }
            if subresource:
                entry["subresource"] = subresource
            new.setdefault("metadata", {})["managedFields"] = [entry]
        return
    root = sch.root_schema(gvk)
    ignored = _ignored_roots(subresource)
    # A writer that sends managedFields different from the stored ones sets them (upstream lets
    # users reset them, e.g. to [{}]); otherwise the stored ones carry over.
    source = new if new_managed is not None and new_managed != old_managed else old
    managers = _managers(source)
    if new_managed == [{}]:
        managers = []
    old_fields = _field_values(old, root, ignored) if old is not None else {}
    new_fields = _field_values(new, root, ignored)
    changed, removed = _changed(old_fields, new_fields)
    for m in managers:
        if m.subresource == subresource or not m.subresource:
            m.fields -= changed
        m.fields -= removed
    me = next((m for m in managers if m.ident == (manager, operation, subresource)), None)
    if me is None:
        me = _Manager(manager, operation, api_version, now, subresource, set())
        managers.append(me)
    if changed or me.fields:
        me.fields |= changed
        if changed:
            me.time, me.api_version = now, api_version
    _store(new, managers)
