"""The async client against the real API server: TLS with its CA, the token, every verb,
Status errors turned into the ApiError classes, and watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from svcnet.api.errors import AlreadyExists, Conflict, Gone, Invalid, NotFound, Unauthorized
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.kubeconfig import ClientConfig, load_kubeconfig
from svcnet.client.rest import ApiClient, ConnectionFailed


def rt(api_version: str, kind: str) -> ResourceType:
    r = REGISTRY.by_kind(api_version, kind)
    assert r is not None
    return r


CONFIGMAPS = rt("v1", "ConfigMap")
SERVICES = rt("v1", "Service")
DEPLOYMENTS = rt("apps/v1", "Deployment")


@pytest.fixture
async def api(apiserver: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


def cm(name: str, ns: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"a": "1"},
    }


def deployment(name: str, ns: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


async def test_tls_and_token_from_the_kubeconfig_reach_the_server(api: ApiClient) -> None:
    assert (await api.get(rt("v1", "Namespace"), "default"))["metadata"]["name"] == "default"


async def test_a_wrong_token_is_unauthorized(apiserver: Any) -> None:
    cfg = load_kubeconfig(apiserver.kubeconfig)
    bad = ClientConfig(server=cfg.server, ca_data=cfg.ca_data, token="nope")
    async with ApiClient(bad) as c:
        with pytest.raises(Unauthorized):
            await c.list(CONFIGMAPS)


async def test_a_server_certificate_from_another_ca_is_refused(
    apiserver: Any,
) -> None:
    cfg = load_kubeconfig(apiserver.kubeconfig)
    async with ApiClient(ClientConfig(server=cfg.server, token=cfg.token), read_retries=0) as c:
        with pytest.raises(ConnectionFailed):
            await c.list(CONFIGMAPS)


async def test_crud_round_trip(api: ApiClient, namespace: str) -> None:
    created = await api.create(cm("a", namespace))
    assert created["metadata"]["uid"]
    with pytest.raises(AlreadyExists):
        await api.create(cm("a", namespace))
    updated = await api.update({**created, "data": {"a": "2"}})
    assert updated["data"] == {"a": "2"}
    with pytest.raises(Conflict):
        await api.update({**created, "data": {"a": "3"}})  # stale resourceVersion
    await api.delete(CONFIGMAPS, "a", namespace)
    with pytest.raises(NotFound):
        await api.get(CONFIGMAPS, "a", namespace)


@pytest.mark.parametrize(
    ("patch_type", "patch", "expected"),
    [
        ("merge", {"data": {"b": "2"}}, {"a": "1", "b": "2"}),
        ("strategic", {"data": {"b": "2"}}, {"a": "1", "b": "2"}),
        ("json", [{"op": "add", "path": "/data/b", "value": "2"}], {"a": "1", "b": "2"}),
    ],
)
async def test_patch_types(
    api: ApiClient, namespace: str, patch_type: Any, patch: Any, expected: dict[str, str]
) -> None:
    await api.create(cm("p", namespace))
    out = await api.patch(CONFIGMAPS, "p", patch, patch_type, namespace)
    assert out["data"] == expected


async def test_server_side_apply(api: ApiClient, namespace: str) -> None:
    out = await api.apply(cm("s", namespace), field_manager="svcnet-test")
    assert out["data"] == {"a": "1"}
    managers = [m["manager"] for m in out["metadata"].get("managedFields", [])]
    assert "svcnet-test" in managers


async def test_an_invalid_object_raises_invalid_with_causes(api: ApiClient, namespace: str) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"ports": [{"port": 0}]},
    }
    with pytest.raises(Invalid) as info:
        await api.create(svc)
    assert info.value.code == 422
    assert any(c.get("field") == "spec.ports[0].port" for c in info.value.details["causes"])


async def test_list_all_pages_through_continue(api: ApiClient, namespace: str) -> None:
    for i in range(5):
        await api.create(cm(f"c{i}", namespace, page="yes"))
    page = await api.list(CONFIGMAPS, namespace, label_selector="page=yes", limit=2)
    assert len(page["items"]) == 2 and page["metadata"].get("continue")
    everything = await api.list_all(CONFIGMAPS, namespace, label_selector="page=yes", page_size=2)
    assert sorted(o["metadata"]["name"] for o in everything["items"]) == [f"c{i}" for i in range(5)]


async def test_scale_subresource(api: ApiClient, namespace: str) -> None:
    await api.create(deployment("web", namespace))
    await api.scale(DEPLOYMENTS, "web", 3, namespace)
    assert (await api.get_scale(DEPLOYMENTS, "web", namespace))["spec"]["replicas"] == 3


async def test_watch_streams_changes_after_a_list(api: ApiClient, namespace: str) -> None:
    listed = await api.list(CONFIGMAPS, namespace)
    rv = listed["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async for ev in api.watch(CONFIGMAPS, namespace, resource_version=rv, timeout_seconds=10):
            if ev.type != "BOOKMARK":
                seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 3:
                return

    task = asyncio.create_task(watch())
    await api.create(cm("w", namespace))
    await api.patch(CONFIGMAPS, "w", {"data": {"x": "y"}}, "merge", namespace)
    await api.delete(CONFIGMAPS, "w", namespace)
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_a_watch_from_a_compacted_revision_raises_gone(
    api: ApiClient, apiserver: Any, namespace: str
) -> None:
    listed = await api.list(CONFIGMAPS, namespace)
    old_rv = listed["metadata"]["resourceVersion"]
    await api.create(cm("x", namespace))
    await api.delete(CONFIGMAPS, "x", namespace)
    store = apiserver.server.store
    # The store belongs to the server's own loop (another thread): compact it there.
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(store.compact(store.revision), apiserver.loop)
    )
    with pytest.raises(Gone) as info:
        async for _ in api.watch(CONFIGMAPS, namespace, resource_version=old_rv, timeout_seconds=5):
            pass
    assert info.value.code == 410


async def test_create_with_dry_run_stores_nothing(api: ApiClient, namespace: str) -> None:
    out = await api.create(cm("dry", namespace), dry_run=True)
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        await api.get(CONFIGMAPS, "dry", namespace)


async def test_binding_a_pod_sets_its_node(api: ApiClient, namespace: str) -> None:
    pod = await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }
    )
    await api.bind("p", namespace, "node-x", pod["metadata"]["uid"])
    assert (await api.get("pods", "p", namespace))["spec"]["nodeName"] == "node-x"


async def test_update_status_changes_only_the_status(api: ApiClient, namespace: str) -> None:
    await api.create(deployment("st", namespace))
    current = await api.get(DEPLOYMENTS, "st", namespace)
    current.setdefault("apiVersion", "apps/v1")
    current.setdefault("kind", "Deployment")
    current["status"] = {"observedGeneration": 1, "replicas": 1}
    current["spec"]["replicas"] = 5  # ignored by the status subresource
    out = await api.update_status(current)
    assert out["status"]["replicas"] == 1 and out["spec"]["replicas"] == 1
