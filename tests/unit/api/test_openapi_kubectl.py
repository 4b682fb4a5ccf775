"""The OpenAPI documents as the real kubectl 1.32 reads them.

A small aiohttp server (discovery from the registry, the OpenAPI documents, 404 for objects)
records what kubectl asks for; kubectl runs with a kubeconfig and cache dir in tmp_path and
never touches ~/.kube. Loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from svcnet.api.apply import server_side_apply, track_update
from svcnet.api.errors import ApiError, NotFound
from svcnet.api.fieldvalidation import check_unknown_fields, parse_directive
from svcnet.api.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    go_map_string,
)
from svcnet.api.registry import REGISTRY
from svcnet.api.schema import GroupVersionKind
from svcnet.apiserver import openapi

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NOW = "2026-01-01T00:00:00Z"  # the managedFields time of every write the fake server records
pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")


@dataclass
class Recorder:
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path+query, accept
    # method, path+query, content type, body
    bodies: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    # Objects served to GET (and echoed to PATCH/PUT), by URL path.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Whether PATCH requests are applied to ``objects`` with svcnet's patch and apply code.
    apply_patches: bool = False

    def paths(self) -> list[str]:
        """Request paths with kubectl's ``timeout`` query parameter left out."""
        return [re.sub(r"[?&]timeout=\d+s$", "", p) for _, p, _ in self.requests]


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources = []
    for r in REGISTRY.in_group_version(group, version):
        resources.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
                "shortNames": list(r.short_names),
                "categories": list(r.categories),
            }
        )
        for sub in r.subresources:
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _groups() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for g, v in REGISTRY.group_versions():
        if g:
            groups.setdefault(g, []).append(v)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


def _not_found(what: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": f"{what} not found",
            "reason": "NotFound",
            "code": 404,
        },
        status=404,
    )


def _patch(rec: Recorder, path: str, request: web.Request) -> web.Response:
    """A PATCH as the API server will run it, on the recorded objects (no defaulting)."""
    ctype = request.headers.get("Content-Type", "").split(";")[0]
    body = json.loads(rec.bodies[-1][3])
    live = rec.objects.get(path)
    warnings: list[str] = []
    try:
        if ctype == APPLY_PATCH:
            gvk = GroupVersionKind.of(body["apiVersion"], body["kind"])
            new = server_side_apply(
                live,
                body,
                request.query["fieldManager"],
                request.query.get("force") == "true",
                gvk,
                now=NOW,
            )
        elif live is None:
            raise NotFound(f"{path} not found")
        else:
            gvk = GroupVersionKind.of(live["apiVersion"], live["kind"])
            if ctype == JSON_PATCH:
                new = apply_json_patch(live, body)
            elif ctype == MERGE_PATCH:
                new = apply_merge_patch(live, body)
            else:
                new = apply_strategic_merge_patch(live, body, gvk)
            text = go_map_string(body) if ctype == STRATEGIC_MERGE_PATCH else json.dumps(new)
            warnings = check_unknown_fields(
                new, gvk, parse_directive(request.query.get("fieldValidation")), patch=text
            )
            track_update(
                live,
                new,
                request.query.get("fieldManager", "kubectl-patch"),
                "Update",
                gvk,
                now=NOW,
            )
    except ApiError as e:
        return web.json_response(e.to_status(), status=e.code)
    rec.objects[path] = new
    response = web.json_response(new, status=200 if live is not None else 201)
    for w in warnings:
        response.headers.add("Warning", '299 - "' + w.replace('"', '\\"') + '"')
    return response


