"""API objects in their wire form, and the reads of their common fields.

Components hold API objects as the dicts the codec decodes (informer caches, the store, the
client): converting every object into a class would cost a copy per event for fields most
readers never look at. Two names say what a function may do with one:

- :data:`Obj` — ``dict[str, Any]``: the holder owns it and may change it (defaulting, a
  controller building the object it writes, the API server preparing a create);
- :data:`ObjView` — ``Mapping[str, Any]``: read-only, what planners, projections and readers
  of a shared informer cache take (mypy then refuses a write through it).

The accessors return an empty mapping or string where a field is absent or of the wrong type,
so a reader never branches on a malformed object it did not write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
ObjView = Mapping[str, Any]

_EMPTY: Mapping[str, Any] = {}


def _field(obj: ObjView, key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else _EMPTY


def meta(obj: ObjView) -> Mapping[str, Any]:
    """``metadata``."""
    return _field(obj, "metadata")


def spec(obj: ObjView) -> Mapping[str, Any]:
    return _field(obj, "spec")


def status(obj: ObjView) -> Mapping[str, Any]:
    return _field(obj, "status")


def labels(obj: ObjView) -> Mapping[str, str]:
    return meta(obj).get("labels") or _EMPTY


def annotations_of(obj: ObjView) -> Mapping[str, str]:
    # Not ``annotations``: that name is the ``from __future__`` feature in every module here.
    return meta(obj).get("annotations") or _EMPTY


def name(obj: ObjView) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: ObjView) -> str:
    """The namespace; empty for cluster-scoped objects."""
    return str(meta(obj).get("namespace") or "")


def uid(obj: ObjView) -> str:
    return str(meta(obj).get("uid") or "")


def resource_version(obj: ObjView) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def meta_for_write(obj: Obj) -> Obj:
    """``metadata`` of an object being written, created empty when absent."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m
