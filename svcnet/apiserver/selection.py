"""Which objects a list or watch selects: label and field selectors over stored objects.

Parsing and matching are ``svcnet.api.selectors``'; this module binds them to a resource and
to stored values, for the list and watch paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from svcnet.api import selectors
from svcnet.api.registry import ResourceType
from svcnet.store.interface import KeyValue


@dataclass(frozen=True)
class Selection:
    rt: ResourceType
    labels: selectors.LabelSelector | None = None
    fields: selectors.FieldSelector | None = None
    name: str = ""

    @property
    def empty(self) -> bool:
        return self.labels is None and self.fields is None and not self.name

    def with_name(self, name: str) -> Selection:
        return replace(self, name=name)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.name and meta.get("name") != self.name:
            return False
        if self.labels is not None and not self.labels.matches(meta.get("labels") or {}):
            return False
        return self.fields is None or self.fields.matches(obj)

    def matches_kv(self, kv: KeyValue) -> bool:
        return self.matches(orjson.loads(kv.value))


def selection_for(rt: ResourceType, label_selector: str, field_selector: str) -> Selection:
    labels = selectors.parse_label_selector(label_selector) if label_selector.strip() else None
    fields = None
    if field_selector.strip():
        fields = selectors.parse_field_selector(field_selector)
        fields.check_supported(rt)
        if fields.empty:
            fields = None
    if labels is not None and labels.empty:
        labels = None
    return Selection(rt, labels, fields)
