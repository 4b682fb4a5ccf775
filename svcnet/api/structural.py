"""Structural schemas of custom resources: validation, pruning and defaulting (pure).

What apiextensions-apiserver does to a custom resource with the ``openAPIV3Schema`` of its
CRD version (``pkg/apiserver/schema``: ``pruning``, ``defaulting``; ``pkg/apiserver/validation``
over kube-openapi's validator):

* :func:`prune` drops every field the schema does not specify, except under
  ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``, ``kind`` and ``metadata`` are kept
  at the root and under ``x-kubernetes-embedded-resource``.
* :func:`apply_defaults` fills in the ``default`` of every absent (or null, non-nullable)
  property of an object that is present, top-down.
* :func:`validate` checks type, required, enum, minimum/maximum (exclusive too), pattern,
  min/maxLength, min/maxItems, min/maxProperties, uniqueItems, nullable, ``allOf``/``anyOf``/
  ``oneOf``/``not``, ``x-kubernetes-int-or-string`` and embedded resources, and words each
  error as upstream's ``ConvertErrors`` does: ``spec.replicas: Invalid value: 20:
  spec.replicas in body should be less than or equal to 10``.

``x-kubernetes-validations`` (CEL) rules are evaluated by :mod:`svcnet.api.celrules`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from svcnet.api import celrules
from svcnet.api.errors import FieldError, FieldErrorType, invalid, not_supported, required
from svcnet.api.jsonvalue import copy_json

Schema = Mapping[str, Any]

OBJECT_META_REF = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_TYPE_META = ("apiVersion", "kind")


# --- pruning ------------------------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: Schema) -> None:
    """Drop from ``obj`` (a whole custom resource) the fields its schema does not specify."""
    _prune_object(obj, schema, root=True)


def _prune(value: Any, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        _prune_object(value, schema, root=bool(schema.get("x-kubernetes-embedded-resource")))
    elif isinstance(value, list):
        item = schema.get("items")
        if isinstance(item, Mapping):
            for child in value:
                _prune(child, item)


def _prune_object(value: dict[str, Any], schema: Schema, root: bool) -> None:
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key in list(value):
        if root and key in (*_TYPE_META, "metadata"):
            continue  # TypeMeta and ObjectMeta: decoded (and pruned) as ObjectMeta upstream
        if key in props:
            _prune(value[key], props[key])
        elif isinstance(extra, Mapping):
            _prune(value[key], extra)
        elif not (preserve or extra is True):
            del value[key]


# --- defaulting ---------------------------------------------------------------------------------


def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Set the ``default`` of every missing property of the objects in ``value``, in place."""
    if schema is None:
        return
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        for key, prop in props.items():
            if not isinstance(prop, Mapping) or "default" not in prop:
                continue
            if key not in value or (value[key] is None and not prop.get("nullable")):
                value[key] = copy_json(prop["default"])
        for key, child in value.items():
            if key in props:
                apply_defaults(child, props[key])
            elif isinstance(schema.get("additionalProperties"), Mapping):
                apply_defaults(child, schema["additionalProperties"])
    elif isinstance(value, list):
        item = schema.get("items")
        if isinstance(item, Mapping):
            for child in value:
                apply_defaults(child, item)


# --- validation ---------------------------------------------------------------------------------


def validate(
    obj: Mapping[str, Any], schema: Schema, old: Mapping[str, Any] | None = None
) -> list[FieldError]:
    """The schema errors of a whole custom resource (its metadata is ObjectMeta's business);
    ``old``, on an update: the stored object, for the CEL transition rules (``oldSelf``)."""
    errors: list[FieldError] = []
    body = {k: v for k, v in obj.items() if k != "metadata"}
    _validate(body, _without_metadata(schema), "", errors, celrules.NO_OLD if old is None else old)
    return errors


def _without_metadata(schema: Schema) -> Schema:
    props = schema.get("properties") or {}
    if "metadata" not in props:
        return schema
    return {**schema, "properties": {k: v for k, v in props.items() if k != "metadata"}}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(want: str, value: Any) -> bool:
    got = _json_type(value)
    return got == want or (want == "number" and got == "integer")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    # kube-openapi names the root "body" alone; a field as "<path> in body".
    return f"{path} in body" if path else "body"


def _type_error(path: str, want: str, value: Any) -> FieldError:
    got = _json_type(value)
    return FieldError(
        FieldErrorType.TYPE_INVALID, path, f'{_where(path)} must be of type {want}: "{got}"', got
    )


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _validate(
    value: Any, schema: Schema, path: str, errors: list[FieldError], old: Any = celrules.NO_OLD
) -> None:
    if value is None:
        if schema.get("nullable") or not schema.get("type"):
            return
        errors.append(_type_error(path, str(schema["type"]), value))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errors.append(_type_error(path, "integer,string", value))
            return
    else:
        want = schema.get("type")
        if isinstance(want, str) and want and not _type_ok(want, value):
            errors.append(_type_error(path, want, value))
            return
    _check_value(value, schema, path, errors)
    _check_combinators(value, schema, path, errors)
    rules = schema.get("x-kubernetes-validations")
    if rules:
        errors.extend(celrules.check(rules, value, str(schema.get("type") or ""), path, old))
    if isinstance(value, dict):
        _validate_object(value, schema, path, errors, old)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errors)


