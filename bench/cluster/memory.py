"""Memory of the whole idle cluster: RSS and PSS per component and in total.

``svcnet up --nodes 3``, ``idle`` seconds of nothing, then RSS (VmRSS) and PSS (Pss of
/proc/<pid>/smaps_rollup: shared pages split among their users, so the sum is fair) of every
process of the cluster — supervisor, control plane, each agent and its descendants (the pod
processes). Then the same with ``pods`` idle pods (a Deployment of agnhost netexec with a
readiness probe), after another ``idle`` seconds. Target: under 250 MB for 3 nodes.
A cross-check lists processes that name the cluster's data dir but sit in no component's tree
(they would escape the sum).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.cluster.harness import BenchCluster, machine_load, running_cluster
from bench.cluster.pod_start import deployment, is_ready
from bench.cluster.procs import cluster_usage, components, tree


def stray_processes(c: BenchCluster) -> list[str]:
    mine = {p for pid in components(c.data_dir / "state").values() for p in tree(pid)}
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine or int(d) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = Path(f"/proc/{d}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(c.data_dir) in cmd or str(c.data_dir) in env:
            out.append(f"{d} {cmd[:120]}")
    return out


def snapshot(c: BenchCluster) -> dict[str, Any]:
    per = cluster_usage(c.data_dir / "state")
    total_rss = sum(u.rss_kib for u in per.values())
    total_pss = sum(u.pss_kib for u in per.values())
    return {
        "components": {k: asdict(v) for k, v in per.items()},
        "total_rss_mib": total_rss / 1024,
        "total_pss_mib": total_pss / 1024,
        "processes": sum(u.processes for u in per.values()),
        "stray": stray_processes(c),
    }


async def start_pods(c: BenchCluster, n: int, timeout: float = 120) -> None:
    async with c.api() as api:
        await api.create(deployment("idle", n, probe=True))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = (await api.list("pods", "default", label_selector="bench=idle"))["items"]
            if sum(1 for p in pods if is_ready(p)) >= n:
                return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{n} idle pods not Ready in {timeout}s")


def run(idle: float = 30.0, pods: int = 10, nodes: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": nodes, "idle_s": idle}
    with running_cluster(nodes) as c:
        time.sleep(idle)
        out["idle_cluster"] = snapshot(c)
        out["load_idle"] = machine_load()
        if pods:
            asyncio.run(start_pods(c, pods))
            time.sleep(idle)
            out[f"with_{pods}_pods"] = snapshot(c)
            out["load_pods"] = machine_load()
    return out
