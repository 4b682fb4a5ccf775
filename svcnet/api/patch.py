"""The three PATCH types kube-apiserver accepts, on plain JSON objects.

* JSON patch (RFC 6902, ``application/json-patch+json``): :func:`apply_json_patch`.
* JSON merge patch (RFC 7386, ``application/merge-patch+json``): :func:`apply_merge_patch`.
* Strategic merge patch (``application/strategic-merge-patch+json``), for compiled-in kinds
  only: :func:`apply_strategic_merge_patch`, a port of the semantics of
  ``k8s.io/apimachinery/pkg/util/strategicpatch`` (``StrategicMergeMapPatch`` with
  ``MergeParallelList`` and ``IgnoreUnmatchedNulls``, as the API server calls it), driven by the
  ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key`` of the vendored schemas.

Errors are upstream's (``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`` and
``mergepatch`` error texts): a malformed patch is 400 BadRequest (upstream answers a list item
without its merge key and an unknown ``$patch`` value with a 500, from an untyped error; svcnet
answers 400 with the same text); a JSON patch that does not apply (a failing ``test``, a missing
path) is a 422 whose message is ``the server rejected our request due to an error in our request``
with the json-patch error as its cause; a strategic merge patch for a kind that is not compiled
in (Gateway API) is 415.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch  # type: ignore[import-untyped]
import jsonpointer  # type: ignore[import-untyped]

from svcnet.api import schema as sch
from svcnet.api.errors import ApiError, BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from svcnet.api.jsonvalue import copy_json

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# patch.go: maxJSONPatchOperations.
MAX_JSON_PATCH_OPERATIONS = 10000

UNSUPPORTED_SMP_MESSAGE = (
    "the body of the request was in an unknown format - accepted media types include: "
    f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}"
)

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"


class PatchRejected(ApiError):
    """A patch that is well formed but does not apply: upstream's generic 422.

    ``NewGenericServerResponse(422, ...)``: reason Invalid, a fixed message, and the real
    error as a cause of type ``UnexpectedServerResponse``.
    """

    code, reason = 422, "Invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "the server rejected our request due to an error in our request",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
        )
        self.detail = detail


# --- JSON patch -----------------------------------------------------------------------------


def apply_json_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 6902 patch (a list of operations) to a copy of ``obj``."""
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(patch) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(patch)}"
        )
    for op in patch:
        kind = op.get("op")
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchRejected(f"Unexpected kind: {kind}")
        if "path" not in op:
            raise PatchRejected(f"{kind} operation missing path")
    doc: Any = copy_json(obj)
    for op in patch:
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except (
            jsonpatch.JsonPatchException,
            jsonpointer.JsonPointerException,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as e:
            raise PatchRejected(_json_patch_error(op)) from e
    if not isinstance(doc, dict):
        raise BadRequest("the patched object is not a JSON object")
    return doc


def _json_patch_error(op: dict[str, Any]) -> str:
    """The error text of evanphx/json-patch (v4, as kube-apiserver uses) for a failed op."""
    kind, path, src = op.get("op"), op.get("path"), op.get("from")
    last = str(path).rsplit("/", 1)[-1]
    return {
        "test": f"testing value {path} failed: test failed",
        "add": f'add operation does not apply: doc is missing path: "{path}": missing value',
        "remove": f"error in remove for path: '{path}': Unable to remove nonexistent key: "
        f"{last}: missing value",
        "replace": f"replace operation does not apply: doc is missing key: {path}: missing value",
        "move": f"move operation does not apply: doc is missing from path: {src}: missing value",
        "copy": f"copy operation does not apply: doc is missing from path: {src}: missing value",
    }.get(str(kind), f"Unexpected kind: {kind}")


# --- JSON merge patch -----------------------------------------------------------------------


def apply_merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch to a copy of ``obj``: objects merge, null deletes."""
    if not isinstance(patch, dict):
        raise BadRequest("Invalid JSON Patch")
    result = _merge_patch(copy_json(obj), patch)
    assert isinstance(result, dict)
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


# --- strategic merge patch ------------------------------------------------------------------


def apply_strategic_merge_patch(obj: dict[str, Any], patch: Any, gvk: sch.HasGVK) -> dict[str, Any]:
    """Apply a strategic merge patch to a copy of ``obj`` of a compiled-in kind."""
    api_version = sch.api_version_of(gvk)
    if not sch.is_builtin(api_version, gvk.kind):
        raise UnsupportedMediaType(UNSUPPORTED_SMP_MESSAGE)
    if not isinstance(patch, dict):
        raise BadRequest("invalid JSON document")
    root = sch.schema_for(api_version, gvk.kind)
    return _merge_map(copy_json(obj), copy_json(patch), root)


def _bad_patch_type(value: Any, patch: Mapping[str, Any]) -> BadRequest:
    return BadRequest(f"unknown patch type: {value} in map: {_go_map(patch)}")


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], node: sch.Node | None
) -> dict[str, Any]:
    """strategicpatch.mergeMap: ``original`` and ``patch`` are owned (mutated) copies."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            _strip_directives(patch)
            return patch
        if directive == "delete":
            return {}
        # handleDirectiveInMergeMap: "merge" is no valid directive for a map.
        raise _bad_patch_type(directive, patch)
    _apply_retain_keys(original, patch)
    _merge_parallel_lists(original, patch, node)

    for key, patch_value in patch.items():
        if key == RETAIN_KEYS or key.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
            continue
        if patch_value is None:
            # IgnoreUnmatchedNulls: a null deletes the key and is never stored.
            original.pop(key, None)
            continue
        prop = sch.property_node(node, key)
        if key not in original:
            original[key] = _fresh_value(patch_value, prop)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(patch_value, dict):
            info = sch.map_info(prop)
            if "replace" in info.patch_strategies:
                _strip_directives(patch_value)
                original[key] = patch_value
            else:
                original[key] = _merge_map(current, patch_value, sch.resolve(prop))
        elif isinstance(current, list) and isinstance(patch_value, list):
            info = sch.list_info(prop)
            if info.merges:
                original[key] = _merge_list(current, patch_value, prop, info.merge_key)
            else:
                original[key] = _strip_directives(patch_value)
        else:
            original[key] = _strip_directives(patch_value)
    return original


def _fresh_value(patch_value: Any, prop: sch.Node | None) -> Any:
    """A patch value for a key the original lacks, with its directives carried out."""
    if isinstance(patch_value, dict):
        return _merge_map({}, patch_value, sch.resolve(prop))
    if isinstance(patch_value, list):
        info = sch.list_info(prop)
        if info.merges:
            return _merge_list([], patch_value, prop, info.merge_key)
        return _strip_directives(patch_value)
    return patch_value


def _strip_directives(value: Any) -> Any:
    """Remove ``$`` directives and nulls from a value that replaces wholesale."""
    if isinstance(value, dict):
        for key in [k for k in value if k.startswith("$") or value[k] is None]:
            del value[key]
        for v in value.values():
            _strip_directives(v)
    elif isinstance(value, list):
        value[:] = [
            _strip_directives(v) for v in value if not (isinstance(v, dict) and DIRECTIVE in v)
        ]
    return value


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise BadRequest("invalid patch format of retainKeys")
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
            continue
        if key not in keep:
            raise BadRequest("invalid patch format of retainKeys")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _merge_parallel_lists(
    original: dict[str, Any], patch: dict[str, Any], node: sch.Node | None
) -> None:
    """``$deleteFromPrimitiveList/<f>`` and ``$setElementOrder/<f>`` (mergePatchIntoOriginal)."""
    for key in [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST)]:
        field_name = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
        to_delete = patch.pop(key)
        if not isinstance(to_delete, list):
            raise BadRequest("invalid patch format of primitive list")
        current = original.get(field_name)
        if isinstance(current, list):
            original[field_name] = [v for v in current if v not in to_delete]

    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        field_name = key[len(SET_ELEMENT_ORDER) :]
        order = patch.pop(key)
        if not isinstance(order, list):
            raise BadRequest("invalid patch format of setElementOrder list")
        prop = sch.property_node(node, field_name)
        info = sch.list_info(prop)
        current = original.get(field_name)
        current_list: list[Any] = current if isinstance(current, list) else []
        if field_name in patch:
            patch_list = patch.pop(field_name)
            if patch_list is None:
                original.pop(field_name, None)
                continue
            if not isinstance(patch_list, list):
                raise BadRequest("invalid patch format of setElementOrder list")
            merged = _merge_list(list(current_list), patch_list, prop, info.merge_key, order=False)
        else:
            merged = list(current_list)
        key_of = _key_function(info.merge_key)
        order_keys = [key_of(v) for v in order]
        in_order = [v for v in merged if key_of(v) in order_keys]
        server_only = [v for v in merged if key_of(v) not in order_keys]
        in_order.sort(key=lambda v: order_keys.index(key_of(v)))
        original_keys = [key_of(v) for v in current_list]
        result = _merge_sorted(server_only, in_order, original_keys, key_of)
        if result or field_name in original:
            original[field_name] = result


