"""100 nodes and 1,000 pods on one machine (issue 14): the ``scale`` measures.

``cluster`` (one ``svcnet up --nodes N``, default 100):

1. ``svcnet up`` → every Node Ready (target ≤ 20 s at 100 nodes);
2. after the add-ons are Ready and ``idle`` seconds of nothing: RSS and PSS of every process,
   per node (target ≤ 12 MiB PSS per idle node: the whole cluster's PSS over the nodes, and
   the agents' own);
3. a Service and a Deployment of ``pods`` replicas (agnhost netexec, a readiness probe as a
   user writes it: httpGet, periodSeconds 1) created at once → every pod Ready (target ≤ 60 s
   at 1,000), seen by a watch opened before the POSTs;
4. the Service programmed on every node: each node's proxy has the ClusterIP in its
   ``service-ips`` map going to the selector chain of ``pods`` endpoints (``svc-tcp-<pods>``),
   polled node by node in ``nft`` of the node's namespace (target ≤ 2 s after the last pod
   is Ready);
5. memory again with the pods (target ≤ 4 GiB PSS in all).

``proxy-memory`` (a small cluster, default 3 nodes): the agent's RSS per node with 1,000 and
then 10,000 selector-less Services x 10 endpoints (EndpointSlices written by the bench), once
node-2's proxy has them all programmed (target ≤ 100 MiB at 10,000).

Every run takes its own name, port and ranges (bench/cluster/harness.py) and removes what it
made; the load average is recorded at each step (the machine is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.cluster.harness import BenchCluster, percentile, running_cluster
from bench.cluster.memory import snapshot
from bench.cluster.pod_start import deployment, is_ready, wait_addons_ready
from bench.cluster.procs import cluster_usage
from bench.proxy.dataplane import create_services


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def service(label: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": label, "namespace": "default"},
        "spec": {"selector": {"bench": label}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def service_ips(c: BenchCluster, node: int) -> list[Any]:
    """The elements of node N's ``service-ips`` map (empty when unreadable)."""
    res = subprocess.run(
        ["nsenter", f"--net=/run/netns/{c.name}-node-{node}", "--", "nft", "-j", "list", "map",
         "ip", "svcnet-proxy", "service-ips"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        return []
    for item in json.loads(res.stdout).get("nftables", []):
        if "map" in item:
            return list(item["map"].get("elem") or [])
    return []


def endpoint_count(c: BenchCluster, node: int, cluster_ip: str) -> int:
    """How many endpoints node N's proxy sends the ClusterIP to (its ``svc-tcp-<N>`` chain);
    -1 when the node does not program it."""
    for key, verdict in service_ips(c, node):
        parts = key.get("concat") if isinstance(key, dict) else None
        target = str(((verdict or {}).get("goto") or {}).get("target", ""))
        if parts and parts[0] == cluster_ip and target.startswith("svc-"):
            return int(target.rsplit("-", 1)[1])
    return -1


def wait_programmed_everywhere(
    c: BenchCluster, cluster_ip: str, pods: int, timeout: float
) -> tuple[dict[int, float], dict[int, int]]:
    """Node → the monotonic time its proxy was first seen sending the ClusterIP to all
    ``pods`` endpoints; and, for the nodes never seen so, the last count seen (a pod whose
    probe fails under load leaves the endpoints for a while)."""
    todo = set(range(1, c.nodes + 1))
    seen: dict[int, float] = {}
    last: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(4) as pool:
        while todo and time.monotonic() < deadline:
            nodes = sorted(todo)
            counts = pool.map(lambda n: endpoint_count(c, n, cluster_ip), nodes)
            for node, count in zip(nodes, counts, strict=True):
                last[node] = count
                if count == pods:
                    seen[node] = time.monotonic()
                    todo.discard(node)
            if todo:
                time.sleep(0.05)
    return seen, {n: last[n] for n in todo}


def memory(c: BenchCluster) -> dict[str, Any]:
    snap = snapshot(c)
    agents = {k: v for k, v in snap["components"].items() if k.startswith("agent-")}
    agent_pss = sorted(v["pss_kib"] / 1024 for v in agents.values())
    return {
        "total_rss_mib": round(snap["total_rss_mib"], 1),
        "total_pss_mib": round(snap["total_pss_mib"], 1),
        "pss_per_node_mib": round(snap["total_pss_mib"] / c.nodes, 2),
        "agent_pss_mib": {
            "median": round(percentile(agent_pss, 50), 2),
            "max": round(max(agent_pss), 2),
        }
        if agent_pss
        else {},
        "controlplane_pss_mib": round(snap["components"]["controlplane"]["pss_kib"] / 1024, 1),
        "supervisor_pss_mib": round(snap["components"]["supervisor"]["pss_kib"] / 1024, 1),
        "processes": snap["processes"],
        "stray": snap["stray"],
        "load": loadavg(),
    }


async def burst(c: BenchCluster, pods: int, timeout: float) -> dict[str, Any]:
    label = "scale"
    ready_at: dict[str, float] = {}
    done = asyncio.Event()
    async with c.api() as api:
        svc = await api.create(service(label))
        listing = await api.list("pods", "default", label_selector=f"bench={label}")

        async def watch() -> None:
            async for ev in api.watch(
                "pods", "default", resource_version=listing["metadata"]["resourceVersion"],
                label_selector=f"bench={label}",
            ):  # fmt: skip
                if ev.type in ("ADDED", "MODIFIED") and is_ready(ev.object):
                    ready_at.setdefault(str(ev.object["metadata"]["name"]), time.monotonic())
                    if len(ready_at) >= pods:
                        done.set()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        cpu_before = cluster_usage(c.data_dir / "state")
        t0 = time.monotonic()
        try:
            await api.create(deployment(label, pods, probe=True))
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            return {"pods": pods, "ready_at_timeout": len(ready_at), "timeout_s": timeout,
                    "load": loadavg()}  # fmt: skip
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        t_ready = max(ready_at.values())
        cpu_after = cluster_usage(c.data_dir / "state")
    cluster_ip = str(svc["spec"]["clusterIP"])
    seen, missing = await asyncio.to_thread(
        wait_programmed_everywhere, c, cluster_ip, pods, timeout
    )
    after = sorted(t - t_ready for t in seen.values()) or [float("nan")]
    cpu = {
        name: round(a.cpu_s - cpu_before[name].cpu_s, 1)
        for name, a in cpu_after.items()
        if name in cpu_before
    }
    return {
        "pods": pods,
        "all_ready_s": round(t_ready - t0, 2),
        "ready_p50_s": round(percentile([t - t0 for t in ready_at.values()], 50), 2),
        "programmed_everywhere_after_last_ready_s": None if missing else round(after[-1], 2),
        "programmed_after_last_ready_p50_s": round(percentile(after, 50), 2),
        "nodes_programmed": len(seen),
        "not_programmed_last_counts": sorted(missing.values()),
        "cpu_s": {
            "controlplane": cpu.get("controlplane", 0.0),
            "agents_and_pods": round(sum(v for k, v in cpu.items() if k.startswith("agent-")), 1),
        },
        "load": loadavg(),
    }


def _step(out: dict[str, Any], key: str, value: Any) -> None:
    """Record one step's figures and print them at once (a later step may fail)."""
    out[key] = value
    print(json.dumps({key: value}), flush=True)


def run_cluster(nodes: int, pods: int, idle: float, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": nodes, "load_before": loadavg()}
    with running_cluster(nodes) as c:
        _step(out, "up_s", round(c.up_seconds, 2))
        _step(out, "api_all_ready_s", c.api_ready_seconds and round(c.api_ready_seconds, 2))
        _step(out, "load_after_up", loadavg())

        async def addons() -> float | None:
            async with c.api() as api:
                return await wait_addons_ready(api, timeout=120)

        _step(out, "addons_ready_wait_s", asyncio.run(addons()))
        time.sleep(idle)
        _step(out, "idle", memory(c))
        if pods:
            _step(out, "burst", asyncio.run(burst(c, pods, timeout)))
            time.sleep(idle)
            _step(out, f"with_{pods}_pods", memory(c))
    return out


# -- the proxy's memory at 1k and 10k Services -------------------------------------------------
# The Services and EndpointSlices of bench.proxy.dataplane's scale measure: 10 endpoints each
# in <pods>.200.0-<pods>.249.255, above every node's /24 (nobody connects to them).


def agent_rss(c: BenchCluster) -> dict[str, float]:
    """The agents' own processes (not their pods'): the proxy lives there."""
    rss = sorted(_own_rss_mib(pid) for pid in _agent_pids(c).values())
    return {"median": round(percentile(rss, 50), 1), "max": round(max(rss), 1)}


def _agent_pids(c: BenchCluster) -> dict[str, int]:
    status = json.loads((c.data_dir / "state" / "status.json").read_text())
    return {n: int(s["pid"]) for n, s in status.items() if n.startswith("agent-") and s.get("pid")}


def _own_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_entries(c: BenchCluster, at_least: int, timeout: float) -> float:
    t0 = time.monotonic()
    while len(service_ips(c, 2)) < at_least:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"node-2 programs {len(service_ips(c, 2))} < {at_least}")
        time.sleep(0.5)
    return time.monotonic() - t0


def run_proxy_memory(nodes: int, steps: list[int], settle: float) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": nodes, "load_before": loadavg()}
    with running_cluster(nodes) as c:
        base = len(service_ips(c, 2))
        _step(out, "agent_rss_mib_0", agent_rss(c))
        done = 0
        for n in steps:  # the objects go with the cluster
            t0 = time.monotonic()
            prefix = ".".join(c.pod_cidr.split(".")[:2])  # the run's pod /16
            asyncio.run(create_services(c, done, n, prefix))  # type: ignore[arg-type]
            created = time.monotonic() - t0
            waited = wait_entries(c, base + n, 900)
            done = n
            time.sleep(settle)
            _step(out, f"{n}", {
                "create_s": round(created, 1),
                "programmed_after_create_s": round(waited, 1),
                "agent_rss_mib": agent_rss(c),
                "load": loadavg(),
            })  # fmt: skip
    return out


def run(
    what: str, nodes: int, pods: int, idle: float, timeout: float, steps: list[int]
) -> dict[str, Any]:
    if what == "proxy-memory":
        return run_proxy_memory(nodes, steps, idle)
    return run_cluster(nodes, pods, idle, timeout)


__all__ = ["run"]
