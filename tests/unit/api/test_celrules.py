"""x-kubernetes-validations: CEL rules evaluated on custom resources."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api import celrules, structural

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                {"rule": "!has(self.mode) || self.mode != 'off'", "fieldPath": ".mode",
                 "reason": "FieldValueForbidden"},
                {"rule": "self.min == oldSelf.min"},  # a transition rule: not evaluated here
            ],
            "properties": {
                "min": {"type": "integer"},
                "max": {"type": "integer"},
                "mode": {"type": "string"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-validations": [{"rule": "self.all(t, t != 'bad')"}],
                },
            },
        }
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"min": 1, "max": 2}, []),
        ({"min": 3, "max": 2}, ['spec: Invalid value: "object": min must not exceed max']),
        ({"min": 1, "max": 2, "mode": "off"}, ["spec.mode: Forbidden: failed rule: "
                                               "!has(self.mode) || self.mode != 'off'"]),
        ({"min": 1, "max": 2, "tags": ["ok", "bad"]},
         ["spec.tags: Invalid value: \"array\": failed rule: self.all(t, t != 'bad')"]),
    ],
)  # fmt: skip
def test_rules_as_upstream_reports_them(spec: dict[str, Any], want: list[str]) -> None:
    assert [str(e) for e in structural.validate({"spec": spec}, SCHEMA)] == want


@pytest.mark.parametrize("rule", ["isURL(self)", "self ==", "self.missing == 1"])
def test_a_rule_cel_python_cannot_evaluate_is_not_enforced(rule: str) -> None:
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": rule}]}
    assert celrules.check(schema["x-kubernetes-validations"], {"a": 1}, "object", "spec") == []


def test_a_transition_rule_runs_on_updates_only() -> None:
    new = {"spec": {"min": 2, "max": 3}}
    old = {"spec": {"min": 1, "max": 3}}
    assert structural.validate(new, SCHEMA) == []  # a create: no oldSelf
    assert [str(e) for e in structural.validate(new, SCHEMA, old)] == [
        'spec: Invalid value: "object": failed rule: self.min == oldSelf.min'
    ]
    assert structural.validate(old, SCHEMA, old) == []
