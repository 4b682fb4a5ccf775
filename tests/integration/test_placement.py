"""The scheduler, node IPAM and node lifecycle controllers against the real API server.

No node agent runs: the tests create Node objects, post their Ready condition and renew their
Leases themselves, as agents would. Durations are short (a 1 s grace period).
Fixture addresses: cluster CIDR 10.244.0.0/16, a /24 per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from apiserver_harness import Kubectl, RunningServer

from svcnet.api.errors import Conflict, NotFound
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.nodeipam.controller import NodeIpam
from svcnet.controllers.nodelifecycle.controller import NodeLifecycle
from svcnet.controllers.scheduler.controller import Scheduler
from svcnet.testing.polling import eventually

NS = "default"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Cluster:
    def __init__(self, api: ApiClient, factory: SharedInformerFactory, kubectl: Kubectl) -> None:
        self.api = api
        self.factory = factory
        self.kubectl = kubectl
        self.tasks: list[asyncio.Task[Any]] = []
        self.recorder = EventRecorder(api, "default-scheduler")
        self.tasks.append(asyncio.create_task(self.recorder.run()))

    def start(self, *controllers: Any) -> None:
        self.tasks += self.factory.start()
        self.tasks += [asyncio.create_task(c.run()) for c in controllers]

    async def node(
        self,
        name: str,
        *,
        ready: bool = True,
        labels: dict[str, str] | None = None,
        unschedulable: bool = False,
    ) -> dict[str, Any]:
        await self.api.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels or {}},
                "spec": {"unschedulable": unschedulable},
            }
        )
        return await self.post_ready(name, ready)

    async def post_ready(self, name: str, ready: bool) -> dict[str, Any]:
        while True:  # read-modify-write, as an agent does: controllers write the node too
            node = await self.api.get("nodes", name)
            node.update(apiVersion="v1", kind="Node")
            node.setdefault("status", {})["conditions"] = [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "lastHeartbeatTime": now(),
                    "lastTransitionTime": now(),
                }
            ]
            with contextlib.suppress(Conflict):
                return await self.api.update_status(node)

    async def renew(self, name: str, duration: int = 1) -> None:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": now()},
        }
        try:
            current = await self.api.get("leases", name, "kube-node-lease")
        except NotFound:
            await self.api.create(lease)
            return
        current.update(apiVersion="coordination.k8s.io/v1", kind="Lease")
        current["spec"] = lease["spec"]
        await self.api.update(current)

    def heartbeat(self, name: str, every: float = 0.2) -> asyncio.Task[None]:
        async def loop() -> None:
            while True:
                await self.renew(name)
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())
        self.tasks.append(task)
        return task

    async def pod(
        self,
        name: str,
        *,
        owner: str | None = "rs-uid",
        node: str | None = None,
        selector: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": {"app": "web"}}
        if owner:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web",
                    "uid": owner,
                    "controller": True,
                }
            ]
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
        if node:
            spec["nodeName"] = node
        if selector:
            spec["nodeSelector"] = selector
        if tolerations:
            spec["tolerations"] = tolerations
        return await self.api.create(
            {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        )

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        got = await self.api.list("events", NS, field_selector=f"involvedObject.name={name}")
        return [e for e in got.get("items") or () if e.get("reason") == reason]


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        c = Cluster(api, SharedInformerFactory(api), Kubectl(fresh_apiserver.kubeconfig, NS))
        try:
            yield c
        finally:
            for t in c.tasks:
                t.cancel()
            await asyncio.gather(*c.tasks, return_exceptions=True)


# -- scheduler -------------------------------------------------------------------------------


async def test_pods_are_bound_spread_over_two_nodes(cluster: Cluster) -> None:
    await cluster.node("node-1")
    await cluster.node("node-2")
    cluster.start(Scheduler(cluster.api, cluster.factory, cluster.recorder))
    start = time.monotonic()
    for i in range(4):
        await cluster.pod(f"web-{i}")

    async def all_bound() -> bool:
        pods = (await cluster.api.list("pods", NS)).get("items") or []
        return len(pods) == 4 and all(p["spec"].get("nodeName") for p in pods)

    await eventually(all_bound)
    print(f"4 pods bound in {(time.monotonic() - start) * 1000:.0f} ms")
    pods = (await cluster.api.list("pods", NS))["items"]
    by_node = sorted(p["spec"]["nodeName"] for p in pods)
    assert by_node == ["node-1", "node-1", "node-2", "node-2"]
    scheduled = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
    await cluster.recorder.flush()
    [ev] = await cluster.events("web-0", "Scheduled")
    assert ev["message"] == f"Successfully assigned default/web-0 to {scheduled['web-0']}"
    assert ev["type"] == "Normal"


EXPECTED = (
    "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
    "1 node(s) were unschedulable. preemption: 0/2 nodes are available: "
    "2 Preemption is not helpful for scheduling."
)


async def test_nothing_fits_gives_failed_scheduling_then_a_node_change_places_it(
    cluster: Cluster,
) -> None:
    await cluster.node("node-1", unschedulable=True, labels={"disk": "ssd"})
    await cluster.node("node-2")
    cluster.start(Scheduler(cluster.api, cluster.factory, cluster.recorder))
    await cluster.pod("web-x", selector={"disk": "ssd"})

    async def failed() -> bool:
        return bool(await cluster.events("web-x", "FailedScheduling"))

    await eventually(failed)
    [ev] = await cluster.events("web-x", "FailedScheduling")
    assert (ev["type"], ev["message"]) == ("Warning", EXPECTED)
    pod = await cluster.api.get("pods", "web-x", NS)
    [cond] = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", EXPECTED)
    out = cluster.kubectl("describe", "pod", "web-x")
    assert "FailedScheduling" in out and "1 node(s) were unschedulable" in out
    # `kubectl uncordon node-1`: the waiting pod is retried at once.
    cluster.kubectl("uncordon", "node-1")

    async def bound() -> bool:
        return (await cluster.api.get("pods", "web-x", NS))["spec"].get("nodeName") == "node-1"

    await eventually(bound)


async def test_not_ready_node_gets_no_pods(cluster: Cluster) -> None:
    await cluster.node("node-1", ready=False)
    await cluster.node("node-2")
    cluster.start(Scheduler(cluster.api, cluster.factory, cluster.recorder))
    for i in range(3):
        await cluster.pod(f"web-{i}")

    async def all_on_node_2() -> bool:
        pods = (await cluster.api.list("pods", NS)).get("items") or []
        return [p["spec"].get("nodeName") for p in pods] == ["node-2"] * 3

    await eventually(all_on_node_2)


# -- node IPAM -------------------------------------------------------------------------------


async def test_nodes_get_pod_cidrs_and_a_restart_keeps_them(cluster: Cluster) -> None:
    ipam = NodeIpam(cluster.api, cluster.factory, "10.244.0.0/16")
    cluster.start(ipam)
    await cluster.node("node-1")
    await cluster.node("node-2")

    async def cidrs() -> dict[str, str | None]:
        nodes = (await cluster.api.list("nodes"))["items"]
        return {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in nodes}

    async def both() -> bool:
        return all((await cidrs()).values()) and len(await cidrs()) == 2

    await eventually(both)
    assert sorted((await cidrs()).values()) == ["10.244.0.0/24", "10.244.1.0/24"]
    n1 = await cluster.api.get("nodes", "node-1")
    assert n1["spec"]["podCIDRs"] == [n1["spec"]["podCIDR"]]
    # A second allocator (a restart) rebuilt from the nodes never hands out a used block.
    factory2 = SharedInformerFactory(cluster.api)
    restarted = NodeIpam(cluster.api, factory2, "10.244.0.0/16")
    cluster.tasks += factory2.start()
    cluster.tasks.append(asyncio.create_task(restarted.run()))

    async def rebuilt() -> bool:
        return restarted.cidrs.allocated == 2

    await eventually(rebuilt)
    assert restarted.cidrs.allocate_next() == "10.244.2.0/24"


async def test_exhausted_cluster_cidr_gives_cidr_not_available(cluster: Cluster) -> None:
    recorder = EventRecorder(cluster.api, "node-ipam-controller")
    cluster.tasks.append(asyncio.create_task(recorder.run()))
    cluster.start(NodeIpam(cluster.api, cluster.factory, "10.244.0.0/24", 24, recorder))
    await cluster.node("node-1")
    await cluster.node("node-2")

    async def warned() -> bool:
        got = await cluster.api.list("events", NS, field_selector="involvedObject.name=node-2")
        return any(e["reason"] == "CIDRNotAvailable" for e in got.get("items") or ())

    await eventually(warned)
    got = await cluster.api.list("events", NS, field_selector="involvedObject.name=node-2")
    [ev] = [e for e in got["items"] if e["reason"] == "CIDRNotAvailable"]
    assert ev["message"] == "Node node-2 status is now: CIDRNotAvailable"
    # Deleting node-1 frees its block for node-2.
    await cluster.api.delete("nodes", "node-1")

    async def node2_has_it() -> bool:
        return (await cluster.api.get("nodes", "node-2"))["spec"].get("podCIDR") == "10.244.0.0/24"

    await eventually(node2_has_it)


# -- node lifecycle --------------------------------------------------------------------------

TOLERATE_1S = [
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 1,
    },
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 1,
    },
]


async def test_node_whose_lease_stops_goes_unknown_and_its_pods_are_evicted(
    cluster: Cluster,
) -> None:
    await cluster.node("node-1")
    await cluster.node("node-2")
    cluster.heartbeat("node-1")
    beat2 = cluster.heartbeat("node-2")
    lifecycle = NodeLifecycle(
        cluster.api,
        cluster.factory,
        cluster.recorder,
        node_monitor_grace_period=1.0,
        pod_eviction_timeout=2.0,
    )
    cluster.start(lifecycle)
    victim = await cluster.pod("web-0", node="node-2", tolerations=TOLERATE_1S)
    victim["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    victim.update(apiVersion="v1", kind="Pod")
    await cluster.api.update_status(victim)
    survivor = await cluster.pod("web-1", node="node-1", tolerations=TOLERATE_1S)
    await asyncio.sleep(1.5)  # longer than the grace: healthy nodes stay Ready
    assert (await cluster.api.get("nodes", "node-2"))["spec"].get("taints") is None

    beat2.cancel()  # node-2 "stops"
    stopped = time.monotonic()

    async def unknown() -> bool:
        n = await cluster.api.get("nodes", "node-2")
        ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
        return ready["status"] == "Unknown"

    await eventually(unknown)
    detected = time.monotonic() - stopped
    print(f"node-2 Unknown {detected:.2f}s after its heartbeat stopped (grace 1.0s)")

    # The condition and the taints are two writes of the node lifecycle controller, as upstream.
    async def tainted() -> bool:
        return bool((await cluster.api.get("nodes", "node-2"))["spec"].get("taints"))

    await eventually(tainted)
    node2 = await cluster.api.get("nodes", "node-2")
    ready = next(c for c in node2["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["message"]) == (
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert {(t["key"], t["effect"]) for t in node2["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }

    async def victim_not_ready_or_gone() -> bool:
        try:
            p = await cluster.api.get("pods", "web-0", NS)
        except NotFound:
            return True
        return any(
            c["type"] == "Ready" and c["status"] == "False"
            for c in p["status"].get("conditions") or ()
        )

    await eventually(victim_not_ready_or_gone)

    async def victim_gone() -> bool:
        try:
            await cluster.api.get("pods", "web-0", NS)
        except NotFound:
            return True
        return False

    await eventually(victim_gone, timeout=6.0)
    print(
        f"web-0 deleted {time.monotonic() - stopped:.2f}s after node-2 stopped "
        f"(grace 1s + tolerationSeconds 1, second-precision taint time)"
    )
    assert (await cluster.api.get("pods", "web-1", NS))["metadata"]["uid"] == survivor["metadata"][
        "uid"
    ]
    # node-2 comes back: heartbeat and Ready again → the taints go.
    cluster.heartbeat("node-2")
    await cluster.post_ready("node-2", True)

    async def untainted() -> bool:
        return not (await cluster.api.get("nodes", "node-2"))["spec"].get("taints")

    await eventually(untainted)
    with contextlib.suppress(NotFound):
        await cluster.api.delete("pods", "web-1", NS, grace_period_seconds=0)


async def test_hundred_pods_created_at_once_are_all_bound_and_spread(cluster: Cluster) -> None:
    await cluster.node("node-1")
    await cluster.node("node-2")
    await cluster.node("node-3")
    cluster.start(Scheduler(cluster.api, cluster.factory, cluster.recorder))
    await cluster.factory.wait_for_cache_sync(10)

    # All at once, as a ReplicaSet scaled to 100 creates them (in parallel batches). How fast
    # they are bound is bench/controllers/latency.py's question.
    await asyncio.gather(*(cluster.pod(f"web-{i}") for i in range(100)))

    async def all_bound() -> list[dict[str, Any]] | None:
        pods: list[dict[str, Any]] = (await cluster.api.list("pods", NS))["items"]
        return pods if all(p["spec"].get("nodeName") for p in pods) else None

    pods = await eventually(all_bound, timeout=60)
    assert len(pods) == 100
    counts = sorted(
        sum(1 for p in pods if p["spec"]["nodeName"] == n) for n in ("node-1", "node-2", "node-3")
    )
    assert counts == [33, 33, 34]


async def test_pods_of_a_deleted_node_are_collected_after_the_quarantine(cluster: Cluster) -> None:
    await cluster.node("node-1")
    cluster.heartbeat("node-1")
    cluster.start(NodeLifecycle(cluster.api, cluster.factory, orphan_quarantine=0.5))
    await cluster.pod("web-0", node="node-1")
    await cluster.api.delete("nodes", "node-1")
    deleted = time.monotonic()

    async def gone() -> bool:
        try:
            await cluster.api.get("pods", "web-0", NS)
        except NotFound:
            return True
        return False

    await eventually(gone)
    assert time.monotonic() - deleted >= 0.5
