"""Stored bytes and resourceVersion splicing; store errors as API errors."""

from __future__ import annotations

import orjson
import pytest

from svcnet.api.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    invalid,
    required,
)
from svcnet.api.registry import DEPLOYMENTS, SERVICES
from svcnet.apiserver import storage
from svcnet.apiserver.status import status_body, success_status, translate_store_error
from svcnet.store.interface import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
)

SVC = SERVICES
DEPLOY = DEPLOYMENTS
assert SVC and DEPLOY


def test_stored_bytes_carry_no_resource_version() -> None:
    data = storage.encode({"kind": "X", "metadata": {"name": "a", "resourceVersion": "9"}})
    assert orjson.loads(data)["metadata"]["resourceVersion"] == ""


def test_object_bytes_splices_the_mod_revision() -> None:
    data = storage.encode({"kind": "X", "metadata": {"name": "a"}, "spec": {"x": 1}})
    kv = KeyValue("/k", data, 3, 42)
    assert orjson.loads(storage.object_bytes(kv)) == {
        "metadata": {"resourceVersion": "42", "name": "a"},
        "kind": "X",
        "spec": {"x": 1},
    }
    assert storage.decode(kv)["metadata"]["resourceVersion"] == "42"


def test_object_bytes_of_foreign_value_decodes() -> None:
    kv = KeyValue("/k", b'{"kind":"X","metadata":{"name":"a"}}', 1, 7)
    assert orjson.loads(storage.object_bytes(kv))["metadata"] == {
        "name": "a",
        "resourceVersion": "7",
    }


def test_encoded_cache_serializes_once_per_revision() -> None:
    cache = storage.EncodedCache(size=2)
    kv = KeyValue("/k", storage.encode({"metadata": {"name": "a"}}), 1, 5)
    assert cache.get(kv) is cache.get(kv)


CURRENT = KeyValue("/registry/services/d/web", b"{}", 1, 2)


@pytest.mark.parametrize(
    ("exc", "rt", "cls", "message"),
    [
        (KeyExistsError("k"), SVC, AlreadyExists, 'services "web" already exists'),
        (KeyNotFoundError("k"), DEPLOY, NotFound, 'deployments.apps "web" not found'),
        (
            RevisionMismatchError("k", CURRENT),
            SVC,
            Conflict,
            'Operation cannot be fulfilled on services "web": the object has been modified; '
            "please apply your changes to the latest version and try again",
        ),
        (CompactedError(5, 130), SVC, Gone, "too old resource version: 5 (130)"),
    ],
)
def test_translate_store_error(
    exc: Exception, rt: object, cls: type[ApiError], message: str
) -> None:
    err = translate_store_error(exc, rt, "web")  # type: ignore[arg-type]
    assert isinstance(err, cls) and err.message == message


# Upstream's bodies, byte for byte (kube-apiserver 1.32; the first two are what the Python
# client's e2e suite expects): metav1.Status and StatusDetails fields in their Go order, empty
# ones omitted, and the newline json.Encoder ends with.
@pytest.mark.parametrize(
    ("err", "body"),
    [
        (
            AlreadyExists.for_object("services", "mock-2"),
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
            '"details":{"name":"mock-2","kind":"services"},"code":409}\n',
        ),
        (
            AlreadyExists.for_object("deployments", "triple-nginx", "apps"),
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"deployments.apps \\"triple-nginx\\" already exists",'
            '"reason":"AlreadyExists","details":{"name":"triple-nginx","group":"apps",'
            '"kind":"deployments"},"code":409}\n',
        ),
        (
            Invalid("Service", "web", [invalid("spec.ports[0].port", 0, "must be > 0"),
                                       required("metadata.name")]),
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"Service \\"web\\" is invalid: [spec.ports[0].port: Invalid value: 0: '
            'must be > 0, metadata.name: Required value]","reason":"Invalid",'
            '"details":{"name":"web","kind":"Service","causes":[{"reason":"FieldValueInvalid",'
            '"message":"Invalid value: 0: must be > 0","field":"spec.ports[0].port"},'
            '{"reason":"FieldValueRequired","message":"Required value",'
            '"field":"metadata.name"}]},"code":422}\n',
        ),
        (
            NotFound("the server could not find the requested resource"),
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"the server could not find the requested resource","reason":"NotFound",'
            '"code":404}\n',
        ),
    ],
)  # fmt: skip
def test_status_body_is_upstreams_text(err: ApiError, body: str) -> None:
    assert status_body(err).decode() == body


def test_success_status_orders_its_details_as_upstream() -> None:
    got = success_status({"uid": "u1", "kind": "jobs", "group": "batch", "name": "j"})
    assert orjson.dumps(got) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        b'"details":{"name":"j","group":"batch","kind":"jobs","uid":"u1"}}'
    )
