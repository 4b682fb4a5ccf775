"""The pure first half of a write: from the request body to an object ready for admission.

Everything here depends only on the request (never on what is stored), so a create's
preparation — decode, fieldValidation, defaulting, validation and managedFields — can run in
another process (:mod:`svcnet.apiserver.preparepool`) while the API server's own process
admits, allocates and stores. Upstream does the same work per request on its own goroutine;
here it is the part that can leave the single-threaded event loop.
"""

from __future__ import annotations

from typing import Any

from svcnet.api import fieldvalidation
from svcnet.api import meta as apimeta
from svcnet.api.apply import track_update
from svcnet.api.errors import BadRequest, Invalid
from svcnet.api.registry import ResourceType
from svcnet.api.strategy import strategy_for
from svcnet.apiserver import request as req
from svcnet.util.clock import now_rfc3339


def prepare_create(
    rt: ResourceType,
    raw: bytes,
    content_type: str,
    opts: req.WriteOptions,
    namespace: str | None,
) -> tuple[list[str], dict[str, Any]]:
    """A POST body as the object to admit and store: (warnings, object)."""
    obj = req.decode_body(raw, content_type)
    check_type_meta(obj, rt)
    warnings, obj = field_check(obj, rt, opts, raw, content_type)
    set_namespace(obj, rt, namespace)
    prepare_new(rt, obj, opts.field_manager, managed=True)
    return warnings, obj


def prepare_new(rt: ResourceType, obj: dict[str, Any], field_manager: str, managed: bool) -> None:
    """Default, name, stamp and validate a new object (raises Invalid), recording its managed
    fields where upstream's create handler does: after defaulting, before mutating admission,
    ``PrepareForCreate`` and allocation. The writer owns the defaults it was given, not what
    the server adds for its own reasons (a Pod's service account, priority and default
    tolerations, a Namespace's finalizer, the ClusterIP)."""
    strategy = strategy_for(rt)
    now = now_rfc3339()
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = apimeta.generate_name(meta["generateName"])
    strategy.default(obj)
    if managed:
        track_update(None, obj, field_manager, "Update", rt, now=now)
    strategy.prepare_for_create(obj)
    meta = obj["metadata"]
    for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(k, None)
    meta["uid"] = apimeta.new_uid()
    meta["creationTimestamp"] = now
    errors = strategy.validate(obj)
    if errors:
        raise Invalid(rt.kind, meta.get("name", ""), errors, rt.group)


def check_type_meta(obj: dict[str, Any], rt: ResourceType) -> None:
    """The body's apiVersion and kind must name this resource (missing ones are filled in)."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind and kind != rt.kind:
        raise BadRequest(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    if api_version and api_version != rt.group_version:
        raise BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.group_version})"
        )
    obj["kind"] = rt.kind
    obj["apiVersion"] = rt.group_version


def set_namespace(obj: dict[str, Any], rt: ResourceType, namespace: str | None) -> None:
    """The namespace of the URL on the object (a different one in the body is a 400)."""
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    if rt.namespaced:
        given = meta.get("namespace")
        if given and namespace and given != namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent "
                "on the request"
            )
        meta["namespace"] = namespace or given
    else:
        meta.pop("namespace", None)


def field_check(
    obj: dict[str, Any],
    rt: ResourceType,
    opts: req.WriteOptions,
    raw: bytes,
    content_type: str,
    patch: str | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Apply ``fieldValidation`` and drop unknown fields: (warnings, object to store).

    The common case — no unknown and no duplicate field — costs one schema walk that
    also counts the keys, not the full checks (this is on the path of every write)."""
    keys = fieldvalidation.known_key_count(obj, rt)
    unknown = keys < 0
    duplicates: list[str] = []
    if (
        opts.field_validation != fieldvalidation.IGNORE
        and raw
        and (unknown or _may_have_duplicates(raw, keys, content_type))
    ):
        is_yaml = "yaml" in req.media_type(content_type)
        duplicates = fieldvalidation.find_duplicate_fields(raw, is_yaml=is_yaml)
    if not unknown and not duplicates:
        return [], obj
    warnings = fieldvalidation.check_unknown_fields(
        obj, rt, opts.field_validation, duplicates=duplicates, patch=patch
    )
    return warnings, fieldvalidation.prune_unknown(obj, rt) if unknown else obj


def _may_have_duplicates(raw: bytes, keys: int, content_type: str) -> bool:
    """False when a compact JSON body with ``keys`` decoded keys certainly repeats no key.

    Every key is written ``"key":``; a duplicate adds such a pair without adding a decoded
    key. A value containing ``":`` or a key written ``"key" :`` only makes the counts differ,
    which sends the body to the full check: never a missed duplicate in practice.
    """
    if "json" not in req.media_type(content_type or "application/json"):
        return True
    return raw.count(b'":') != keys
