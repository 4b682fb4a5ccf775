"""The garbage collector against the real API server and the real kubectl.

A Deployment owns a ReplicaSet which owns two Pods (ownerReferences with
blockOwnerDeletion, as the workload controllers write them; no workload controller runs here,
so the test writes them itself). ``kubectl delete deployment --cascade=…`` then leaves exactly
the survivors upstream's collector leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from svcnet.api.errors import NotFound
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.gc import GarbageCollector


def rt(api_version: str, kind: str) -> ResourceType:
    r = REGISTRY.by_kind(api_version, kind)
    assert r is not None
    return r


DEPLOYMENTS = rt("apps/v1", "Deployment")
REPLICASETS = rt("apps/v1", "ReplicaSet")
PODS = rt("v1", "Pod")
CONFIGMAPS = rt("v1", "ConfigMap")
LABELS = {"app": "web"}
TEMPLATE = {
    "metadata": {"labels": LABELS},
    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
}


def owner_ref(obj: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


@pytest.fixture
async def gc(apiserver: Any, namespace: str) -> AsyncIterator[ApiClient]:
    """A running collector (watching the test's namespace and everything cluster-wide)."""
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        collector = GarbageCollector(api, factory, workers=2)
        # Bare tasks, not a TaskGroup: a fixture's setup and teardown run in different tasks.
        tasks = [*factory.start(), asyncio.create_task(collector.run())]
        try:
            assert await factory.wait_for_cache_sync(20)
            yield api
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def make_tree(api: ApiClient, ns: str) -> dict[str, dict[str, Any]]:
    deploy = await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": TEMPLATE},
        }
    )
    deploy.setdefault("apiVersion", "apps/v1")
    deploy.setdefault("kind", "Deployment")
    rs = await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": ns, "ownerReferences": [owner_ref(deploy)]},
            "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": TEMPLATE},
        }
    )
    rs.setdefault("apiVersion", "apps/v1")
    rs.setdefault("kind", "ReplicaSet")
    tree = {"deploy": deploy, "rs": rs}
    for i in range(2):
        tree[f"pod{i}"] = await api.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"web-1-{i}",
                    "namespace": ns,
                    "labels": LABELS,
                    "ownerReferences": [owner_ref(rs)],
                },
                "spec": TEMPLATE["spec"],
            }
        )
    return tree


async def names(api: ApiClient, r: ResourceType, ns: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await api.list(r, ns))["items"])


async def until(cond: Callable[[], Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await cond():
            await asyncio.sleep(0.05)


async def kubectl_delete(kubectl: Any, *args: str) -> None:
    await asyncio.to_thread(kubectl, "delete", *args)


@pytest.mark.parametrize(
    ("cascade", "deployments", "replicasets", "pods"),
    [
        ("background", [], [], []),
        ("foreground", [], [], []),
        ("orphan", [], ["web-1"], ["web-1-0", "web-1-1"]),
    ],
)
async def test_kubectl_delete_cascade(
    gc: ApiClient,
    kubectl: Any,
    namespace: str,
    cascade: str,
    deployments: list[str],
    replicasets: list[str],
    pods: list[str],
) -> None:
    await make_tree(gc, namespace)
    await kubectl_delete(
        kubectl, "deployment", "web", f"--cascade={cascade}", "--wait=true", "--timeout=30s"
    )

    async def settled() -> bool:
        return (
            await names(gc, DEPLOYMENTS, namespace),
            await names(gc, REPLICASETS, namespace),
            await names(gc, PODS, namespace),
        ) == (deployments, replicasets, pods)

    await until(settled)
    if cascade == "orphan":
        rs = await gc.get(REPLICASETS, "web-1", namespace)
        assert not rs["metadata"].get("ownerReferences")
        pod = await gc.get(PODS, "web-1-0", namespace)
        assert pod["metadata"]["ownerReferences"][0]["name"] == "web-1"  # only the RS' ref went


async def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone(
    gc: ApiClient, kubectl: Any, namespace: str
) -> None:
    tree = await make_tree(gc, namespace)
    # A finalizer of someone else's holds one pod: the deployment must wait for it.
    await gc.patch(
        PODS, "web-1-0", {"metadata": {"finalizers": ["example.com/hold"]}}, "merge", namespace
    )
    await gc.delete(DEPLOYMENTS, "web", namespace, propagation_policy="Foreground")

    async def only_held_pod_left() -> bool:
        return await names(gc, PODS, namespace) == ["web-1-0"]

    await until(only_held_pod_left)
    deploy = await gc.get(DEPLOYMENTS, "web", namespace)
    assert deploy["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in deploy["metadata"]["finalizers"]
    assert deploy["metadata"]["uid"] == tree["deploy"]["metadata"]["uid"]
    await gc.patch(PODS, "web-1-0", {"metadata": {"finalizers": None}}, "merge", namespace)

    async def all_gone() -> bool:
        return not any(
            [
                await names(gc, DEPLOYMENTS, namespace),
                await names(gc, REPLICASETS, namespace),
                await names(gc, PODS, namespace),
            ]
        )

    await until(all_gone)


async def test_a_dangling_owner_reference_is_collected(gc: ApiClient, namespace: str) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "never-was",
        "uid": "00000000-0000-0000-0000-000000000042",
    }
    await gc.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "orphan", "namespace": namespace, "ownerReferences": [ghost]},
        }
    )
    await gc.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "unowned", "namespace": namespace},
        }
    )

    async def collected() -> bool:
        try:
            await gc.get(CONFIGMAPS, "orphan", namespace)
        except NotFound:
            return True
        return False

    await until(collected)
    assert "unowned" in await names(gc, CONFIGMAPS, namespace)


async def test_a_dependent_with_one_live_owner_left_only_loses_the_dead_reference(
    gc: ApiClient, namespace: str
) -> None:
    alive = await gc.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "alive", "namespace": namespace},
        }
    )
    alive.setdefault("apiVersion", "v1")
    alive.setdefault("kind", "ConfigMap")
    doomed = await gc.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "doomed", "namespace": namespace},
        }
    )
    doomed.setdefault("apiVersion", "v1")
    doomed.setdefault("kind", "ConfigMap")
    await gc.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "child",
                "namespace": namespace,
                "ownerReferences": [owner_ref(alive), owner_ref(doomed, controller=False)],
            },
        }
    )
    await gc.delete(CONFIGMAPS, "doomed", namespace)

    async def one_ref_left() -> bool:
        child = await gc.get(CONFIGMAPS, "child", namespace)
        return [r["name"] for r in child["metadata"].get("ownerReferences", [])] == ["alive"]

    await until(one_ref_left)
