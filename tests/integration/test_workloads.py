"""The workload controllers against the real API server (in-process) and the real kubectl.

No nodes run here: the tests play the node agent and write pod status (Running, Ready with a
lastTransitionTime) through the API, which is what the controllers react to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest

from svcnet.api.errors import NotFound
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.podutil import template_hash
from svcnet.controllers.workloads import WorkloadControllers, run_workload_controllers
from svcnet.testing.polling import eventually


def rt(api_version: str, kind: str) -> ResourceType:
    r = REGISTRY.by_kind(api_version, kind)
    assert r is not None
    return r


DEPLOYMENTS = rt("apps/v1", "Deployment")
REPLICASETS = rt("apps/v1", "ReplicaSet")
STATEFULSETS = rt("apps/v1", "StatefulSet")
PODS = rt("v1", "Pod")
EVENTS = rt("v1", "Event")


def template(image: str = "nginx:1.25", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def deployment(ns: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(),
            **spec,
        },
    }


@pytest.fixture
async def cluster(
    apiserver: Any, namespace: str
) -> AsyncIterator[tuple[ApiClient, WorkloadControllers]]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api, namespace=namespace)
        controllers = run_workload_controllers(api, factory)
        try:
            assert await factory.wait_for_cache_sync(20)
            yield api, controllers
        finally:
            for t in controllers.tasks:
                t.cancel()
            await asyncio.gather(*controllers.tasks, return_exceptions=True)


async def pods_of(api: ApiClient, ns: str, selector: str = "app=web") -> list[dict[str, Any]]:
    items = (await api.list(PODS, ns, label_selector=selector))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def replica_sets(api: ApiClient, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.list(REPLICASETS, ns))["items"]
    return sorted(
        items,
        key=lambda rs: int(
            rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0)
        ),
    )


async def mark_ready(api: ApiClient, pod: dict[str, Any], ready: bool = True) -> None:
    """What a node agent writes when the pod's containers run and pass readiness."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh = await api.get(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
    fresh.setdefault("apiVersion", "v1")
    fresh.setdefault("kind", "Pod")
    fresh["status"] = {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
            {
                "type": "ContainersReady",
                "status": "True" if ready else "False",
                "lastTransitionTime": now,
            },
        ],
    }
    await api.update_status(fresh)


async def mark_all_ready(api: ApiClient, ns: str, selector: str = "app=web") -> None:
    for pod in await pods_of(api, ns, selector):
        if not any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or ()
        ):
            await mark_ready(api, pod)


def rs_replicas(rs: dict[str, Any]) -> int:
    return int(rs["spec"]["replicas"])


async def events_of(api: ApiClient, ns: str, reason: str) -> list[str]:
    items = (await api.list(EVENTS, ns))["items"]
    return [e["message"] for e in items if e.get("reason") == reason]


async def event_count(api: ApiClient, ns: str, reason: str) -> int:
    items = (await api.list(EVENTS, ns))["items"]
    return sum(int(e.get("count") or 1) for e in items if e.get("reason") == reason)


# -- ReplicaSet ------------------------------------------------------------------------------


async def test_replicaset_creates_pods_with_generate_name_and_owner_refs(
    cluster: Any, namespace: str
) -> None:
    api, ctl = cluster
    rs = await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "front", "namespace": namespace},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "front"}},
                "template": template(labels={"app": "front"}),
            },
        }
    )
    pods = await eventually(
        lambda: _exactly(pods_of(api, namespace, "app=front"), 3), what="3 pods"
    )
    for pod in pods:
        assert pod["metadata"]["name"].startswith("front-")
        assert len(pod["metadata"]["name"]) == len("front-") + 5
        [ref] = pod["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "front",
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    await mark_all_ready(api, namespace, "app=front")

    async def status_ready() -> dict[str, Any] | None:
        st = (await api.get(REPLICASETS, "front", namespace)).get("status") or {}
        return st if st.get("availableReplicas") == 3 else None

    st = await eventually(status_ready, what="3 available")
    assert st["replicas"] == 3 and st["readyReplicas"] == 3 and st["fullyLabeledReplicas"] == 3
    assert st["observedGeneration"] == 1
    await ctl.flush_events()
    created = await events_of(api, namespace, "SuccessfulCreate")
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)


