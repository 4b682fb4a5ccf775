"""Structural schemas of custom resources: validation messages, pruning, defaulting."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api import structural

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {
                    "type": "array",
                    "maxItems": 2,
                    "minItems": 1,
                    "items": {"type": "string"},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "note": {"type": "string", "nullable": True},
                "inner": {
                    "type": "object",
                    "default": {},
                    "properties": {"mode": {"type": "string", "default": "fast"}},
                },
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "data": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
            },
        },
    },
}


def _errors(spec: Any) -> list[str]:
    return [
        str(e)
        for e in structural.validate({"apiVersion": "x/v1", "kind": "W", "spec": spec}, SCHEMA)
    ]


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"size": "ok"}, []),
        ({}, ["spec.size: Required value"]),
        (
            {"size": 5},
            [
                'spec.size: Invalid value: "integer": spec.size in body must be of type string: "integer"'
            ],
        ),
        ({"size": "toolong"}, ["spec.size: Too long: may not be more than 5 bytes"]),
        (
            {"size": "a"},
            ['spec.size: Invalid value: "a": spec.size in body should be at least 2 chars long'],
        ),
        (
            {"size": "AB"},
            ["spec.size: Invalid value: \"AB\": spec.size in body should match '^[a-z]+$'"],
        ),
        (
            {"size": "ok", "color": "pink"},
            ['spec.color: Unsupported value: "pink": supported values: "red", "blue"'],
        ),
        (
            {"size": "ok", "replicas": 11},
            [
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
            ],
        ),
        (
            {"size": "ok", "replicas": -1},
            [
                "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
            ],
        ),
        (
            {"size": "ok", "replicas": 1.5},
            [
                'spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number"'
            ],
        ),
        (
            {"size": "ok", "ratio": 1},
            ["spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1"],
        ),
        ({"size": "ok", "ratio": 0.5, "port": 80}, []),
        ({"size": "ok", "port": "http"}, []),
        (
            {"size": "ok", "port": 1.5},
            [
                'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number"'
            ],
        ),
        (
            {"size": "ok", "tags": ["a", "b", "c"]},
            ["spec.tags: Too many: must have at most 2 items"],
        ),
        (
            {"size": "ok", "tags": []},
            ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"],
        ),
        (
            {"size": "ok", "tags": ["a", 1]},
            [
                'spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'
            ],
        ),
        (
            {"size": "ok", "labels": {"a": 1}},
            [
                'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'
            ],
        ),
        ({"size": "ok", "note": None}, []),
        (
            {"size": "ok", "color": None},
            [
                'spec.color: Invalid value: "null": spec.color in body must be of type string: "null"'
            ],
        ),
        ({"size": "ok", "embedded": {"apiVersion": "v1", "kind": "ConfigMap"}}, []),
        (
            {"size": "ok", "embedded": {"kind": "ConfigMap"}},
            ["spec.embedded.apiVersion: Required value: must not be empty"],
        ),
    ],
)
def test_validation_messages_as_upstream_words_them(spec: Any, want: list[str]) -> None:
    assert _errors(spec) == want


def test_missing_spec_is_required_at_the_root() -> None:
    errors = structural.validate(
        {"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "n"}}, SCHEMA
    )
    assert [str(e) for e in errors] == ["spec: Required value"]


def test_validation_ignores_metadata() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "W",
        "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {"size": "ok"},
    }
    assert structural.validate(obj, SCHEMA) == []


def test_prune_drops_unspecified_fields_and_keeps_what_is_preserved() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "x/v1",
        "kind": "W",
        "metadata": {"name": "n", "whatever": 1},
        "top": 1,
        "spec": {
            "size": "ok",
            "bogus": {"deep": 1},
            "labels": {"any": "key"},
            "free": {"a": {"b": 1}},
            "tags": ["x"],
            "embedded": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "m"},
                "data": {"k": "v"},
                "junk": 1,
            },
        },
    }
    want = copy.deepcopy(obj)
    del want["top"], want["spec"]["bogus"], want["spec"]["embedded"]["junk"]
    structural.prune(obj, SCHEMA)
    assert obj == want


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({"size": "ok"}, {"size": "ok", "color": "red", "replicas": 1, "inner": {"mode": "fast"}}),
        (
            {"size": "ok", "color": "blue", "inner": {"mode": "slow"}},
            {"size": "ok", "color": "blue", "replicas": 1, "inner": {"mode": "slow"}},
        ),
        (
            {"size": "ok", "color": None},
            {"size": "ok", "color": "red", "replicas": 1, "inner": {"mode": "fast"}},
        ),
    ],
)
def test_defaults_fill_missing_fields_top_down(spec: dict[str, Any], want: dict[str, Any]) -> None:
    obj = {"spec": spec}
    structural.apply_defaults(obj, SCHEMA)
    assert obj["spec"] == want


def test_with_object_meta_adds_type_and_object_meta_at_the_root_and_embedded() -> None:
    published = structural.with_object_meta(SCHEMA)
    assert published["properties"]["metadata"] == {"$ref": structural.OBJECT_META_REF}
    assert published["properties"]["kind"] == {"type": "string"}
    embedded = published["properties"]["spec"]["properties"]["embedded"]
    assert set(embedded["properties"]) == {"apiVersion", "kind", "metadata", "data"}
    assert "metadata" not in SCHEMA["properties"]  # the CRD's own schema is left alone
