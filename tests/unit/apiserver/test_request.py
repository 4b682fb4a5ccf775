"""Request parsing: paths into RequestInfo, query options, bodies."""

from __future__ import annotations

import pytest

from svcnet.api.errors import BadRequest, UnsupportedMediaType
from svcnet.apiserver import request as req
from svcnet.apiserver.request import Verb

V = Verb


@pytest.mark.parametrize(
    ("method", "path", "query", "want"),
    [
        (
            "GET",
            "/api/v1/namespaces/default/services",
            {},
            ("", "v1", "services", "default", "", "", V.LIST),
        ),
        ("GET", "/api/v1/services", {}, ("", "v1", "services", None, "", "", V.LIST)),
        (
            "GET",
            "/api/v1/namespaces/default/services/web",
            {},
            ("", "v1", "services", "default", "web", "", V.GET),
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/services/web/status",
            {},
            ("", "v1", "services", "default", "web", "status", V.UPDATE),
        ),
        (
            "GET",
            "/api/v1/namespaces/default",
            {},
            ("", "v1", "namespaces", None, "default", "", V.GET),
        ),
        (
            "PUT",
            "/api/v1/namespaces/x/finalize",
            {},
            ("", "v1", "namespaces", None, "x", "finalize", V.UPDATE),
        ),
        (
            "GET",
            "/api/v1/namespaces/x/status",
            {},
            ("", "v1", "namespaces", None, "x", "status", V.GET),
        ),
        (
            "GET",
            "/api/v1/namespaces",
            {"watch": "1"},
            ("", "v1", "namespaces", None, "", "", V.WATCH),
        ),
        ("GET", "/api/v1/watch/namespaces/d/pods", {}, ("", "v1", "pods", "d", "", "", V.WATCH)),
        ("GET", "/api/v1/watch/pods", {}, ("", "v1", "pods", None, "", "", V.WATCH)),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
            {},
            ("apps", "v1", "deployments", "d", "web", "scale", V.PATCH),
        ),
        (
            "POST",
            "/api/v1/namespaces/d/pods/p/binding",
            {},
            ("", "v1", "pods", "d", "p", "binding", V.CREATE),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/d/configmaps",
            {},
            ("", "v1", "configmaps", "d", "", "", V.DELETECOLLECTION),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/d/configmaps/c",
            {},
            ("", "v1", "configmaps", "d", "c", "", V.DELETE),
        ),
        ("GET", "/api/v1/nodes/n1", {}, ("", "v1", "nodes", None, "n1", "", V.GET)),
    ],
)
def test_parse_resource_path(
    method: str, path: str, query: dict[str, str], want: tuple[object, ...]
) -> None:
    info = req.parse_resource_path(path, method, query)
    assert info is not None
    assert (
        info.group,
        info.version,
        info.resource,
        info.namespace,
        info.name,
        info.subresource,
        info.verb,
    ) == want


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version"]
)
def test_discovery_paths_are_not_resources(path: str) -> None:
    assert req.parse_resource_path(path, "GET", {}) is None


def test_continue_token_round_trip() -> None:
    token = req.encode_continue(42, "/registry/services/default/web")
    assert req.decode_continue(token) == req.ContinueToken(42, "/registry/services/default/web")


def test_bad_continue_token_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="continue key is not valid"):
        req.decode_continue("not-base64!!")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "x"}, 'invalid value for limit: "x"'),
        ({"resourceVersionMatch": "Exact"}, "resourceVersionMatch is forbidden"),
        ({"resourceVersion": "abc"}, 'invalid resource version "abc"'),
    ],
)
def test_bad_list_options(query: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        req.list_options(query)


def test_malformed_json_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="invalid JSON"):
        req.decode_body(b'{"kind": ', "application/json")


def test_yaml_body_is_decoded() -> None:
    assert req.decode_body(b"kind: Service\nmetadata: {name: a}\n", "application/yaml") == {
        "kind": "Service",
        "metadata": {"name": "a"},
    }


def test_malformed_yaml_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="error converting YAML to JSON"):
        req.decode_body(b"kind: [", "application/yaml")


def test_unknown_media_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        req.decode_body(b"x", "application/cbor")


@pytest.mark.parametrize(
    ("agent", "manager"),
    [
        ("kubectl-client-side-apply/v1.32.0 (linux/amd64)", "kubectl-client-side-apply"),
        ("kubectl/v1.32.0 (linux/amd64) kubernetes/abc", "kubectl"),
        ("", "unknown"),
    ],
)
def test_default_field_manager(agent: str, manager: str) -> None:
    assert req.default_field_manager(agent) == manager