async def _exactly(coro: Awaitable[list[dict[str, Any]]], n: int) -> list[dict[str, Any]] | None:
    items = await coro
    return items if len(items) == n else None


async def test_replicaset_adopts_orphan_and_releases_relabelled_pod(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    orphan = await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "stray", "namespace": namespace, "labels": {"app": "front"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }
    )
    rs = await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "front", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "front"}},
                "template": template(labels={"app": "front"}),
            },
        }
    )
    await eventually(lambda: _exactly(pods_of(api, namespace, "app=front"), 2), what="2 pods")

    async def adopted() -> bool:
        p = await api.get(PODS, "stray", namespace)
        refs = p["metadata"].get("ownerReferences") or []
        return any(r["uid"] == rs["metadata"]["uid"] and r.get("controller") for r in refs)

    await eventually(adopted, what="adoption")
    # The orphan counted: one pod created, not two.
    assert len(await pods_of(api, namespace, "app=front")) == 2
    await api.patch(
        PODS, "stray", {"metadata": {"labels": {"app": "elsewhere"}}}, "merge", namespace
    )

    async def released() -> bool:
        p = await api.get(PODS, "stray", namespace)
        return not p["metadata"].get("ownerReferences")

    await eventually(released, what="release")
    await eventually(
        lambda: _exactly(pods_of(api, namespace, "app=front"), 2),
        what="a replacement for the released pod",
    )
    assert orphan["metadata"]["uid"]


async def test_replicaset_never_creates_more_than_replicas_while_its_cache_lags(
    cluster: Any, namespace: str
) -> None:
    # Every pod the controller creates comes back as an informer event that enqueues the
    # ReplicaSet again, often before the cache has all of this burst's pods: only the
    # expectations stop those syncs from creating again.
    api, _ = cluster
    rv = (await api.list(PODS, namespace))["metadata"]["resourceVersion"]
    added: set[str] = set()

    async def watch_adds() -> None:
        async for ev in api.watch(
            PODS, namespace, resource_version=rv, label_selector="app=many", timeout_seconds=60
        ):
            if ev.type == "ADDED":
                added.add(ev.object["metadata"]["name"])

    watcher = asyncio.create_task(watch_adds())
    try:
        await api.create(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": "many", "namespace": namespace},
                "spec": {
                    "replicas": 40,
                    "selector": {"matchLabels": {"app": "many"}},
                    "template": template(labels={"app": "many"}),
                },
            }
        )
        await eventually(lambda: _exactly(pods_of(api, namespace, "app=many"), 40), what="40 pods")
        await asyncio.sleep(1.0)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert len(await pods_of(api, namespace, "app=many")) == 40
    assert len(added) == 40


async def test_replicaset_scale_down_deletes_not_ready_pods_first(
    cluster: Any, namespace: str
) -> None:
    api, ctl = cluster
    await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "front", "namespace": namespace},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "front"}},
                "template": template(labels={"app": "front"}),
            },
        }
    )
    pods = await eventually(
        lambda: _exactly(pods_of(api, namespace, "app=front"), 3), what="3 pods"
    )
    ready = sorted(p["metadata"]["name"] for p in pods)[:2]
    for p in pods:
        if p["metadata"]["name"] in ready:
            await mark_ready(api, p)

    async def two_ready() -> bool:
        st = (await api.get(REPLICASETS, "front", namespace)).get("status") or {}
        return st.get("readyReplicas") == 2

    # Scale only once the controller has seen the readiness (its status says so), as a user
    # would: before that its cache may still hold three not-ready pods, a tie it may break
    # either way.
    await eventually(two_ready, what="2 ready in the ReplicaSet's status")
    await api.scale(REPLICASETS, "front", 2, namespace)
    left = await eventually(
        lambda: _exactly(pods_of(api, namespace, "app=front"), 2), what="2 pods"
    )
    assert sorted(p["metadata"]["name"] for p in left) == ready
    await ctl.flush_events()
    assert len(await events_of(api, namespace, "SuccessfulDelete")) == 1


