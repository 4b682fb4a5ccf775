"""The agent's HTTP endpoint: container logs (tail, previous, follow) and its bearer-token
check, over a real pod worker on fakes. Ranges: node pod CIDR 10.244.1.0/24."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from svcnet.agent import crilog, flowtap
from svcnet.agent.agent import Agent
from svcnet.agent.flowtap import NodeFlows, node_flows
from svcnet.agent.node_status import NodeIdentity
from svcnet.agent.pod_worker import NodeContext, PodWorker
from svcnet.agent.sandbox import SandboxManager
from svcnet.agent.server import AgentServer, exit_status
from svcnet.api.errors import AGENT_REFUSAL_HEADER
from svcnet.client.events import EventRecorder
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.cni import CniRuntime, write_default_conflist
from svcnet.dataplane.fake_cni import FakePluginExec
from svcnet.dataplane.fake_netns import FakeNetns
from svcnet.dataplane.fake_process import FakeProcessRunner
from svcnet.netpol.flowlog import Flow, State, Verdict
from svcnet.util.clock import REAL_CLOCK, FakeClock


class StubAgent:
    """What the server asks of the agent: its name and its pod workers."""

    def __init__(self, worker: PodWorker) -> None:
        self.ident = NodeIdentity("node-1", "127.0.0.1")
        self.worker = worker

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        ok = (namespace, name) == (self.worker.namespace, self.worker.name)
        return self.worker if ok else None


async def _wait(pred: Any) -> None:
    for _ in range(300):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


@pytest.fixture
async def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, PodWorker, FakeProcessRunner]]:
    """The pod's restartPolicy is Always unless the test's parameter names another."""
    fake = FakeApiServer()
    await fake.start()
    write_default_conflist(str(tmp_path / "net.d"), "10.244.1.0/24", str(tmp_path / "ipam"))
    ops = FakeNetns()
    ops.add_netns("n1")
    cni = CniRuntime(str(tmp_path / "net.d"), str(tmp_path / "cache"), FakePluginExec())
    runner = FakeProcessRunner(frozenset({"sleep"}))
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        ctx = NodeContext(
            client=client,
            recorder=EventRecorder(client, "kubelet"),
            node_name="node-1",
            node_ip="127.0.0.1",
            sandboxes=SandboxManager(ops, cni, "n1", etc_root=str(tmp_path / "etc")),
            runner=runner,
            clock=REAL_CLOCK,
            log_root=str(tmp_path / "logs"),
            bin_dir=str(tmp_path / "bin"),
            cluster_dns="10.96.0.10",
            cluster_domain="cluster.local",
            node_resolv="",
            services=lambda: [],
        )
        pod = await client.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "nodeName": "node-1",
                    "restartPolicy": getattr(request, "param", "Always"),
                    "containers": [{"name": "c", "image": "x", "command": ["sleep", "9"]}],
                },
            }
        )
        worker = PodWorker(ctx, pod)
        task = asyncio.create_task(worker.run())
        await _wait(lambda: runner.started)
        server = AgentServer(cast(Agent, StubAgent(worker)), TOKEN)
        port = free_port()
        await server.start("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}", worker, runner
        await server.stop()
        worker.kill()
        await task
    await fake.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def emit(
    runner: FakeProcessRunner, worker: PodWorker, text: str, stream: str = "stdout"
) -> None:
    """The container prints ``text``; returns once the agent has logged all of it."""
    assert worker.containers is not None
    path = worker.containers.log_file("c")
    assert path is not None
    lines = text.count("\n")

    def logged() -> int:
        try:
            return sum(1 for e in crilog.parse(Path(path).read_bytes())[0] if e.stream == stream)
        except FileNotFoundError:
            return 0

    before = logged()
    runner.started[-1].write(stream, text.encode())
    await _wait(lambda: logged() >= before + lines)


async def get(url: str, token: str = TOKEN) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(url, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.text()


async def test_logs_need_the_cluster_token(served: tuple[str, PodWorker, Any]) -> None:
    base, worker, runner = served
    await emit(runner, worker, "a\n")
    assert (await get(f"{base}/containerLogs/default/web/c", token="nope"))[0] == 401


@pytest.mark.parametrize(
    ("query", "want"),
    [
        ("", "a\nb\nerr\nc\n"),
        ("?tailLines=2", "err\nc\n"),
        ("?tailLines=0", ""),
        ("?limitBytes=3", "a\nb"),
        ("?sinceSeconds=3600", "a\nb\nerr\nc\n"),
        ("?sinceTime=2999-01-01T00:00:00Z", ""),
        ("?sinceTime=2000-01-01T00:00:00Z", "a\nb\nerr\nc\n"),
    ],
)
async def test_logs_serve_the_current_instance(
    served: tuple[str, PodWorker, FakeProcessRunner], query: str, want: str
) -> None:
    base, worker, runner = served
    await emit(runner, worker, "a\nb\n")
    await emit(runner, worker, "err\n", "stderr")
    await emit(runner, worker, "c\n")
    assert await get(f"{base}/containerLogs/default/web/c{query}") == (200, want)


async def test_logs_timestamps_are_the_times_lines_were_written(
    served: tuple[str, PodWorker, FakeProcessRunner],
) -> None:
    base, worker, runner = served
    before = time.time_ns()
    await emit(runner, worker, "one\n")
    await asyncio.sleep(0.05)
    middle = time.time_ns()
    await emit(runner, worker, "two\nthree")  # no newline yet: not a line until it ends
    status, text = await get(f"{base}/containerLogs/default/web/c?timestamps=true")
    assert status == 200
    (first, stamp1), (second, stamp2) = [
        (line.split(" ", 1)[1], crilog.parse_time(line.split(" ", 1)[0]))
        for line in text.splitlines()
    ]
    assert (first, second) == ("one", "two")
    assert before <= stamp1 < middle <= stamp2 <= time.time_ns()
    since = crilog.rfc3339nano(middle)
    status, text = await get(f"{base}/containerLogs/default/web/c?sinceTime={since}")
    assert text == "two\n"


async def test_previous_logs_are_the_last_instance(
    served: tuple[str, PodWorker, FakeProcessRunner],
) -> None:
    base, worker, runner = served
    await emit(runner, worker, "first\n")
    runner.started[0].exit(1)
    await _wait(lambda: len(runner.started) == 2)
    await emit(runner, worker, "second\n")
    assert await get(f"{base}/containerLogs/default/web/c?previous=true") == (200, "first\n")
    assert await get(f"{base}/containerLogs/default/web/c") == (200, "second\n")


async def test_follow_ends_when_the_container_ends(
    served: tuple[str, PodWorker, FakeProcessRunner],
) -> None:
    base, worker, runner = served
    await emit(runner, worker, "one\n")
    follow = asyncio.create_task(get(f"{base}/containerLogs/default/web/c?follow=true"))
    await asyncio.sleep(0.3)
    await emit(runner, worker, "two\nlast words without a newline")
    await asyncio.sleep(0.3)
    runner.started[0].exit(0)
    got = await asyncio.wait_for(follow, 5)
    assert got == (200, "one\ntwo\nlast words without a newline")


async def test_unknown_pod_is_not_found(served: tuple[str, PodWorker, Any]) -> None:
    base, _, _ = served
    status, text = await get(f"{base}/containerLogs/default/nope/c")
    assert status == 404 and "not found on node node-1" in text


@pytest.mark.parametrize(
    ("code", "want"),
    [
        (0, {"metadata": {}, "status": "Success"}),
        (
            3,
            {
                "metadata": {},
                "status": "Failure",
                "message": "command terminated with non-zero exit code: exit status 3",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
            },
        ),
    ],
)
def test_exec_exit_status_is_what_kubectl_reads(code: int, want: dict[str, Any]) -> None:
    assert exit_status(code) == want


def flow(seq: int) -> Flow:
    return Flow(seq, float(seq), "node-1", Verdict.ALLOWED, State.NEW, "tcp",
                "10.244.1.5", 40000 + seq, "10.244.1.6", 80)  # fmt: skip


@pytest.fixture
def node1_flows() -> Iterator[NodeFlows]:
    # Numbered from 1 (a ring made at time 0), so the answers below are plain to read.
    flows = flowtap._NODES["node-1"] = NodeFlows(clock=FakeClock(start=0.0))
    assert node_flows("node-1") is flows
    yield flows
    flowtap._NODES.pop("node-1", None)  # the registry is per process: leave none behind


async def test_flows_are_served_after_a_sequence_number(
    served: tuple[str, PodWorker, Any], node1_flows: NodeFlows
) -> None:
    base, _, _ = served
    for _ in range(3):
        node1_flows.ring.append(flow(node1_flows.ring.next_seq()))
    status, body = await get(f"{base}/flows?since=1")
    assert status == 200
    assert [Flow.from_json(json.loads(line)) for line in body.splitlines()] == [flow(2), flow(3)]
    assert (await get(f"{base}/flows?since=x"))[0] == 400
    assert (await get(f"{base}/flows", token="nope"))[0] == 401


async def test_followed_flows_stream_as_they_are_recorded(
    served: tuple[str, PodWorker, Any], node1_flows: NodeFlows
) -> None:
    base, _, _ = served
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{base}/flows?follow=1", headers={"Authorization": f"Bearer {TOKEN}"}) as r,
    ):
        assert await r.content.readline() == b"\n"  # nothing yet: the stream is open
        node1_flows.ring.append(flow(node1_flows.ring.next_seq()))
        node1_flows.changed()
        line = await asyncio.wait_for(r.content.readline(), 10)
        assert Flow.from_json(json.loads(line)) == flow(1)


async def attach(base: str) -> list[bytes]:
    """One attach session to the container, to its end: the frames it received."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{base}/attach/default/web/c?stdout=1&stderr=1",
            protocols=("v5.channel.k8s.io",),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as ws,
    ):
        return [msg.data async for msg in ws if msg.type is aiohttp.WSMsgType.BINARY]


