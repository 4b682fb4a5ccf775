"""``x-kubernetes-validations``: the CEL rules of a CRD schema, evaluated with cel-python.

Each rule is compiled once (by its text) and evaluated with ``self`` bound to the value of the
schema node that carries it, as apiextensions-apiserver's ``cel.Validator`` does. A rule that
evaluates to false is a field error worded as upstream's: its ``message``, or ``failed rule:
<rule>``; the bad value shown is the node's type (``Invalid value: "object": ...``). A rule's
``fieldPath`` is appended to the node's path and its ``reason`` picks the error type.

A transition rule (one using ``oldSelf``) runs on updates only, where the stored object had a
value at the same place (object fields and map keys; list items are not correlated).
Not evaluated (accepted and kept): rules cel-python cannot parse or evaluate (Kubernetes' own
CEL libraries), and ``messageExpression`` (the static ``message`` or the rule is used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from svcnet.api.errors import FieldError, FieldErrorType

_REASONS = {
    "FieldValueInvalid": FieldErrorType.INVALID,
    "FieldValueForbidden": FieldErrorType.FORBIDDEN,
    "FieldValueRequired": FieldErrorType.REQUIRED,
    "FieldValueDuplicate": FieldErrorType.DUPLICATE,
}


# The old value of a node that has none (a create, a new field).
NO_OLD: Any = object()


@lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def check(
    rules: Sequence[Mapping[str, Any]],
    value: Any,
    schema_type: str,
    path: str,
    old: Any = NO_OLD,
) -> list[FieldError]:
    """The errors of the rules of one schema node for its value (``old``: its value in the
    stored object, on an update)."""
    errors: list[FieldError] = []
    for rule in rules:
        text = str(rule.get("rule") or "")
        activation = {"self": json_to_cel(value)}
        if "oldSelf" in text:
            # A transition rule runs on updates of a value that was there before.
            if old is NO_OLD:
                continue
            activation["oldSelf"] = json_to_cel(old)
        if not text:
            continue
        try:
            ok = _program(text).evaluate(activation)
        except Exception:
            # cel-python lacks Kubernetes' CEL libraries (url(), quantity(), isSorted()…) and
            # optional syntax: a rule it cannot parse or evaluate is not enforced, rather than
            # refuse what a real cluster accepts.
            continue
        if not bool(ok):
            errors.append(_error(rule, path, schema_type, _failed(rule)))
    return errors


def _failed(rule: Mapping[str, Any]) -> str:
    return str(rule.get("message") or f"failed rule: {rule.get('rule')}")


def _error(rule: Mapping[str, Any], path: str, schema_type: str, detail: str) -> FieldError:
    field_path = str(rule.get("fieldPath") or "")
    where = path + field_path if field_path.startswith((".", "[")) else path
    kind = _REASONS.get(str(rule.get("reason") or ""), FieldErrorType.INVALID)
    if kind is FieldErrorType.INVALID:
        return FieldError(kind, where, detail, schema_type)
    return FieldError(kind, where, detail)
