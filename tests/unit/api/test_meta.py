"""ObjectMeta helpers and validation, with upstream's paths and messages."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from svcnet.api import meta
from svcnet.util.clock import FakeClock, now_rfc3339, rfc3339, rfc3339_at

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def test_new_uid_is_a_random_uuid() -> None:
    a, b = meta.new_uid(), meta.new_uid()
    assert a != b
    assert uuid.UUID(a).version == 4


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 5, 1, 12, 0, 0, 987654, tzinfo=UTC), "2024-05-01T12:00:00Z"),
        (
            datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00Z",
        ),
    ],
)
def test_timestamps_are_utc_with_second_precision(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text
    assert rfc3339_at(moment.timestamp()) == text
    assert now_rfc3339(FakeClock(start=moment.timestamp())) == text


def test_the_timestamp_of_each_second_is_its_own() -> None:
    # The text is kept per second: the next second must not read the previous one's.
    t = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert [rfc3339_at(t + d) for d in (0.2, 0.9, 1.0, 61.5)] == [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:01Z",
        "2024-05-01T12:01:01Z",
    ]


def test_now_rfc3339_defaults_to_the_current_time() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now_rfc3339())


@pytest.mark.parametrize(("prefix", "kept"), [("web-", "web-"), ("x" * 70, "x" * 58), ("", "")])
def test_generate_name_appends_five_chars_from_upstream_alphabet(prefix: str, kept: str) -> None:
    name = meta.generate_name(prefix, random.Random(1))
    assert name.startswith(kept)
    suffix = name[len(kept) :]
    assert len(suffix) == 5
    assert set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")


def _errors(m: dict[str, Any], namespaced: bool = True, kind: str = "ConfigMap") -> list[str]:
    return [str(e) for e in meta.validate_object_meta(m, namespaced, meta.name_validator_for(kind))]


@pytest.mark.parametrize(
    ("m", "namespaced", "kind", "errors"),
    [
        ({"name": "web", "namespace": "default"}, True, "ConfigMap", []),
        ({"name": "web.v1", "namespace": "default"}, True, "ConfigMap", []),
        (
            {"namespace": "default"},
            True,
            "ConfigMap",
            ["metadata.name: Required value: name or generateName is required"],
        ),
        (
            {"name": "Web", "namespace": "default"},
            True,
            "ConfigMap",
            [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MSG}'],
        ),
        ({"name": "web"}, True, "ConfigMap", ["metadata.namespace: Required value"]),
        (
            {"name": "web", "namespace": "Default"},
            True,
            "ConfigMap",
            [f'metadata.namespace: Invalid value: "Default": {LABEL_MSG}'],
        ),
        (
            {"name": "n1", "namespace": "default"},
            False,
            "Node",
            ["metadata.namespace: Forbidden: not allowed on this type"],
        ),
        (
            {"name": "a.b"},
            False,
            "Namespace",
            ['metadata.name: Invalid value: "a.b": must not contain dots'],
        ),
        (
            {"name": "1web", "namespace": "default"},
            True,
            "Service",
            [
                'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case '
                "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
        ({"generateName": "web-", "name": "web-x2b4k", "namespace": "d"}, True, "Pod", []),
        (
            {"generateName": "Web-", "name": "web-x2b4k", "namespace": "d"},
            True,
            "Pod",
            [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}'],
        ),
        (
            {"name": "web", "namespace": "d", "generation": -1},
            True,
            "Pod",
            ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
        ),
    ],
)
def test_validate_object_meta(
    m: dict[str, Any], namespaced: bool, kind: str, errors: list[str]
) -> None:
    assert _errors(m, namespaced, kind) == errors


@pytest.mark.parametrize(
    ("labels", "errors"),
    [
        ({"app": "web", "app.kubernetes.io/name": "x"}, []),
        (
            {"app": "web server"},
            [
                'metadata.labels: Invalid value: "web server": a valid label must be an empty string '
                "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
                "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ],
        ),
        (
            {"-app": "web"},
            [
                'metadata.labels: Invalid value: "-app": name part must consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ],
        ),
    ],
)
def test_labels_validation(labels: dict[str, str], errors: list[str]) -> None:
    assert _errors({"name": "x", "namespace": "d", "labels": labels}) == errors


def test_annotation_keys_are_validated_lowercased() -> None:
    assert _errors({"name": "x", "namespace": "d", "annotations": {"Example.COM/Key": "v"}}) == []


def test_annotations_over_256kib_are_too_long() -> None:
    big = {"a": "x" * (256 * 1024)}
    assert _errors({"name": "x", "namespace": "d", "annotations": big}) == [
        "metadata.annotations: Too long: must have at most 262144 bytes"
    ]


@pytest.mark.parametrize(
    ("finalizers", "errors"),
    [
        (["kubernetes", "orphan", "example.com/cleanup"], []),
        (
            ["cleanup"],
            [
                'metadata.finalizers: Invalid value: "cleanup": name is neither a standard '
                "finalizer name nor is it fully qualified"
            ],
        ),
        (
            ["orphan", "foregroundDeletion"],
            [
                'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
                "finalizer orphan and foregroundDeletion cannot be both set"
            ],
        ),
    ],
)
def test_finalizer_validation(finalizers: list[str], errors: list[str]) -> None:
    assert _errors({"name": "x", "namespace": "d", "finalizers": finalizers}) == errors


OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1"}


@pytest.mark.parametrize(
    ("refs", "errors"),
    [
        ([OWNER], []),
        (
            [{**OWNER, "uid": ""}],
            ['metadata.ownerReferences[0].uid: Invalid value: "": must not be empty'],
        ),
        (
            [{**OWNER, "apiVersion": "apps/"}],
            [
                'metadata.ownerReferences[0].apiVersion: Invalid value: "apps/": version must not be empty'
            ],
        ),
        (
            [{**OWNER, "controller": True}, {**OWNER, "name": "b", "controller": True}],
            [
                'metadata.ownerReferences: Invalid value: "[...]": Only one reference can have '
                'Controller set to true. Found "true" in references for ReplicaSet/web-1 and '
                "ReplicaSet/b"
            ],
        ),
    ],
)
def test_owner_reference_validation(refs: list[dict[str, Any]], errors: list[str]) -> None:
    assert _errors({"name": "x", "namespace": "d", "ownerReferences": refs}) == errors


OLD = {
    "name": "web",
    "namespace": "default",
    "uid": "u1",
    "resourceVersion": "5",
    "creationTimestamp": "2024-01-01T00:00:00Z",
    "generation": 2,
}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({}, []),
        ({"labels": {"a": "b"}}, []),
        ({"name": "web2"}, ['metadata.name: Invalid value: "web2": field is immutable']),
        (
            {"namespace": "other"},
            ['metadata.namespace: Invalid value: "other": field is immutable'],
        ),
        ({"uid": "u2"}, ['metadata.uid: Invalid value: "u2": field is immutable']),
        (
            {"creationTimestamp": "2025-01-01T00:00:00Z"},
            [
                'metadata.creationTimestamp: Invalid value: "2025-01-01T00:00:00Z": field is immutable'
            ],
        ),
        ({"generation": 1}, ["metadata.generation: Invalid value: 1: must not be decremented"]),
    ],
)
def test_validate_object_meta_update(change: dict[str, Any], errors: list[str]) -> None:
    new = {**OLD, **change}
    assert [str(e) for e in meta.validate_object_meta_update(new, OLD)] == errors


def test_no_new_finalizers_once_deleting() -> None:
    old = {**OLD, "deletionTimestamp": "2024-01-02T00:00:00Z", "finalizers": ["a.io/x"]}
    new = {**old, "finalizers": ["a.io/x", "b.io/y"]}
    assert [str(e) for e in meta.validate_object_meta_update(new, old)] == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
        'deleted, found new finalizers []string{"b.io/y"}'
    ]


def test_finalizers_may_be_removed_while_deleting() -> None:
    old = {**OLD, "deletionTimestamp": "2024-01-02T00:00:00Z", "finalizers": ["a.io/x"]}
    new = {**old, "finalizers": []}
    assert meta.validate_object_meta_update(new, old) == []
