"""Controller latencies against a real API server: the figures the integration tests only print.

The integration tests assert that these things happen, and correctly; how fast is measured
here, on purpose, with enough samples for percentiles:

1. readiness -> slice: a pod's Ready condition flips; from the start of the status write (what
   the node agent sends) to the EndpointSlice event whose endpoint shows the new condition.
   ``--flips`` writes, alternating True and False, over a Service of 2 pods.
2. create -> bound: ``--pods`` pods created at once on 3 Ready nodes (as a ReplicaSet scaled
   from 0 creates them); from each create request's start to the pod event with
   ``spec.nodeName`` set; also from each create's acknowledgement, and how long the creates
   themselves took (the API server's share).
3. announcer re-election: a LoadBalancer Service announced by one of 2 nodes; that node's
   Ready condition goes Unknown (as the node lifecycle controller writes it); from that write's
   start to the Service event naming the other node. It then turns Ready again and the address
   returns to it (the election is stable) before the next of ``--reelections`` rounds.
4. takeover with default settings: node lifecycle (default grace period) and LB IPAM together,
   node Leases renewed every second; the announcing node's renewals stop; from the stop to
   the Service event naming another node. ``--takeovers`` rounds.

The API server runs as its own process (``python -m svcnet.apiserver``, SQLite in a temporary
directory); the controllers and the bench's client run in this process, as in the control
plane. Every time is CLOCK_MONOTONIC of this process, taken when the watch event is read.

    .venv/bin/python -m bench.controllers.latency [--flips 100] [--pods 100]
                                                  [--reelections 20] [--takeovers 3]

Prints each figure, the command that reproduces them, and JSON on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from svcnet.api.errors import Conflict, NotFound
from svcnet.api.wellknown import LB_ANNOUNCE_ANNOTATION
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpointslice.controller import EndpointSliceController
from svcnet.controllers.lbipam.controller import LoadBalancerIpam
from svcnet.controllers.nodelifecycle.controller import NodeLifecycle
from svcnet.controllers.nodelifecycle.plan import DEFAULT_NODE_MONITOR_GRACE_PERIOD
from svcnet.controllers.scheduler.controller import Scheduler

NS = "default"
POOL = {"bench": ["172.18.255.1-172.18.255.2"]}
Obj = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def api_server() -> Any:
    """``python -m svcnet.apiserver`` on a free loopback port; its kubeconfig path."""
    with tempfile.TemporaryDirectory(prefix="svcnet-bench-ctl-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "svcnet.apiserver", "--data-dir", tmp, "--port", "0",
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not re.search(r"serving (\S+)", line):
                raise RuntimeError(f"the API server did not start: {line!r}")
            yield Path(tmp) / "kubeconfig"
        finally:
            proc.terminate()
            proc.wait(10)


class Timeline:
    """One watch, every event kept with the time it was read; waits for the first match."""

    def __init__(self, api: ApiClient, resource: str, namespace: str | None) -> None:
        self.api, self.resource, self.namespace = api, resource, namespace
        self.events: list[tuple[float, Obj]] = []
        self._grew = asyncio.Event()

    async def run(self) -> None:
        async for ev in self.api.watch(self.resource, self.namespace, allow_bookmarks=False):
            self.events.append((time.monotonic(), ev.object))
            self._grew.set()

    def mark(self) -> int:
        return len(self.events)

    async def first(self, since: int, match: Callable[[Obj], bool], timeout: float = 60) -> float:
        """The time of the first event at index ``since`` or later whose object matches."""
        async with asyncio.timeout(timeout):
            i = since
            while True:
                while i < len(self.events):
                    t, obj = self.events[i]
                    if match(obj):
                        return t
                    i += 1
                self._grew.clear()
                await self._grew.wait()


class Bench:
    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.factory = SharedInformerFactory(api)
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, *runnables: Any) -> None:
        self.tasks += [asyncio.create_task(r.run()) for r in runnables]

    async def timeline(self, resource: str, namespace: str | None = NS) -> Timeline:
        tl = Timeline(self.api, resource, namespace)
        self.start(tl)
        await asyncio.sleep(0.2)  # the watch is open before the first measured write
        return tl

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def node(self, name: str, ready: str = "True") -> None:
        with contextlib.suppress(Exception):
            await self.api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        while True:  # read-modify-write, as an agent does: controllers write the node too
            node = await self.api.get("nodes", name)
            node.update(apiVersion="v1", kind="Node")
            node.setdefault("status", {})["conditions"] = [
                {"type": "Ready", "status": ready, "lastHeartbeatTime": now(),
                 "lastTransitionTime": now()}
            ]  # fmt: skip
            with contextlib.suppress(Conflict):
                await self.api.update_status(node)
                return

    async def renew(self, name: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": 3, "renewTime": now()}
        try:
            lease = await self.api.get("leases", name, "kube-node-lease")
        except NotFound:
            await self.api.create(
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec}
            )  # fmt: skip
            return
        lease.update(apiVersion="coordination.k8s.io/v1", kind="Lease", spec=spec)
        await self.api.update(lease)

    def heartbeat(self, name: str, every: float = 1.0) -> asyncio.Task[None]:
        async def loop() -> None:
            while True:
                await self.renew(name)
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())
        self.tasks.append(task)
        return task

    async def pod(self, name: str, node: str | None = None, ip: str | None = None) -> Obj:
        spec: Obj = {"containers": [{"name": "c", "image": "nginx"}]}
        if node:
            spec["nodeName"] = node
        pod = await self.api.create(
            {"apiVersion": "v1", "kind": "Pod", "spec": spec,
             "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}}}
        )  # fmt: skip
        if ip:
            await self.set_ready(name, True, ip)
        return pod

    async def set_ready(self, name: str, ready: bool, ip: str | None = None) -> None:
        pod = await self.api.get("pods", name, NS)
        pod.update(apiVersion="v1", kind="Pod")
        status = pod.setdefault("status", {})
        if ip:
            status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}])
        status["conditions"] = [
            {"type": "Ready", "status": str(ready), "lastTransitionTime": now()}
        ]
        await self.api.update_status(pod)

    async def service(self, name: str, **spec: Any) -> Obj:
        return await self.api.create(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}],
                      **spec}}
        )  # fmt: skip


def summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, round(p * (len(s) - 1)))] * 1000

    return {"n": len(s), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "max_ms": s[-1] * 1000, "min_ms": s[0] * 1000}  # fmt: skip


def ready_in_slice(name: str, want: bool) -> Callable[[Obj], bool]:
    def match(sl: Obj) -> bool:
        return any(
            (e.get("targetRef") or {}).get("name") == name
            and (e.get("conditions") or {}).get("ready") is want
            for e in sl.get("endpoints") or ()
        )

    return match


def announced_by(node: str | None) -> Callable[[Obj], bool]:
    def match(svc: Obj) -> bool:
        return (svc["metadata"].get("annotations") or {}).get(LB_ANNOUNCE_ANNOTATION) == node

    return match


def announced_by_other_than(node: str) -> Callable[[Obj], bool]:
    def match(svc: Obj) -> bool:
        got = (svc["metadata"].get("annotations") or {}).get(LB_ANNOUNCE_ANNOTATION)
        return got not in (None, node)

    return match


@contextlib.asynccontextmanager
async def bench_on(kubeconfig: Path) -> AsyncIterator[Bench]:
    async with ApiClient(load_kubeconfig(kubeconfig)) as api:
        b = Bench(api)
        try:
            yield b
        finally:
            await b.stop()


async def readiness_to_slice(kubeconfig: Path, flips: int) -> list[float]:
    async with bench_on(kubeconfig) as b:
        b.start(EndpointSliceController(b.api, b.factory))
        b.tasks += b.factory.start()
        await b.node("node-1")
        await b.pod("web-0", "node-1", "10.244.1.10")
        await b.pod("web-1", "node-1", "10.244.1.11")
        slices = await b.timeline("endpointslices")
        mark = slices.mark()
        await b.service("web")
        await slices.first(mark, ready_in_slice("web-0", True))
        out: list[float] = []
        for i in range(flips):
            want = i % 2 == 1  # starts Ready: the first flip is to not ready
            mark = slices.mark()
            t0 = time.monotonic()
            await b.set_ready("web-0", want)
            out.append(await slices.first(mark, ready_in_slice("web-0", want)) - t0)
        return out


async def create_to_bound(kubeconfig: Path, pods: int) -> dict[str, list[float]]:
    async with bench_on(kubeconfig) as b:
        for n in ("node-1", "node-2", "node-3"):
            await b.node(n)
        b.start(Scheduler(b.api, b.factory))
        b.tasks += b.factory.start()
        assert await b.factory.wait_for_cache_sync(30)
        timeline = await b.timeline("pods")
        started: dict[str, float] = {}
        acked: dict[str, float] = {}

        async def create(i: int) -> None:
            started[f"web-{i}"] = time.monotonic()
            await b.pod(f"web-{i}")
            acked[f"web-{i}"] = time.monotonic()

        mark = timeline.mark()
        await asyncio.gather(*(create(i) for i in range(pods)))

        def bound(name: str) -> Callable[[Obj], bool]:
            return lambda p: p["metadata"]["name"] == name and bool(p["spec"].get("nodeName"))

        at = {n: await timeline.first(mark, bound(n)) for n in started}
        return {
            "create_to_bound": [at[n] - started[n] for n in started],
            # The create's own time left out; negative when this process read the bind event
            # before the create's response (both wait on one event loop).
            "ack_to_bound": [at[n] - acked[n] for n in started],
            "creates_acked": [max(acked.values()) - min(started.values())],
        }


async def announced_service(b: Bench, *controllers: Any) -> Timeline:
    """Start ``controllers``, create LoadBalancer Service ``web``, wait until a node announces
    it; the watch of Services that the rounds measure with."""
    b.start(*controllers)
    b.tasks += b.factory.start()
    services = await b.timeline("services")
    mark = services.mark()
    await b.service("web", type="LoadBalancer")
    await services.first(mark, announced_by_other_than(""))
    return services


async def announcer(b: Bench) -> str:
    svc = await b.api.get("services", "web", NS)
    node: str = svc["metadata"]["annotations"][LB_ANNOUNCE_ANNOTATION]
    return node


async def reelection(kubeconfig: Path, rounds: int) -> list[float]:
    async with bench_on(kubeconfig) as b:
        await b.node("node-1")
        await b.node("node-2")
        services = await announced_service(b, LoadBalancerIpam(b.api, b.factory, POOL))
        out: list[float] = []
        for _ in range(rounds):
            first = await announcer(b)
            other = "node-2" if first == "node-1" else "node-1"
            mark = services.mark()
            t0 = time.monotonic()
            await b.node(first, "Unknown")
            out.append(await services.first(mark, announced_by(other)) - t0)
            mark = services.mark()
            await b.node(first, "True")
            await services.first(mark, announced_by(first))
        return out


async def takeover(kubeconfig: Path, rounds: int) -> list[float]:
    async with bench_on(kubeconfig) as b:
        beats = {}
        for n in ("node-1", "node-2"):
            await b.node(n)
            beats[n] = b.heartbeat(n)
        services = await announced_service(
            b, NodeLifecycle(b.api, b.factory), LoadBalancerIpam(b.api, b.factory, POOL)
        )
        out: list[float] = []
        for _ in range(rounds):
            first = await announcer(b)
            mark = services.mark()
            beats[first].cancel()
            t0 = time.monotonic()
            out.append(await services.first(mark, announced_by_other_than(first)) - t0)
            # The node comes back (as its agent would: Lease, then Ready) and wins the address
            # back before the next round.
            mark = services.mark()
            beats[first] = b.heartbeat(first)
            await b.node(first, "True")
            await services.first(mark, announced_by(first))
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key, fn, count in (
        ("readiness_to_slice", readiness_to_slice, args.flips),
        ("create_to_bound", create_to_bound, args.pods),
        ("announcer_reelection", reelection, args.reelections),
        ("takeover_default_settings", takeover, args.takeovers),
    ):
        if count <= 0:
            continue
        with api_server() as kubeconfig:
            samples = asyncio.run(fn(kubeconfig, count))
        for name, values in (samples if isinstance(samples, dict) else {key: samples}).items():
            results[name] = summary(values)
    return results


LABELS = {
    "readiness_to_slice": "pod Ready flip -> EndpointSlice condition (status write's start)",
    "create_to_bound": "pod create -> bound, all created at once on 3 nodes (create's start)",
    "ack_to_bound": "  the same from the create's acknowledgement",
    "creates_acked": "  all creates acknowledged (first start -> last acknowledgement)",
    "announcer_reelection": "LB announcer node Ready=Unknown -> Service names the other node",
    "takeover_default_settings": (
        f"LB announcer Lease renewals stop -> another node announces "
        f"(grace {DEFAULT_NODE_MONITOR_GRACE_PERIOD:g} s, renew every 1 s)"
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.controllers.latency")
    p.add_argument("--flips", type=int, default=100)
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--reelections", type=int, default=20)
    p.add_argument("--takeovers", type=int, default=3)
    args = p.parse_args()
    results = run(args)
    for key, r in results.items():
        print(
            f"{LABELS[key]}: n={r['n']} p50 {r['p50_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms, "
            f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms"
        )
    print("command: .venv/bin/python -m bench.controllers.latency " + " ".join(sys.argv[1:]))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
