"""Table output of custom resources: a CRD version's ``additionalPrinterColumns`` (pure).

As apiextensions-apiserver's ``tableconvertor``: the Name column first, then the CRD's
columns, each cell the first value of its JSONPath (``.spec.replicas``,
``.status.conditions[?(@.type=="Ready")].status``); ``date`` cells print as an age, missing
values as null (kubectl shows ``<none>``). A version without columns gets Age.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from svcnet.api.objects import ObjView
from svcnet.api.registry import ResourceType
from svcnet.apiserver import table

_AGE_SPEC: Mapping[str, Any] = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": table.AGE.description,
}
_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[\?\(@\.(?P<key>[A-Za-z0-9_.\-]+)\s*==\s*["'](?P<value>[^"']*)["']\)\]"""
    r"""|\[\*\]"""
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """The values ``path`` selects in ``obj`` (the subset of JSONPath CRD columns use)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    current: list[Any] = [obj]
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for value in current:
            if m.group("field") is not None:
                if isinstance(value, Mapping) and m.group("field") in value:
                    nxt.append(value[m.group("field")])
            elif m.group("index") is not None:
                i = int(m.group("index"))
                if isinstance(value, list) and -len(value) <= i < len(value):
                    nxt.append(value[i])
            elif m.group("key") is not None:
                if isinstance(value, list):
                    nxt.extend(
                        item for item in value if _dig(item, m.group("key")) == m.group("value")
                    )
            elif isinstance(value, list):
                nxt.extend(value)
            elif isinstance(value, Mapping):
                nxt.extend(value.values())
        current = nxt
    return current


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _cell(spec: Mapping[str, Any], obj: ObjView, now: datetime.datetime) -> Any:
    values = jsonpath_values(obj, str(spec.get("jsonPath") or ""))
    if not values:
        return None
    value = values[0]
    if spec.get("type") == "date":
        return table.age(value if isinstance(value, str) else None, now) if value else None
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _column(spec: Mapping[str, Any]) -> table.Column:
    return table.Column(
        str(spec.get("name") or ""),
        type=str(spec.get("type") or "string"),
        format=str(spec.get("format") or ""),
        priority=int(spec.get("priority") or 0),
        description=str(spec.get("description") or ""),
    )


def printer_of(specs: Sequence[Mapping[str, Any]]) -> table.Printer:
    """The printer of a CRD version's ``additionalPrinterColumns``."""
    chosen = tuple(specs) or (_AGE_SPEC,)
    columns = (table.NAME, *(_column(s) for s in chosen))

    def row(obj: ObjView, now: datetime.datetime) -> table.Row:
        name = (obj.get("metadata") or {}).get("name", "")
        return [name, *(_cell(s, obj, now) for s in chosen)]

    return columns, row


def printer_for(rt: ResourceType) -> table.Printer | None:
    """The printer of a custom resource's row; None for a built-in kind."""
    if rt.custom is None:
        return None
    return printer_of(rt.custom.printer_columns)
