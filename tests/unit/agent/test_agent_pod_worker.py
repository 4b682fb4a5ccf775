"""The pod worker over fakes: the fake API server, fake kernel, fake CNI plugins and fake
processes. Ranges: node pod CIDR 10.244.1.0/24, node IP 172.18.0.11."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from svcnet.agent.pod_worker import NodeContext, PodWorker
from svcnet.agent.sandbox import SandboxManager
from svcnet.api.registry import PODS
from svcnet.client.events import EventRecorder
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.cni import CniRuntime, write_default_conflist
from svcnet.dataplane.fake_cni import FakePluginExec
from svcnet.dataplane.fake_netns import FakeNetns
from svcnet.dataplane.fake_process import FakeProcessRunner
from svcnet.util.clock import REAL_CLOCK

PODS = PODS
assert PODS is not None


@dataclass
class Env:
    fake: FakeApiServer
    client: ApiClient
    ctx: NodeContext
    runner: FakeProcessRunner
    recorder: EventRecorder
    ops: FakeNetns


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    fake = FakeApiServer()
    await fake.start()
    write_default_conflist(str(tmp_path / "net.d"), "10.244.1.0/24", str(tmp_path / "ipam"))
    ops = FakeNetns()
    ops.add_netns("svcnet-node-1")
    cni = CniRuntime(str(tmp_path / "net.d"), str(tmp_path / "cache"), FakePluginExec())
    sandboxes = SandboxManager(ops, cni, "svcnet-node-1", etc_root=str(tmp_path / "etc"))
    runner = FakeProcessRunner(frozenset({"sleep", "agnhost"}))
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        recorder = EventRecorder(client, "kubelet", "node-1")
        ctx = NodeContext(
            client=client,
            recorder=recorder,
            node_name="node-1",
            node_ip="172.18.0.11",
            sandboxes=sandboxes,
            runner=runner,
            clock=REAL_CLOCK,
            log_root=str(tmp_path / "logs"),
            bin_dir=str(tmp_path / "bin"),
            cluster_dns="10.96.0.10",
            cluster_domain="cluster.local",
            node_resolv="",
            services=lambda: [],
        )
        events = asyncio.create_task(recorder.run())
        yield Env(fake, client, ctx, runner, recorder, ops)
        events.cancel()
    await fake.close()


def pod(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", **container}]},
    }


async def eventually(fn: Any, timeout: float = 3.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fn()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.01)


async def start(env: Env, obj: dict[str, Any]) -> tuple[PodWorker, asyncio.Task[None]]:
    created = await env.client.create(obj)
    worker = PodWorker(env.ctx, created)
    return worker, asyncio.create_task(worker.run())


async def status_of(env: Env, name: str) -> dict[str, Any]:
    obj = await env.client.get("pods", name, "default")
    return dict(obj.get("status") or {})


async def test_running_container_makes_the_pod_ready_with_its_ip(env: Env) -> None:
    worker, task = await start(env, pod("web", {"image": "busybox", "command": ["sleep", "9"]}))

    async def ready() -> dict[str, Any] | None:
        st = await status_of(env, "web")
        conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
        return st if conds.get("Ready") == "True" else None

    st = await eventually(ready)
    assert st["phase"] == "Running"
    assert st["podIP"] == "10.244.1.2"
    assert st["hostIP"] == "172.18.0.11"
    assert st["containerStatuses"][0]["containerID"] == f"svcnet://{env.runner.started[0].pid}"
    spec = env.runner.started[0].spec
    assert spec.hostname == "web"
    assert spec.env["PATH"].startswith(env.ctx.bin_dir + ":")
    worker.kill()
    await task


async def test_deletion_stops_containers_removes_sandbox_and_deletes_the_object(env: Env) -> None:
    worker, task = await start(env, pod("gone", {"image": "busybox", "command": ["sleep", "9"]}))
    await eventually(lambda: _has_ip(env, "gone"))
    obj = await env.client.get("pods", "gone", "default")
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj["metadata"]["deletionGracePeriodSeconds"] = 1
    worker.update(obj)
    await asyncio.wait_for(task, 5)
    assert env.runner.started[0].stopped_with == "SIGTERM"
    assert not [n for n in env.ops.list_netns() if "_gone_" in n]
    assert ("DELETE", "/api/v1/namespaces/default/pods/gone") in [
        (m, p) for m, p, _ in env.fake.requests
    ]


async def test_missing_config_map_is_create_container_config_error(env: Env) -> None:
    worker, task = await start(
        env,
        pod(
            "cfg",
            {
                "image": "busybox",
                "command": ["sleep", "9"],
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}
                ],
            },
        ),
    )

    async def waiting() -> str:
        st = await status_of(env, "cfg")
        cs = (st.get("containerStatuses") or [{}])[0]
        return str(((cs.get("state") or {}).get("waiting") or {}).get("reason", ""))

    async def config_error() -> bool:
        return await waiting() == "CreateContainerConfigError"

    await eventually(config_error)
    assert env.runner.started == []
    worker.kill()
    await task


async def _has_ip(env: Env, name: str) -> bool:
    return bool((await status_of(env, name)).get("podIP"))


async def test_status_is_written_only_when_it_changes(env: Env) -> None:
    worker, task = await start(env, pod("calm", {"image": "busybox", "command": ["sleep", "9"]}))
    await eventually(lambda: _has_ip(env, "calm"))
    await asyncio.sleep(0.1)
    before = sum(1 for m, p, _ in env.fake.requests if m == "PATCH" and p.endswith("/status"))
    # A spurious wake-up must not write.
    worker._mark_dirty()
    await asyncio.sleep(0.1)
    after = sum(1 for m, p, _ in env.fake.requests if m == "PATCH" and p.endswith("/status"))
    assert after == before
    worker.kill()
    await task


async def test_pod_starts_once_its_missing_config_map_appears(env: Env) -> None:
    worker, task = await start(
        env,
        pod(
            "later",
            {
                "image": "busybox",
                "command": ["sleep", "9"],
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}
                ],
            },
        ),
    )

    async def config_error() -> bool:
        st = await status_of(env, "later")
        cs = (st.get("containerStatuses") or [{}])[0]
        return ((cs.get("state") or {}).get("waiting") or {}).get(
            "reason"
        ) == "CreateContainerConfigError"

    await eventually(config_error)
    await env.client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default"},
            "data": {"k": "v"},
        }
    )

    async def started() -> bool:
        return bool(env.runner.started)

    await eventually(started, timeout=5)
    assert env.runner.started[0].spec.env["X"] == "v"
    worker.kill()
    await task


def _status_patches(env: Env, name: str) -> int:
    path = f"/api/v1/namespaces/default/pods/{name}/status"
    return sum(1 for m, p, _ in env.fake.requests if m == "PATCH" and p == path)


async def test_pod_ip_goes_out_with_the_container_start_not_in_a_write_of_its_own(
    env: Env,
) -> None:
    worker, task = await start(env, pod("one", {"image": "busybox", "command": ["sleep", "9"]}))

    async def running_with_ip() -> bool:
        st = await status_of(env, "one")
        return bool(st.get("podIP")) and "running" in st["containerStatuses"][0]["state"]

    await eventually(running_with_ip)
    await asyncio.sleep(0.1)
    # Pending (ContainerCreating), then IP + running together: no write for the IP alone.
    assert _status_patches(env, "one") <= 2
    worker.kill()
    await task


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_status_update_runs_a_not_yet_successful_readiness_probe_at_once(
    env: Env,
) -> None:
    """kubelet's prober manager: UpdatePodStatus triggers the readiness worker (a period of
    30 s would otherwise keep the pod unready for 30 s after its first failed probe)."""
    port = _free_port()
    probe = {
        "httpGet": {"host": "127.0.0.1", "port": port, "path": "/"},
        "periodSeconds": 30,
        "failureThreshold": 1,
    }
    worker, task = await start(
        env,
        pod("probed", {"image": "busybox", "command": ["sleep", "9"], "readinessProbe": probe}),
    )

    async def unhealthy() -> bool:
        events = await env.client.list_all("events", "default")
        return any(e.get("reason") == "Unhealthy" for e in events["items"])

    await eventually(unhealthy)
    server = await asyncio.start_server(_answer_200, "127.0.0.1", port)
    try:
        await asyncio.sleep(0.2)
        conds = {c["type"]: c["status"] for c in worker.compute_status()["conditions"]}
        assert conds["Ready"] == "False"  # the next tick is 30 s away
        worker._mark_dirty()  # a pod status update

        async def ready() -> bool:
            conds = {c["type"]: c["status"] for c in (await status_of(env, "probed"))["conditions"]}
            return conds.get("Ready") == "True"

        await eventually(ready, timeout=2)
    finally:
        server.close()
        worker.kill()
        await task


async def _answer_200(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def test_conditions_written_by_another_are_written_back(env: Env) -> None:
    # The node lifecycle controller marks a silent node's pods NotReady; once the node is
    # heard again its agent must put its own view back, as kubelet's status manager does.
    worker, task = await start(env, pod("back", {"image": "busybox", "command": ["sleep", "9"]}))

    async def ready_state() -> str:
        st = await status_of(env, "back")
        return {c["type"]: c["status"] for c in st.get("conditions") or []}.get("Ready", "")

    await eventually(lambda: _is(ready_state, "True"))
    obj = await env.client.get("pods", "back", "default")
    for c in obj["status"]["conditions"]:
        if c["type"] == "Ready":
            c["status"] = "False"
    marked = await env.client.update_status(obj)
    assert await ready_state() == "False"
    worker.update(marked)
    await eventually(lambda: _is(ready_state, "True"))
    worker.kill()
    await task


async def _is(get: Any, want: str) -> bool:
    return bool(await get() == want)