def _key_function(merge_key: str | None) -> Any:
    def key_of(value: Any) -> Any:
        if merge_key and isinstance(value, dict):
            return _hashable(value.get(merge_key))
        return _hashable(value)

    return key_of


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _merge_sorted(
    left: list[Any], right: list[Any], server_order: list[Any], key_of: Any
) -> list[Any]:
    """strategicpatch.mergeSortedSlice: interleave server-only items by their old positions."""

    def index(v: Any) -> int:
        k = key_of(v)
        return server_order.index(k) if k in server_order else -1

    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li, ri = index(left[i]), index(right[j])
            take_left = li < ri if li >= 0 and ri >= 0 else li >= 0
            if take_left:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _merge_list(
    original: list[Any],
    patch: list[Any],
    prop: sch.Node | None,
    merge_key: str | None,
    *,
    order: bool = True,
) -> list[Any]:
    """strategicpatch.mergeSlice for a list whose patch strategy is merge."""
    if not original and not patch:
        return original
    if any(isinstance(v, list) for v in patch):
        raise PatchRejected("lists of lists are not supported")
    if not any(isinstance(v, dict) for v in patch):
        # A list of scalars merges as a set union, original order first (deduplicateScalars).
        merged = list(original)
        for v in patch:
            if v not in merged:
                merged.append(v)
        return merged

    item_node = sch.items(prop)
    replace = False
    plain: list[dict[str, Any]] = []
    for item in patch:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid patch: list item {item!r} is not an object")
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if not merge_key or merge_key not in item:
                raise BadRequest(
                    f"map: {_go_map(item)} does not contain declared merge key: {merge_key or ''}"
                )
            original = [
                o
                for o in original
                if not (isinstance(o, dict) and o.get(merge_key) == item[merge_key])
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise BadRequest("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, item)
    if replace:
        return [_merge_map({}, p, item_node) for p in plain]

    if not merge_key:
        # strategic merge on a list of objects without a key: upstream appends the patch items.
        return original + [_merge_map({}, p, item_node) for p in plain]

    merged = list(original)
    for item in plain:
        if merge_key not in item:
            raise BadRequest(
                f"map: {_go_map(item)} does not contain declared merge key: {merge_key}"
            )
        for idx, current in enumerate(merged):
            if isinstance(current, dict) and current.get(merge_key) == item[merge_key]:
                merged[idx] = _merge_map(current, item, item_node)
                break
        else:
            merged.append(_merge_map({}, item, item_node))
    if not order:
        return merged
    # normalizeElementOrder: patch items in patch order, server-only items by old position.
    key_of = _key_function(merge_key)
    patch_keys = [key_of(p) for p in plain]
    in_patch = [v for v in merged if key_of(v) in patch_keys]
    in_patch.sort(key=lambda v: patch_keys.index(key_of(v)))
    server_only = [v for v in merged if key_of(v) not in patch_keys]
    return _merge_sorted(server_only, in_patch, [key_of(v) for v in original], key_of)


def _go_map(value: Any) -> str:
    """A value as Go's ``%v`` prints a ``map[string]interface{}``: ``map[a:1 b:map[c:x]]``."""
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_map(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_map(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_map_string(value: Any) -> str:
    """Public for field validation: how upstream quotes a strategic patch in its errors."""
    return _go_map(value)
