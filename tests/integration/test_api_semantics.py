"""API machinery over raw HTTPS: concurrency, dryRun, namespaces, pods, lists, watches,
discovery, Table."""

from __future__ import annotations

import json
import time

import pytest
from apiserver_harness import Http


def _post(http: Http, path: str, obj: dict, query: str = "") -> tuple[int, dict]:
    code, _, out = http.request("POST", path + query, json.dumps(obj).encode())
    return code, json.loads(out)


def _svc(name: str, **spec: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec},
    }


def _cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def test_update_with_stale_resource_version_is_409(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _, created = _post(http, base, _cm("c"))
    stale = dict(created, data={"a": "1"})
    code, _, out = http.request("PUT", f"{base}/c", json.dumps(stale).encode())
    assert code == 200
    code, _, out = http.request(
        "PUT", f"{base}/c", json.dumps(dict(created, data={"a": "2"})).encode()
    )
    status = json.loads(out)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has '
        "been modified; please apply your changes to the latest version "
        "and try again"
    )
    # Without a resourceVersion the update is unconditional.
    unconditional = dict(created, data={"a": "3"})
    del unconditional["metadata"]["resourceVersion"]
    assert http.request("PUT", f"{base}/c", json.dumps(unconditional).encode())[0] == 200


def test_create_existing_is_409_already_exists(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _post(http, base, _cm("dup"))
    code, status = _post(http, base, _cm("dup"))
    assert (code, status["reason"], status["message"]) == (
        409,
        "AlreadyExists",
        'configmaps "dup" already exists',
    )


def test_generate_name_uid_timestamp_generation(http: Http, namespace: str) -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"generateName": "web-"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    code, d = _post(http, f"/apis/apps/v1/namespaces/{namespace}/deployments", obj)
    assert code == 201
    meta = d["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == 9
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0


def test_dry_run_stores_nothing_and_keeps_no_allocation(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    code, svc = _post(
        http, base, _svc("dry", clusterIP="10.96.66.66", type="NodePort"), "?dryRun=All"
    )
    assert code == 201 and svc["spec"]["clusterIP"] == "10.96.66.66"
    assert http.request("GET", f"{base}/dry")[0] == 404
    code, svc = _post(http, base, _svc("real", clusterIP="10.96.66.66"))
    assert code == 201, svc


def test_cluster_ip_released_on_delete(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    assert _post(http, base, _svc("a", clusterIP="10.96.55.55"))[0] == 201
    assert http.request("DELETE", f"{base}/a")[0] == 200
    assert _post(http, base, _svc("b", clusterIP="10.96.55.55"))[0] == 201


def test_create_in_missing_namespace_is_404(http: Http) -> None:
    code, status = _post(http, "/api/v1/namespaces/nope/configmaps", _cm("c"))
    assert (code, status["message"]) == (404, 'namespaces "nope" not found')


def test_create_in_terminating_namespace_is_403(http: Http) -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "it-term", "finalizers": ["example.com/hold"]},
    }
    _post(http, "/api/v1/namespaces", ns)
    http.request("DELETE", "/api/v1/namespaces/it-term")
    code, status = _post(http, "/api/v1/namespaces/it-term/configmaps", _cm("c"))
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        'configmaps "c" is forbidden: unable to create new content in '
        "namespace it-term because it is being terminated"
    )
    http.request(
        "PATCH",
        "/api/v1/namespaces/it-term",
        b'{"metadata":{"finalizers":null}}',
        "application/merge-patch+json",
    )


def test_namespace_deletion_empties_it_and_finishes(http: Http) -> None:
    _post(
        http,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "it-gone"}},
    )
    _post(http, "/api/v1/namespaces/it-gone/configmaps", _cm("c"))
    http.request("DELETE", "/api/v1/namespaces/it-gone")
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline and http.request("GET", "/api/v1/namespaces/it-gone")[0] == 200
    ):
        time.sleep(0.2)
    assert http.request("GET", "/api/v1/namespaces/it-gone")[0] == 404


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def test_binding_sets_node_once(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    _post(http, base, _pod("p"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "node-1"},
    }
    assert _post(http, f"{base}/p/binding", binding)[0] == 201
    pod = json.loads(http.request("GET", f"{base}/p")[2])
    assert pod["spec"]["nodeName"] == "node-1"
    code, status = _post(http, f"{base}/p/binding", binding)
    assert (code, status["reason"]) == (409, "Conflict")
    assert 'is already assigned to node "node-1"' in status["message"]


def test_pod_on_existing_node_is_deleted_gracefully(http: Http, namespace: str) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n-{namespace}"}}
    _post(http, "/api/v1/nodes", node)
    pod = _pod("g")
    pod["spec"]["nodeName"] = f"n-{namespace}"
    base = f"/api/v1/namespaces/{namespace}/pods"
    _post(http, base, pod)
    code, _, out = http.request("DELETE", f"{base}/g")
    meta = json.loads(out)["metadata"]
    assert code == 200 and meta["deletionGracePeriodSeconds"] == 30 and meta["deletionTimestamp"]
    assert http.request("GET", f"{base}/g")[0] == 200
    assert http.request("DELETE", f"{base}/g?gracePeriodSeconds=0")[0] == 200
    assert http.request("GET", f"{base}/g")[0] == 404
    http.request("DELETE", f"/api/v1/nodes/n-{namespace}")


def test_unbound_pod_is_deleted_at_once(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    _post(http, base, _pod("u"))
    assert http.request("DELETE", f"{base}/u")[0] == 200
    assert http.request("GET", f"{base}/u")[0] == 404


@pytest.mark.parametrize(
    ("plural", "obj", "answer"),
    [
        ("services", _svc("d"), "Service"),
        ("pods", _pod("d"), "Pod"),
        ("configmaps", _cm("d"), "Status"),
    ],
)
def test_delete_answers_the_object_for_the_kinds_upstream_does(
    http: Http, namespace: str, plural: str, obj: dict, answer: str
) -> None:
    """Upstream's ReturnDeletedObject: Services, Pods and Namespaces answer the deleted
    object; other kinds a Success Status naming it."""
    base = f"/api/v1/namespaces/{namespace}/{plural}"
    _post(http, base, obj)
    code, _, out = http.request("DELETE", f"{base}/d")
    deleted = json.loads(out)
    assert (code, deleted["kind"]) == (200, answer)
    if answer == "Status":
        details = deleted["details"]
        assert (details["name"], details["kind"], bool(details["uid"])) == ("d", plural, True)
    else:
        assert deleted["metadata"]["name"] == "d"


def test_list_limit_and_continue(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        _post(http, base, _cm(f"c{i}", even=str(i % 2 == 0).lower()))
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        q = "?limit=2&labelSelector=even%3Dtrue" + (f"&continue={token}" if token else "")
        page = json.loads(http.request("GET", base + q)[2])
        names += [i["metadata"]["name"] for i in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == ["c0", "c2", "c4"] and pages == 2


def test_watch_sends_added_modified_deleted_and_bookmark(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _, created = _post(http, base, _cm("w", sel="yes"))
    rv = created["metadata"]["resourceVersion"]
    http.request(
        "PATCH",
        f"{base}/w",
        b'{"metadata":{"labels":{"sel":"no"}}}',
        "application/merge-patch+json",
    )
    http.request(
        "PATCH",
        f"{base}/w",
        b'{"metadata":{"labels":{"sel":"yes"}}}',
        "application/merge-patch+json",
    )
    http.request("DELETE", f"{base}/w")
    _, _, out = http.request(
        "GET",
        f"{base}?watch=1&resourceVersion={int(rv) - 1}&labelSelector=sel%3Dyes"
        "&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    events = [json.loads(line) for line in out.splitlines()]
    # Moving out of the selector is DELETED, moving back in is ADDED (upstream's cacher).
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED", "DELETED", "BOOKMARK"]
    assert events[-1]["object"]["metadata"]["resourceVersion"]


def test_watch_without_resource_version_starts_with_current_state(
    http: Http, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _post(http, base, _cm("s1"))
    out = http.request("GET", f"{base}?watch=true&timeoutSeconds=1")[2]
    events = [json.loads(line) for line in out.splitlines()]
    # kube-root-ca.crt is every namespace's too (the root CA publisher's), once it made it.
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert [s for s in seen if s[1] != "kube-root-ca.crt"] == [("ADDED", "s1")]


def test_aggregated_discovery(http: Http) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    _, headers, out = http.request("GET", "/apis", headers={"Accept": accept})
    assert headers["Content-Type"] == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    doc = json.loads(out)
    groups = {g["metadata"]["name"] for g in doc["items"]}
    assert {
        "apps",
        "networking.k8s.io",
        "gateway.networking.k8s.io",
        "discovery.k8s.io",
        "coordination.k8s.io",
    } <= groups
    core = json.loads(http.request("GET", "/api", headers={"Accept": accept})[2])
    services = next(
        r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "services"
    )
    assert services["shortNames"] == ["svc"] and services["scope"] == "Namespaced"


@pytest.mark.parametrize(
    "path",
    ["/version", "/openapi/v3", "/openapi/v2", "/api/v1", "/apis/apps/v1", "/openapi/v3/api/v1"],
)
def test_non_resource_endpoints(http: Http, path: str) -> None:
    code, _, out = http.request("GET", path)
    assert code == 200 and json.loads(out)


def test_table_response(http: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/services"
    _post(http, base, _svc("t", type="NodePort"))
    _, _, out = http.request(
        "GET",
        base,
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    table = json.loads(out)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
        "Age",
        "Selector",
    ]
    cells = table["rows"][0]["cells"]
    assert cells[0] == "t" and cells[1] == "NodePort" and cells[4].startswith("80:3")
