"""Table output of custom resources: additionalPrinterColumns and their JSONPaths."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from svcnet.apiserver import customtable, table

NOW = datetime.datetime(2026, 1, 1, 0, 10, tzinfo=datetime.UTC)
OBJ: dict[str, Any] = {
    "metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"replicas": 3, "tags": ["a", "b"], "nested": {"k": "v"}},
    "status": {
        "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]
    },
}


@pytest.mark.parametrize(
    ("path", "want"),
    [
        (".spec.replicas", [3]),
        (".spec.tags[1]", ["b"]),
        (".spec.tags[*]", ["a", "b"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Synced')].status", ["False"]),
        ("{.spec.nested.k}", ["v"]),
        (".spec.missing", []),
        (".spec.tags[5]", []),
    ],
)
def test_jsonpath_values(path: str, want: list[Any]) -> None:
    assert customtable.jsonpath_values(OBJ, path) == want


def test_printer_columns_and_cells() -> None:
    specs = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing", "priority": 1},
        {"name": "Nested", "type": "string", "jsonPath": ".spec.nested"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    t = table.table("example.com", "Widget", [OBJ], NOW, printer=customtable.printer_of(specs))
    assert [(c["name"], c["type"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Missing", "string", 1),
        ("Nested", "string", 0),
        ("Age", "date", 0),
    ]
    assert t["rows"][0]["cells"] == ["w", 3, "True", None, '{"k":"v"}', "10m"]


def test_no_columns_means_name_and_age() -> None:
    t = table.table("example.com", "Widget", [OBJ], NOW, printer=customtable.printer_of([]))
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["w", "10m"]
