"""The EndpointSlice and Endpoints controllers against the real API server and kubectl.

No node agent runs: the tests write pod status (IP, Ready) themselves, as an agent would.
Fixture addresses: pods 10.244.1.0/24 on node-1; ClusterIPs come from the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from apiserver_harness import Kubectl, RunningServer

from svcnet.api.errors import NotFound
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpoints.controller import EndpointsController
from svcnet.controllers.endpointslice.controller import EndpointSliceController
from svcnet.testing.polling import eventually

NS = "default"
SLICES = "endpointslices.discovery.k8s.io"


class Cluster:
    def __init__(self, api: ApiClient, kubectl: Kubectl) -> None:
        self.api = api
        self.kubectl = kubectl

    async def node(self, name: str) -> None:
        await self.api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    async def pod(
        self,
        name: str,
        ip: str | None,
        *,
        ready: bool = True,
        labels: dict[str, str] | None = None,
        ports: list[dict[str, Any]] | None = None,
        finalizers: list[str] | None = None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {"app": "web"}}
        if finalizers:
            meta["finalizers"] = finalizers
        created = await self.api.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {
                    "nodeName": "node-1",
                    "containers": [{"name": "c", "image": "nginx", "ports": ports or []}],
                },
            }
        )
        if ip is None:
            return created
        return await self.set_ready(created, ready, ip)

    async def set_ready(
        self, pod: dict[str, Any], ready: bool, ip: str | None = None
    ) -> dict[str, Any]:
        fresh = await self.api.get("pods", pod["metadata"]["name"], NS)
        status = fresh.setdefault("status", {})
        if ip:
            status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}], hostIP="172.18.0.11")
        status["conditions"] = [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ]
        fresh.setdefault("apiVersion", "v1")
        fresh.setdefault("kind", "Pod")
        return await self.api.update_status(fresh)

    async def service(
        self,
        name: str = "web",
        *,
        target_port: int | str = 8080,
        selector: dict[str, str] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ports": [{"name": "http", "port": 80, "targetPort": target_port}],
            **spec,
        }
        if selector is not None:
            body["selector"] = selector
        return await self.api.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NS},
                "spec": body,
            }
        )

    async def slices(self, svc: str = "web") -> list[dict[str, Any]]:
        got = await self.api.list(
            SLICES.split(".")[0], NS, label_selector=f"kubernetes.io/service-name={svc}"
        )
        return list(got.get("items") or [])

    async def endpoints(self, svc: str = "web") -> dict[str, dict[str, Any]]:
        """pod name → endpoint, over all slices of the Service."""
        return {
            e["targetRef"]["name"]: e
            for s in await self.slices(svc)
            for e in s.get("endpoints") or ()
        }


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        recorder = EventRecorder(api, "endpointslice-controller")
        slices = EndpointSliceController(api, factory, recorder)
        endpoints = EndpointsController(api, factory)
        # Bare tasks, not a TaskGroup: a fixture's setup and teardown run in different tasks.
        tasks = [
            *factory.start(),
            asyncio.create_task(slices.run()),
            asyncio.create_task(endpoints.run()),
            asyncio.create_task(recorder.run()),
        ]
        try:
            assert await factory.wait_for_cache_sync(20)
            c = Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS))
            await c.node("node-1")
            yield c
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_three_ready_pods_give_one_slice_with_three_ready_endpoints(cluster: Cluster) -> None:
    for i in range(3):
        await cluster.pod(f"web-{i}", f"10.244.1.{10 + i}")
    await cluster.service(selector={"app": "web"})

    async def three_ready() -> bool:
        eps = await cluster.endpoints()
        return len(eps) == 3 and all(e["conditions"]["ready"] for e in eps.values())

    await eventually(three_ready)
    [s] = await cluster.slices()
    assert s["metadata"]["name"].startswith("web-")
    assert (
        s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert {e["nodeName"] for e in s["endpoints"]} == {"node-1"}
    # The same through kubectl, as a user would look.
    out = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
    assert "10.244.1.10,10.244.1.11,10.244.1.12" in out


async def test_pod_turning_not_ready_and_back_flips_its_condition(cluster: Cluster) -> None:
    pods = [await cluster.pod(f"web-{i}", f"10.244.1.{10 + i}") for i in range(2)]
    await cluster.service(selector={"app": "web"})

    async def ready_of(name: str, want: bool) -> bool:
        e = (await cluster.endpoints()).get(name)
        return e is not None and e["conditions"]["ready"] is want

    await eventually(lambda: ready_of("web-0", True))
    await cluster.set_ready(pods[0], False)
    await eventually(lambda: ready_of("web-0", False))
    # Flipping back and forth: each flip shows, and the other pod's endpoint stays as it is.
    # How fast is bench/controllers/latency.py's question (readiness → slice).
    for _ in range(3):
        await cluster.set_ready(pods[0], True)
        await eventually(lambda: ready_of("web-0", True))
        await cluster.set_ready(pods[0], False)
        await eventually(lambda: ready_of("web-0", False))
        assert (await cluster.endpoints())["web-1"]["conditions"]["ready"] is True
    [s] = await cluster.slices()
    assert len(s["endpoints"]) == 2  # updated in place: still one slice


async def test_terminating_pod_is_serving_and_terminating(cluster: Cluster) -> None:
    await cluster.pod("web-0", "10.244.1.10", finalizers=["svcnet.io/test"])
    await cluster.service(selector={"app": "web"})
    await eventually(lambda: _has(cluster, "web-0"))
    await cluster.api.delete("pods", "web-0", NS, grace_period_seconds=30)

    async def terminating() -> bool:
        e = (await cluster.endpoints()).get("web-0")
        return e is not None and e["conditions"] == {
            "ready": False,
            "serving": True,
            "terminating": True,
        }

    try:
        await eventually(terminating)
        # Legacy Endpoints leave terminating pods out.
        ep = await cluster.api.get("endpoints", "web", NS)
        assert not any(s.get("addresses") for s in ep.get("subsets") or ())
    finally:
        await cluster.api.patch("pods", "web-0", {"metadata": {"finalizers": None}}, "merge", NS)


async def _has(cluster: Cluster, name: str) -> bool:
    return name in await cluster.endpoints()


async def test_named_target_port_resolves_per_pod(cluster: Cluster) -> None:
    await cluster.pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}])
    await cluster.pod("b", "10.244.1.2", ports=[{"name": "web", "containerPort": 9090}])
    await cluster.service(selector={"app": "web"}, target_port="web")

    async def two_slices() -> bool:
        return sorted(
            s["ports"][0]["port"]
            for s in await cluster.slices()
            if s.get("ports") and s.get("endpoints")
        ) == [8080, 9090]

    await eventually(two_slices)


async def test_target_port_name_no_pod_defines_gives_a_warning_event(cluster: Cluster) -> None:
    await cluster.pod("a", "10.244.1.1", ports=[{"name": "web", "containerPort": 8080}])
    await cluster.service(selector={"app": "web"}, target_port="nope")

    async def warned() -> bool:
        events = await cluster.api.list("events", NS, field_selector="involvedObject.name=web")
        return any(e.get("reason") == "FailedToResolvePort" for e in events.get("items") or ())

    await eventually(warned)
    out = cluster.kubectl("describe", "service", "web")
    assert "FailedToResolvePort" in out and '"http"' in out


async def test_endpoints_are_mirrored_for_kubectl(cluster: Cluster) -> None:
    await cluster.pod("a", "10.244.1.1")
    await cluster.pod("b", "10.244.1.2", ready=False)
    await cluster.service(selector={"app": "web"})

    async def mirrored() -> bool:
        out = cluster.kubectl.run("get", "endpoints", "web", check=False).stdout
        return "10.244.1.1:8080" in out

    await eventually(mirrored)
    ep = await cluster.api.get("endpoints", "web", NS)
    [subset] = ep["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.244.1.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.1.2"]
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    await cluster.api.delete("services", "web", NS)

    async def gone() -> bool:
        return "NotFound" in cluster.kubectl.run("get", "endpoints", "web", check=False).stderr

    await eventually(gone)


async def test_service_without_selector_keeps_its_users_slices(cluster: Cluster) -> None:
    await cluster.service("ext")
    mine = await cluster.api.create(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "ext-1",
                "namespace": NS,
                "labels": {"kubernetes.io/service-name": "ext"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["192.0.2.10"]}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    )
    await cluster.service(selector={"app": "web"})  # something else happens meanwhile
    await eventually(lambda: _slice_count(cluster, "web", 1))
    [s] = await cluster.slices("ext")
    assert s["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]


async def _slice_count(cluster: Cluster, svc: str, n: int) -> bool:
    return len(await cluster.slices(svc)) == n


async def test_service_with_no_pods_gets_a_placeholder_slice(cluster: Cluster) -> None:
    await cluster.service(selector={"app": "nothing"})
    await eventually(lambda: _slice_count(cluster, "web", 1))
    [s] = await cluster.slices()
    assert s.get("endpoints") in (None, [])


async def test_a_sync_with_nothing_new_writes_nothing(cluster: Cluster) -> None:
    for i in range(3):
        await cluster.pod(f"web-{i}", f"10.244.1.{10 + i}")
    await cluster.service(selector={"app": "web"})

    async def three() -> bool:
        return len(await cluster.endpoints()) == 3

    async def endpoints_three() -> bool:
        try:
            ep = await cluster.api.get("endpoints", "web", NS)
        except NotFound:
            return False
        return sum(len(s.get("addresses") or ()) for s in ep.get("subsets") or ()) == 3

    await eventually(three)
    await eventually(endpoints_three)
    [before] = await cluster.slices()
    ep_before = await cluster.api.get("endpoints", "web", NS)
    # Wake both controllers with changes that do not concern them.
    await cluster.api.patch(
        "services", "web", {"metadata": {"annotations": {"x": "1"}}}, "merge", NS
    )
    await cluster.api.patch("pods", "web-0", {"metadata": {"annotations": {"y": "1"}}}, "merge", NS)
    await asyncio.sleep(0.5)
    [after] = await cluster.slices()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    ep_after = await cluster.api.get("endpoints", "web", NS)
    assert ep_after["metadata"]["resourceVersion"] == ep_before["metadata"]["resourceVersion"]
