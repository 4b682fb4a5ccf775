"""The garbage collector's wiring (informers → graph → queues → writes) against the fake API
server, which models the server's side of propagation (finalizers, deletionTimestamp)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.gc import GarbageCollector, collected_resources


def rt(api_version: str, kind: str) -> ResourceType:
    r = REGISTRY.by_kind(api_version, kind)
    assert r is not None
    return r


DEPLOYMENTS, REPLICASETS, PODS = (
    rt("apps/v1", "Deployment"),
    rt("apps/v1", "ReplicaSet"),
    rt("v1", "Pod"),
)


def owner_ref(o: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": o["apiVersion"],
        "kind": o["kind"],
        "name": o["metadata"]["name"],
        "uid": o["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def obj(
    api_version: str, kind: str, name: str, owners: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeApiServer, ApiClient, GarbageCollector]]:
    fake = FakeApiServer()
    await fake.start()
    api = ApiClient(ClientConfig(server=fake.url, token=TOKEN))
    api.open()
    factory = SharedInformerFactory(api)
    collector = GarbageCollector(api, factory, workers=2)
    tasks = [*factory.start(), asyncio.create_task(collector.run())]
    try:
        assert await factory.wait_for_cache_sync(5)
        yield fake, api, collector
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
        await fake.close()


async def tree(fake: FakeApiServer) -> None:
    d = fake.put(obj("apps/v1", "Deployment", "web"))
    rs = fake.put(obj("apps/v1", "ReplicaSet", "web-1", [owner_ref(d)]))
    for i in range(2):
        fake.put(obj("v1", "Pod", f"web-1-{i}", [owner_ref(rs)]))


def names(fake: FakeApiServer, r: ResourceType) -> list[str]:
    return sorted(k[3] for k in fake.objects if k[0] == r.group and k[1] == r.plural)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def test_events_are_not_collected_as_upstream() -> None:
    plurals = {r.plural for r in collected_resources()}
    assert "events" not in plurals and {"pods", "replicasets", "leases"} <= plurals


@pytest.mark.parametrize(
    ("policy", "replicasets", "pods"),
    [
        ("Background", [], []),
        ("Foreground", [], []),
        ("Orphan", ["web-1"], ["web-1-0", "web-1-1"]),
    ],
)
async def test_deleting_the_owner_with_each_propagation_policy(
    world: Any, policy: str, replicasets: list[str], pods: list[str]
) -> None:
    fake, api, _ = world
    await tree(fake)
    await api.delete(DEPLOYMENTS, "web", "default", propagation_policy=policy)
    await until(
        lambda: (
            (names(fake, DEPLOYMENTS), names(fake, REPLICASETS), names(fake, PODS))
            == ([], replicasets, pods)
        )
    )
    if policy == "Orphan":
        rs = fake.objects[("apps", "replicasets", "default", "web-1")]
        assert "ownerReferences" not in rs["metadata"]


async def test_foreground_deletes_dependents_before_the_owner(world: Any) -> None:
    fake, api, _ = world
    await tree(fake)
    # Hold one pod with a finalizer of its own: the owners must wait for it.
    await api.patch(
        PODS, "web-1-0", {"metadata": {"finalizers": ["example.com/hold"]}}, "merge", "default"
    )
    await api.delete(DEPLOYMENTS, "web", "default", propagation_policy="Foreground")
    await until(lambda: names(fake, PODS) == ["web-1-0"])
    await asyncio.sleep(0.2)
    assert names(fake, DEPLOYMENTS) == ["web"] and names(fake, REPLICASETS) == ["web-1"]
    await api.patch(PODS, "web-1-0", {"metadata": {"finalizers": None}}, "merge", "default")
    await until(
        lambda: not (names(fake, DEPLOYMENTS) or names(fake, REPLICASETS) or names(fake, PODS))
    )


async def test_a_dependent_of_an_owner_that_never_existed_is_collected(world: Any) -> None:
    fake, _, _ = world
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": "no-such-uid"}
    fake.put(obj("v1", "Pod", "stray", [ghost]))
    fake.put(obj("v1", "Pod", "unowned"))
    await until(lambda: names(fake, PODS) == ["unowned"])


async def test_an_owner_recreated_under_the_same_name_does_not_save_old_dependents(
    world: Any,
) -> None:
    fake, _, _ = world
    old = fake.put(obj("apps/v1", "ReplicaSet", "web-1"))
    fake.put(obj("v1", "Pod", "p", [owner_ref(old)]))
    fake.remove(REPLICASETS, "web-1", "default")
    fake.put(obj("apps/v1", "ReplicaSet", "web-1"))  # a new uid
    await until(lambda: names(fake, PODS) == [])


async def test_a_dependent_keeps_its_live_owner_and_loses_the_dead_one(world: Any) -> None:
    fake, api, _ = world
    a = fake.put(obj("apps/v1", "ReplicaSet", "a"))
    b = fake.put(obj("apps/v1", "ReplicaSet", "b"))
    fake.put(obj("v1", "Pod", "p", [owner_ref(a), owner_ref(b, controller=False)]))
    await api.delete(REPLICASETS, "b", "default")

    def refs() -> list[str]:
        pod = fake.objects.get(("", "pods", "default", "p"))
        return [r["name"] for r in (pod or {}).get("metadata", {}).get("ownerReferences", [])]

    await until(lambda: refs() == ["a"])