# -- Deployment ------------------------------------------------------------------------------


async def test_deployment_of_three_creates_a_replicaset_and_three_pods(
    cluster: Any, namespace: str
) -> None:
    api, ctl = cluster
    d = await api.create(deployment(namespace, 3))
    [rs] = await eventually(lambda: _exactly(replica_sets(api, namespace), 1), what="one rs")
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    pods = await eventually(lambda: _exactly(pods_of(api, namespace), 3), what="3 pods")
    assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in pods)
    assert all(p["metadata"]["name"].startswith(f"web-{h}-") for p in pods)
    await mark_all_ready(api, namespace)

    async def complete() -> dict[str, Any] | None:
        got = await api.get(DEPLOYMENTS, "web", namespace)
        st = got.get("status") or {}
        conds = {c["type"]: c for c in st.get("conditions") or ()}
        ok = (
            st.get("availableReplicas") == 3
            and st.get("updatedReplicas") == 3
            and conds.get("Progressing", {}).get("reason") == "NewReplicaSetAvailable"
        )
        return got if ok else None

    got = await eventually(complete, what="rollout complete")
    st = got["status"]
    assert st["observedGeneration"] == got["metadata"]["generation"]
    assert st["readyReplicas"] == 3 and st["replicas"] == 3
    assert st.get("unavailableReplicas", 0) == 0
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    assert got["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    await ctl.flush_events()
    assert await events_of(api, namespace, "ScalingReplicaSet") == [
        f"Scaled up replica set web-{h} to 3"
    ]


async def test_deleted_deployment_pod_is_replaced_by_a_new_one(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(deployment(namespace, 2))
    pods = await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")
    victim = pods[0]["metadata"]["name"]
    await api.delete(PODS, victim, namespace)

    async def replaced() -> list[str] | None:
        names = sorted(p["metadata"]["name"] for p in await pods_of(api, namespace))
        return names if len(names) == 2 and victim not in names else None

    names = await eventually(replaced, what="a replacement")
    assert pods[1]["metadata"]["name"] in names


async def test_hash_collision_bumps_collision_count_and_picks_another_name(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    # Paused: the controller makes no ReplicaSet yet, so we can take its name first.
    d = await api.create(deployment(namespace, 1, paused=True))
    taken = f"web-{template_hash(d['spec']['template'])}"
    await api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": taken, "namespace": namespace},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "squatter"}},
                "template": template("busybox", labels={"app": "squatter"}),
            },
        }
    )
    await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, "merge", namespace)
    rs = await eventually(lambda: _revision(api, namespace, "1"), what="the new rs")
    assert rs["metadata"]["name"] == f"web-{template_hash(d['spec']['template'], 1)}"
    got = await api.get(DEPLOYMENTS, "web", namespace)
    assert got["status"]["collisionCount"] == 1


