"""Which StorageClass is the default (upstream ``storage/util.GetDefaultClass``): pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from svcnet.api.wellknown import DEFAULT_CLASS_ANNOTATION

BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"


def is_default_class(sc: Mapping[str, Any]) -> bool:
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
        or annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"
    )


def default_class(classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The default class's name; with several, the newest (then the first by name), as
    upstream picks since 1.26 instead of refusing the claim."""
    defaults = [c for c in classes if is_default_class(c)]
    defaults.sort(key=lambda c: _meta(c, "name"))
    defaults.sort(key=lambda c: _meta(c, "creationTimestamp"), reverse=True)  # stable
    return _meta(defaults[0], "name") if defaults else None


def _meta(obj: Mapping[str, Any], field: str) -> str:
    return str((obj.get("metadata") or {}).get(field) or "")