async def ended_before_attach(served: tuple[str, PodWorker, FakeProcessRunner]) -> str:
    """The container printed a line and exited for good (restartPolicy Never)."""
    base, worker, runner = served
    await emit(runner, worker, "said before the attach\n")
    runner.started[0].exit(0)
    await _wait(lambda: worker.containers is not None and worker.containers.pid("c") is None)
    return base


@pytest.mark.parametrize("served", ["Never"], indirect=True)
async def test_first_attach_to_a_container_that_ended_gets_its_output(
    served: tuple[str, PodWorker, FakeProcessRunner],
) -> None:
    base = await ended_before_attach(served)
    frames = await attach(base)
    assert frames[0] == b"\x01said before the attach\n"
    assert frames[-1][:1] == b"\x03" and b'"Success"' in frames[-1]


@pytest.mark.parametrize("served", ["Never"], indirect=True)
async def test_a_later_attach_to_an_ended_container_gets_kubelets_refusal(
    served: tuple[str, PodWorker, FakeProcessRunner],
) -> None:
    base = await ended_before_attach(served)
    await attach(base)
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await attach(base)
    assert err.value.status == 500
    assert err.value.headers is not None
    assert err.value.headers[AGENT_REFUSAL_HEADER] == "container c not found in pod web_default"
