"""Bad input gets a clear Status and the server keeps serving."""

from __future__ import annotations

import asyncio
import json

import pytest
from apiserver_harness import Http, RunningServer


def _status(body: bytes) -> dict:
    s = json.loads(body)
    assert s["kind"] == "Status" and s["status"] == "Failure"
    return s


def _cm(ns: str, name: str = "c", **extra: object) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            **extra,
        }
    ).encode()


@pytest.fixture(autouse=True)
def server_still_serves(http: Http):  # type: ignore[no-untyped-def]
    yield
    code, _, body = http.request("GET", "/readyz")
    assert (code, body) == (200, b"ok")
    code, _, _ = http.request("GET", "/api/v1/namespaces/default")
    assert code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"apiVersion": "v1", "kind": ', "application/json", "invalid JSON"),
        (b"[1, 2]", "application/json", "the object provided is unrecognized"),
        (b"kind: [unclosed", "application/yaml", "error converting YAML to JSON"),
    ],
    ids=["truncated-json", "json-array", "bad-yaml"],
)
def test_malformed_body_is_400(
    http: Http, namespace: str, body: bytes, content_type: str, message: str
) -> None:
    code, _, out = http.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", body, content_type
    )
    s = _status(out)
    assert (code, s["reason"]) == (400, "BadRequest")
    assert message in s["message"]


def test_unknown_resource_is_404(http: Http) -> None:
    code, _, out = http.request("GET", "/api/v1/frobnicators")
    assert (code, _status(out)["reason"]) == (404, "NotFound")


def test_wrong_kind_in_body_is_400(http: Http, namespace: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).encode()
    code, _, out = http.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert (code, _status(out)["reason"]) == (400, "BadRequest")


def test_namespace_mismatch_is_400(http: Http, namespace: str) -> None:
    code, _, out = http.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", _cm("other"))
    assert code == 400
    assert _status(out)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


@pytest.mark.parametrize(
    ("directive", "code", "warning"),
    [
        ("Strict", 400, None),
        ("Warn", 201, '299 - "unknown field \\"bogus\\""'),
        ("Ignore", 201, None),
    ],
)
def test_field_validation_directives(
    http: Http, namespace: str, directive: str, code: int, warning: str | None
) -> None:
    body = _cm(namespace, f"fv-{directive.lower()}", bogus=1)
    got, headers, out = http.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation={directive}", body
    )
    assert got == code
    assert headers.get("Warning") == warning
    if code == 400:
        assert _status(out)["message"] == (
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
            'unknown field "bogus"'
        )
    else:
        assert "bogus" not in json.loads(out)


def test_body_over_3_mib_is_413(http: Http, namespace: str) -> None:
    body = _cm(namespace, "big", data={"k": "x" * (3 * 1024 * 1024)})
    code, _, out = http.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert (code, _status(out)["reason"]) == (413, "RequestEntityTooLarge")


@pytest.mark.parametrize("token", [None, "wrong"], ids=["missing", "wrong"])
def test_bad_token_is_401(http: Http, token: str | None) -> None:
    code, _, out = http.request("GET", "/api/v1/namespaces", token=token)
    assert code == 401
    assert _status(out) | {} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_health_needs_no_token(http: Http) -> None:
    assert http.request("GET", "/healthz", token=None)[:1] == (200,)


def test_watch_from_compacted_revision_is_410_error_event(
    apiserver: RunningServer, http: Http, namespace: str
) -> None:
    for i in range(3):
        http.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", _cm(namespace, f"w{i}"))
    store = apiserver.server.store
    assert store is not None
    rev = store.revision
    asyncio.run_coroutine_threadsafe(store.compact(rev - 1), apiserver.loop).result(10)
    code, _, out = http.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion=1"
    )
    assert code == 200
    event = json.loads(out.splitlines()[0])
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version: 1 (")
