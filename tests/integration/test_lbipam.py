"""The LoadBalancer address-pool controller against the real API server.

Fixture pool: 172.18.255.1-172.18.255.2 (two addresses), so exhaustion is one Service away.
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
from svcnet.api.wellknown import LB_ANNOUNCE_ANNOTATION
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.lbipam.controller import LoadBalancerIpam
from svcnet.controllers.nodelifecycle.controller import NodeLifecycle
from svcnet.controllers.nodelifecycle.plan import DEFAULT_NODE_MONITOR_GRACE_PERIOD
from svcnet.testing.polling import eventually

NS = "default"
POOL = {"tiny": ["172.18.255.1-172.18.255.2"]}


class Cluster:
    def __init__(self, api: ApiClient, kubectl: Kubectl) -> None:
        self.api = api
        self.kubectl = kubectl

    async def lb(self, name: str, **spec: Any) -> dict[str, Any]:
        return await self.api.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": name},
                    "ports": [{"port": 80, "targetPort": 8080}],
                    **spec,
                },
            }
        )

    async def ingress(self, name: str) -> list[str]:
        svc = await self.api.get("services", name, NS)
        return [
            i["ip"]
            for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        ]

    async def has_ip(self, name: str) -> bool:
        return bool(await self.ingress(name))

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        got = await self.api.list("events", NS, field_selector=f"involvedObject.name={name}")
        return [e for e in got.get("items") or () if e.get("reason") == reason]

    async def node(self, name: str, ready: str = "True") -> None:
        with contextlib.suppress(Exception):
            await self.api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        while True:
            node = await self.api.get("nodes", name)
            node.update(apiVersion="v1", kind="Node")
            node.setdefault("status", {})["conditions"] = [
                {
                    "type": "Ready",
                    "status": ready,
                    "lastHeartbeatTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
            with contextlib.suppress(Conflict):
                await self.api.update_status(node)
                return


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        recorder = EventRecorder(api, "svcnet-lb-controller")
        lb = LoadBalancerIpam(api, factory, POOL, recorder)
        tasks = [
            *factory.start(),
            asyncio.create_task(lb.run()),
            asyncio.create_task(recorder.run()),
        ]
        try:
            assert await factory.wait_for_cache_sync(20)
            yield Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_addresses_from_the_pool_then_exhaustion_then_release(cluster: Cluster) -> None:
    await cluster.lb("a")
    await cluster.lb("b")
    await eventually(lambda: cluster.has_ip("b"))
    assert sorted([*await cluster.ingress("a"), *await cluster.ingress("b")]) == [
        "172.18.255.1",
        "172.18.255.2",
    ]
    svc = await cluster.api.get("services", "a", NS)
    assert svc["status"]["loadBalancer"]["ingress"][0]["ipMode"] == "VIP"
    out = cluster.kubectl("get", "service", "a")
    assert "172.18.255." in out  # EXTERNAL-IP column
    await cluster.lb("c")

    async def failed() -> bool:
        return bool(await cluster.events("c", "AllocationFailed"))

    await eventually(failed)
    [ev] = await cluster.events("c", "AllocationFailed")
    assert (ev["type"], ev["message"]) == (
        "Warning",
        'Failed to allocate IP for "default/c": no available IPs',
    )
    assert await cluster.ingress("c") == []
    assert "<pending>" in cluster.kubectl("get", "service", "c")
    freed = (await cluster.ingress("a"))[0]
    await cluster.api.delete("services", "a", NS)

    async def c_gets_it() -> bool:
        return await cluster.ingress("c") == [freed]

    await eventually(c_gets_it)


async def test_requested_address_honoured_or_refused_with_reason(cluster: Cluster) -> None:
    await cluster.lb("a", loadBalancerIP="172.18.255.2")

    async def a_has_2() -> bool:
        return await cluster.ingress("a") == ["172.18.255.2"]

    await eventually(a_has_2)
    await cluster.lb("b", loadBalancerIP="172.18.255.2")
    await cluster.lb("c", loadBalancerIP="10.0.0.1")

    async def both_failed() -> bool:
        return bool(await cluster.events("b", "AllocationFailed")) and bool(
            await cluster.events("c", "AllocationFailed")
        )

    await eventually(both_failed)
    [b] = await cluster.events("b", "AllocationFailed")
    assert b["message"] == (
        'Failed to allocate IP for "default/b": can\'t change sharing key '
        'for "default/b", address also in use by default/a'
    )
    [c] = await cluster.events("c", "AllocationFailed")
    assert (
        c["message"] == 'Failed to allocate IP for "default/c": "10.0.0.1" is not allowed in config'
    )


async def test_other_classes_and_type_changes(cluster: Cluster) -> None:
    await cluster.lb("theirs", loadBalancerClass="example.com/lb")
    await cluster.lb("mine")
    await eventually(lambda: cluster.has_ip("mine"))
    await asyncio.sleep(0.2)
    assert await cluster.ingress("theirs") == []
    # Type change to ClusterIP: the address is released and the status cleared.
    await cluster.api.patch("services", "mine", {"spec": {"type": "ClusterIP"}}, "merge", NS)

    async def cleared() -> bool:
        return not await cluster.has_ip("mine")

    await eventually(cleared)
    await cluster.lb("next")
    await cluster.lb("next2")
    await eventually(lambda: cluster.has_ip("next2"))


async def test_announcing_node_is_reelected_when_it_goes_not_ready(cluster: Cluster) -> None:
    await cluster.node("node-1")
    await cluster.node("node-2")
    await cluster.lb("web")

    async def announcer() -> str | None:
        svc = await cluster.api.get("services", "web", NS)
        return (svc["metadata"].get("annotations") or {}).get(LB_ANNOUNCE_ANNOTATION)

    async def announced() -> bool:
        return await announcer() in ("node-1", "node-2")

    await eventually(announced)
    first = await announcer()
    assert first is not None
    other = "node-2" if first == "node-1" else "node-1"
    await cluster.node(first, ready="Unknown")  # as the node lifecycle controller writes it

    async def moved() -> bool:
        return await announcer() == other

    # How fast it moves is bench/controllers/latency.py's question.
    await eventually(moved)
    # It comes back: the election is stable, so the address returns to it.
    await cluster.node(first, ready="True")

    async def back() -> bool:
        return await announcer() == first

    await eventually(back)
    assert await cluster.events("web", "nodeAssigned")


async def test_pools_from_the_configmap_replace_the_constructors(cluster: Cluster) -> None:
    await cluster.api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "svcnet-lb-pools", "namespace": "kube-system"},
            "data": {"lab": "172.18.254.10-172.18.254.10"},
        }
    )
    await cluster.lb("a")

    async def from_lab() -> bool:
        return await cluster.ingress("a") == ["172.18.254.10"]

    await eventually(from_lab)
    await cluster.lb("b")
    await eventually(lambda: _failed(cluster, "b"))


async def _failed(cluster: Cluster, name: str) -> bool:
    return bool(await cluster.events(name, "AllocationFailed"))


async def test_takeover_with_default_settings_after_the_node_stops(
    fresh_apiserver: RunningServer,
) -> None:
    """Node lifecycle (default grace) and LB IPAM together: the node announcing an address
    stops renewing its Lease; another node announces it (how soon: bench/controllers)."""
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        lifecycle = NodeLifecycle(api, factory)  # default node-monitor grace period
        lb = LoadBalancerIpam(api, factory, POOL)
        c = Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS))
        beats: dict[str, asyncio.Task[None]] = {}

        async def beat(name: str) -> None:
            while True:
                await renew_lease(api, name)
                await asyncio.sleep(1.0)  # the renew interval proposed for node agents

        tasks = [
            *factory.start(),
            asyncio.create_task(lifecycle.run()),
            asyncio.create_task(lb.run()),
        ]
        try:
            for n in ("node-1", "node-2"):
                await c.node(n)
                beats[n] = asyncio.create_task(beat(n))
            await c.lb("web")

            async def announcer() -> str | None:
                svc = await api.get("services", "web", NS)
                return (svc["metadata"].get("annotations") or {}).get(LB_ANNOUNCE_ANNOTATION)

            async def announced() -> bool:
                return await announcer() is not None

            await eventually(announced)
            first = await announcer()
            assert first is not None
            beats[first].cancel()
            stopped = time.monotonic()

            async def moved() -> bool:
                return await announcer() not in (None, first)

            await eventually(moved, timeout=30)
            took = time.monotonic() - stopped
            print(
                f"LB address announcer taken over {took:.2f}s after {first} stopped "
                f"(grace {DEFAULT_NODE_MONITOR_GRACE_PERIOD}s, renew every 1s)"
            )
        finally:
            for t in [*tasks, *beats.values()]:
                t.cancel()
            await asyncio.gather(*tasks, *beats.values(), return_exceptions=True)


async def renew_lease(api: ApiClient, name: str) -> None:
    spec = {
        "holderIdentity": name,
        "leaseDurationSeconds": 3,
        "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    try:
        lease = await api.get("leases", name, "kube-node-lease")
    except NotFound:
        await api.create(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": spec,
            }
        )
        return
    lease.update(apiVersion="coordination.k8s.io/v1", kind="Lease", spec=spec)
    await api.update(lease)