def make_app(rec: Recorder) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        rec.requests.append((request.method, request.path_qs, request.headers.get("Accept", "")))
        if request.method != "GET":
            rec.bodies.append(
                (
                    request.method,
                    request.path_qs,
                    request.headers.get("Content-Type", ""),
                    await request.read(),
                )
            )
        if request.method == "PATCH" and rec.apply_patches:
            return _patch(rec, path, request)
        if request.method == "POST" and rec.apply_patches:
            obj = json.loads(rec.bodies[-1][3])
            gvk = GroupVersionKind.of(obj["apiVersion"], obj["kind"])
            track_update(None, obj, request.query.get("fieldManager", ""), "Update", gvk, now=NOW)
            rec.objects[f"{path}/{obj['metadata']['name']}"] = obj
            return web.json_response(obj, status=201)
        if path in rec.objects:
            return web.json_response(rec.objects[path])
        if path == "/version":
            return web.json_response(
                {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}
            )
        if path == "/api":
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
                    ],
                }
            )
        if path == "/apis":
            return web.json_response(_groups())
        if path == "/api/v1":
            return web.json_response(_resource_list("", "v1"))
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "apis":
            return web.json_response(_resource_list(parts[1], parts[2]))
        if path.startswith("/openapi/"):
            resp = openapi.serve(
                path,
                request.headers.get("Accept", ""),
                request.query.get("hash"),
                request.headers.get("If-None-Match"),
            )
            if resp is None:
                return _not_found(path)
            return web.Response(status=resp.status, headers=resp.headers, body=resp.body)
        return _not_found(path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@dataclass
class Kubectl:
    rec: Recorder
    env: dict[str, str]
    tmp: Path

    async def run(self, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--cache-dir",
            str(self.tmp / "cache"),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[Kubectl]:
    rec = Recorder()
    runner = web.AppRunner(make_app(rec))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "t",
                    "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "t", "user": {"token": "x"}}],
                    "contexts": [
                        {
                            "name": "t",
                            "context": {"cluster": "t", "user": "t", "namespace": "default"},
                        }
                    ],
                }
            )
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KUBECONFIG": str(kubeconfig),
        }
        yield Kubectl(rec, env, tmp_path)
    finally:
        await runner.cleanup()