async def test_deployment_scaling_up_and_down(cluster: Any, namespace: str) -> None:
    api, ctl = cluster
    await api.create(deployment(namespace, 2))
    await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")
    await api.scale(DEPLOYMENTS, "web", 5, namespace)
    await eventually(lambda: _exactly(pods_of(api, namespace), 5), what="5 pods")
    await api.scale(DEPLOYMENTS, "web", 1, namespace)
    await eventually(lambda: _exactly(pods_of(api, namespace), 1), what="1 pod")
    [rs] = await replica_sets(api, namespace)
    name = rs["metadata"]["name"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"
    await ctl.flush_events()
    assert await events_of(api, namespace, "ScalingReplicaSet") == [
        f"Scaled up replica set {name} to 2",
        f"Scaled up replica set {name} to 5 from 2",
        f"Scaled down replica set {name} to 1 from 5",
    ]


async def _rs_sizes(api: ApiClient, ns: str) -> list[int]:
    return [rs_replicas(rs) for rs in await replica_sets(api, ns)]


async def _settle(api: ApiClient, ns: str, want: list[int]) -> list[int]:
    async def check() -> list[int] | None:
        sizes = await _rs_sizes(api, ns)
        return sizes if sizes == want else None

    return await eventually(check, what=f"replica sets at {want}")


async def _ready_new_pods(api: ApiClient, ns: str, h: str) -> None:
    await mark_all_ready(api, ns, f"app=web,pod-template-hash={h}")


async def test_rolling_update_steps_with_max_surge_one_max_unavailable_zero(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(
        deployment(
            namespace,
            3,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
        )
    )
    await eventually(lambda: _exactly(pods_of(api, namespace), 3), what="3 pods")
    await mark_all_ready(api, namespace)
    await eventually(lambda: _available(api, namespace, 3), what="3 available")
    await api.patch(
        DEPLOYMENTS, "web", {"spec": {"template": template("nginx:1.26")}}, "merge", namespace
    )
    # Surge one new pod; no old pod may go while it is not ready.
    await _settle(api, namespace, [3, 1])
    await asyncio.sleep(0.3)
    assert await _rs_sizes(api, namespace) == [3, 1]
    new_hash = (await replica_sets(api, namespace))[1]["metadata"]["labels"]["pod-template-hash"]
    # Each new pod turning ready lets one old pod go and one more new pod come.
    for have, (old_size, new_size) in zip((1, 2, 3), ((2, 2), (1, 3), (0, 3)), strict=True):
        await eventually(
            lambda n=have: _exactly(pods_of(api, namespace, f"pod-template-hash={new_hash}"), n),
            what=f"{have} new pods",
        )
        await _ready_new_pods(api, namespace, new_hash)
        await _settle(api, namespace, [old_size, new_size])
    await eventually(lambda: _available(api, namespace, 3), what="rolled out")


async def test_rolling_update_waits_min_ready_seconds_before_counting_a_pod(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(
        deployment(
            namespace,
            2,
            minReadySeconds=2,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
        )
    )
    await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")
    await mark_all_ready(api, namespace)
    await eventually(lambda: _available(api, namespace, 2), timeout=15, what="2 available")
    await api.patch(
        DEPLOYMENTS, "web", {"spec": {"template": template("nginx:1.26")}}, "merge", namespace
    )
    await _settle(api, namespace, [2, 1])
    new_hash = (await replica_sets(api, namespace))[1]["metadata"]["labels"]["pod-template-hash"]
    await eventually(
        lambda: _exactly(pods_of(api, namespace, f"pod-template-hash={new_hash}"), 1),
        what="the surge pod",
    )
    await _ready_new_pods(api, namespace, new_hash)
    ready_at = time.monotonic()
    # Ready is not enough: the old ReplicaSet keeps its size until the pod has been ready
    # for minReadySeconds (2 s; lastTransitionTime has second precision, so at least 1 s
    # after our write).
    await asyncio.sleep(0.8)
    assert await _rs_sizes(api, namespace) == [2, 1]
    await _settle(api, namespace, [1, 2])
    assert time.monotonic() - ready_at >= 1.0


async def test_rolling_update_with_max_unavailable_scales_old_down_first(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(
        deployment(
            namespace,
            4,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "50%"},
            },
        )
    )
    await eventually(lambda: _exactly(pods_of(api, namespace), 4), what="4 pods")
    await mark_all_ready(api, namespace)
    await eventually(lambda: _available(api, namespace, 4), what="4 available")
    await api.patch(
        DEPLOYMENTS, "web", {"spec": {"template": template("nginx:1.26")}}, "merge", namespace
    )
    # No surge: old goes down by 2 (50% of 4), then the new one may grow to 2.
    await _settle(api, namespace, [2, 2])
    new_hash = (await replica_sets(api, namespace))[1]["metadata"]["labels"]["pod-template-hash"]
    await eventually(
        lambda: _exactly(pods_of(api, namespace, f"pod-template-hash={new_hash}"), 2),
        what="2 new pods",
    )
    await _ready_new_pods(api, namespace, new_hash)
    await _settle(api, namespace, [0, 4])
    await eventually(
        lambda: _exactly(pods_of(api, namespace, f"pod-template-hash={new_hash}"), 4),
        what="4 new pods",
    )
    await _ready_new_pods(api, namespace, new_hash)
    await eventually(lambda: _available(api, namespace, 4), what="rolled out")


async def _revision(api: ApiClient, ns: str, revision: str) -> dict[str, Any] | None:
    for rs in await replica_sets(api, ns):
        if (
            rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
            == revision
        ):
            return rs
    return None


async def _available(api: ApiClient, ns: str, n: int) -> bool:
    d = await api.get(DEPLOYMENTS, "web", ns)
    st = d.get("status") or {}
    return (
        st.get("availableReplicas") == n
        and st.get("updatedReplicas") == n
        and st.get("replicas") == n
        and st.get("observedGeneration") == d["metadata"]["generation"]
    )


async def _roll_out(api: ApiClient, ns: str, n: int, what: str) -> None:
    """Play the node agents during a rollout: every pod the Deployment creates turns Ready,
    until the Deployment reports ``n`` available."""

    async def available_after_marking() -> bool:
        await mark_all_ready(api, ns)
        return await _available(api, ns, n)

    await eventually(available_after_marking, interval=0.05, what=what)


async def test_recreate_scales_old_to_zero_before_creating_new(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(deployment(namespace, 2, strategy={"type": "Recreate"}))
    await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")
    await mark_all_ready(api, namespace)
    await api.patch(
        DEPLOYMENTS, "web", {"spec": {"template": template("nginx:1.26")}}, "merge", namespace
    )
    await _settle(api, namespace, [0, 2])
    pods = await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 new pods")
    new_hash = (await replica_sets(api, namespace))[1]["metadata"]["labels"]["pod-template-hash"]
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {new_hash}


async def test_paused_deployment_does_not_roll_out(cluster: Any, namespace: str) -> None:
    api, _ = cluster
    await api.create(deployment(namespace, 2))
    await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")
    await api.patch(
        DEPLOYMENTS,
        "web",
        {"spec": {"paused": True, "template": template("x:2")}},
        "merge",
        namespace,
    )

    async def paused_condition() -> bool:
        st = (await api.get(DEPLOYMENTS, "web", namespace)).get("status") or {}
        return any(
            c["type"] == "Progressing" and c["reason"] == "DeploymentPaused"
            for c in st.get("conditions") or ()
        )

    await eventually(paused_condition, what="DeploymentPaused")
    assert len(await replica_sets(api, namespace)) == 1
    await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, "merge", namespace)
    await eventually(lambda: _exactly(replica_sets(api, namespace), 2), what="rollout on resume")


async def test_revision_history_limit_deletes_oldest_replicasets(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(
        deployment(
            namespace,
            1,
            revisionHistoryLimit=1,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1},
            },
        )
    )
    for i in range(3):
        rs = await eventually(
            lambda i=i: _revision(api, namespace, str(i + 1)),
            what=f"revision {i + 1}",
        )
        h = rs["metadata"]["labels"]["pod-template-hash"]
        await eventually(
            lambda h=h: _exactly(pods_of(api, namespace, f"pod-template-hash={h}"), 1),
            what="its pod",
        )
        await mark_all_ready(api, namespace, f"pod-template-hash={h}")
        await eventually(lambda: _available(api, namespace, 1), what="rolled out")
        if i < 2:
            await api.patch(
                DEPLOYMENTS,
                "web",
                {"spec": {"template": template(f"nginx:1.{i + 30}")}},
                "merge",
                namespace,
            )

    async def two_left() -> list[str] | None:
        revs = [
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            for rs in await replica_sets(api, namespace)
        ]
        return revs if revs == ["2", "3"] else None

    await eventually(two_left, what="revisions 2 and 3 only")


# -- kubectl rollout ---------------------------------------------------------------------


async def test_kubectl_rollout_status_history_undo_restart(
    cluster: Any, namespace: str, kubectl: Any
) -> None:
    api, _ = cluster
    d = deployment(namespace, 2)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    await api.create(d)
    await eventually(lambda: _exactly(pods_of(api, namespace), 2), what="2 pods")

    status = asyncio.create_task(
        asyncio.to_thread(
            kubectl.run, "rollout", "status", "deployment/web", "--timeout=30s", check=False
        )
    )
    await asyncio.sleep(0.5)
    assert not status.done()
    await mark_all_ready(api, namespace)
    proc = await status
    assert proc.returncode == 0, proc.stderr
    assert 'deployment "web" successfully rolled out' in proc.stdout

    await api.patch(
        DEPLOYMENTS,
        "web",
        {
            "metadata": {"annotations": {"kubernetes.io/change-cause": "second"}},
            "spec": {"template": template("nginx:1.26")},
        },
        "merge",
        namespace,
    )
    await eventually(lambda: _exactly(replica_sets(api, namespace), 2), what="second rs")
    await _roll_out(api, namespace, 2, what="second rollout")

    history = await asyncio.to_thread(kubectl, "rollout", "history", "deployment/web")
    lines = [line.split() for line in history.splitlines()[2:] if line.strip()]
    assert lines == [["1", "first"], ["2", "second"]], history

    detail = await asyncio.to_thread(
        kubectl, "rollout", "history", "deployment/web", "--revision=1"
    )
    assert "nginx:1.25" in detail

    out = await asyncio.to_thread(kubectl, "rollout", "undo", "deployment/web")
    assert "rolled back" in out

    async def undone() -> bool:
        got = await api.get(DEPLOYMENTS, "web", namespace)
        image = got["spec"]["template"]["spec"]["containers"][0]["image"]
        revs = {
            rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"][
                "deployment.kubernetes.io/revision"
            ]
            for rs in await replica_sets(api, namespace)
        }
        return image == "nginx:1.25" and revs.get("nginx:1.25") == "3"

    await eventually(undone, what="undo to revision 1 as revision 3")
    await _roll_out(api, namespace, 2, what="undo rolled out")
    rss = await replica_sets(api, namespace)
    assert rss[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"

    out = await asyncio.to_thread(kubectl, "rollout", "restart", "deployment/web")
    assert "restarted" in out
    await eventually(lambda: _exactly(replica_sets(api, namespace), 3), what="restart rs")
    rss = await replica_sets(api, namespace)
    newest = rss[-1]
    assert (
        "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]
    )
    assert newest["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


# -- StatefulSet -------------------------------------------------------------------------


def statefulset(ns: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": template(labels={"app": "db"}),
            **spec,
        },
    }


async def _pod(api: ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await api.get(PODS, name, ns)
    except NotFound:
        return None


async def test_statefulset_creates_db0_then_db1_only_after_db0_is_ready(
    cluster: Any, namespace: str
) -> None:
    api, ctl = cluster
    await api.create(statefulset(namespace, 2))
    db0 = await eventually(lambda: _pod(api, namespace, "db-0"), what="db-0")
    assert db0["spec"]["hostname"] == "db-0"
    assert db0["spec"]["subdomain"] == "db"
    lbl = db0["metadata"]["labels"]
    assert lbl["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert lbl["apps.kubernetes.io/pod-index"] == "0"
    assert lbl["controller-revision-hash"].startswith("db-")
    await asyncio.sleep(0.5)
    assert await _pod(api, namespace, "db-1") is None
    await mark_ready(api, db0)
    db1 = await eventually(lambda: _pod(api, namespace, "db-1"), what="db-1")
    await mark_ready(api, db1)

    async def status_ready() -> dict[str, Any] | None:
        st = (await api.get(STATEFULSETS, "db", namespace)).get("status") or {}
        return st if st.get("readyReplicas") == 2 else None

    st = await eventually(status_ready, what="2 ready")
    assert st["replicas"] == 2 and st["currentReplicas"] == 2 and st["updatedReplicas"] == 2
    assert st["currentRevision"] == st["updateRevision"] == lbl["controller-revision-hash"]
    assert st["availableReplicas"] == 2
    await ctl.flush_events()
    assert await events_of(api, namespace, "SuccessfulCreate") == [
        "create Pod db-0 in StatefulSet db successful",
        "create Pod db-1 in StatefulSet db successful",
    ]


async def test_statefulset_parallel_creates_all_at_once(cluster: Any, namespace: str) -> None:
    api, _ = cluster
    await api.create(statefulset(namespace, 3, podManagementPolicy="Parallel"))
    pods = await eventually(lambda: _exactly(pods_of(api, namespace, "app=db"), 3), what="3 pods")
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1", "db-2"]


async def test_statefulset_recreates_deleted_pod_with_same_name(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(statefulset(namespace, 2))
    db0 = await eventually(lambda: _pod(api, namespace, "db-0"), what="db-0")
    await mark_ready(api, db0)
    db1 = await eventually(lambda: _pod(api, namespace, "db-1"), what="db-1")
    await mark_ready(api, db1)
    await api.delete(PODS, "db-1", namespace)

    async def recreated() -> dict[str, Any] | None:
        p = await _pod(api, namespace, "db-1")
        return p if p and p["metadata"]["uid"] != db1["metadata"]["uid"] else None

    fresh = await eventually(recreated, what="db-1 recreated")
    assert fresh["spec"]["hostname"] == "db-1"


async def test_statefulset_scales_down_from_highest_ordinal(cluster: Any, namespace: str) -> None:
    api, _ = cluster
    await api.create(statefulset(namespace, 3, podManagementPolicy="Parallel"))
    await eventually(lambda: _exactly(pods_of(api, namespace, "app=db"), 3), what="3 pods")
    await mark_all_ready(api, namespace, "app=db")
    await api.scale(STATEFULSETS, "db", 1, namespace)
    pods = await eventually(lambda: _exactly(pods_of(api, namespace, "app=db"), 1), what="1 pod")
    assert pods[0]["metadata"]["name"] == "db-0"


async def test_statefulset_rolling_update_goes_from_highest_ordinal_down(
    cluster: Any, namespace: str
) -> None:
    api, _ = cluster
    await api.create(statefulset(namespace, 2))
    for name in ("db-0", "db-1"):
        p = await eventually(lambda n=name: _pod(api, namespace, n), what=name)
        await mark_ready(api, p)
    old = {n: (await _pod(api, namespace, n)) for n in ("db-0", "db-1")}
    await api.patch(
        STATEFULSETS,
        "db",
        {"spec": {"template": template("nginx:1.26", {"app": "db"})}},
        "merge",
        namespace,
    )

    async def replaced(name: str) -> dict[str, Any] | None:
        p = await _pod(api, namespace, name)
        old_pod = old[name]
        assert old_pod is not None
        return p if p and p["metadata"]["uid"] != old_pod["metadata"]["uid"] else None

    db1 = await eventually(lambda: replaced("db-1"), what="db-1 updated")
    # db-0 waits for the new db-1 to be ready.
    await asyncio.sleep(0.3)
    assert await replaced("db-0") is None
    await mark_ready(api, db1)
    db0 = await eventually(lambda: replaced("db-0"), what="db-0 updated")
    await mark_ready(api, db0)

    async def done() -> dict[str, Any] | None:
        st = (await api.get(STATEFULSETS, "db", namespace)).get("status") or {}
        return (
            st
            if st.get("updatedReplicas") == 2
            and st.get("readyReplicas") == 2
            and st.get("currentRevision") == st.get("updateRevision")
            else None
        )

    await eventually(done, what="update complete")


async def test_kubectl_rollout_status_of_a_statefulset(
    cluster: Any, namespace: str, kubectl: Any
) -> None:
    api, _ = cluster
    await api.create(statefulset(namespace, 2))
    status = asyncio.create_task(
        asyncio.to_thread(
            kubectl.run, "rollout", "status", "statefulset/db", "--timeout=30s", check=False
        )
    )
    for name in ("db-0", "db-1"):
        p = await eventually(lambda n=name: _pod(api, namespace, n), what=name)
        assert not status.done()
        await mark_ready(api, p)
    proc = await status
    assert proc.returncode == 0, proc.stderr
    # The defaulted partition (0) makes kubectl report a partitioned rollout, as on a real
    # cluster.
    assert "partitioned roll out complete: 2 new pods have been updated" in proc.stdout