def _check_value(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        errors.append(not_supported(path, value, [_enum_text(e) for e in enum]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    if isinstance(value, str):
        _check_string(value, schema, path, errors)


def _enum_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _number_text(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _check_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    where = _where(path)
    hi, lo = schema.get("maximum"), schema.get("minimum")
    if hi is not None:
        if schema.get("exclusiveMaximum") and value >= hi:
            errors.append(invalid(path, value, f"{where} should be less than {_number_text(hi)}"))
        elif value > hi:
            errors.append(
                invalid(path, value, f"{where} should be less than or equal to {_number_text(hi)}")
            )
    if lo is not None:
        if schema.get("exclusiveMinimum") and value <= lo:
            errors.append(
                invalid(path, value, f"{where} should be greater than {_number_text(lo)}")
            )
        elif value < lo:
            errors.append(
                invalid(
                    path, value, f"{where} should be greater than or equal to {_number_text(lo)}"
                )
            )
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        errors.append(invalid(path, value, f"{where} should be a multiple of {_number_text(step)}"))


def _check_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    where = _where(path)
    longest, shortest = schema.get("maxLength"), schema.get("minLength")
    length = len(value)
    if longest is not None and length > longest:
        errors.append(
            FieldError(FieldErrorType.TOO_LONG, path, f"may not be more than {longest} bytes")
        )
    if shortest is not None and length < shortest:
        errors.append(invalid(path, value, f"{where} should be at least {shortest} chars long"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        compiled = _regex(pattern)
        if compiled is not None and not compiled.search(value):
            errors.append(invalid(path, value, f"{where} should match '{pattern}'"))


def _check_combinators(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    for sub in schema.get("allOf") or ():
        _validate(value, sub, path, errors)
    any_of = schema.get("anyOf")
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        errors.append(invalid(path, value, f'"{path}" must validate at least one schema (anyOf)'))
    one_of = schema.get("oneOf")
    if one_of and sum(1 for sub in one_of if _passes(value, sub, path)) != 1:
        errors.append(
            invalid(path, value, f'"{path}" must validate one and only one schema (oneOf)')
        )
    not_schema = schema.get("not")
    if isinstance(not_schema, Mapping) and _passes(value, not_schema, path):
        errors.append(invalid(path, value, f'"{path}" must not validate the schema (not)'))


def _passes(value: Any, schema: Schema, path: str) -> bool:
    found: list[FieldError] = []
    _validate(value, schema, path, found)
    return not found


def _check_count(
    count: int, schema: Schema, what: str, path: str, errors: list[FieldError]
) -> None:
    """``max<what>``/``min<what>`` (Items of an array, Properties of an object)."""
    most, least = schema.get("max" + what), schema.get("min" + what)
    noun = what.lower()
    if most is not None and count > most:
        errors.append(FieldError(FieldErrorType.TOO_MANY, path, f"must have at most {most} {noun}"))
    if least is not None and count < least:
        errors.append(invalid(path, count, f"{_where(path)} should have at least {least} {noun}"))


def _validate_object(
    value: dict[str, Any], schema: Schema, path: str, errors: list[FieldError], old: Any
) -> None:
    for name in schema.get("required") or ():
        if name not in value:
            errors.append(required(_join(path, name)))
    _check_count(len(value), schema, "Properties", path, errors)
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    for key, child in value.items():
        child_path = _join(path, key)
        if key in props:
            _validate(child, props[key], child_path, errors, _old_child(old, key))
        elif isinstance(extra, Mapping):
            _validate(child, extra, child_path, errors, _old_child(old, key))
    if embedded:
        for key in _TYPE_META:
            if not value.get(key):
                errors.append(required(_join(path, key), "must not be empty"))


def _old_child(old: Any, key: str) -> Any:
    """The old value of a property: transition rules follow object fields and map keys (list
    items are not correlated here)."""
    if isinstance(old, dict) and key in old:
        return old[key]
    return celrules.NO_OLD


def _validate_array(value: list[Any], schema: Schema, path: str, errors: list[FieldError]) -> None:
    _check_count(len(value), schema, "Items", path, errors)
    if schema.get("uniqueItems"):
        seen: list[Any] = []
        for i, child in enumerate(value):
            if child in seen:
                errors.append(FieldError(FieldErrorType.DUPLICATE, f"{path}[{i}]", "", child))
            seen.append(child)
    item = schema.get("items")
    if isinstance(item, Mapping):
        for i, child in enumerate(value):
            _validate(child, item, f"{path}[{i}]", errors)


# --- schemas as the API machinery reads them ----------------------------------------------------


def with_object_meta(schema: Schema) -> dict[str, Any]:
    """The schema as field validation, apply and OpenAPI read it: ``apiVersion``, ``kind`` and
    ``metadata`` (ObjectMeta) added at the root and under every embedded resource, as
    apiextensions-apiserver publishes CRD schemas."""
    out = dict(schema)
    out.setdefault("type", "object")
    _add_type_meta(out)
    embedded: dict[str, Any] = _embed(out)
    return embedded


def _add_type_meta(node: dict[str, Any]) -> None:
    props = dict(node.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"$ref": OBJECT_META_REF}
    node["properties"] = props


def _embed(node: Any) -> Any:
    if isinstance(node, list):
        return [_embed(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: _embed(v) if k != "default" and k != "enum" else v for k, v in node.items()}
    if out.get("x-kubernetes-embedded-resource"):
        _add_type_meta(out)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        # As upstream publishes it (kubectl explain then says IntOrString).
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out
