"""The OpenAPI documents: structure kubectl relies on, and upstream's caching headers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from svcnet.api.registry import REGISTRY
from svcnet.apiserver import openapi

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def doc(path: str) -> dict[str, Any]:
    body = openapi.openapi_v3_document(path)
    assert body is not None
    out: dict[str, Any] = json.loads(body)
    return out


def test_root_lists_every_group_version_with_its_hash() -> None:
    root = json.loads(openapi.openapi_v3_root())
    assert set(root["paths"]) == {
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/autoscaling/v2",
        "apis/policy/v1",
        "apis/discovery.k8s.io/v1",
        "apis/networking.k8s.io/v1",
        "apis/gateway.networking.k8s.io/v1",
        "apis/gateway.networking.k8s.io/v1beta1",
        "apis/gateway.networking.k8s.io/v1alpha2",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/storage.k8s.io/v1",
        "apis/apiregistration.k8s.io/v1",
        "apis/coordination.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1",
    }
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    body = openapi.openapi_v3_document("api/v1")
    assert body is not None
    assert url == "/openapi/v3/api/v1?hash=" + hashlib.sha512(body).hexdigest().upper()


def test_unknown_group_version_has_no_document() -> None:
    assert openapi.openapi_v3_document("apis/flowcontrol.apiserver.k8s.io/v1") is None


@pytest.mark.parametrize("r", REGISTRY.resources, ids=lambda r: f"{r.group_version}/{r.kind}")
def test_every_kind_has_a_patch_operation_with_field_validation(r: Any) -> None:
    d = doc(openapi.gv_path(r))
    ops = [
        item["patch"]
        for item in d["paths"].values()
        if "patch" in item
        and item["patch"]["x-kubernetes-group-version-kind"]
        == {"group": r.group, "version": r.version, "kind": r.kind}
    ]
    assert ops, f"no PATCH for {r.kind}"
    # kubectl's queryParamVerifierV3 reads parameter names inline (no $ref).
    assert "fieldValidation" in [p["name"] for p in ops[0]["parameters"]]
    content = ops[0]["requestBody"]["content"]
    builtin = not r.group.startswith("gateway.")
    assert ("application/strategic-merge-patch+json" in content) is builtin
    assert "application/apply-patch+yaml" in content


@pytest.mark.parametrize("r", REGISTRY.resources, ids=lambda r: f"{r.group_version}/{r.kind}")
def test_every_kind_has_a_component_schema_with_its_gvk(r: Any) -> None:
    schemas = doc(openapi.gv_path(r))["components"]["schemas"]
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    assert any(gvk in s.get("x-kubernetes-group-version-kind", []) for s in schemas.values())


def test_every_v3_reference_resolves_inside_its_document() -> None:
    for path in openapi.openapi_v3_paths():
        text = openapi.openapi_v3_document(path)
        assert text is not None
        d = json.loads(text)
        refs = set()

        def walk(n: Any, refs: set[str] = refs) -> None:
            if isinstance(n, dict):
                for k, v in n.items():
                    if k == "$ref" and isinstance(v, str):  # not a property named "$ref"
                        refs.add(v)
                    else:
                        walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)

        walk(d)
        missing = {
            r
            for r in refs
            if r.removeprefix("#/components/schemas/") not in d["components"]["schemas"]
        }
        assert not missing, (path, missing)


def test_ref_with_description_is_wrapped_in_all_of() -> None:
    svc = doc("api/v1")["components"]["schemas"]["io.k8s.api.core.v1.Service"]
    assert svc["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"}
    ]


def test_int_or_string_is_one_of_in_v3() -> None:
    s = doc("api/v1")["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert s["oneOf"] == [{"type": "integer"}, {"type": "string"}] and "type" not in s


def test_namespaced_kind_has_collection_item_status_and_all_namespaces_paths() -> None:
    paths = doc("apis/apps/v1")["paths"]
    for p in (
        "/apis/apps/v1/namespaces/{namespace}/deployments",
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        "/apis/apps/v1/deployments",
    ):
        assert p in paths
    assert (
        paths["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"]["operationId"]
        == "listAppsV1NamespacedDeployment"
    )


def test_v2_is_swagger_json_with_definitions() -> None:
    v2 = json.loads(openapi.openapi_v2())
    assert v2["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Service" in v2["definitions"]
    patch = v2["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]


def test_serve_with_the_right_hash_is_immutable() -> None:
    url = json.loads(openapi.openapi_v3_root())["paths"]["api/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?hash=")
    resp = openapi.serve(path, "application/json", query, None, now=NOW)
    assert resp is not None and resp.status == 200
    assert resp.headers["Cache-Control"] == "public, immutable"
    assert resp.headers["Expires"] == "Fri, 01 Jan 2027 00:00:00 GMT"
    assert resp.headers["Etag"] == f'"{query}"'


def test_serve_with_a_stale_hash_redirects() -> None:
    resp = openapi.serve("/openapi/v3/api/v1", "application/json", "OLD", None)
    assert resp is not None and resp.status == 301
    assert resp.headers["Location"].startswith("/openapi/v3/api/v1?hash=")


def test_serve_without_hash_is_revalidated_and_answers_304() -> None:
    resp = openapi.serve("/openapi/v3", "application/json")
    assert resp is not None and resp.status == 200
    assert resp.headers["Cache-Control"] == "no-cache, private"
    again = openapi.serve("/openapi/v3", "application/json", if_none_match=resp.headers["Etag"])
    assert again is not None and again.status == 304 and again.body == b""


def test_v2_protobuf_is_a_document_header_without_definitions() -> None:
    resp = openapi.serve(
        "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert resp is not None and resp.status == 200
    # swagger "2.0", info {title, version}, empty paths and definitions.
    assert resp.body == (
        b"\x0a\x032.0" + b"\x12\x15\x0a\x0aKubernetes\x12\x07v1.32.0" + b"\x42\x00\x4a\x00"
    )
    json_resp = openapi.serve("/openapi/v2", "application/json")
    assert json_resp is not None and json_resp.status == 200


def test_serve_unknown_path_is_none() -> None:
    assert openapi.serve("/openapi/v3/apis/nope/v1") is None
    assert openapi.serve("/openapi/v4") is None