SERVICE_YAML = b"""apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


async def test_apply_dry_run_client_uses_v3_and_not_client_side_validation(
    kubectl: Kubectl,
) -> None:
    code, out, err = await kubectl.run("apply", "--dry-run=client", "-f", "-", stdin=SERVICE_YAML)
    assert code == 0, err
    assert "service/web created (dry run)" in out
    paths = kubectl.rec.paths()
    assert "/openapi/v3" in paths, paths
    assert any(p.startswith("/openapi/v3/api/v1?hash=") for p in paths)
    # The query-param verifier found fieldValidation, so no v2 schema was needed.
    assert not any(p.startswith("/openapi/v2") for p in paths), paths


async def test_explain_reads_the_v3_document(kubectl: Kubectl) -> None:
    code, out, err = await kubectl.run("explain", "service.spec.ports")
    assert code == 0, err
    assert "FIELD: ports <[]ServicePort>" in out
    assert "targetPort\t<IntOrString>" in out
    assert "/openapi/v3/api/v1?hash=" in " ".join(kubectl.rec.paths())


async def test_explain_gateway_api_kind(kubectl: Kubectl) -> None:
    code, out, err = await kubectl.run("explain", "httproutes.spec.rules")
    assert code == 0, err
    assert "backendRefs" in out


async def test_create_dry_run_server_sends_field_validation_strict(kubectl: Kubectl) -> None:
    await kubectl.run("create", "--dry-run=server", "-f", "-", stdin=SERVICE_YAML)
    posts = [p for m, p, _ in kubectl.rec.requests if m == "POST"]
    assert posts and "fieldValidation=Strict" in posts[0], kubectl.rec.requests


LIVE_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "resourceVersion": "5",
        "uid": "u1",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {
                        "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
                    },
                }
            )
        },
    },
    "spec": {
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.20",
        "type": "ClusterIP",
        "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443},
        ],
    },
}
ONE_PORT_YAML = b"""apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
"""


async def test_client_side_apply_sends_strategic_patch_computed_from_v3(kubectl: Kubectl) -> None:
    kubectl.rec.objects["/api/v1/namespaces/default/services/web"] = LIVE_SERVICE
    code, _, err = await kubectl.run("apply", "-f", "-", stdin=ONE_PORT_YAML)
    assert code == 0, err
    [(_, url, ctype, body)] = [b for b in kubectl.rec.bodies if b[0] == "PATCH"]
    assert ctype == "application/strategic-merge-patch+json"
    assert "fieldValidation=Strict" in url and "fieldManager=kubectl-client-side-apply" in url
    patch = json.loads(body)
    assert patch["spec"] == {
        "$setElementOrder/ports": [{"port": 80}],
        "ports": [{"$patch": "delete", "port": 443}],
    }
    # And the patch kubectl really sends applies as upstream would apply it.
    patched = apply_strategic_merge_patch(
        LIVE_SERVICE, patch, GroupVersionKind("", "v1", "Service")
    )
    assert patched["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}
    ]
    assert not any(p.startswith("/openapi/v2") for p in kubectl.rec.paths())


async def test_client_side_apply_of_gateway_api_kind_sends_merge_patch(kubectl: Kubectl) -> None:
    live = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "r",
            "namespace": "default",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    {
                        "apiVersion": "gateway.networking.k8s.io/v1",
                        "kind": "HTTPRoute",
                        "metadata": {"name": "r", "namespace": "default"},
                        "spec": {"hostnames": ["a.example"]},
                    }
                )
            },
        },
        "spec": {"hostnames": ["a.example"]},
    }
    kubectl.rec.objects["/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/r"] = live
    manifest = (
        b"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\n"
        b"spec:\n  hostnames: [b.example]\n"
    )
    code, _, err = await kubectl.run("apply", "-f", "-", stdin=manifest)
    assert code == 0, err
    [(_, _, ctype, body)] = [b for b in kubectl.rec.bodies if b[0] == "PATCH"]
    assert ctype == "application/merge-patch+json"
    assert json.loads(body)["spec"] == {"hostnames": ["b.example"]}


async def test_server_side_apply_sends_apply_patch(kubectl: Kubectl) -> None:
    kubectl.rec.objects["/api/v1/namespaces/default/services/web"] = LIVE_SERVICE
    code, _, err = await kubectl.run("apply", "--server-side", "-f", "-", stdin=ONE_PORT_YAML)
    assert code == 0, err
    patches = [b for b in kubectl.rec.bodies if b[0] == "PATCH"]
    _, url, ctype, body = patches[0]
    assert ctype == "application/apply-patch+yaml"
    assert (
        "fieldManager=kubectl&" in url and "fieldValidation=Strict" in url and "force=false" in url
    )
    # The body is JSON under the YAML media type.
    assert json.loads(body)["spec"]["ports"] == [{"name": "http", "port": 80}]
    # An object that carries last-applied-configuration gets it re-applied by a second manager.
    assert [p[1].split("fieldManager=")[1].split("&")[0] for p in patches[1:]] == [
        "kubectl-last-applied"
    ]
    assert not any(p.startswith("/openapi/v2") for p in kubectl.rec.paths())


async def test_edit_sends_strategic_patch_without_openapi_v2(kubectl: Kubectl) -> None:
    kubectl.rec.objects["/api/v1/namespaces/default/services/web"] = LIVE_SERVICE
    editor = kubectl.tmp / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/app: web/app: web2/' \"$1\"\n")
    editor.chmod(0o755)
    kubectl.env["KUBE_EDITOR"] = str(editor)
    code, _, err = await kubectl.run("edit", "service/web")
    assert code == 0, err
    [(_, url, ctype, body)] = [b for b in kubectl.rec.bodies if b[0] == "PATCH"]
    assert ctype == "application/strategic-merge-patch+json"
    assert json.loads(body)["spec"] == {"selector": {"app": "web2"}}
    assert "fieldValidation=Strict" in url
    assert not any(p.startswith("/openapi/v2") for p in kubectl.rec.paths())


async def test_kubectl_reads_objects_with_managed_fields(kubectl: Kubectl) -> None:
    obj = json.loads(json.dumps(LIVE_SERVICE))
    track_update(
        None,
        obj,
        "kubectl-create",
        "Update",
        GroupVersionKind("", "v1", "Service"),
        now="2026-01-01T00:00:00Z",
    )
    kubectl.rec.objects["/api/v1/namespaces/default/services/web"] = obj
    code, out, err = await kubectl.run("get", "service/web", "-o", "json", "--show-managed-fields")
    assert code == 0, err
    assert json.loads(out)["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments/web"


def _deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }


@pytest.mark.parametrize(
    ("patch_type", "patch", "want_image"),
    [
        (
            "strategic",
            '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}',
            "nginx:1.26",
        ),
        ("merge", '{"spec":{"replicas":7}}', "nginx:1.25"),
        (
            "json",
            '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]',
            "nginx:1.27",
        ),
    ],
)
async def test_kubectl_patch_of_each_type(
    kubectl: Kubectl, patch_type: str, patch: str, want_image: str
) -> None:
    kubectl.rec.apply_patches = True
    live = _deployment(2)
    track_update(
        None,
        live,
        "kubectl-create",
        "Update",
        GroupVersionKind("apps", "v1", "Deployment"),
        now=NOW,
    )
    kubectl.rec.objects[DEPLOY_PATH] = live
    code, out, err = await kubectl.run("patch", "deployment/web", "--type", patch_type, "-p", patch)
    assert code == 0, err
    assert out.strip() == "deployment.apps/web patched"
    stored = kubectl.rec.objects[DEPLOY_PATH]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == want_image
    managers = [e["manager"] for e in stored["metadata"]["managedFields"]]
    assert managers == ["kubectl-create", "kubectl-patch"]


async def test_kubectl_json_patch_with_failing_test_op_prints_the_cause(kubectl: Kubectl) -> None:
    kubectl.rec.apply_patches = True
    kubectl.rec.objects[DEPLOY_PATH] = _deployment(2)
    code, _, err = await kubectl.run(
        "patch",
        "deployment/web",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":3}]',
    )
    assert code != 0
    assert "testing value /spec/replicas failed: test failed" in err


async def test_kubectl_server_side_apply_after_create_conflicts_only_on_changed_values(
    kubectl: Kubectl,
) -> None:
    kubectl.rec.apply_patches = True
    live = _deployment(2)
    track_update(
        None,
        live,
        "kubectl-create",
        "Update",
        GroupVersionKind("apps", "v1", "Deployment"),
        now=NOW,
    )
    kubectl.rec.objects[DEPLOY_PATH] = live
    same = json.dumps(_deployment(2)).encode()
    code, out, err = await kubectl.run("apply", "--server-side", "-f", "-", stdin=same)
    assert code == 0, err
    assert "deployment.apps/web serverside-applied" in out

    code, _, err = await kubectl.run(
        "apply", "--server-side", "-f", "-", stdin=json.dumps(_deployment(5)).encode()
    )
    assert code != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas'
        in err
    )

    code, _, err = await kubectl.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=json.dumps(_deployment(5)).encode(),
    )
    assert code == 0, err
    assert kubectl.rec.objects[DEPLOY_PATH]["spec"]["replicas"] == 5


async def test_client_side_apply_then_server_side_apply_migrates_ownership(
    kubectl: Kubectl,
) -> None:
    kubectl.rec.apply_patches = True
    manifest = json.dumps(_deployment(2)).encode()
    code, out, err = await kubectl.run("apply", "-f", "-", stdin=manifest)
    assert code == 0, err
    assert "deployment.apps/web created" in out
    stored = kubectl.rec.objects[DEPLOY_PATH]
    assert [e["manager"] for e in stored["metadata"]["managedFields"]] == [
        "kubectl-client-side-apply"
    ]

    code, out, err = await kubectl.run(
        "apply", "-f", "-", stdin=json.dumps(_deployment(3)).encode()
    )
    assert code == 0, err
    assert kubectl.rec.objects[DEPLOY_PATH]["spec"]["replicas"] == 3

    # kubectl upgrades client-side ownership to its apply manager (a JSON patch of managedFields
    # with a resourceVersion test), so changing a value it applied client-side is no conflict.
    code, out, err = await kubectl.run(
        "apply", "--server-side", "-f", "-", stdin=json.dumps(_deployment(4)).encode()
    )
    managers_in_patches = [
        re.sub(r".*fieldManager=([^&]+).*", r"\1", p)
        for m, p, *_ in kubectl.rec.bodies
        if m == "PATCH"
    ]
    # The apply, the re-apply of the annotation, and kubectl's managedFields migration.
    assert managers_in_patches[-3:] == ["kubectl", "kubectl-last-applied", "kubectl"]
    assert code == 0, err
    final = kubectl.rec.objects[DEPLOY_PATH]
    assert final["spec"]["replicas"] == 4
    owners = {e["manager"]: e["operation"] for e in final["metadata"]["managedFields"]}
    assert owners.get("kubectl") == "Apply"


async def test_explain_every_kind_recursively(kubectl: Kubectl) -> None:
    for r in REGISTRY.resources:
        name = r.plural
        code, out, err = await kubectl.run(
            "explain", name, "--recursive", f"--api-version={r.group_version}"
        )
        assert code == 0, (name, err)
        assert f"KIND:       {r.kind}\n" in out, (name, out[:300])
        assert "metadata\t<ObjectMeta>" in out, name


async def test_kubectl_patch_gets_unknown_field_warnings(kubectl: Kubectl) -> None:
    kubectl.rec.apply_patches = True
    kubectl.rec.objects[DEPLOY_PATH] = _deployment(2)
    # kubectl patch sends no fieldValidation: the server default, Warn, applies.
    code, _, err = await kubectl.run("patch", "deployment/web", "-p", '{"spec":{"foo":1}}')
    assert code == 0, err
    assert 'Warning: unknown field "spec.foo"' in err


async def test_kubectl_apply_prints_the_strict_patch_error_as_against_a_cluster(
    kubectl: Kubectl,
) -> None:
    kubectl.rec.apply_patches = True
    live = _deployment(2)
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(_deployment(2))
    }
    kubectl.rec.objects[DEPLOY_PATH] = live
    manifest = _deployment(2)
    manifest["spec"]["foo"] = 1
    code, _, err = await kubectl.run("apply", "-f", "-", stdin=json.dumps(manifest).encode())
    assert code != 0
    assert err.startswith('The request is invalid: patch: Invalid value: "map[metadata:map[')
    assert err.rstrip().endswith('": strict decoding error: unknown field "spec.foo"')
