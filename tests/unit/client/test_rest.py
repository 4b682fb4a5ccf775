"""ApiClient against the fake API server: verbs, paging, errors at the boundary, watch."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from svcnet.api.errors import AlreadyExists, Conflict, Gone, NotFound, Unauthorized
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.fake import FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import (
    ApiClient,
    ConnectionFailed,
    UnknownResource,
    WatchEvent,
    object_path,
    resolve_resource,
    resource_of,
)


def rt(api_version: str, kind: str) -> ResourceType:
    r = REGISTRY.by_kind(api_version, kind)
    assert r is not None
    return r


SERVICES = rt("v1", "Service")
NODES = rt("v1", "Node")
DEPLOYMENTS = rt("apps/v1", "Deployment")


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("r", "ns", "name", "sub", "path"),
    [
        (SERVICES, "default", None, None, "/api/v1/namespaces/default/services"),
        (SERVICES, None, None, None, "/api/v1/services"),
        (
            SERVICES,
            "kube-system",
            "dns",
            "status",
            "/api/v1/namespaces/kube-system/services/dns/status",
        ),
        (NODES, "ignored", "n1", None, "/api/v1/nodes/n1"),
        (
            DEPLOYMENTS,
            "default",
            "web",
            "scale",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ),
    ],
)
def test_object_paths_follow_the_kubernetes_layout(
    r: ResourceType, ns: str | None, name: str | None, sub: str | None, path: str
) -> None:
    assert object_path(r, ns, name, sub) == path


def test_resource_of_an_object_with_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(UnknownResource):
        resource_of({"apiVersion": "v9", "kind": "Nope"})


async def test_create_then_get_round_trips(client: ApiClient) -> None:
    created = await client.create(cm("a"))
    assert created["metadata"]["uid"]
    got = await client.get(rt("v1", "ConfigMap"), "a", "default")
    assert got["data"] == {"k": "v"}


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("get-missing", NotFound),
        ("create-twice", AlreadyExists),
        ("stale-update", Conflict),
    ],
)
async def test_non_2xx_answers_raise_the_matching_api_error(
    client: ApiClient, action: str, error: type[Exception]
) -> None:
    configmaps = rt("v1", "ConfigMap")
    with pytest.raises(error) as info:
        if action == "get-missing":
            await client.get(configmaps, "nope", "default")
        elif action == "create-twice":
            await client.create(cm("a"))
            await client.create(cm("a"))
        else:
            first = await client.create(cm("a"))
            await client.update(first)
            await client.update(first)  # carries the old resourceVersion
    assert info.value.code in (404, 409)  # type: ignore[attr-defined]


async def test_a_wrong_token_is_unauthorized(fake: FakeApiServer) -> None:
    async with ApiClient(ClientConfig(server=fake.url, token="wrong")) as c:
        with pytest.raises(Unauthorized):
            await c.list(SERVICES)


async def test_list_all_follows_continue_tokens(client: ApiClient, fake: FakeApiServer) -> None:
    for i in range(7):
        await client.create(cm(f"c{i}"))
    result = await client.list_all(rt("v1", "ConfigMap"), "default", page_size=3)
    assert [o["metadata"]["name"] for o in result["items"]] == [f"c{i}" for i in range(7)]
    pages = [q for m, p, q in fake.requests if m == "GET" and p.endswith("/configmaps")]
    assert len(pages) == 3
    assert result["metadata"]["resourceVersion"]


async def test_list_passes_selectors(client: ApiClient) -> None:
    await client.create(cm("a", app="web"))
    await client.create(cm("b", app="db"))
    result = await client.list(rt("v1", "ConfigMap"), "default", label_selector="app=web")
    assert [o["metadata"]["name"] for o in result["items"]] == ["a"]


async def test_patch_sends_the_content_type_of_its_kind(
    client: ApiClient, fake: FakeApiServer
) -> None:
    await client.create(cm("a"))
    out = await client.patch(rt("v1", "ConfigMap"), "a", {"data": {"x": "y"}}, "merge", "default")
    assert out["data"] == {"k": "v", "x": "y"}


async def test_apply_needs_a_field_manager(client: ApiClient) -> None:
    with pytest.raises(ValueError):
        await client.patch(rt("v1", "ConfigMap"), "a", {}, "apply", "default")


async def test_delete_sends_delete_options(client: ApiClient, fake: FakeApiServer) -> None:
    await client.create(cm("a"))
    out = await client.delete(
        rt("v1", "ConfigMap"), "a", "default", propagation_policy="Foreground"
    )
    # The server saw the policy: the object waits for the collector with its finalizer.
    assert out["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert out["metadata"]["deletionTimestamp"]


async def test_delete_with_a_stale_uid_precondition_is_a_conflict(client: ApiClient) -> None:
    await client.create(cm("a"))
    with pytest.raises(Conflict):
        await client.delete(
            rt("v1", "ConfigMap"), "a", "default", preconditions={"uid": "someone-else"}
        )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_connection_failed_after_read_retries() -> None:
    port = _closed_port()
    async with ApiClient(
        ClientConfig(server=f"http://127.0.0.1:{port}"), read_retries=2, retry_backoff=0.001
    ) as c:
        with pytest.raises(ConnectionFailed):
            await c.list(SERVICES)


async def test_an_error_answer_is_not_retried(fake: FakeApiServer, client: ApiClient) -> None:
    # A 5xx is an answer, not a connection failure: retrying it is the caller's call.
    fake.fail_next(503)
    with pytest.raises(Exception) as info:
        await client.list(SERVICES)
    assert getattr(info.value, "code", None) == 503
    assert len(fake.requests) == 1


async def test_watch_yields_events_after_the_resource_version(
    client: ApiClient, fake: FakeApiServer
) -> None:
    first = await client.create(cm("a"))
    rv = first["metadata"]["resourceVersion"]
    await client.create(cm("b"))
    await client.delete(rt("v1", "ConfigMap"), "a", "default")
    events: list[WatchEvent] = []
    async for ev in client.watch(
        rt("v1", "ConfigMap"), "default", resource_version=rv, timeout_seconds=1
    ):
        events.append(ev)
        if len(events) == 2:
            break
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


async def test_a_watch_from_a_compacted_version_raises_gone(
    client: ApiClient, fake: FakeApiServer
) -> None:
    await client.create(cm("a"))
    fake.compact()
    with pytest.raises(Gone):
        async for _ in client.watch(rt("v1", "ConfigMap"), resource_version="1"):
            pass


async def test_a_watch_broken_by_the_server_is_connection_failed_or_ends(
    client: ApiClient, fake: FakeApiServer
) -> None:
    got = []

    async def consume() -> None:
        async for ev in client.watch(rt("v1", "ConfigMap"), resource_version=str(fake.rv)):
            got.append(ev)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    fake.drop_watches()
    # Either way is fine (clean end or broken stream); hanging is not.
    with contextlib.suppress(ConnectionFailed):
        await asyncio.wait_for(task, 2)
    assert got == []


@pytest.mark.parametrize(
    ("name", "plural", "group"),
    [
        ("svc", "services", ""),
        ("Service", "services", ""),
        ("pods", "pods", ""),
        ("pod", "pods", ""),
        ("deployments.apps", "deployments", "apps"),
        ("deploy", "deployments", "apps"),
        ("netpol", "networkpolicies", "networking.k8s.io"),
    ],
)
def test_resources_resolve_by_the_names_kubectl_takes(name: str, plural: str, group: str) -> None:
    r = resolve_resource(name)
    assert (r.plural, r.group) == (plural, group)


def test_an_unknown_resource_name_is_an_error() -> None:
    with pytest.raises(UnknownResource, match="doesn't have a resource type"):
        resolve_resource("widgets")


async def test_verbs_take_resource_names(client: ApiClient) -> None:
    await client.create(cm("a"))
    assert (await client.get("cm", "a", "default"))["metadata"]["name"] == "a"
